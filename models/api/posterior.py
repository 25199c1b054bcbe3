"""The Bayesian side of the Python API: the posteriors of the three model families.

* :class:`Posterior` — a :class:`models.api.system.SpatialSystem`'s: :func:`sample_system`
  runs :func:`models.bayes.fit.fit_posterior`, the complete fit ``scripts/sample_posteriors.py``
  runs too (spectrum, model, NUTS draws, impacts, LOO; docs/method.md §2b). ``idata`` holds
  what the script writes to its .nc; ``summary()`` the contract-2 table it writes beside it;
* :class:`QuadraticPosteriorResults` — a :class:`models.api.quadratic.QuadraticModel`'s
  (``models.bayes.quadratic``, docs/method.md §3);
* :class:`CensoredPosterior` — a :class:`models.api.censored.CensoredFactorModel`'s
  (``models.bayes.censored``, docs/method.md §5).

This module loads PyMC; the model classes import it only when they sample.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any

import pandas as pd

from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum
from models.api.inputs import Summary
from models.bayes.censored import (check_priors, fit_censored, group_contrasts,
                                   posterior_predictive as censored_predictive,
                                   summary_frame as censored_summary)
from models.bayes.fit import (PosteriorFit, check_counts, fit_posterior, impact_summary,
                              posterior_summary)
from models.bayes.loo import loo_result
from models.bayes.postprocess import HDI_PROB
from models.bayes.quadratic import QuadraticPosterior, sample_quadratic
from models.bayes.sampling import PYTHON, check_sampler_settings, convergence_word, quiet_arviz
from models.spec.coefficient_tables import posterior_frame


@dataclass(eq=False)
class Posterior:
    """The posterior of a spatial system and what was computed from it.

    ``idata``: ArviZ InferenceData — posterior ``coef`` (chain, draw, equation, term), ``Sigma``,
    ``rho`` with spatial errors, ``nu`` with Student-t errors, the impacts ``impact``; the
    PSIS-LOO group ``loo`` (and ``log_likelihood`` for small fits or ``keep_pointwise``);
    ``sample_stats``; the run's description and convergence report in ``posterior.attrs``.
    ``warnings``: what may make it unreliable; ``messages``: what was skipped or stored
    differently (e.g. LOO in panel mode).
    """

    fit: PosteriorFit
    model: Any  # the models.api.system.SpatialSystem sampled

    @property
    def idata(self):
        return self.fit.idata

    @property
    def seed(self) -> int:
        return int(self.idata.posterior.attrs["seed"])

    @property
    def spectrum(self) -> Spectrum | None:
        """The spectrum of W the log-Jacobian and the impacts used."""
        return self.fit.spectrum

    @property
    def warnings(self) -> list[str]:
        return list(self.fit.warnings)

    @property
    def messages(self) -> list[str]:
        return list(self.fit.messages)

    @property
    def convergence(self) -> list[str]:
        """The sampler's plain-words report: R-hat ≤ 1.01, bulk ESS ≥ 400, divergences, tree
        depth (Vehtari et al. 2021), each failed check naming the setting to change."""
        return json.loads(self.idata.posterior.attrs.get("convergence_report", "[]"))

    @property
    def converged(self) -> bool:
        report = self.convergence
        return bool(report) and convergence_word(report).startswith("converged")

    def summary(self, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """Contract-2 summary: columns equation, term, mean, sd, hdi_low, hdi_high, r_hat,
        ess_bulk (``hdi_prob`` highest-density intervals, 94 % by default) — with the default,
        the table ``sample_posteriors.py`` writes beside its .nc."""
        return posterior_summary(self.idata, hdi_prob)

    def impacts(self, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
        """Posterior direct / indirect / total impacts (LeSage & Pace 2009), per effect,
        response and variable: mean, sd and ``hdi_prob`` HDI (a variable that is a dependent
        is a unit shock to its equation)."""
        return impact_summary(self.idata, hdi_prob)

    def loo(self):
        """PSIS-LOO of the leave-one-city-out conditional densities (ArviZ ``ELPDData``:
        elpd_loo, se, p_loo, pointwise values and Pareto k per city)."""
        result = loo_result(self.idata)
        if result is None:
            why = (" (skipped in panel mode: its rows are year contrasts, not cities)"
                   if self.model.panel is not None else " (sampled with effects=False)")
            raise InputError(f"this posterior has no LOO{why}")
        return result

    def __repr__(self) -> str:
        post = self.idata.posterior
        return (f"Posterior: {post.sizes['chain']} chains x {post.sizes['draw']} draws, "
                f"seed {self.seed}, {convergence_word(self.convergence)}\n"
                + self.summary().to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def sample_system(model, *, seed: int, checks=None,
                  **settings: Any) -> Posterior:
    """The posterior of ``model`` by :func:`models.bayes.fit.fit_posterior` (its settings:
    :meth:`models.api.system.SpatialSystem.sample`; ``checks`` None: the full-run thresholds,
    the advice naming keyword arguments); the fit's warnings are issued as Python warnings."""
    target = model.panel if model.panel is not None else model.system
    fit = fit_posterior(target, spectrum=model.stored_spectrum, seed=seed,
                        equations=list(model.equations), spatial_errors=model.spatial_errors,
                        checks=PYTHON if checks is None else checks, **settings)
    for message in fit.warnings:
        warnings.warn(message, stacklevel=3)
    return Posterior(fit, model)


