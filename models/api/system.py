"""``SpatialSystem``: a spatial simultaneous equation system as one Python object.

For equations g = 1..G over n cities (docs/method.md §2)

    y_g = Σ_h λ_gh W y_h + Σ_{h≠g} γ_gh y_h + X_g β_g + u_g,    u_g = ρ_g W u_g + ε_g,

with (ε_1r, …, ε_Gr) ~ N(0, Σ) independently over cities r. The formulas are the command-line
tools' (``"ER ~ PSS + W(ER) + W(PSS) + Gov"``: ``W(v)`` a spatial lag, a regressor that is
another equation's dependent endogenous, an intercept unless ``- 1``; ``models.spec.system``).

As in linearmodels, the model and its results are separate objects:

* :meth:`SpatialSystem.fit` estimates by GS3SLS, GS2SLS, 3SLS or 2SLS (Kelejian & Prucha 2004;
  docs/method.md §2a) and returns :class:`SpatialSystemResults` — the very numbers
  ``scripts/fit_gs3sls.py`` writes;
* :meth:`SpatialSystem.sample` draws the full-information posterior (PyMC model, nutpie NUTS;
  docs/method.md §2b) through :func:`models.bayes.fit.fit_posterior`, the function
  ``scripts/sample_posteriors.py`` runs, and returns :class:`models.api.posterior.Posterior`.

Example::

    import libpysal
    from models import SpatialSystem

    w = libpysal.weights.Queen.from_dataframe(gdf, ids="city"); w.transform = "r"
    model = SpatialSystem(["ER ~ PSS + W(ER) + W(PSS) + Gov",
                           "PSS ~ ER + W(PSS) + W(ER) + Fdi"], frame, w)
    res = model.fit("gs3sls")          # res.params, res.summary(), res.impacts()
    post = model.sample(draws=1000, seed=1)   # post.summary(), post.impacts(), post.loo()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum, spectrum as choose_spectrum
from models.api.inputs import (Summary, dataset_spectrum, prepared_data, resolve_weights,
                               sampler_seed)
from models.bayes.panel_system import PanelSystem, panel_system
from models.frequentist import METHODS, SystemResults, estimate
from models.spec.coefficient_tables import coefficient_frame, paper_table
from models.spec.inputs import read_data
from models.spec.system import SystemData, SystemSpec, build_system, parse_system

if TYPE_CHECKING:  # the Bayesian side (pymc) is imported only when sampling
    from models.api.posterior import Posterior

COV_TYPES = ("unadjusted", "clustered", "robust")
NOT_FINITE = ("the estimates or their standard errors are not finite; the system is not "
              "identified by these data (see the first-stage diagnostics)")


def _is_panel(frame: pd.DataFrame, id_column: str, year_column: str) -> bool:
    """A table with a year column in which some city has more than one row."""
    return (year_column in frame.columns and id_column in frame.columns
            and bool(frame[id_column].astype(str).duplicated().any()))


class SpatialSystem:
    """A spatial simultaneous equation system: formulas, data and spatial weights.

    ``equations``: one formula per equation (a single string for one equation).
    ``data``: a DataFrame with the ``id_column`` (one row per city; or a balanced panel, one
    row per (city, ``year_column``)), a prepared ``xarray.Dataset`` (its period-mean
    cross-section, its stored weights and spectrum; ``panel=True`` for its (city, year)
    table), or a .csv/.nc path. ``weights``: a libpysal ``W``, a .gal/.gwt/GeoJSON path, a
    ``SpatialWeights`` or a sparse matrix in the data's row order (None: the dataset's own);
    ids are matched to the cities as the scripts match them, islands follow ``island_policy``.
    ``instruments``: extra excluded instruments (column names); ``spatial_errors``: "none",
    "all", or the dependents with u = ρWu + ε. ``panel``: None detects a panel (a table with
    a ``year_column`` and repeated cities); a panel is fitted by :meth:`sample` after the Lee–Yu
    within transformation (city effects, and year effects unless ``year_effects=False``;
    ``models.bayes.panel_system``).

    Bad input — an unknown variable, a formula that does not parse, weights whose ids do not
    match the cities, an unidentified equation — raises ``data_prep.errors.InputError`` with a
    one-line message, here rather than at fitting time.
    """

    def __init__(self, equations: Sequence[str] | str, data: Any, weights: Any = None, *,
                 instruments: Sequence[str] | str = (),
                 spatial_errors: str | Sequence[str] = "none", id_column: str = "city",
                 island_policy: str = "refuse", panel: bool | None = None,
                 year_column: str = "year", year_effects: bool = True) -> None:
        self.equations: tuple[str, ...] = ((equations,) if isinstance(equations, str)
                                           else tuple(equations))
        self.spatial_errors = (spatial_errors if isinstance(spatial_errors, str)
                               else ",".join(spatial_errors))
        self.id_column = id_column
        spec = parse_system(list(self.equations), instruments=instruments,
                            spatial_errors=spatial_errors)
        data = prepared_data(data)
        resolved = resolve_weights(weights, island_policy)
        frame = stored = None
        if not panel:  # the table (a dataset's: its period-mean cross-section)
            frame, stored = read_data(data, id_column)
            panel = panel is None and _is_panel(frame, id_column, year_column)
        self.panel: PanelSystem | None = None
        self.frame: pd.DataFrame | None = None
        self._stored: Spectrum | None = None
        if panel:
            self.panel = panel_system(spec, data if frame is None else frame, weights=resolved,
                                      id_column=id_column, year_column=year_column,
                                      year_effects=year_effects)
            self.system: SystemData = self.panel.system
        else:
            self.frame = frame
            self.system = build_system(spec, frame, weights=resolved if resolved is not None
                                       else stored, id_column=id_column)
            self._stored = dataset_spectrum(data, resolved, self.system.n)
        self._spectra: dict[int, Spectrum] = {}

    # ------------------------------------------------------------------ description

    @property
    def spec(self) -> SystemSpec:
        """The parsed specification (terms of every equation, as the estimators name them)."""
        return self.system.spec

    @property
    def dependents(self) -> tuple[str, ...]:
        return self.system.spec.dependents

    @property
    def nobs(self) -> int:
        """Rows of the system: cities (n(T − 1) within-transformed rows for a panel)."""
        return self.system.n

    @property
    def cities(self) -> np.ndarray:
        return np.asarray(self.panel.cities if self.panel is not None else self.system.cities)

    @property
    def W(self):
        """The n × n sparse weights aligned with :attr:`cities` (None without weights)."""
        return self.panel.W if self.panel is not None else self.system.W

    @property
    def stored_spectrum(self) -> Spectrum | None:
        """The spectrum stored in the prepared dataset, when it is that of these cities' W."""
        return self._stored

    def spectrum(self, seed: int = 0) -> Spectrum | None:
        """The spectrum of W the Bayesian model and the impacts use: the one stored in a
        prepared dataset for these cities, else :func:`data_prep.spectrum.chooser.spectrum`
        (exact eigenvalues up to its threshold, a quadrature seeded by ``seed`` above)."""
        if self.W is None:
            return None
        if self._stored is not None:
            return self._stored
        if seed not in self._spectra:
            self._spectra[seed] = choose_spectrum(self.W, seed=seed)
        return self._spectra[seed]

    def __repr__(self) -> str:
        kind = (f"panel of {self.panel.n_cities} cities x {self.panel.T} years"
                if self.panel is not None else f"{self.nobs} cities")
        lines = [f"SpatialSystem: {len(self.equations)} equations, {kind}, "
                 f"{'no weights' if self.W is None else f'{self.W.nnz} links in W'}"]
        lines += [f"  {eq.dependent} ~ {' + '.join(eq.terms)}" for eq in self.spec.equations]
        return "\n".join(lines)

    # ------------------------------------------------------------------ estimation

    def _clusters(self, clusters: Any) -> np.ndarray:
        if isinstance(clusters, str):
            if clusters not in self.frame.columns:
                raise InputError(f"clusters {clusters!r}: the data have no column {clusters}")
            return self.frame[clusters].to_numpy()
        values = np.asarray(clusters)
        if values.shape != (self.nobs,):
            raise InputError(f"clusters: expected a column name or {self.nobs} values (one per "
                             f"city), not an array of shape {values.shape}")
        return values

    def fit(self, method: str = "gs3sls", cov: str = "unadjusted", *, clusters: Any = None,
            rho_bounds: tuple[float, float] | None = None) -> "SpatialSystemResults":
        """Estimate by ``method`` ("gs3sls", "gs2sls", "3sls", "2sls"; docs/method.md §2a).

        GS3SLS: 2SLS with H = [X, WX, W²X] → GM estimate of each spatial-error ρ → the
        spatially filtered y* = y − ρWy, Z* = Z − ρWZ → 3SLS with Σ̂ from the GS2SLS residuals.
        ``cov``: "unadjusted" (errors iid over cities), "clustered" (the cluster-robust
        sandwich; ``clusters`` a data column name or one value per city) or "robust" (the
        heteroskedasticity-robust GM for ρ and robust standard errors, Arraiz, Drukker,
        Kelejian & Prucha 2010; ``params`` then has a ``rho`` row per spatial-error equation).
        ``rho_bounds``: the GM search range of ρ (default from the extreme eigenvalues of W).
        """
        if self.panel is not None:
            raise InputError("fit() estimates cross-sections; a panel is fitted by sample() "
                             "(Lee-Yu within transformation), or fit one year's rows")
        if cov not in COV_TYPES:
            raise InputError(f"unknown cov {cov!r}; choose one of {', '.join(COV_TYPES)}")
        if (cov == "clustered") != (clusters is not None):
            raise InputError("cov='clustered' and clusters go together (clusters: a data "
                             "column or one value per city)")
        options: dict[str, Any] = {"rho_bounds": rho_bounds}
        if cov == "clustered":
            options.update(cov_type="clustered", clusters=self._clusters(clusters))
        elif cov == "robust":
            options["heteroskedastic"] = True
        results = estimate(self.system, method, **options)
        params = coefficient_frame(results.to_frame())
        if not np.all(np.isfinite(params[["estimate", "std_error"]].to_numpy())):
            raise InputError(NOT_FINITE)
        return SpatialSystemResults(results, params, self)

    def sample(self, draws: int = 1000, tune: int = 1000, chains: int = 4,
               seed: int | None = None, *, target_accept: float | None = None,
               max_treedepth: int | None = None, priors: dict[str, float] | None = None,
               errors: str = "normal", sampler: str = "nutpie", progress: bool = True,
               effects: bool = True, keep_pointwise: bool | None = None,
               predictive: bool = False, predictive_draws: int = 500,
               started=None, checks=None) -> "Posterior":
        """Draw the posterior of the full-information model (docs/method.md §2b).

        log p(y | θ) = Σ_k log|det(I_G − B0 − λ_k B1)| + Σ_g Σ_k log|1 − ρ_g λ_k|
        − (n/2) log det Σ − ½ Σ_r ε_r'Σ⁻¹ε_r − (nG/2) log 2π over the eigenvalues λ_k of W
        (or a quadrature of them above the chooser's threshold), priors
        ``models.bayes.system.DEFAULT_PRIORS`` updated by ``priors``; ``errors="student-t"``
        for multivariate Student-t errors per city. ``seed`` None draws a fresh seed (stored
        in the attributes); the same seed gives the same draws as ``sample_posteriors.py``.
        ``target_accept`` None is the sampler's default (0.8), ``max_treedepth`` None its 10.
        Then the direct/indirect/total impacts and PSIS-LOO (``effects``), the pointwise
        densities (``keep_pointwise``), the posterior predictive group (``predictive``).
        """
        from models.api.posterior import sample_system  # lazy: pymc/nutpie only when sampling

        return sample_system(self, draws=draws, tune=tune, chains=chains,
                             seed=sampler_seed(seed), target_accept=target_accept,
                             max_treedepth=max_treedepth, priors=priors, errors=errors,
                             sampler=sampler, progress=progress, effects=effects,
                             keep_pointwise=keep_pointwise, predictive=predictive,
                             predictive_draws=predictive_draws, started=started,
                             checks=checks)


