"""The paper study as a pipeline of tables: each function returns data, scripts write files.

Table numbers follow the paper: Table 1 descriptive statistics; Tables 2–3 the spatial
simultaneous systems ER ↔ PSS and ER ↔ PSD by GS3SLS and 3SLS, beside the Bayesian
full-information posterior. Figures 1–3 are the Moran scatter plots of ER, PSS and PSD.
Beside Tables 2–3, :func:`impact_table` gives what the systems imply: the LeSage–Pace direct,
indirect and total impacts (posterior beside GS3SLS), since a structural coefficient of a
simultaneous spatial system is not the effect of its variable.

Two specifications (docs/method.md §2, identification warning):

* the **headline** (:func:`joint_formulas`): one system in which ER, PSS and PSD are determined
  together (the ER equation holds both indices, so fitting ER ↔ PSS and ER ↔ PSD separately
  would leave one of them in the error term), with the controls the config excludes from
  each equation — an exclusion is what identifies a system beyond its spatial lags;
* the **paper's** (:func:`system_formulas` without exclusions): one two-equation system per index
  with the same controls in both equations, identified only through spatial lags of the
  controls. It is fitted beside the headline as a diagnostic, and its warnings are reported.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from data_prep.dataset import build_dataset, demo_dataset
from data_prep.errors import InputError
from data_prep.terms import is_lag
from data_prep.synthetic.demo import demo_truth_frame
from models.bayes.effects import EFFECTS
from models.spec.coefficient_tables import DAGGER, STAR_LEVELS
from models.study.config import HISTORICAL_INSTRUMENTS, PAPER_CONTROLS  # noqa: F401 (re-export)

DEMO_SEED = 20240601


def study_dataset(data: dict, seed: int = DEMO_SEED) -> xr.Dataset:
    """The study Dataset from a config's ``[data]`` table, or the embedded demo when it is empty."""
    if not data.get("employment"):
        return demo_dataset(seed)
    if not data.get("weights"):
        raise InputError("the config's [data] table gives employment but no weights")
    options = {k: data[k] for k in ("winsorize", "fill_policy", "er_threshold", "er_benchmark")
               if k in data}
    sources = [data[k] for k in ("employment", "weights", "covariates", "cities", "output")
               if data.get(k)]
    return build_dataset(data["employment"], weights=data["weights"],
                         covariates=data.get("covariates"), cities=data.get("cities"),
                         output=data.get("output"),
                         island_policy=data.get("island_policy", "refuse"),
                         source_files=tuple(sources), **options)


def descriptive_table(ds: xr.Dataset, variables: Sequence[str]) -> pd.DataFrame:
    """The paper's Table 1: mean, standard deviation, minimum and maximum over the city × year panel."""
    missing = [v for v in variables if v not in ds]
    if missing:
        raise InputError(f"the study data have no variable(s) {', '.join(missing)}")
    rows = []
    for name in variables:
        values = ds[name].values.ravel().astype(float)
        values = values[np.isfinite(values)]
        rows.append({"variable": name, "mean": values.mean(), "sd": values.std(ddof=1),
                     "min": values.min(), "max": values.max(), "observations": values.size})
    return pd.DataFrame(rows)


def system_formulas(agglomeration: str, controls: Sequence[str], spatial: bool = True,
                    exclude: tuple[Sequence[str], Sequence[str]] = ((), ())) -> list[str]:
    """The paper's two-equation system for ER and an agglomeration index A (docs/method.md §2).

    ER = α1 W·ER + α2 W·A + α3 A + X1 β1 + ε1;  A = γ1 W·A + γ2 W·ER + γ3 ER + X2 β2 + ε2.
    X1 and X2 are ``controls`` less ``exclude[0]`` and ``exclude[1]`` respectively (the paper
    uses the same controls in both equations; an exclusion identifies the system beyond its
    spatial lags). Without ``spatial`` the W terms are dropped (the paper's 3SLS columns).
    """
    return joint_formulas([agglomeration], controls, spatial=spatial,
                          exclude={"ER": list(exclude[0]), agglomeration: list(exclude[1])})


