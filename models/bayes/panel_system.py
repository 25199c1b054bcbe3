"""Panel mode of the Bayesian system: city (and year) fixed effects by the Lee & Yu transformation.

Lee, L.-f. and Yu, J. (2010), "Estimation of spatial autoregressive panel data models with fixed
effects", Journal of Econometrics 154(2), 165–185 (docs/method.md §2b, panel mode).

Data: a long table, one row per (city, year), balanced. With F the orthonormal Helmert basis
(T × (T − 1), F'F = I, F'1 = 0; ``models.bayes.panel.within_matrix``) every column v (T years ×
n cities) becomes F'v: T − 1 *contrasts* × n cities. City effects (constant over years) vanish
exactly, and so do the intercept and every regressor constant over years (such a regressor is
refused: the city effects absorb it). F acts on years and W on cities, so they commute and the
transformed panel is exactly a cross-section of N = n(T − 1) rows (contrast-major, labelled
"city|contrast k") with block-diagonal weights I_{T−1} ⊗ W, whose spectrum is the cross-section
spectrum repeated T − 1 times. Hence the model is ``build_system_model`` on that cross-section
with weight T − 1 on each of the n eigenvalues of W (``PanelSystem.spectrum``):

    log p = (T − 1) Σ_k log|det(I − B0 − B1 λ_k)| − (N/2) log det Σ − ½ Σ_{r,c} ε_rc' Σ⁻¹ ε_rc
            − (N G / 2) log 2π          (plus (T − 1) Σ_g Σ_k log|1 − ρ_g λ_k| for spatial errors),

the exact likelihood of the transformed data (no approximation; O(n) Jacobian per evaluation).

Degrees of freedom. Because F is orthonormal the transformed errors are again iid N(0, Σ) over
the N = n(T − 1) rows: Σ is estimated from n(T − 1) observations, not nT (plain demeaning with T
copies of the Jacobian and nT in the variance — the "direct approach" — biases Σ by the factor
(T − 1)/T, which matters when T is small; Lee & Yu 2010 §3). The city effects are never
parameters, so there is no incidental-parameter problem.

Student-t errors (choice). The transformation does not keep independent t errors per
city-year: F' mixes a city's T years, and a linear combination of independent t vectors is not
t. It does keep a t law whose scale is shared by the city's years: if ε_i,1..T | w_i ~
N(0, I_T ⊗ Σ/w_i), w_i ~ Gamma(ν/2, ν/2) (a heavy-tailed *city*), then F'ε_i | w_i ~
N(0, I_{T−1} ⊗ Σ/w_i) exactly, a (T − 1)G-dimensional t per city. So panel mode with
``errors="student-t"`` is ``build_system_model(..., errors="student-t", t_blocks=T − 1)`` (the
rows are contrast-major, block k holds every city's k-th contrast): exact for that model, not
for city-year outliers with independent scales.

Year effects (``year_effects=True``, choice). Year effects α_t (one (G,) vector per year) are
constant across cities, so after the transformation they become T − 1 free *contrast* effects
δ_c = (F'α)_c, each multiplying a dummy that is 1 on the rows of contrast c. They are estimated as
ordinary exogenous coefficients named ``year_contrast[1]`` … ``year_contrast[T-1]``: these are
the year effects expressed in Helmert contrasts (δ_c compares year c + 1 with the mean of the
years before it, scaled by √(c/(c+1))), not per-year levels. This keeps N = n(T − 1) rows and
the full spectrum (unlike the cross-city demeaning of ``models.bayes.panel``, which drops one
city's worth of rows and the unit eigenvalue); both are exact, they differ only in whether the
year effects are parameters (here, with a Normal prior) or projected out.

Hand-written because no library offers the Lee & Yu transformation for a simultaneous system.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from data_prep.dataset import panel_table
from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum, spectrum
from models.bayes.panel import within_matrix
from models.spec.identification import check_identification
from models.spec.inputs import read_data
from models.spec.instruments import independent_columns
from models.spec.system import SystemData, SystemSpec, build_system, parse_system

YEAR_CONTRAST = "year_contrast[{}]"
_SHOW = 6  # how many missing city-years an error message lists


@dataclass
class PanelSystem:
    """The within-transformed panel as one cross-section, with its spectrum and weights.

    ``system`` has n(T − 1) rows; ``spectrum`` is the spectrum of the n × n W (exact
    eigenvalues, or quadrature nodes above the dense limit) with each node's weight times its
    multiplicity T − 1, so ``build_system_model(system, spectrum)`` is the exact model.
    """

    system: SystemData
    spectrum: Spectrum | None
    T: int
    years: tuple
    n_cities: int
    year_effects: bool
    cities: np.ndarray           # the n cities, in the order of the rows within each contrast
    W: sp.csr_matrix | None      # the n × n cross-section weights


def balanced_panel(frame: pd.DataFrame, id_column: str, year_column: str):
    """City order (first appearance), sorted years; InputError naming missing city-years."""
    for col in (id_column, year_column):
        if col not in frame.columns:
            raise InputError(f"panel data have no {col!r} column "
                             f"(columns: {', '.join(map(str, frame.columns[:10]))})")
    ids = frame[id_column].astype(str)
    years = frame[year_column]
    if years.isna().any():
        raise InputError(f"the year column {year_column} has missing values")
    dup = pd.DataFrame({"c": ids, "y": years}).duplicated(keep=False)
    if dup.any():
        pairs = [f"{c}/{y}" for c, y in zip(ids[dup], years[dup])][:_SHOW]
        raise InputError(f"panel data repeat city-years: {', '.join(pairs)}")
    cities = pd.unique(ids)
    year_values = tuple(y.item() if hasattr(y, "item") else y for y in sorted(pd.unique(years)))
    if len(year_values) < 2:
        raise InputError(f"panel mode needs at least 2 years in column {year_column}, "
                         f"found {len(year_values)}")
    if len(frame) != len(cities) * len(year_values):
        have = set(zip(ids, years))
        missing = [f"{c}/{y}" for c in cities for y in year_values if (c, y) not in have]
        more = f" and {len(missing) - _SHOW} more" if len(missing) > _SHOW else ""
        raise InputError(f"unbalanced panel: missing city-years {', '.join(missing[:_SHOW])}"
                         f"{more} (every city needs a row for every year)")
    return np.asarray(cities, dtype=str), year_values


def _intercept_free(spec) -> SystemSpec:
    """The spec re-parsed with '- 1': the within transformation removes every constant."""
    if not isinstance(spec, SystemSpec):
        spec = parse_system(spec)
    errors = [eq.dependent for eq in spec.equations if eq.spatial_error]
    return parse_system([f"{eq.formula} - 1" for eq in spec.equations],
                        instruments=spec.instruments, spatial_errors=errors or "none")


def _spectrum(W: sp.csr_matrix, multiplicity: float) -> Spectrum:
    """Spectrum of W by the one chooser (exact up to its threshold, quadrature above), each
    node's weight times the panel multiplicity T − 1."""
    result = spectrum(W, seed=0)
    weights = np.ones(result.nodes.shape) if result.weights is None else result.weights
    return Spectrum(result.nodes, weights * multiplicity, "panel",
                    {**result.details, "multiplicity": multiplicity})