@dataclass(eq=False)
class SpatialSystemResults:
    """The estimates of :meth:`SpatialSystem.fit`, around ``models.frequentist.SystemResults``.

    ``params``: the contract-2 table (columns equation, term, estimate, std_error, statistic,
    p_value; z = estimate / std_error, two-sided normal p-values) exactly as
    ``scripts/fit_gs3sls.py`` writes it; ``cov``: the covariance of the stacked estimates
    (MultiIndex equation, term); ``results``: the underlying ``SystemResults`` (Σ̂, ρ̂,
    residuals, R², first-stage diagnostics, warnings).
    """

    results: SystemResults
    params: pd.DataFrame
    model: SpatialSystem

    @property
    def method(self) -> str:
        return self.results.method

    @property
    def cov(self) -> pd.DataFrame:
        return self.results.cov

    @property
    def sigma(self) -> pd.DataFrame:
        """Σ̂, the G × G covariance of the (spatially filtered) disturbances."""
        return self.results.sigma

    @property
    def rho(self) -> dict[str, float | None]:
        """The GM estimate of each equation's spatial-error ρ (None without one)."""
        return dict(self.results.rho)

    @property
    def rsquared(self) -> dict[str, float]:
        """Squared correlation of y_g and its fitted values, per equation."""
        return dict(self.results.rsquared)

    @property
    def nobs(self) -> int:
        return self.results.nobs

    @property
    def resid(self) -> pd.DataFrame:
        return self.results.resid

    @property
    def diagnostics(self) -> pd.DataFrame:
        """First-stage diagnostics per endogenous regressor (partial F, partial R², Cragg–Donald
        and Sanderson–Windmeijer; ``models.frequentist.diagnostics``)."""
        return self.results.first_stage

    @property
    def warnings(self) -> list[str]:
        """Plain-words warnings: weak identification, identification through spatial lags
        only, ρ at its bound, an estimate outside the stable region."""
        return list(self.results.warnings)

    def summary(self) -> Summary:
        """The printed table per equation (stars, R², ρ, Σ̂, first stage, warnings)."""
        return Summary(self.results.summary())

    def table(self) -> pd.DataFrame:
        """The paper-style table (``models.spec.coefficient_tables.paper_table``: estimate
        with stars over its z statistic, one column per equation, Observations and R²)."""
        frames = {eq: self.params[self.params["equation"] == eq]
                  for eq in self.model.dependents}
        return paper_table(frames, nobs=self.nobs, rsquared=self.rsquared)

    def impacts(self, draws: int = 1000, seed: int = 0) -> pd.DataFrame:
        """Direct, indirect and total impacts at the estimate (LeSage & Pace 2009, ch. 2;
        ``models.bayes.effects``), with 95 % intervals simulated from δ ~ N(δ̂, V̂) (inadmissible draws discarded)
        and stars for the 99/95/90 % intervals that exclude 0 (columns effect, response,
        variable, estimate, low, high, stars). Needs the exact spectrum of W."""
        # lazy: models.study.figures draws with matplotlib, kept out of the estimation path
        from models.study.headline import gs3sls_impacts

        spectrum = self.model.spectrum()
        if spectrum is None:
            raise InputError("impacts need spatial weights; this system has none")
        if spectrum.weights is not None:
            raise InputError(f"impacts need the exact spectrum of W; for {self.nobs} cities "
                             f"it is a {spectrum.method} quadrature")
        return gs3sls_impacts(self.results, spectrum.nodes, seed=seed, W=self.model.W,
                              draws=draws)

    def __repr__(self) -> str:
        return self.results.summary()


__all__ = ["METHODS", "SpatialSystem", "SpatialSystemResults"]
