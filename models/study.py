"""The seed study as a pipeline of tables: each function returns data, scripts write files.

Table numbers follow the seed: Table 1 descriptive statistics; Tables 2–3 the spatial
simultaneous systems ER ↔ PSS and ER ↔ PSD by GS3SLS and 3SLS, beside the Bayesian
full-information posterior. Figures 1–3 are the Moran scatter plots of ER, PSS and PSD.

Two specifications (METHOD.md §2, identification warning):

* the **headline** (:func:`joint_formulas`): one system in which ER, PSS and PSD are determined
  together (the ER equation holds both indices, so fitting ER ↔ PSS and ER ↔ PSD separately
  would leave one of them in the error term), with the controls the config excludes from
  each equation — an exclusion is what identifies a system beyond its spatial lags;
* the **seed's** (:func:`system_formulas` without exclusions): one two-equation system per index
  with the same controls in both equations, identified only through spatial lags of the
  controls. It is fitted beside the headline as a diagnostic, and its warnings are reported.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from common.errors import InputError
from models.study_config import HISTORICAL_INSTRUMENTS, SEED_CONTROLS  # noqa: F401 (re-export)

DEMO_SEED = 20240601


def study_dataset(data: dict, seed: int = DEMO_SEED) -> xr.Dataset:
    """The study Dataset from a config's ``[data]`` table, or the embedded demo when it is empty."""
    from data_prep.dataset import build_dataset, demo_dataset

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
    """Seed Table 1: mean, standard deviation, minimum and maximum over the city × year panel."""
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
    """The seed's two-equation system for ER and an agglomeration index A (METHOD.md §2).

    ER = α1 W·ER + α2 W·A + α3 A + X1 β1 + ε1;  A = γ1 W·A + γ2 W·ER + γ3 ER + X2 β2 + ε2.
    X1 and X2 are ``controls`` less ``exclude[0]`` and ``exclude[1]`` respectively (the seed
    uses the same controls in both equations; an exclusion identifies the system beyond its
    spatial lags). Without ``spatial`` the W terms are dropped (the seed's 3SLS columns).
    """
    return joint_formulas([agglomeration], controls, spatial=spatial,
                          exclude={"ER": list(exclude[0]), agglomeration: list(exclude[1])})


def joint_formulas(agglomeration: Sequence[str], controls: Sequence[str], spatial: bool = True,
                   exclude: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """One system of ER and every index A_k in ``agglomeration`` (the headline specification).

    ER  = α_ER W·ER + Σ_k (α_k W·A_k + δ_k A_k) + X_ER β_ER + ε_ER
    A_k = γ_k W·A_k + γ_k,ER W·ER + θ_k ER + X_k β_k + ε_k           (k = 1..K)

    X_dep is ``controls`` less ``exclude[dep]``. With a single index this is the seed's pair.
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
        terms = [t.strip() for t in rhs.split("+") if not t.strip().startswith("W(")]
        out.append(f"{dep} ~ {' + '.join(terms) if terms else '1'}")
    return out


def system_table(fits: Mapping, equations: Sequence[str] | None = None) -> pd.DataFrame:
    """Seed layout of Tables 2–3: per fit label, its GS3SLS and 3SLS columns (coefficient with
    stars over z) beside its posterior column (mean† over sd), one column per equation.

    ``fits``: label → ``models.tables.common.SystemFit``; ``equations`` restricts the columns
    (a joint system shown one index at a time).
    """
    from models.results import combined_table

    keep = None if equations is None else set(equations)

    def shown(frame: pd.DataFrame) -> pd.DataFrame:
        return frame if keep is None else frame[frame["equation"].isin(keep)]

    freq, post, nobs, rsquared = {}, {}, {}, {}
    for label, fit in fits.items():
        for method, res in fit.frequentist.items():
            key = f"{label} {method}".strip()
            freq[key] = shown(res.to_frame())
            for eq, r2 in res.rsquared.items():
                rsquared[f"{key}: {eq}"], nobs[f"{key}: {eq}"] = r2, res.nobs
        if fit.summary is not None:
            key = f"{label} Bayes".strip()
            post[key] = shown(fit.summary)
            for eq in post[key]["equation"].unique():
                nobs[f"{key}: {eq}"] = fit.nobs
    return combined_table(freq, post, nobs=nobs, rsquared=rsquared)


# ----------------------------------------------------------------------------- truth

def truth_frame(ds: xr.Dataset) -> pd.DataFrame | None:
    """The simulated truth stored with a synthetic Dataset (columns equation, term, truth), or
    None for data without one (a user's data): ``data_prep.synthetic.demo_truth_frame``."""
    if not ds.attrs.get("truth"):
        return None
    from data_prep.synthetic import demo_truth_frame

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
