"""``QuadraticModel``: the quadratic (inverted-U) model of one outcome in a term A.

    y = c0 + c1·A + c2·A² + X·β (+ ρ·W·y) + ε,      turning point θ = −c1 / (2 c2)

(docs/method.md §3, paper's Table 9). ``fit`` is OLS, or the spatial 2SLS with ``spatial_lag``,
with the delta-method and Fieller intervals of θ and the Lind–Mehlum test of an inverted U on
the observed range of A (``models.frequentist.quadratic``); ``sample`` is the posterior of the
one-equation system model with the probabilities of the shape (``models.bayes.quadratic``).
Both are what ``scripts/fit_quadratic.py`` writes for ``--method ols`` and ``--method bayes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from data_prep.spectrum.chooser import Spectrum
from models.api.inputs import (Summary, dataset_spectrum, prepared_data, resolve_weights,
                               sampler_seed)
from models.frequentist.quadratic import QuadraticFit, fit_quadratic_frequentist
from models.spec.quadratic import QuadraticData, build_quadratic

if TYPE_CHECKING:
    from models.api.posterior import QuadraticPosteriorResults


class QuadraticModel:
    """The quadratic model of ``formula``'s outcome in its term ``quadratic`` (A).

    ``formula``: one equation, ``"ER ~ PSS + Gov + Fdi"`` (A must be one of its terms; its
    square enters as term ``"A^2"``); ``data`` and ``weights`` as for
    :class:`models.api.system.SpatialSystem`; ``spatial_lag`` adds ρ·W·y (a one-equation SAR;
    needs weights). Bad input raises ``InputError`` in one line (A not in the formula, A with
    at most two distinct values, a spatial lag without weights, ...).
    """

    def __init__(self, formula: str, data: Any, quadratic: str, weights: Any = None, *,
                 spatial_lag: bool = False, id_column: str = "city",
                 island_policy: str = "refuse") -> None:
        self.formula = formula
        data = prepared_data(data)
        resolved = resolve_weights(weights, island_policy)
        self.data: QuadraticData = build_quadratic(data, formula, quadratic, weights=resolved,
                                                   spatial_lag=spatial_lag,
                                                   id_column=id_column)
        self._stored = (dataset_spectrum(data, resolved, self.data.y.size)
                        if self.data.system.W is not None else None)

    @property
    def stored_spectrum(self) -> Spectrum | None:
        """The spectrum stored in a prepared dataset for these cities' W, if any."""
        return self._stored

    @property
    def uses_weights(self) -> bool:
        """False when the weights given are not used (no spatial lag in the model)."""
        return self.data.system.W is not None

    def fit(self) -> "QuadraticResults":
        """OLS (spatial 2SLS with a spatial lag): coefficients, θ with its delta-method
        standard error and Fieller set, and the Lind–Mehlum test (docs/method.md §3)."""
        return QuadraticResults(fit_quadratic_frequentist(self.data), self)

    def sample(self, draws: int = 1000, tune: int = 1000, chains: int = 4,
               seed: int | None = None, *, target_accept: float | None = None,
               max_treedepth: int | None = None, priors: dict[str, float] | None = None,
               sampler: str = "nutpie", progress: bool = True,
               checks=None) -> "QuadraticPosteriorResults":
        """The posterior (``models.bayes.quadratic.sample_quadratic``): slopes Normal(0, s)
        with s = max(1, √VIF) on the standardised scale unless ``priors`` sets
        ``beta_sigma``; P(inverted U on the observed range), P(θ inside it). ``seed`` None
        draws a fresh seed; the spectrum of W is the dataset's when it stores one."""
        from models.api.posterior import sample_quadratic_model  # lazy: pymc only to sample

        return sample_quadratic_model(self, draws=draws, tune=tune, chains=chains,
                                      seed=sampler_seed(seed), target_accept=target_accept,
                                      max_treedepth=max_treedepth, priors=priors,
                                      sampler=sampler, progress=progress, checks=checks)

    def __repr__(self) -> str:
        return (f"QuadraticModel: {self.data.outcome} in {self.data.term} and "
                f"{self.data.square}, {self.data.y.size} cities"
                f"{', spatial lag' if self.data.spatial_lag else ''}")


@dataclass(eq=False)
class QuadraticResults:
    """The frequentist fit: ``params`` is the contract-6 table ``fit_quadratic.py`` writes
    (equation, term, estimate, std_error, statistic, p_value, ci_low, ci_high; rows
    ``turning_point`` with the Fieller interval and ``lind_mehlum``); ``fit`` the full
    ``models.frequentist.quadratic.QuadraticFit``."""

    fit: QuadraticFit
    model: QuadraticModel

    @property
    def params(self) -> pd.DataFrame:
        return self.fit.to_frame()

    @property
    def turning_point(self) -> float:
        return self.fit.turning_point

    @property
    def lind_mehlum(self):
        """The Lind–Mehlum test (statistic, one-sided p-value, the range it was run on)."""
        return self.fit.lind_mehlum

    @property
    def fieller(self):
        return self.fit.fieller

    def summary(self) -> Summary:
        return Summary(self.fit.summary())

    def __repr__(self) -> str:
        return self.fit.summary()
