"""``Posterior``: the Bayesian fit of a :class:`models.api.system.SpatialSystem`.

:func:`sample_system` runs :func:`models.bayes.fit.fit_posterior` — the complete fit that
``scripts/sample_posteriors.py`` runs too (spectrum, model, NUTS draws, impacts, LOO;
docs/method.md §2b) — and wraps what it made. ``Posterior.idata`` holds what the script writes
to its .nc; ``summary()`` the contract-2 table it writes beside it.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum
from models.bayes.fit import PosteriorFit, fit_posterior, impact_summary, posterior_summary
from models.bayes.loo import loo_result
from models.bayes.postprocess import HDI_PROB
from models.bayes.sampling import PYTHON, convergence_word

if TYPE_CHECKING:
    from models.api.system import SpatialSystem


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
    model: "SpatialSystem"

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


def sample_system(model: "SpatialSystem", *, seed: int, checks=None,
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