# ------------------------------------------------------------------ the quadratic model

@dataclass(eq=False)
class QuadraticPosteriorResults:
    """The posterior of a :class:`models.api.quadratic.QuadraticModel`: ``idata`` as
    ``fit_quadratic.py --method bayes`` writes it, ``shape`` the turning point and the
    probabilities of the shape (``models.bayes.quadratic.QuadraticPosterior``)."""

    idata: Any
    shape: QuadraticPosterior

    def summary(self) -> pd.DataFrame:
        """Contract-6 summary: the coefficient rows, ``turning_point``, ``p_inverted_u``,
        ``p_inverted_u_range`` and ``p_turning_point_in_range`` (columns of contract 2)."""
        return posterior_frame(self.shape.summary)

    @property
    def probabilities(self) -> dict[str, float]:
        return dict(self.shape.probabilities)

    def describe(self) -> Summary:
        """The turning point and the shape probabilities in sentences, with their priors."""
        return Summary(self.shape.describe())

    def __repr__(self) -> str:
        return self.shape.describe()


def sample_quadratic_model(model, *, seed: int, draws: int, tune: int, chains: int,
                           checks=None, **settings: Any) -> QuadraticPosteriorResults:
    """The posterior of a QuadraticModel (``models.bayes.quadratic.sample_quadratic``, the
    dataset's spectrum when stored), its formula kept in the attributes; ``checks`` None: the
    full-run thresholds, the advice naming keyword arguments."""
    check_counts(draws, tune, chains)
    idata, shape = sample_quadratic(model.data, seed=seed, draws=draws, tune=tune,
                                    chains=chains, eigenvalues=model.stored_spectrum,
                                    checks=PYTHON if checks is None else checks, **settings)
    idata.posterior.attrs["formula"] = model.formula
    return QuadraticPosteriorResults(idata, shape)


# ------------------------------------------------------------------ the censored factor model

@dataclass(eq=False)
class CensoredPosterior:
    """The posterior of a :class:`models.api.censored.CensoredFactorModel`: ``idata`` as
    ``fit_factor_model.py --method bayes`` writes it."""

    idata: Any
    model: Any

    def summary(self) -> pd.DataFrame:
        """Contract-2 summary: overall slopes, group slopes ``x1[g]``, ``sigma`` (94 % HDIs)."""
        with quiet_arviz():
            return posterior_frame(censored_summary(self.idata))

    def contrasts(self, pairs=None) -> pd.DataFrame:
        """φ_g − φ_h per factor (default: every group against the last): mean, sd, HDI and
        P(> 0)."""
        with quiet_arviz():
            return group_contrasts(self.idata, pairs)

    def predictive(self, seed: int = 0, max_draws: int = 200):
        """(S, n) replicated outcomes, censored at the bounds, from at most ``max_draws``
        draws: the posterior predictive check."""
        return censored_predictive(self.idata, self.model.data, seed=seed,
                                   max_draws=max_draws)

    @property
    def convergence(self) -> list[str]:
        return json.loads(self.idata.posterior.attrs.get("convergence_report", "[]"))

    def __repr__(self) -> str:
        return self.summary().to_string(index=False, float_format=lambda v: f"{v:.4f}")


def sample_censored_model(model, *, seed: int, draws: int, tune: int, chains: int,
                          priors=None, target_accept: float, max_treedepth: int | None,
                          checks=None, **settings: Any) -> CensoredPosterior:
    """The posterior of a CensoredFactorModel (``models.bayes.censored.fit_censored``), the
    counts, priors and sampler settings checked first; ``checks`` as for the quadratic."""
    check_counts(draws, tune, chains)
    check_priors(priors)
    check_sampler_settings(target_accept, max_treedepth)
    idata = fit_censored(model.data, priors, seed=seed, draws=draws, tune=tune, chains=chains,
                         target_accept=target_accept, max_treedepth=max_treedepth,
                         checks=PYTHON if checks is None else checks, **settings)
    return CensoredPosterior(idata, model)
