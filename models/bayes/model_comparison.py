"""Compare fitted systems by their expected log predictive density (PSIS-LOO, ``arviz.compare``).

Each model's LOO result comes from the exact leave-one-city-out conditional densities
log p(y_r | y_−r, θ) of its system (:mod:`models.bayes.loo`; city r's G values left out jointly):
stored per city in a lean file (group ``loo``) or computed from its pointwise ``log_likelihood``
group (:func:`models.bayes.loo.loo_result`), so elpd_loo = Σ_r log p(y_r | y_−r) estimated by
Pareto-smoothed importance sampling (Vehtari, Gelman & Gabry 2017, "Practical Bayesian model evaluation using leave-one-out cross-validation
and WAIC", Statistics and Computing 27). ``arviz.compare`` ranks the models, gives each elpd
difference to the best model with its standard error dse (from the paired pointwise
differences), and stacking weights (Yao et al. 2018). Only models whose posterior converged are
ranked: the elpd of draws that do not represent the posterior is meaningless, so a model whose
stored convergence report failed is left out and named, with the report's verdict, in the
sentence.

Reading (Vehtari et al. 2017; Sivula, Magnusson & Vehtari 2020): a difference smaller than
about 2 dse is not distinguishable from noise; ``warning`` flags a Pareto k̂ above ArviZ's
threshold min(0.7, 1 − 1/log10 S) for S draws (the importance sampling of some city is
unreliable, so its elpd is too).

elpd values are only comparable for the same observations of the same outcomes: models are
refused unless they share the log-likelihood variable, the cities (same names, same order, so
the same n), the dependents (the posterior ``coef`` equation names) and — when both record it —
the same observed values (``outcome_sha256`` in the loo / log_likelihood attrs, written by
:func:`models.bayes.postprocess.add_effects_and_loo`, or an ``observed_data`` group).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from data_prep.files import save_figure
from models.bayes.loo import LOO_GROUP, loo_result

COLUMNS = ["model", "elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight", "warning"]


@dataclass
class ModelComparison:
    """The tidy table (best model first), the plain-words verdict and arviz's own frame."""

    table: pd.DataFrame
    sentence: str
    arviz_table: pd.DataFrame
    left_out: dict[str, str] = field(default_factory=dict)  # model -> why it is not ranked


def _stored_report(idata) -> list[str]:
    """The convergence report stored by ``models.bayes.sampling.sample`` (file or posterior
    attributes), or [] when the draws carry none."""
    attrs = {**getattr(idata.posterior, "attrs", {}), **idata.attrs} \
        if "posterior" in idata.groups() else dict(idata.attrs)
    return json.loads(attrs.get("convergence_report", "[]") or "[]")


def converged_models(models: Mapping[str, object]) -> tuple[dict, dict[str, str]]:
    """({name: idata} whose convergence report passed or that carry none,
    {name: the failed report's first sentence})."""
    kept, left = {}, {}
    for name, idata in models.items():
        report = _stored_report(idata)
        if report and not report[0].startswith("Convergence checks passed"):
            left[name] = report[0]
        else:
            kept[name] = idata
    return kept, left


def _left_out_sentence(left: Mapping[str, str]) -> str:
    return " ".join(f"Left out of the ranking: {name}, whose posterior did not converge "
                    f"({why.rstrip('.')})." for name, why in left.items())


def _outcome(name: str, idata) -> tuple:
    """(log-likelihood variable, cities, dependents, outcome fingerprint) of one model, checked
    for a LOO result: the stored per-city ``loo`` group or the pointwise ``log_likelihood``."""
    groups = idata.groups()
    if LOO_GROUP in groups:
        ds = idata[LOO_GROUP]
        var = str(ds.attrs.get("var_name", "y"))
        cities = tuple(map(str, ds["city"].values))
        fingerprint = ds.attrs.get("outcome_sha256")
    elif "log_likelihood" in groups:
        ll = idata.log_likelihood
        if len(ll.data_vars) != 1:
            raise InputError(f"model {name}: the log_likelihood group must hold one variable, "
                             f"has {', '.join(map(str, ll.data_vars)) or 'none'}")
        var = str(next(iter(ll.data_vars)))
        obs_dims = [d for d in ll[var].dims if d not in ("chain", "draw")]
        if len(obs_dims) != 1:
            raise InputError(f"model {name}: log_likelihood {var} must have one observation "
                             f"dimension, has {obs_dims}")
        dim = obs_dims[0]
        cities = tuple(map(str, ll[dim].values)) if dim in ll.coords else (ll.sizes[dim],)
        fingerprint = ll.attrs.get("outcome_sha256")
    else:
        raise InputError(f"model {name}: no log_likelihood group and no stored LOO result "
                         "(attach them with models.bayes.postprocess.add_effects_and_loo)")
    deps = tuple(map(str, idata.posterior["equation"].values)) \
        if "posterior" in groups and "equation" in idata.posterior.coords else ()
    return var, cities, deps, fingerprint