def joint_formulas(agglomeration: Sequence[str], controls: Sequence[str], spatial: bool = True,
                   exclude: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """One system of ER and every index A_k in ``agglomeration`` (the headline specification).

    ER  = α_ER W·ER + Σ_k (α_k W·A_k + δ_k A_k) + X_ER β_ER + ε_ER
    A_k = γ_k W·A_k + γ_k,ER W·ER + θ_k ER + X_k β_k + ε_k           (k = 1..K)

    X_dep is ``controls`` less ``exclude[dep]``. With a single index this is the paper's pair.
    Without ``spatial`` the W terms are dropped (the non-spatial counterpart).
    """
    exclude = exclude or {}

    def rhs(dep: str, endogenous: list[str], lags: list[str]) -> str:
        xs = [c for c in controls if c not in set(exclude.get(dep, ()))]
        terms = ([f"W({v})" for v in lags] if spatial else []) + endogenous + xs
        return " + ".join(terms) if terms else "1"

    aggs = list(agglomeration)
    formulas = [f"ER ~ {rhs('ER', aggs, ['ER', *aggs])}"]
    formulas += [f"{a} ~ {rhs(a, ['ER'], [a, 'ER'])}" for a in aggs]
    return formulas


def plain_formulas(formulas: Sequence[str]) -> list[str]:
    """The same system without any W(·) term (the non-spatial 3SLS / LOO counterpart)."""
    out = []
    for f in formulas:
        dep, rhs = (part.strip() for part in f.split("~", 1))
        terms = [t.strip() for t in rhs.split("+") if not is_lag(t.strip())]
        out.append(f"{dep} ~ {' + '.join(terms) if terms else '1'}")
    return out


# ----------------------------------------------------------------------------- truth

def truth_frame(ds: xr.Dataset) -> pd.DataFrame | None:
    """The simulated truth stored with a synthetic Dataset (columns equation, term, truth), or
    None for data without one (a user's data): ``data_prep.synthetic.demo.demo_truth_frame``."""
    if not ds.attrs.get("truth"):
        return None

    return demo_truth_frame(ds)


def recovery(fit, truth: pd.DataFrame, hdi_prob: float = 0.94,
             level: float = 0.95) -> pd.DataFrame:
    """Per coefficient: truth, posterior mean and HDI, GS3SLS estimate and its interval, and
    whether each interval covers the truth (normal interval ± z·se for GS3SLS)."""
    from scipy.stats import norm

    rows = truth.set_index(["equation", "term"])
    out = rows.copy()
    if fit.summary is not None:
        post = fit.summary.set_index(["equation", "term"])
        out = out.join(post[["mean", "hdi_low", "hdi_high"]], how="left")
        out["in_hdi"] = (out["hdi_low"] <= out["truth"]) & (out["truth"] <= out["hdi_high"])
    if "GS3SLS" in fit.frequentist:
        freq = fit.frequentist["GS3SLS"].to_frame().set_index(["equation", "term"])
        z = norm.ppf(0.5 + level / 2)
        out = out.join(freq[["estimate", "std_error"]], how="left")
        out["ci_low"] = out["estimate"] - z * out["std_error"]
        out["ci_high"] = out["estimate"] + z * out["std_error"]
        out["in_ci"] = (out["ci_low"] <= out["truth"]) & (out["truth"] <= out["ci_high"])
    return out.reset_index()


# ----------------------------------------------------------------------------- impacts

IMPACT_NOTE = ("LeSage–Pace (2009) summary impacts of the system: direct = the average city's "
               "response to a change in itself (feedback included), indirect = the average "
               "spill-over to the other cities, total = direct + indirect. A variable of kind "
               "\"shock\" is a unit innovation in that dependent's own equation (the block "
               "[𝒜⁻¹]_{response, variable} of the reduced form), not its structural coefficient. "
               "Posterior columns: mean, sd and 94 % HDI; † the HDI excludes 0. GS3SLS columns: "
               "plug-in impact and a 95 % interval simulated from the estimate's asymptotic "
               "normal distribution (inadmissible draws discarded); *** / ** / * the simulated "
               "99 / 95 / 90 % interval excludes 0.")
IMPACT_COLUMNS = ["response", "variable", "kind", "effect", "mean", "sd", "hdi_low", "hdi_high",
                  "hdi_excludes_0", "gs3sls", "ci_low", "ci_high", "gs3sls_stars"]


def gs3sls_impacts(results, eigenvalues, *, seed: int = 0, W=None,
                   draws: int = 1000) -> pd.DataFrame:
    """GS3SLS impacts with their simulated 95 % interval and significance stars.

    One set of simulated parameter draws δ_s ~ N(δ̂, V̂) (:func:`models.study.figures.simulated_impacts`)
    read at the 90, 95 and 99 % levels, so the intervals are nested; ``stars`` marks the widest
    of them that excludes 0 (``models.spec.coefficient_tables.STAR_LEVELS``). Columns effect, response,
    variable, estimate, low, high (95 %), stars. InputError when the estimate is outside the
    admissible region (its impacts are undefined).
    """
    # lazy: matplotlib only to draw; the study plan (--dry-run) imports this module
    from models.study.figures import impact_intervals, simulated_impacts

    point, sim, discarded = simulated_impacts(results, eigenvalues, draws=draws, seed=seed, W=W)
    frames = {alpha: impact_intervals(point, sim, 1 - alpha) for alpha, _ in STAR_LEVELS}
    out = frames[0.05].copy()
    out.attrs["discarded"] = discarded
    marks = np.full(len(out), "", dtype=object)
    for alpha, mark in reversed(STAR_LEVELS):  # weakest first, so the strongest mark wins
        f = frames[alpha]
        marks[((f["low"] > 0) | (f["high"] < 0)).to_numpy()] = mark
    out["stars"] = marks
    return out


def _posterior_impacts(idata, hdi_prob: float) -> pd.DataFrame:
    """Mean, sd and HDI of the posterior ``impact`` per (effect, response, variable)
    (:func:`models.bayes.fit.impact_summary`, indexed by those three)."""
    # lazy: models.bayes.fit loads PyMC; the frequentist tables stay free of it
    from models.bayes.fit import impact_summary

    return impact_summary(idata, hdi_prob).set_index(["effect", "response", "variable"])


def impact_table(fit, gs3sls: pd.DataFrame | None, responses: Sequence[str], *,
                 hdi_prob: float = 0.94) -> pd.DataFrame:
    """Impacts of a system on ``responses``: posterior beside GS3SLS, one row per
    (response, variable, effect) (columns :data:`IMPACT_COLUMNS`, note :data:`IMPACT_NOTE`).

    Variables: every exogenous variable, and a unit shock to each dependent in ``responses``
    (the endogenous indices). ``fit``: a ``SystemFit`` whose posterior may hold ``impact``
    (``models.bayes.effects.impacts``); ``gs3sls``: :func:`gs3sls_impacts` output or None.
    A side that is missing leaves its columns empty.
    """
    keys = ["effect", "response", "variable"]
    parts = []
    if fit.idata is not None and "impact" in fit.idata.posterior:
        parts.append(_posterior_impacts(fit.idata, hdi_prob))
    if gs3sls is not None:
        parts.append(gs3sls.set_index(keys)[["estimate", "low", "high", "stars"]].rename(
            columns={"estimate": "gs3sls", "low": "ci_low", "high": "ci_high",
                     "stars": "gs3sls_stars"}))
    if not parts:
        return pd.DataFrame(columns=IMPACT_COLUMNS)
    table = pd.concat(parts, axis=1).reset_index()
    table = table.reindex(columns=[*keys, *IMPACT_COLUMNS[4:]])
    deps = set(fit.dependents)
    table["kind"] = np.where(table["variable"].isin(deps), "shock", "exogenous")
    table = table[table["response"].isin(responses)
                  & (~table["variable"].isin(deps) | table["variable"].isin(responses))]
    excludes = (table["hdi_low"] > 0) | (table["hdi_high"] < 0)
    table["hdi_excludes_0"] = np.where(excludes, DAGGER, "")
    table["gs3sls_stars"] = table["gs3sls_stars"].fillna("")
    order = {"response": list(responses), "kind": ["shock", "exogenous"],
             "effect": list(EFFECTS)}
    rank = [table[c].map({v: i for i, v in enumerate(vals)}) for c, vals in order.items()]
    table = table.assign(_r=rank[0], _k=rank[1], _e=rank[2])
    table = table.sort_values(["_r", "_k", "variable", "_e"], kind="stable")
    return table[IMPACT_COLUMNS].reset_index(drop=True)


def impact_phrase(variable: str, kind: str) -> str:
    """What a row's variable is, in words: the variable itself or a shock to its equation."""
    return f"a unit shock to the {variable} equation" if kind == "shock" else variable


def impact_sentence(table: pd.DataFrame, response: str, variable: str,
                    effect: str = "total") -> str:
    """One line: the ``effect`` impact of ``variable`` on ``response`` from both estimators."""
    rows = table[(table["response"] == response) & (table["variable"] == variable)
                 & (table["effect"] == effect)]
    if rows.empty:
        return f"no {effect} impact of {variable} on {response} was computed"
    row = rows.iloc[0]
    sides = []
    if np.isfinite(row["mean"]):
        sides.append(f"{row['mean']:.3f} in the posterior (94 % HDI {row['hdi_low']:.3f} to "
                     f"{row['hdi_high']:.3f})")
    if np.isfinite(row["gs3sls"]):
        sides.append(f"{row['gs3sls']:.3f} by GS3SLS (simulated 95 % interval "
                     f"{row['ci_low']:.3f} to {row['ci_high']:.3f})")
    if sides and not np.isfinite(row["gs3sls"]):
        sides.append("none by GS3SLS (not estimable, or outside the admissible region)")
    return (f"the {effect} impact of {impact_phrase(variable, row['kind'])} on {response} is "
            + (" and ".join(sides) if sides else "not available"))
