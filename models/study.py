"""The seed study as a pipeline of tables: each function returns data, scripts write files.

Table numbers follow the seed: Table 1 descriptive statistics; Tables 2–3 the spatial
simultaneous systems ER ↔ PSS and ER ↔ PSD by GS3SLS and 3SLS, beside the Bayesian
full-information posterior. Figures 1–3 are the Moran scatter plots of ER, PSS and PSD.

The systems put the same controls in both equations, as the seed does, so identification rests
on the spatial lags of the controls (METHOD.md §2, identification warning); the estimators say
so in their warnings and the report repeats them.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from data_prep.errors import InputError

SEED_CONTROLS = ("Gov", "PGDP", "Fdi", "Fix_cap", "RnD", "HumCap", "Rd", "Popden", "Market")
HISTORICAL_INSTRUMENTS = ("rail_1930s", "popden_1984")
DEMO_SEED = 20240601


def study_dataset(data: dict, seed: int = DEMO_SEED) -> xr.Dataset:
    """The study Dataset from a config's ``[data]`` table, or the embedded demo when it is empty."""
    from data_prep.dataset import build_dataset, demo_dataset

    if not data.get("employment"):
        return demo_dataset(seed)
    if not data.get("weights"):
        raise InputError("the config's [data] table gives employment but no weights")
    options = {k: data[k] for k in ("winsorize", "fill_policy", "er_threshold") if k in data}
    sources = [data[k] for k in ("employment", "weights", "covariates", "cities") if data.get(k)]
    return build_dataset(data["employment"], weights=data["weights"],
                         covariates=data.get("covariates"), cities=data.get("cities"),
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
    x1 = " + ".join(c for c in controls if c not in exclude[0]) or "1"
    x2 = " + ".join(c for c in controls if c not in exclude[1]) or "1"
    if spatial:
        return [f"ER ~ W(ER) + W({agglomeration}) + {agglomeration} + {x1}",
                f"{agglomeration} ~ W({agglomeration}) + W(ER) + ER + {x2}"]
    return [f"ER ~ {agglomeration} + {x1}", f"{agglomeration} ~ ER + {x2}"]


def fit_frequentist(table: pd.DataFrame, weights, agglomeration: str, controls: Sequence[str],
                    instruments: Sequence[str] = HISTORICAL_INSTRUMENTS,
                    exclude: tuple[Sequence[str], Sequence[str]] = ((), ())) -> dict:
    """GS3SLS of the spatial system and 3SLS of its non-spatial counterpart (seed Tables 2–3).

    With the same controls in both equations the non-spatial system has no excluded exogenous
    variable, so its 3SLS needs outside instruments **(choice)**: the historical instruments of
    the seed's Table 6 (rail access in the 1930s, 1984 population density) by default.
    """
    from models.frequentist import estimate
    from models.spec import build_system, parse_system

    spatial = build_system(system_formulas(agglomeration, controls, exclude=exclude), table, weights)
    plain = build_system(parse_system(system_formulas(agglomeration, controls, False, exclude),
                                      instruments=list(instruments)), table)
    return {"GS3SLS": estimate(spatial, "gs3sls"), "3SLS": estimate(plain, "3sls")}


def frequentist_table(fits: dict) -> pd.DataFrame:
    """Seed layout: one column per (method, equation), coefficient over z, stars, n and R²."""
    from models.results import paper_table

    frames = {label: res.to_frame() for label, res in fits.items()}
    rsquared = {f"{label}: {eq}": r2 for label, res in fits.items() for eq, r2 in res.rsquared.items()}
    nobs = {f"{label}: {eq}": res.nobs for label, res in fits.items() for eq in res.rsquared}
    return paper_table(frames, nobs=nobs, rsquared=rsquared)


def fit_bayesian(table: pd.DataFrame, weights, eigenvalues: np.ndarray, agglomeration: str,
                 controls: Sequence[str], *, draws: int, tune: int, chains: int, seed: int,
                 sampler: str = "nutpie", progress: bool = True,
                 exclude: tuple[Sequence[str], Sequence[str]] = ((), ())):
    """Posterior of the spatial system (METHOD.md §2b) with impacts and LOO densities attached."""
    from models.bayes.postprocess import add_effects_and_loo
    from models.bayes.sampling import sample
    from models.bayes.system import build_system_model
    from models.spec import build_system

    system = build_system(system_formulas(agglomeration, controls, exclude=exclude), table, weights)
    model = build_system_model(system, eigenvalues)
    idata = sample(model, draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                   progress=progress)
    notes = add_effects_and_loo(idata, system, eigenvalues)
    return idata, notes