def _check_same_data(models: Mapping[str, object]) -> None:
    names = list(models)
    ref_name = names[0]
    ref = _outcome(ref_name, models[ref_name])
    for name in names[1:]:
        var, cities, deps, fingerprint = _outcome(name, models[name])
        if var != ref[0]:
            raise InputError(f"models {ref_name} and {name} score different outcomes "
                             f"(log-likelihood variables {ref[0]!r} and {var!r})")
        if len(cities) != len(ref[1]):
            raise InputError(f"models {ref_name} and {name} were fitted on different data: "
                             f"n = {len(ref[1])} and {len(cities)} cities")
        if cities != ref[1]:
            first = next(i for i, (a, b) in enumerate(zip(ref[1], cities)) if a != b)
            raise InputError(f"models {ref_name} and {name} were fitted on different cities "
                             f"(first difference at position {first}: {ref[1][first]} vs "
                             f"{cities[first]})")
        if deps and ref[2] and deps != ref[2]:
            raise InputError(f"models {ref_name} and {name} explain different outcomes "
                             f"({', '.join(ref[2])} vs {', '.join(deps)})")
        if fingerprint and ref[3] and fingerprint != ref[3]:
            raise InputError(f"models {ref_name} and {name} were fitted on different values of "
                             f"the outcomes (same cities and names, different data)")
        a, b = models[ref_name], models[name]
        if "observed_data" in a.groups() and "observed_data" in b.groups():
            if not a.observed_data.equals(b.observed_data):
                raise InputError(f"models {ref_name} and {name} have different observed data")


def verdict(table: pd.DataFrame) -> str:
    """One plain-words sentence on the preferred model and whether the gap exceeds 2 dse."""
    best = table.iloc[0]
    parts = [f"{best['model']} has the highest elpd_loo ({best['elpd_loo']:.1f}, "
             f"se {best['se']:.1f})"]
    for _, row in table.iloc[1:].iterrows():
        clear = row["elpd_diff"] > 2 * row["dse"]
        parts.append(f"{row['model']} is {row['elpd_diff']:.1f} lower (dse {row['dse']:.1f}): "
                     + ("more than 2 dse, a clear preference for " + str(best["model"]) if clear
                        else "within 2 dse, not distinguishable from noise"))
    flagged = table.loc[table["warning"], "model"].tolist()
    tail = (f" Warning: Pareto k above the reliability threshold for some cities in "
            f"{', '.join(map(str, flagged))}; their elpd estimate is unreliable (more draws, "
            "or exact refits for those cities)." if flagged else "")
    return "; ".join(parts) + "." + tail


def compare_models(models: Mapping[str, object], *, method: str = "stacking") -> ModelComparison:
    """``arviz.compare`` (PSIS-LOO, log scale) of named InferenceData on the same data.

    Returns the tidy table with columns ``COLUMNS`` (best model first; elpd_diff and dse are
    relative to the best), the verdict sentence (naming the models left out) and arviz's frame.
    Models whose stored convergence report failed are left out (:func:`converged_models`).
    Raises InputError for fewer than two (converged) models, a model without a LOO result (neither the pointwise ``log_likelihood``
    group nor the stored ``loo`` group), or models fitted on different cities or outcomes.
    Lean and full files of one fit give the same numbers (:func:`models.bayes.loo.loo_result`;
    the difference's dse = √(n · var_i(elpd_i^A − elpd_i^B)) needs only the per-city elpd_i).
    """
    import warnings

    import arviz as az

    if len(models) < 2:
        raise InputError(f"model comparison needs at least two models, got {len(models)}")
    _check_same_data(models)
    models, left = converged_models(models)
    if len(models) < 2:
        raise InputError(f"no LOO ranking: {len(models)} of {len(models) + len(left)} models "
                         f"converged, a comparison needs two. " + _left_out_sentence(left))

    loos = {name: loo_result(idata) for name, idata in models.items()}
    with warnings.catch_warnings():
        # the Pareto-k warning is carried by the table's ``warning`` column and the verdict
        warnings.simplefilter("ignore", UserWarning)
        raw = az.compare(loos, ic="loo", method=method, scale="log")
    table = raw.rename_axis("model").reset_index()
    table["warning"] = table["warning"].astype(bool)
    table = table[COLUMNS]
    sentence = " ".join([verdict(table), _left_out_sentence(left)]).strip()
    return ModelComparison(table, sentence, raw, left)


def comparison_plot(result: ModelComparison, path) -> Path:
    """``arviz.plot_compare`` of the comparison, written as PNG; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import arviz as az

    ax = az.plot_compare(result.arviz_table, insample_dev=False, plot_ic_diff=True,
                         figsize=(7, 1.2 + 0.6 * len(result.table)))
    ax = np.atleast_1d(ax)[0]
    ax.set_title("Leave-one-city-out elpd, higher is better (open: elpd ± se; "
                 "triangle: difference to the best ± dse)", fontsize=9)
    return save_figure(ax.figure, path, create_folder=False)
