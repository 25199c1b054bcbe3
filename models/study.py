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

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from data_prep.errors import InputError
from models.study_config import HISTORICAL_INSTRUMENTS, SEED_CONTROLS  # noqa: F401 (re-export)

DEMO_SEED = 20240601


def study_dataset(data: dict, seed: int = DEMO_SEED) -> xr.Dataset:
    """The study Dataset from a config's ``[data]`` table, or the embedded demo when it is empty."""
    from data_prep.dataset import build_dataset, demo_dataset

    if not data.get("employment"):
        return demo_dataset(seed)
    if not data.get("weights"):
        raise InputError("the config's [data] table gives employment but no weights")
    options = {k: data[k] for k in ("winsorize", "fill_policy", "er_threshold") if k in data}
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


@dataclass
class SystemFit:
    """One specification fitted both ways: frequentist results and the posterior."""

    formulas: list[str]
    frequentist: dict = field(default_factory=dict)   # label → SystemResults
    idata: object = None
    summary: pd.DataFrame | None = None
    convergence: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    system: object = None

    @property
    def converged(self) -> bool:
        return bool(self.convergence) and self.convergence[0].startswith("Convergence checks passed")

    def warnings(self) -> list[str]:
        return [f"{label}: {w}" for label, res in self.frequentist.items() for w in res.warnings]


def fit_system(formulas: Sequence[str], frame: pd.DataFrame, weights, eigenvalues, *,
               instruments: Sequence[str] = (), frequentist: bool = True, bayes: bool = True,
               draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int = 1,
               sampler: str = "nutpie", progress: bool = True, loo: bool = True) -> SystemFit:
    """GS3SLS of the spatial system, 3SLS of its non-spatial counterpart, and the posterior.

    The non-spatial system needs excluded instruments when its equations share every control,
    so its 3SLS takes ``instruments`` (**choice**: the seed's historical instruments by default).
    The posterior (METHOD.md §2b) gets impacts and the leave-one-city-out densities attached.
    """
    from models.frequentist import estimate
    from models.spec import build_system, parse_system

    fit = SystemFit(list(formulas))
    spatial = build_system(list(formulas), frame, weights)
    fit.system = spatial
    if frequentist:
        fit.frequentist["GS3SLS"] = estimate(spatial, "gs3sls")
        plain = build_system(parse_system(plain_formulas(formulas), instruments=list(instruments)),
                             frame)
        fit.frequentist["3SLS"] = estimate(plain, "3sls")
    if bayes:
        fit.idata, fit.convergence, fit.notes = sample_system(
            spatial, eigenvalues, draws=draws, tune=tune, chains=chains, seed=seed,
            sampler=sampler, progress=progress, loo=loo)
        from models.bayes.postprocess import summary_frame
        fit.summary = summary_frame(fit.idata)
    return fit


def sample_system(system, eigenvalues, *, draws: int, tune: int, chains: int, seed: int,
                  sampler: str = "nutpie", progress: bool = True, loo: bool = True):
    """Posterior of a built system with impacts and LOO densities; (idata, report, notes)."""
    import json

    from models.bayes.postprocess import add_effects_and_loo
    from models.bayes.sampling import sample
    from models.bayes.system import build_system_model

    eigs = eigenvalues if system.W is not None else None
    model = build_system_model(system, eigs)
    idata = sample(model, draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                   progress=progress)
    notes = add_effects_and_loo(idata, system, eigs, loo=loo)
    report = json.loads(idata.attrs.get("convergence_report", "[]"))
    return idata, report, notes


def frequentist_table(fits: Mapping, equations: Sequence[str] | None = None) -> pd.DataFrame:
    """Seed layout: one column per (method, equation), coefficient over z, stars, n and R².

    ``fits``: label → SystemResults; ``equations`` restricts the columns (a joint system shown
    one index at a time).
    """
    from models.results import paper_table

    keep = None if equations is None else set(equations)
    frames, rsquared, nobs = {}, {}, {}
    for label, res in fits.items():
        frame = res.to_frame()
        if keep is not None:
            frame = frame[frame["equation"].isin(keep)]
        frames[label] = frame
        for eq, r2 in res.rsquared.items():
            if keep is None or eq in keep:
                rsquared[f"{label}: {eq}"] = r2
                nobs[f"{label}: {eq}"] = res.nobs
    return paper_table(frames, nobs=nobs, rsquared=rsquared)


def posterior_columns(summaries: Mapping[str, pd.DataFrame], nobs: int,
                      equations: Sequence[str] | None = None) -> pd.DataFrame:
    """Posterior analogue of :func:`frequentist_table` (mean† over sd per (label, equation))."""
    from models.results import posterior_table

    keep = None if equations is None else set(equations)
    frames = {label: (s if keep is None else s[s["equation"].isin(keep)])
              for label, s in summaries.items()}
    return posterior_table(frames, nobs=nobs)


# ----------------------------------------------------------------------------- truth

def truth_frame(ds: xr.Dataset) -> pd.DataFrame | None:
    """The simulated truth stored with a synthetic Dataset: columns equation, term, truth.

    None when the data carry no truth (a user's data). The demo stores it as JSON in
    ``ds.attrs["truth"]`` with the coefficients per equation and term on the raw scale of the
    cross-section variables.
    """
    import json

    raw = ds.attrs.get("truth")
    if not raw:
        return None
    truth = json.loads(raw) if isinstance(raw, str) else raw
    coefs = truth.get("coefficients", truth)
    rows = [{"equation": eq, "term": term, "truth": float(value)}
            for eq, terms in coefs.items() for term, value in terms.items()]
    return pd.DataFrame(rows, columns=["equation", "term", "truth"])


def recovery(fit: SystemFit, truth: pd.DataFrame, hdi_prob: float = 0.94,
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
