"""The complete Bayesian fit of a spatial simultaneous system, in one function.

:func:`fit_posterior` is what ``models.api.SpatialSystem.sample`` and
``scripts/sample_posteriors.py`` both run (docs/method.md §2b):

1. the spectrum of W — the one stored with a prepared dataset for the same cities when the
   caller passes it, else the one chooser :func:`data_prep.spectrum.chooser.spectrum` (exact
   eigenvalues up to its threshold of cities, a Chebyshev quadrature above, said in a warning);
   a panel system (:func:`models.bayes.panel_system.panel_system`) brings its own, each
   eigenvalue counted T − 1 times;
2. the model :func:`models.bayes.system.build_system_model` (priors, normal or Student-t errors);
3. the NUTS draws :func:`models.bayes.sampling.sample` (a Ctrl-C raises its
   ``SamplingInterrupted`` carrying the draws made so far);
4. the direct / indirect / total impacts and the PSIS-LOO result of the leave-one-city-out
   densities (:func:`models.bayes.postprocess.add_effects_and_loo`; LOO is skipped in panel
   mode, whose rows are year contrasts, not cities), and on request the posterior predictive
   group (:func:`models.bayes.postprocess.add_posterior_predictive`, cross-sections only);
5. the description of the run in ``idata.posterior.attrs`` (convergence report, formulas,
   spatial errors, error law, seed, sampler, and the panel layout).

:func:`posterior_summary` is the contract-2 summary written beside the InferenceData, and
:func:`impact_summary` the mean, sd and HDI of the posterior impacts.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import arviz as az
import numpy as np
import pandas as pd

from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum, spectrum as choose_spectrum
from models.bayes import sampling
from models.bayes.panel_system import PanelSystem
from models.bayes.postprocess import (HDI_PROB, add_effects_and_loo, add_posterior_predictive,
                                      summary_frame)
from models.bayes.system import build_system_model
from models.spec.coefficient_tables import posterior_frame
from models.spec.system import SystemData

PANEL_LOO_NOTE = ("LOO skipped in panel mode (the within-transformed rows are arbitrary year "
                  "contrasts, not cities, so leave-one-out over them has no meaning)")
PANEL_PREDICTIVE_NOTE = ("the posterior predictive group (--predictive) is for cross-section "
                         "fits; skipped in panel mode")


@dataclass
class PosteriorFit:
    """What :func:`fit_posterior` made: the InferenceData and how it was made.

    ``spectrum``: the spectrum of W the log-Jacobian and the impacts used (None without W);
    ``warnings``: what may make the result unreliable (e.g. non-finite LOO densities);
    ``messages``: plain notes on what was skipped or stored differently.
    """

    idata: Any
    system: SystemData
    spectrum: Spectrum | None
    panel: PanelSystem | None = None
    warnings: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def system_spectrum(system: SystemData, stored: Spectrum | None = None,
                    seed: int = 0) -> Spectrum | None:
    """The spectrum of ``system.W``: ``stored`` when it describes these n cities, else the
    chooser's (exact up to its threshold, quadrature above: then a warning says which); None
    for a system without weights."""
    if system.W is None:
        return None
    if stored is not None and round(stored.n) == system.n:
        result = stored
    else:
        result = choose_spectrum(system.W, seed=seed)
    if result.weights is not None:
        d = result.details
        warnings.warn(f"{system.n} cities: the log-Jacobian uses a {result.method} quadrature "
                      f"of the spectrum of W ({result.nodes.size} nodes, seed "
                      f"{d.get('seed', '?')}), not its exact eigenvalues", stacklevel=2)
    return result


def check_counts(draws: int, tune: int, chains: int, predictive_draws: int = 1,
                 prefix: str = "") -> None:
    """Draws, chains and predictive draws at least 1, tuning steps at least 0 (InputError
    naming the setting, ``prefix`` + its name with dashes)."""
    for name, value, least in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1),
                               ("predictive_draws", predictive_draws, 1)):
        if not isinstance(value, (int, np.integer)) or value < least:
            label = prefix + (name.replace("_", "-") if prefix else name)
            raise InputError(f"{label} must be a{' non-negative' if least == 0 else ' positive'}"
                             f" integer, not {value}")


def _spectrum_used(system: SystemData, panel: PanelSystem | None, spectrum: Spectrum | None,
                   seed: int) -> Spectrum | None:
    """The Spectrum of the Jacobian: the panel's, the given or stored one, or the chooser's;
    None without W."""
    if system.W is None:
        return None
    if panel is not None:
        return panel.spectrum
    return system_spectrum(system, spectrum, seed)


def fit_posterior(system: SystemData | PanelSystem, *, spectrum: Spectrum | None = None,
                  priors: Mapping[str, float] | None = None, errors: str = "normal",
                  draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int = 0,
                  sampler: str = "nutpie", progress: bool = True,
                  started: Callable[[], None] | None = None,
                  target_accept: float | None = None, max_treedepth: int | None = None,
                  checks: sampling.Checks | None = None, effects: bool = True,
                  keep_pointwise: bool | None = None, predictive: bool = False,
                  predictive_draws: int = 500, equations: Sequence[str] | None = None,
                  spatial_errors: str = "none") -> PosteriorFit:
    """Sample the posterior of ``system`` and attach its impacts and LOO (module docstring).

    ``system``: a ``models.spec.system.SystemData`` (cross-section) or a
    ``models.bayes.panel_system.PanelSystem``. ``spectrum``: the spectrum stored with the data
    (used when it has the system's n cities); otherwise the chooser's, seeded by ``seed``.
    ``priors``: overrides of ``models.bayes.system.DEFAULT_PRIORS`` (and ``STUDENT_T_PRIORS``
    with ``errors="student-t"``). ``draws``, ``tune``, ``chains``, ``seed``, ``sampler``,
    ``progress``, ``started``, ``target_accept``, ``max_treedepth`` and ``checks`` go to
    :func:`models.bayes.sampling.sample`. ``effects=False`` skips the impacts and the LOO;
    ``keep_pointwise`` (None: the size rule of ``postprocess.keeps_pointwise``) keeps the
    pointwise ``log_likelihood`` group; ``predictive`` adds the posterior predictive group from
    at most ``predictive_draws`` draws. ``equations`` and ``spatial_errors`` (the formulas and
    the spatial-error choice as the user wrote them) are stored in the attributes.
    """
    check_counts(draws, tune, chains, predictive_draws)
    panel = system if isinstance(system, PanelSystem) else None
    data = panel.system if panel is not None else system
    used = _spectrum_used(data, panel, spectrum, seed)
    model = build_system_model(data, used, priors, errors=errors,
                               t_blocks=panel.T - 1 if panel is not None else 1)
    idata = sampling.sample(model, draws=draws, tune=tune, chains=chains, seed=seed,
                            sampler=sampler, progress=progress, started=started,
                            target_accept=target_accept, max_treedepth=max_treedepth,
                            checks=checks)
    fit = PosteriorFit(idata, data, used, panel)
    if effects:
        contrasts = tuple(t for eq in data.spec.equations for t in eq.exogenous
                          if t.startswith("year_contrast[")) if panel is not None else ()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fit.warnings += add_effects_and_loo(idata, data, used,
                                                loo=panel is None, exclude_variables=contrasts,
                                                keep_pointwise=keep_pointwise)
        if panel is not None:
            fit.messages.append(PANEL_LOO_NOTE)
    if "loo" in idata.groups() and "log_likelihood" not in idata.groups():
        post = idata.posterior
        fit.messages.append(
            f"{post.sizes['chain'] * post.sizes['draw']} draws x {data.n} cities: the file "
            f"keeps the per-city PSIS-LOO result (group loo), not the pointwise densities; "
            f"keep_pointwise (--keep-pointwise) stores them too")
    if predictive and panel is not None:
        fit.messages.append(PANEL_PREDICTIVE_NOTE)
    elif predictive:
        add_posterior_predictive(idata, data, seed=seed, max_draws=predictive_draws)
    _describe(idata, equations if equations is not None
              else [eq.formula for eq in data.spec.equations], spatial_errors, errors, seed,
              sampler, panel)
    return fit


def _describe(idata, equations: Sequence[str], spatial_errors: str, errors: str, seed: int,
              sampler: str, panel: PanelSystem | None) -> None:
    report = json.loads(idata.attrs.get("convergence_report", "[]"))
    idata.posterior.attrs.update({"convergence_report": json.dumps(report),
                                  "equations": json.dumps(list(equations)),
                                  "spatial_errors": str(spatial_errors),
                                  "errors": errors,
                                  "seed": int(seed), "sampler": sampler})
    if panel is not None:
        idata.posterior.attrs["panel"] = json.dumps(
            {"years": [int(y) if isinstance(y, (int, np.integer)) else str(y)
                       for y in panel.years], "cities": int(panel.n_cities),
             "year_effects": bool(panel.year_effects),
             "method": "Lee-Yu orthonormal within transformation (Helmert contrasts)"})


def posterior_summary(idata, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
    """The contract-2 posterior summary (columns equation, term, mean, sd, hdi_low, hdi_high,
    r_hat, ess_bulk; ``hdi_prob`` highest-density intervals), as written beside the
    InferenceData."""
    with sampling.quiet_arviz():
        return posterior_frame(summary_frame(idata, hdi_prob=hdi_prob))


def impact_summary(idata, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
    """Mean, sd and ``hdi_prob`` HDI of the posterior ``impact`` per (effect, response,
    variable): columns effect, response, variable, mean, sd, hdi_low, hdi_high.

    The impacts are the LeSage–Pace averages of the reduced form's derivatives
    (``models.bayes.effects``): direct = the mean own-city response, indirect = the mean
    spill-over, total = their sum."""
    if "impact" not in idata.posterior:
        raise InputError("the posterior has no impacts (a system without W, or sampled with "
                         "effects=False)")
    da = idata.posterior["impact"].drop_vars("variable_kind", errors="ignore")
    da = da.transpose("chain", "draw", "effect", "response", "variable")
    with sampling.quiet_arviz():
        hdi = az.hdi(da, hdi_prob=hdi_prob)["impact"]
    frame = pd.DataFrame({"mean": da.mean(("chain", "draw")).to_series(),
                          "sd": da.std(("chain", "draw"), ddof=1).to_series(),
                          "hdi_low": hdi.sel(hdi="lower").drop_vars("hdi").to_series(),
                          "hdi_high": hdi.sel(hdi="higher").drop_vars("hdi").to_series()})
    return frame.reset_index()