def panel_system(spec, data, weights=None, *, id_column: str = "city",
                 year_column: str = "year", year_effects: bool = True,
                 spectrum: bool = True) -> PanelSystem:
    """Within-transform a balanced (city, year) panel into one cross-section (module docstring).

    ``spec``: formulas or a SystemSpec (any intercept is dropped); ``data``: long DataFrame, .csv
    or prepared .nc (its (city, year) variables, ER's undefined last year dropped); ``weights`` as
    for ``models.spec.system.build_system`` (a sparse matrix follows the cities' order of first
    appearance). Each year's rows go through ``build_system`` (so formula transforms are applied
    year by year), are stacked (T, n, ·) and projected on F' along the year axis.
    ``spectrum=False`` skips the eigenvalues (then ``spectrum`` is None).
    """
    frame, stored = read_data(data, id_column, table=panel_table)
    if not isinstance(data, pd.DataFrame):
        frame = frame.rename(columns={"city": id_column, "year": year_column})
    cities, years = balanced_panel(frame, id_column, year_column)
    T, n = len(years), cities.size
    spec0 = _intercept_free(spec)
    frame = frame.assign(**{id_column: frame[id_column].astype(str)})
    by_year = {y: g.set_index(id_column).loc[cities].reset_index()
               for y, g in frame.groupby(year_column, sort=True)}
    W = weights if weights is not None else stored
    systems: list[SystemData] = []
    for y in years:
        s = build_system(spec0, by_year[y].drop(columns=year_column), weights=W,
                         id_column=id_column, check=False)
        if systems:
            for eq, eq0 in zip(s.spec.equations, systems[0].spec.equations):
                if eq.exogenous != eq0.exogenous:
                    raise InputError(f"equation {eq.dependent}: the exogenous columns differ "
                                     f"between years {years[0]} and {y} "
                                     f"(a categorical level missing in some year?)")
        else:
            W = s.W  # resolved and aligned once; reused for the other years
        systems.append(s)
    first = systems[0]
    F = within_matrix(T)
    within = lambda arrays: np.einsum("tc,tn...->cn...", F, np.stack(arrays)).reshape(
        (n * (T - 1),) + arrays[0].shape[1:])

    Y = within([s.Y for s in systems])
    Q = within([s.Q for s in systems])
    dummies = (np.kron(np.eye(T - 1), np.ones((n, 1))) if year_effects
               else np.empty((n * (T - 1), 0)))
    dnames = tuple(YEAR_CONTRAST.format(c) for c in range(1, T)) if year_effects else ()
    X, equations = [], []
    for j, eq in enumerate(first.spec.equations):
        raw = np.stack([s.X[j] for s in systems])                     # (T, n, k)
        Xj = within([s.X[j] for s in systems])
        scale = np.sqrt((raw ** 2).sum(axis=(0, 1))) + 1.0
        gone = [nm for k, nm in enumerate(eq.exogenous)
                if np.sqrt((Xj[:, k] ** 2).sum()) <= 1e-10 * scale[k]]
        if gone:
            raise InputError(f"equation {eq.dependent}: {', '.join(gone)} does not vary over "
                             f"years within cities, so the city fixed effects absorb it; "
                             f"remove it in panel mode")
        Xj = np.hstack([Xj, dummies])
        names = eq.exogenous + dnames
        kept, _ = independent_columns([(nm, Xj[:, k]) for k, nm in enumerate(names)], [])
        lost = [nm for nm in names if nm not in {k for k, _ in kept}]
        if lost:
            raise InputError(f"equation {eq.dependent}: after removing the city"
                             f"{' and year' if year_effects else ''} effects, "
                             f"{', '.join(lost)} is a linear combination of the other columns "
                             f"(does it vary only by year?); remove it in panel mode")
        X.append(Xj)
        equations.append(dataclasses.replace(eq, exogenous=eq.exogenous + dnames))
    raw_y = np.sqrt((np.stack([s.Y for s in systems]) ** 2).sum(axis=(0, 1))) + 1.0
    for g, dep in enumerate(first.spec.dependents):
        if np.sqrt((Y[:, g] ** 2).sum()) <= 1e-10 * raw_y[g]:
            raise InputError(f"equation {dep}: the dependent does not vary over years within "
                             f"cities; nothing is left after removing the city effects")
    new_spec = SystemSpec(tuple(equations), first.spec.instruments)
    labels = np.array([f"{c}|contrast {k}" for k in range(1, T) for c in cities])
    Wbig = sp.kron(sp.identity(T - 1), W, format="csr") if W is not None else None
    system = SystemData(new_spec, labels, Wbig, Y, X, Q)

    check_identification(system, spatial=Wbig is not None and new_spec.uses_weights)
    used = _spectrum(W, T - 1.0) if (spectrum and W is not None) else None
    return PanelSystem(system=system, spectrum=used, T=T, years=years,
                       n_cities=n, year_effects=year_effects, cities=cities, W=W)


__all__ = ["PanelSystem", "panel_system", "YEAR_CONTRAST"]
