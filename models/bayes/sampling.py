"""Sampler wrapper (nutpie by default, PyMC's NUTS as fallback) and a plain-words convergence
report.

nutpie (Seyboldt et al., nutpie: a fast NUTS implementation) compiles the PyMC log-density with
numba and adapts the mass matrix from gradients; PyMC's own NUTS is the fallback when nutpie is
not installed or ``sampler="pymc"``. Both are seeded, so a seed gives identical draws.
Diagnostics follow Vehtari et al. (2021, Bayesian Analysis 16): rank-normalised R-hat ≤ 1.01 and
bulk-ESS ≥ 400, plus the count of divergent transitions and of transitions that reached the
maximum tree depth. A preview (the study's quick mode, 2 chains × 200 draws) is judged by
:data:`PREVIEW` instead, and every piece of advice names the setting to change in the words of
the caller (a command-line flag or a study config key, :class:`Checks`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import math
import warnings
import weakref
from dataclasses import dataclass, replace
from typing import Sequence

import arviz as az
import numpy as np
import pymc as pm

from data_prep.errors import InputError
from models.bayes import compile_cache
from models.bayes.idata import posterior_and_internal, tidy_posterior

# Free variables that must start exactly at their initial value (0 = the identity system 𝒜 = I,
# always admissible) instead of a random jitter that could fall outside the admissible region.
NO_JITTER: tuple[str, ...] = ("structural_std",)
SUMMARY_VARS: tuple[str, ...] = ("coef", "Sigma", "rho")
_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_BY_STRUCTURE: dict = {}  # structure key → compiled model (see _compiled)
_DISK_HITS: list[int] = []  # per compilation: callbacks loaded from the disk cache (0, 1, 2)


class SamplingInterrupted(KeyboardInterrupt):
    """Ctrl-C during sampling. nutpie and PyMC both catch the KeyboardInterrupt themselves and
    return the draws made so far (nutpie pads the shorter chains with NaN), so :func:`sample`
    detects the short chains and raises this instead. ``idata`` holds what was drawn (every
    chain cut to the shortest), ``draws_per_chain`` the completed draws of each chain."""

    def __init__(self, idata, draws_per_chain: list[int], requested: int):
        self.idata = idata
        self.draws_per_chain = list(draws_per_chain)
        self.requested = int(requested)
        super().__init__(f"sampling stopped after {min(self.draws_per_chain, default=0)} of "
                         f"{requested} draws per chain; nothing written, earlier outputs left "
                         f"as they were")


def completed_draws(idata: az.InferenceData) -> list[int]:
    """Draws each chain completed: the finite entries of its log-density sample statistic
    (``logp`` for nutpie, ``lp`` for PyMC); a chain cut short is padded with NaN or shorter."""
    stats = idata.sample_stats if "sample_stats" in idata.groups() else None
    if stats is not None:
        for name in ("logp", "lp", "energy"):
            if name in stats:
                values = np.asarray(stats[name].values, dtype=float)
                return np.isfinite(values.reshape(values.shape[0], -1)).sum(axis=1).tolist()
    return [int(idata.posterior.sizes.get("draw", 0))] * int(idata.posterior.sizes.get("chain", 0))


def _check_complete(idata: az.InferenceData, draws: int, chains: int) -> None:
    done = completed_draws(idata)
    if len(done) == chains and min(done, default=0) >= draws:
        return
    done = done + [0] * (chains - len(done))
    keep = min(done)
    partial = idata.isel(draw=slice(0, keep), groups=["posterior", "sample_stats"]) \
        if keep else None
    if partial is not None:
        tidy_posterior(partial)
        partial.attrs.update(partial="true", draws_per_chain=json.dumps(done),
                             draws_requested=int(draws), draws_kept_per_chain=int(keep))
    raise SamplingInterrupted(partial, done, draws)


def sample(model: pm.Model, draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int = 0,
           sampler: str = "nutpie", progress: bool = True,
           no_jitter: Sequence[str] = NO_JITTER, low_rank: bool = True,
           started=None, target_accept: float | None = None,
           max_treedepth: int | None = None, checks: Checks | None = None) -> az.InferenceData:
    """Draw from the posterior of ``model`` with NUTS; returns InferenceData with a report in attrs.

    The InferenceData is in the layout of :mod:`models.bayes.idata` (:func:`tidy_posterior`):
    the posterior holds the reported quantities (``coef`` stacked over its present
    coefficients), the sampling-scale variables are in the group ``unconstrained_posterior``.

    Ctrl-C while sampling raises :class:`SamplingInterrupted` carrying the draws made so far
    (both samplers would otherwise return the short chains as if complete); ``started()``, when
    given, is called once the model is compiled and the chains start. The convergence
    report (see :func:`convergence_report`) is printed and stored as
    ``idata.attrs["convergence_report"]`` (a JSON list of sentences). A model that fails to converge
    still returns its draws. ``low_rank`` (nutpie only) adapts a diagonal-plus-low-rank mass
    matrix, which follows the strong posterior correlations between a system's structural
    coefficients (measured here: about 4 × the slowest-parameter ESS per second of the diagonal
    mass matrix on a 256-city two-equation system). ``target_accept`` (default: the sampler's,
    0.8) raised toward 1 gives smaller steps and fewer divergences in hierarchical models;
    ``max_treedepth`` (default 10) caps each trajectory at 2^depth leapfrog steps (nutpie's
    ``maxdepth``, PyMC NUTS's ``max_treedepth``). ``checks``: the thresholds and the vocabulary
    of the report's advice (default :data:`FULL`, naming command-line flags).
    """
    check_sampler_settings(target_accept, max_treedepth)
    extra = {} if target_accept is None else {"target_accept": float(target_accept)}
    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler must be 'nutpie' or 'pymc', not {sampler!r}")
    if sampler == "nutpie":
        try:
            import nutpie
        except ImportError:
            warnings.warn("nutpie is not installed; falling back to PyMC's NUTS sampler")
            sampler = "pymc"
    jitter = {rv for rv in model.free_RVs if rv.name not in set(no_jitter)}
    if sampler == "nutpie":
        compiled = _compiled(model, jitter)
        if started is not None:
            started()
        with warnings.catch_warnings():
            # an interrupt during tuning returns zero draws; _check_complete reports it
            warnings.filterwarnings("ignore", message="More chains .* than draws")
            depth = {} if max_treedepth is None else {"maxdepth": int(max_treedepth)}
            idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                                  progress_bar=progress, save_warmup=False,
                                  low_rank_modified_mass_matrix=low_rank, **extra, **depth)
    else:
        if started is not None:
            started()
        nuts = {**extra, **({} if max_treedepth is None
                            else {"max_treedepth": int(max_treedepth)})}
        with model:
            # PyMC re-draws the jitter when a start point is inadmissible, so keep its default
            idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                              cores=min(chains, os.cpu_count() or 1), progressbar=progress,
                              compute_convergence_checks=False, nuts=nuts)
    _check_complete(idata, draws, chains)
    # the reported quantities in the posterior, the sampling-scale ones in their own group
    tidy_posterior(idata)
    idata.attrs["sampler"] = sampler
    idata.attrs["seed"] = int(seed)
    # the settings in force, so the report's advice can propose the next value
    idata.attrs["target_accept"] = float(target_accept or DEFAULT_TARGET_ACCEPT)
    idata.attrs["max_treedepth"] = int(max_treedepth or DEFAULT_MAX_TREEDEPTH)
    report = convergence_report(idata, prior_sd=getattr(model, "prior_sd", None),
                                advice=getattr(model, "rhat_advice", None), checks=checks)
    idata.attrs["convergence_report"] = json.dumps(report)
    for line in report:
        print(line)
    return idata


def _compiled(model: pm.Model, jitter: set):
    """The nutpie-compiled model, compiled once per graph structure.

    Compiling dominates small runs. A model rebuilt unchanged reuses its compilation, and a model
    that declares a ``structure_key`` (``models.bayes.system``: the graph depends only on shapes
    and priors, every number that differs between systems is a pm.Data) reuses the compilation
    of any earlier model with the same key: its data and coordinate labels are swapped in
    (nutpie's ``with_data``), so a specification grid or a recovery study compiles once.
    A compilation itself takes nutpie's two C callbacks from the disk cache of
    :mod:`models.bayes.compile_cache` when another process compiled the same structure.
    """
    import dataclasses

    import pandas as pd

    names = (tuple(sorted(rv.name for rv in jitter)), tuple(model.named_vars))
    structure = getattr(model, "structure_key", None)
    key = (names, structure) if structure is not None else None
    cached = _COMPILED.get(model)
    if cached is not None and cached[0] == names:
        return cached[1]
    if key is not None and key in _BY_STRUCTURE:
        base = _BY_STRUCTURE[key]
        data = {name: np.asarray(var.get_value()) for name, var in model.named_vars.items()
                if name in base.shared_data}
        coords = dict(base.coords)
        coords.update({name: pd.Index(values) for name, values in model.coords.items()})
        compiled = dataclasses.replace(base.with_data(**data), _coords=coords)
    else:
        compiled, hits = compile_cache.compile_nutpie_model(model, jitter)
        _DISK_HITS.append(hits)
        if key is not None:
            _BY_STRUCTURE[key] = compiled
    _COMPILED[model] = (names, compiled)
    return compiled


def compiled_structures() -> int:
    """How many model structures this process has compiled and keeps for reuse (each further
    model of a known structure costs a data swap, not a compile)."""
    return len(_BY_STRUCTURE)


@contextlib.contextmanager
def quiet_arviz():
    """Silence ArviZ's 'Array contains NaN-value' log lines: absent terms are NaN by design."""
    logger = logging.getLogger("arviz")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def present_entries(da):
    """``da`` with its non-sample dimensions flattened to one dimension ``entry`` labelled
    ``"ER, W(ER)"`` (a single dimension: its own labels, e.g. the stacked ``coef``'s
    ``"ER: W(ER)"``), keeping only entries with a finite value in some draw: a grid ``coef``
    (files of the earlier layout, constructed posteriors) is NaN where a term is absent from an
    equation, and ArviZ would warn about those NaN."""
    extra = [d for d in da.dims if d not in ("chain", "draw")]
    if not extra:
        return da
    flat = da.stack(entry=extra)
    keep = np.flatnonzero(~np.isnan(flat).all(("chain", "draw")).values)
    labels = [", ".join(str(v) for v in (e if isinstance(e, tuple) else (e,)))
              for e in flat["entry"].values[keep]]
    flat = flat.isel(entry=keep)
    # every coordinate along the entries goes (the stacked coef's coef_equation, coef_term too)
    along = [name for name, c in flat.coords.items() if "entry" in c.dims]
    return flat.drop_vars(along).assign_coords(entry=labels)


def _present(post):
    """The posterior variables with their all-NaN entries removed (see present_entries)."""
    import xarray as xr

    # one entry dimension per variable: a shared one would be aligned (outer join) with NaN
    out = {}
    for name, da in post.data_vars.items():
        flat = present_entries(da)
        out[name] = flat.rename({"entry": f"{name}_entry"}) if "entry" in flat.dims else flat
    return xr.Dataset(out)


def _report_variables(idata: az.InferenceData, var_names):
    """The variables the convergence report judges: ``var_names``, else :data:`SUMMARY_VARS`
    of the posterior, else every drawn variable, the sampling-scale group's included (the
    censored model: its hierarchical scales are the slowest to mix)."""
    drawn = posterior_and_internal(idata)
    names = list(var_names or [v for v in SUMMARY_VARS if v in drawn]) \
        or list(drawn.data_vars)
    return drawn[names]


SYSTEM_ADVICE = ("The system may be weakly identified; add excluded exogenous variables (a "
                 "variable in one equation but not the other) or instruments.")
DEFAULT_TARGET_ACCEPT = 0.8    # both samplers' default
DEFAULT_MAX_TREEDEPTH = 10     # both samplers' default
# How each setting is changed: a script's flag or a study's config key.
SETTING_WORDS: dict[str, dict[str, str]] = {
    "script": {"target_accept": "--target-accept {}", "max_treedepth": "--max-treedepth {}",
               "draws": "--draws {}"},
    "study": {"target_accept": "[bayes] target_accept = {}",
              "max_treedepth": "[bayes] max_treedepth = {}", "draws": "[bayes] draws = {}"},
    "python": {"target_accept": "target_accept={}", "max_treedepth": "max_treedepth={}",
               "draws": "draws={}"},
}


@dataclass(frozen=True)
class Checks:
    """Thresholds of the convergence verdict and the vocabulary of its advice.

    Full runs follow Vehtari et al. (2021, Bayesian Analysis 16, §4): R-hat ≤ 1.01 and
    bulk-ESS ≥ 400 (100 per chain for 4 chains). A *preview* (``preview=True``, the study's
    quick mode of 2 chains × 200 draws) cannot reach 100 per chain reliably, so it asks for
    bulk-ESS ≥ 100 in total: the Monte Carlo error of a posterior mean, sd/√ESS, is then about
    a tenth of the posterior sd, enough to read a sign and a magnitude. Its R-hat bound is 1.05:
    R-hat ≈ √(1 + d²/2) for two chains whose means lie d posterior sd apart, so 1.05 still
    flags chains more than about 0.45 sd apart, while 1.01 fails well-mixed short chains by the
    estimator's own noise (measured: the largest R-hat of 30 parameters, each 2 chains × 200
    independent draws, exceeds 1.01 in 87 % of 200 replications and 1.05 in none).
    ``where``: "script" (the advice names command-line flags), "study" (config keys) or
    "python" (the keyword arguments of the Python API's ``sample``).
    """

    rhat_max: float = 1.01
    ess_min: float = 400.0
    preview: bool = False
    where: str = "script"

    def setting(self, name: str, value) -> str:
        """How the caller sets ``name`` to ``value``: "--target-accept 0.95" or a config key."""
        if self.where not in SETTING_WORDS:
            raise ValueError(f"where must be one of {', '.join(SETTING_WORDS)}, "
                             f"not {self.where!r}")
        return SETTING_WORDS[self.where][name].format(value)


FULL = Checks()
PREVIEW = Checks(rhat_max=1.05, ess_min=100.0, preview=True)
PYTHON = Checks(where="python")  # the Python API's: keyword arguments in the advice


def study_checks(quick: bool) -> Checks:
    """The checks of a study run: config keys in the advice, preview thresholds when quick."""
    return replace(PREVIEW if quick else FULL, where="study")


def check_sampler_settings(target_accept: float | None, max_treedepth: int | None) -> None:
    """Refuse a target acceptance outside (0, 1) or a tree depth below 1 (one line)."""
    if target_accept is not None and not 0.0 < float(target_accept) < 1.0:
        raise InputError(f"the target acceptance must lie between 0 and 1, not {target_accept}")
    if max_treedepth is not None and (int(max_treedepth) != max_treedepth or max_treedepth < 1):
        raise InputError(f"the maximum tree depth must be a whole number of at least 1, not "
                         f"{max_treedepth}")


def convergence_word(report: Sequence[str]) -> str:
    """The verdict of a convergence report in two words: "converged", "did NOT converge", with
    " (preview)" for a preview's; "no convergence report" when there is none."""
    if not report:
        return "no convergence report"
    word = "converged" if report[0].startswith("Convergence checks passed") \
        else "did NOT converge"
    return word + (" (preview)" if "(preview" in report[0] else "")


def _advice_values(idata: az.InferenceData, checks: Checks, worst_ess: float | None) -> dict:
    """The next value of each setting, in the caller's words (for the advice templates)."""
    accept = float(idata.attrs.get("target_accept", DEFAULT_TARGET_ACCEPT))
    depth = int(idata.attrs.get("max_treedepth", DEFAULT_MAX_TREEDEPTH))
    draws = int(idata.posterior.sizes.get("draw", 1))
    factor = checks.ess_min / worst_ess if worst_ess else 2.0
    more = max(2 * draws, int(math.ceil(draws * factor / 100.0)) * 100)
    return {"target_accept": checks.setting("target_accept", 0.95 if accept < 0.95 else 0.99),
            "max_treedepth": checks.setting("max_treedepth", depth + 2),
            "draws": checks.setting("draws", more)}


def _treedepth_hits(idata: az.InferenceData) -> tuple[int, int]:
    """(transitions that reached the maximum tree depth, all transitions); nutpie calls the
    statistic ``maxdepth_reached``, PyMC ``reached_max_treedepth``."""
    stats = idata.sample_stats if "sample_stats" in idata.groups() else {}
    for name in ("maxdepth_reached", "reached_max_treedepth"):
        if name in stats:
            values = np.asarray(stats[name].values, dtype=bool)
            return int(values.sum()), int(values.size)
    return 0, 0


def convergence_report(idata: az.InferenceData, var_names: Sequence[str] | None = None,
                       prior_sd: dict | None = None, contraction_min: float = 0.5,
                       advice: str | None = None, checks: Checks | None = None) -> list[str]:
    """Plain-language diagnostics: divergences, tree depth, smallest bulk-ESS and largest R-hat.

    Entries that are NaN in every draw (terms absent from an equation) are ignored. The first
    sentence says whether everything passed under ``checks`` (default :data:`FULL`; a preview
    says so). With ``prior_sd`` ({free variable: prior sd, scalar
    or per entry}) the prior-to-posterior contraction 1 − var_post / var_prior is reported for
    coefficients the data barely inform (contraction below ``contraction_min``), an
    identification warning of docs/method.md §2 (it does not fail the convergence checks).
    ``advice`` follows a failed R-hat check (default :data:`SYSTEM_ADVICE`, for the spatial
    system; a model sets its own through a ``rhat_advice`` attribute read by :func:`sample`);
    its fields {target_accept}, {max_treedepth}, {draws} become the setting to change, in the
    words of ``checks.where``. Transitions that reached the maximum tree depth are an
    efficiency warning (Stan's reading), not a failure.
    """
    checks = checks or FULL
    lines: list[str] = []
    ok = True
    n_div = 0
    if "sample_stats" in idata and "diverging" in idata.sample_stats:
        n_div = int(idata.sample_stats["diverging"].sum())
    post = _present(_report_variables(idata, var_names))
    nchains = post.sizes.get("chain", 1)
    with quiet_arviz():
        ess = az.ess(post, method="bulk")
    worst_ess, worst_ess_name = _extreme(ess, min)
    how = _advice_values(idata, checks, worst_ess)
    if n_div:
        ok = False
        total = int(idata.sample_stats["diverging"].size)
        lines.append(f"{n_div} of {total} transitions diverged: the sampler met regions it could "
                     "not explore (often the edge of the admissible region); treat the results "
                     f"with care or raise the target acceptance ({how['target_accept']}).")
    deep, steps = _treedepth_hits(idata)
    if deep:
        lines.append(f"{deep} of {steps} transitions reached the maximum tree depth "
                     f"({idata.attrs.get('max_treedepth', DEFAULT_MAX_TREEDEPTH)}): the sampler "
                     f"stopped its trajectories early, which costs efficiency, not validity; "
                     f"raise the depth ({how['max_treedepth']}).")
    if worst_ess is not None and worst_ess < checks.ess_min:
        ok = False
        lines.append(f"The smallest bulk effective sample size is {worst_ess:.0f} (for "
                     f"{worst_ess_name}), below {checks.ess_min:.0f}: draw more samples ("
                     + ("quick mode caps the draws: run without --quick"
                        if checks.preview and checks.where == "study" else how["draws"]) + ").")
    if nchains > 1:
        with quiet_arviz():
            rhat = az.rhat(post)
        worst_rhat, worst_rhat_name = _extreme(rhat, max)
        if worst_rhat is not None and worst_rhat > checks.rhat_max:
            ok = False
            lines.append(f"The largest R-hat is {worst_rhat:.3f} (for {worst_rhat_name}), above "
                         f"{checks.rhat_max}: the chains disagree. "
                         + (advice or SYSTEM_ADVICE).format_map(how))
    else:
        lines.append("Only one chain was run, so R-hat cannot be computed.")
    lines += _contraction_lines(idata, prior_sd or {}, contraction_min)
    head = ("Convergence checks passed" if ok else "Convergence checks FAILED")
    if checks.preview:
        head += (f" (preview thresholds: R-hat ≤ {checks.rhat_max}, bulk-ESS ≥ "
                 f"{checks.ess_min:.0f})")
    detail = []
    if worst_ess is not None:
        detail.append(f"smallest bulk-ESS {worst_ess:.0f}")
    if nchains > 1 and worst_rhat is not None:
        detail.append(f"largest R-hat {worst_rhat:.3f}")
    detail.append(f"{n_div} divergences")
    lines.insert(0, f"{head}: " + ", ".join(detail) + ".")
    return lines


def _contraction_lines(idata, prior_sd: dict, threshold: float) -> list[str]:
    weak = []
    drawn = posterior_and_internal(idata)      # the free variables sit in the internal group
    for name, sd0 in prior_sd.items():
        if name not in drawn:
            continue
        da = drawn[name]
        post_sd = da.std(("chain", "draw")).values
        contraction = 1.0 - (post_sd / np.broadcast_to(np.asarray(sd0, float), post_sd.shape)) ** 2
        dim = [d for d in da.dims if d not in ("chain", "draw")]
        labels = da[dim[0]].values if dim else [name]
        weak += [(str(lab), float(c)) for lab, c in zip(np.atleast_1d(labels),
                                                        np.atleast_1d(contraction))
                 if c < threshold]
    if not weak:
        return []
    listed = ", ".join(f"{lab} ({c:.2f})" for lab, c in weak[:6])
    return [f"The data barely inform {len(weak)} coefficient(s) (prior-to-posterior contraction "
            f"below {threshold}): {listed}. The system may be weakly identified; add excluded "
            "exogenous variables or check the estimates against their priors."]


def _extreme(ds, pick):
    """The smallest/largest finite entry of a diagnostics Dataset and a readable label for it."""
    best, label = None, None
    for name, da in ds.data_vars.items():
        values = np.asarray(da.values, dtype=float)
        if not np.isfinite(values).any():
            continue
        flat = np.where(np.isfinite(values), values, np.nan)
        idx = np.nanargmin(flat) if pick is min else np.nanargmax(flat)
        val = float(flat.ravel()[idx])
        if best is None or pick(val, best) == val and val != best:
            pos = np.unravel_index(idx, values.shape) if values.ndim else ()
            coords = [str(da[d].values[i]) for d, i in zip(da.dims, pos) if d in da.coords]
            best, label = val, f"{name}[{', '.join(coords)}]" if coords else name
    return best, label
