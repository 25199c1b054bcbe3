"""Censored (city, year) panels with known truth, for the factor model's recovery tests.

y*_rt = α + a_r + τ_t + Σ_k Z_rtk φ_{g(r),k} + σ e_rt, e ~ N(0, 1), a_r ~ N(0, sd_city²),
τ_t ~ N(0, sd_year²) with τ_1 = 0, Z ~ N(0, 1) (plus a city-level component of share
``z_city_share``, so factors correlate with the city effect as real panels do);
y = min(max(y*, lower), upper). This is the data-generating process of docs/method.md §5 and of
:func:`models.bayes.censored.censored_factor_model`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class CensoredPanel:
    data: pd.DataFrame          # columns city, year, y, x1..xK, group
    truth: dict                 # alpha, phi (K,), phi_group (G, K), sigma, sd_city, a_city, tau
    factors: tuple[str, ...]


def simulate_censored_panel(cities_per_group=(20, 20), n_years: int = 6,
                            phi=(0.5, -0.3), group_shift=None, *, alpha: float = -0.1,
                            sigma: float = 0.5, sd_city: float = 0.3, sd_year: float = 0.2,
                            lower: float | None = 0.0, upper: float | None = None,
                            z_city_share: float = 0.3, seed: int = 0) -> CensoredPanel:
    """Simulate a censored panel; group g's slopes are ``phi + group_shift[g]``.

    ``group_shift``: (G, K) deviations of the group slopes from ``phi`` (default zero, i.e. one
    common slope). The defaults censor about half of the cells at 0.
    """
    rng = np.random.default_rng(seed)
    phi = np.asarray(phi, float)
    K, G = phi.size, len(cities_per_group)
    shift = np.zeros((G, K)) if group_shift is None else np.asarray(group_shift, float)
    phi_group = phi + shift
    group_of_city = np.repeat(np.arange(G), cities_per_group)
    n_cities = group_of_city.size
    a_city = sd_city * rng.standard_normal(n_cities)
    tau = np.concatenate([[0.0], sd_year * rng.standard_normal(n_years - 1)])
    city = np.repeat(np.arange(n_cities), n_years)
    year = np.tile(np.arange(n_years), n_cities)
    z_city = rng.standard_normal((n_cities, K))
    Z = (np.sqrt(z_city_share) * z_city[city]
         + np.sqrt(1 - z_city_share) * rng.standard_normal((city.size, K)))
    mu = alpha + a_city[city] + tau[year] + np.einsum("ik,ik->i", Z, phi_group[group_of_city[city]])
    y = mu + sigma * rng.standard_normal(city.size)
    if lower is not None:
        y = np.maximum(y, lower)
    if upper is not None:
        y = np.minimum(y, upper)
    factors = tuple(f"x{k + 1}" for k in range(K))
    data = pd.DataFrame({"city": [f"c{c:03d}" for c in city], "year": 2010 + year, "y": y,
                         **{f: Z[:, k] for k, f in enumerate(factors)},
                         "group": [f"g{g + 1}" for g in group_of_city[city]]})
    truth = {"alpha": alpha, "phi": phi, "phi_group": phi_group, "sigma": sigma,
             "sd_city": sd_city, "a_city": a_city, "tau": tau, "lower": lower, "upper": upper}
    return CensoredPanel(data, truth, factors)
