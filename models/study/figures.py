"""Comparison forest plots: posterior vs GS3SLS (vs the truth) on a scale where every term reads.

Coefficients of one system span orders of magnitude (an intercept of 20 beside slopes of 0.1),
so one common axis squeezes most of them into dots. The figures therefore show **standardised
coefficients** (Wooldridge, *Introductory Econometrics*, §6.1 "beta coefficients"):

    b* = b · sd(x) / sd(y),

with y the equation's dependent and x the term's regressor column as it enters the equation
(a spatial lag W(v) uses sd(W v), an endogenous regressor v uses sd(v)); b* is the change in y,
in its standard deviations, for a one-sd change of x. The factor is a positive constant per
(equation, term), so the same transform maps the posterior mean and HDI, the GS3SLS estimate and
interval and the truth without changing their order or coverage. Intercepts have no sd(x); they
are drawn in their own panel in the data's units.

Effects (the posterior ``impact`` of :mod:`models.bayes.effects`) get the same treatment: the
effect of x on y_g is scaled by sd(x)/sd(y_g); a shock to equation h (``variable_kind ==
"shock"``, a unit innovation of y_h) by sd(y_h)/sd(y_g).

GS3SLS intervals are estimate ± z_{(1+level)/2} · std_error (the asymptotic normal of contract
2); GS3SLS effects come from :func:`frequentist_effects`, which simulates parameter vectors from
the estimator's asymptotic normal N(δ̂, V̂) and maps each through the impact formulas (LeSage &
Pace 2009, §2.7 — their recommended simulation route for the sampling distribution of impacts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import xarray as xr  # noqa: E402
from scipy import stats  # noqa: E402

from data_prep.errors import InputError  # noqa: E402
from data_prep.files import save_figure  # noqa: E402
from data_prep.spectrum.stability import admissible_mask  # noqa: E402
from data_prep.terms import lag_target
from models.bayes.effects import coefficient_matrices, impacts  # noqa: E402
from models.bayes.idata import coef_grid  # noqa: E402
from models.spec.coefficient_tables import coefficient_frame  # noqa: E402

INTERCEPT = "Intercept"
SOURCES = ("posterior", "GS3SLS", "truth")
_STYLE = {"posterior": dict(color="tab:blue", marker="o"),
          "GS3SLS": dict(color="tab:orange", marker="s"),
          "truth": dict(color="black", marker="x")}
_OFFSET = {"posterior": 0.2, "GS3SLS": -0.05, "truth": -0.25}
_COLUMNS = ["equation", "term", "source", "value", "low", "high"]


# ----------------------------------------------------------------------------- scales

def _weights_matrix(weights, data: pd.DataFrame) -> sp.csr_matrix:
    """W aligned with the rows of ``data`` (by its ``city`` column when W carries city names)."""
    if hasattr(weights, "matrix"):
        if "city" in data.columns:
            weights = weights.aligned([str(c) for c in data["city"]])
        weights = weights.matrix
    W = sp.csr_matrix(weights, dtype=float)
    if W.shape != (len(data), len(data)):
        raise InputError(f"weights are {W.shape[0]} x {W.shape[1]} but the data have "
                         f"{len(data)} rows")
    return W


def _column(data: pd.DataFrame, name: str, what: str) -> np.ndarray:
    if name not in data.columns:
        raise InputError(f"the data have no column {name!r} ({what})")
    return pd.to_numeric(data[name], errors="coerce").to_numpy(dtype=float)


def coefficient_scales(data: pd.DataFrame, pairs: Iterable[tuple[str, str]],
                       weights=None) -> pd.Series:
    """sd(x)/sd(y) per (equation, term): the factor that standardises a coefficient.

    ``data`` has one row per city and the dependents and regressors as columns (the
    cross-section frame the models were fitted on); ``weights`` (a SpatialWeights aligned by the
    ``city`` column, or a sparse matrix in row order) is needed for W(v) terms. Intercepts get
    NaN. Sample sds (ddof = 1); the ratio does not depend on the ddof.
    """
    W = None
    out = {}
    for equation, term in pairs:
        if term == INTERCEPT:
            out[(equation, term)] = np.nan
            continue
        y = _column(data, equation, f"dependent of equation {equation}")
        lagged = lag_target(term)
        if lagged is not None:
            if weights is None:
                raise InputError(f"term {term} of equation {equation}: weights are needed to "
                                 "standardise a spatial lag")
            W = _weights_matrix(weights, data) if W is None else W
            x = W @ _column(data, lagged, f"term {term} of equation {equation}")
        else:
            x = _column(data, term, f"term {term} of equation {equation}")
        sy, sx = np.nanstd(y, ddof=1), np.nanstd(x, ddof=1)
        if not sy > 0:
            raise InputError(f"dependent {equation} does not vary; cannot standardise")
        out[(equation, term)] = sx / sy
    index = pd.MultiIndex.from_tuples(list(out), names=["equation", "term"])
    return pd.Series(list(out.values()), index=index, name="scale", dtype=float)


def standardise(frame: pd.DataFrame, scales: pd.Series, keys=("equation", "term")) -> pd.DataFrame:
    """Multiply value, low and high by the scale of each row's keys (NaN scale keeps the row as is).

    The scale is positive, so intervals keep their order.
    """
    out = frame.copy()
    factor = scales.reindex(pd.MultiIndex.from_frame(out[list(keys)])).to_numpy()
    factor = np.where(np.isnan(factor), 1.0, factor)
    for col in ("value", "low", "high"):
        out[col] = out[col].to_numpy(dtype=float) * factor
    out["standardised"] = ~np.isnan(scales.reindex(
        pd.MultiIndex.from_frame(frame[list(keys)])).to_numpy())
    return out


# ----------------------------------------------------------------------------- long frames

def _posterior_rows(da: xr.DataArray, keys: list[str], hdi_prob: float) -> pd.DataFrame:
    import arviz as az

    stacked = da.stack(item=keys)
    keep = ~np.isnan(stacked).all(("chain", "draw")).values
    stacked = stacked.isel(item=np.flatnonzero(keep))
    hdi = az.hdi(stacked.transpose("chain", "draw", "item").values, hdi_prob=hdi_prob)
    mean = stacked.mean(("chain", "draw")).values
    rows = pd.DataFrame([dict(zip(keys, map(str, k))) for k in stacked["item"].values])
    rows["source"] = "posterior"
    rows["value"], rows["low"], rows["high"] = mean, hdi[:, 0], hdi[:, 1]
    return rows


def coefficient_comparison(idata, frequentist: pd.DataFrame | None = None,
                           truth: pd.DataFrame | None = None, *, hdi_prob: float = 0.94,
                           level: float = 0.95) -> pd.DataFrame:
    """Long frame (equation, term, source, value, low, high) of every present coefficient.

    posterior: mean and ``hdi_prob`` HDI of ``coef``; GS3SLS: the contract-2 frame's estimate
    ± z·std_error at ``level``; truth (optional frame equation, term, truth): value only.
    """
    if "coef" not in idata.posterior:
        raise InputError("the posterior has no variable 'coef'")
    parts = [_posterior_rows(coef_grid(idata.posterior), ["equation", "term"], hdi_prob)]
    if frequentist is not None:
        f = coefficient_frame(frequentist)
        z = stats.norm.ppf(0.5 + level / 2)
        parts.append(pd.DataFrame({"equation": f["equation"], "term": f["term"],
                                   "source": "GS3SLS", "value": f["estimate"],
                                   "low": f["estimate"] - z * f["std_error"],
                                   "high": f["estimate"] + z * f["std_error"]}))
    if truth is not None:
        parts.append(_truth_rows(truth, ["equation", "term"]))
    return pd.concat(parts, ignore_index=True)[_COLUMNS]


def _truth_rows(truth: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    missing = [c for c in keys + ["truth"] if c not in truth.columns]
    if missing:
        raise InputError(f"truth frame lacks column {', '.join(missing)} "
                         f"(expected {', '.join(keys + ['truth'])})")
    t = truth[keys + ["truth"]].copy()
    for k in keys:
        t[k] = t[k].astype(str)
    return t.assign(source="truth", value=t.pop("truth").astype(float), low=np.nan, high=np.nan)


def effect_comparison(idata, frequentist: pd.DataFrame | None = None,
                      truth: pd.DataFrame | None = None, *,
                      hdi_prob: float = 0.94) -> pd.DataFrame:
    """Long frame (effect, response, variable, source, value, low, high) of the impacts.

    posterior: mean and HDI of ``impact``; ``frequentist`` and ``truth``: frames with columns
    effect, response, variable and (estimate, low, high) or truth respectively.
    """
    if "impact" not in idata.posterior:
        raise InputError("the posterior has no variable 'impact' (attach it with "
                         "models.bayes.postprocess.add_effects_and_loo)")
    da = idata.posterior["impact"]
    keys = ["effect", "response", "variable"]
    parts = [_posterior_rows(da.drop_vars("variable_kind", errors="ignore"), keys, hdi_prob)]
    if frequentist is not None:
        f = frequentist.rename(columns={"estimate": "value"})
        parts.append(f.assign(source="GS3SLS")[keys + ["source", "value", "low", "high"]])
    if truth is not None:
        parts.append(_truth_rows(truth, keys))
    out = pd.concat(parts, ignore_index=True)
    kinds = dict(zip(map(str, da["variable"].values), map(str, da["variable_kind"].values))) \
        if "variable_kind" in da.coords else {}
    out["variable_kind"] = [kinds.get(v, "exogenous") for v in out["variable"]]
    return out


def effect_scales(data: pd.DataFrame, comparison: pd.DataFrame) -> pd.Series:
    """sd(x)/sd(y_response) per (response, variable); for a shock x is the shocked dependent."""
    pairs = comparison[["response", "variable"]].drop_duplicates().itertuples(index=False)
    scales = coefficient_scales(data, [(str(r), str(v)) for r, v in pairs])
    scales.index = scales.index.set_names(["response", "variable"])
    return scales


# ----------------------------------------------------------------------------- frequentist effects

def simulated_impacts(results, eigenvalues: np.ndarray, *, draws: int = 1000, seed: int = 0,
                      W=None) -> tuple[xr.DataArray, xr.DataArray, float]:
    """GS3SLS impacts at the estimate and at simulated parameter vectors.

    Parameter vectors δ_s ~ N(δ̂, V̂) (``results.params``, ``results.cov``); draws outside the
    admissible region (``data_prep.spectrum.stability``: some real eigenvalue of B0 + B1 λ_k ≥ 1) are
    discarded. Returns (impacts at δ̂, impacts of the kept draws on dim ``sample``, the
    discarded share). Raises InputError when the estimate itself is inadmissible (impacts
    undefined; weakly identified fits often are).
    """
    index = results.params.index
    equations = list(dict.fromkeys(str(e) for e, _ in index))
    terms = list(dict.fromkeys(str(t) for _, t in index))
    rng = np.random.default_rng(seed)
    cov = np.asarray(results.cov.loc[index, index], dtype=float)
    sims = rng.multivariate_normal(results.params.to_numpy(float), cov, size=draws,
                                   method="eigh")
    values = np.vstack([results.params.to_numpy(float)[None], sims])
    coef = np.full((values.shape[0], len(equations), len(terms)), np.nan)
    for j, (e, t) in enumerate(index):
        coef[:, equations.index(str(e)), terms.index(str(t))] = values[:, j]
    B0, B1, betas, deps = coefficient_matrices(xr.DataArray(
        coef, dims=("sample", "equation", "term"),
        coords={"equation": equations, "term": terms}))
    lam = np.asarray(eigenvalues).reshape(-1)
    ok = np.all(admissible_mask(B0, B1, lam), axis=1)
    if not ok[0]:
        raise InputError("the GS3SLS estimate lies outside the admissible region; its impacts "
                         "are undefined")
    keep = np.flatnonzero(ok)
    rows_one = W is None or np.allclose(np.asarray(sp.csr_matrix(W).sum(axis=1)).ravel(), 1.0)
    imp = impacts(B0[keep], B1[keep], {k: (b[keep], None if t is None else t[keep])
                                       for k, (b, t) in betas.items()},
                  lam, row_standardised=rows_one, dependents=deps, W=W)["impact"]
    return (imp.isel(sample=0), imp.isel(sample=slice(1, None)),
            float(1 - (keep.size - 1) / draws))


def impact_intervals(point: xr.DataArray, sim: xr.DataArray, level: float) -> pd.DataFrame:
    """Columns effect, response, variable, estimate, low, high: the plug-in impact and the
    equal-tailed ``level`` percentiles of the simulated ones (:func:`simulated_impacts`)."""
    q = sim.quantile([(1 - level) / 2, (1 + level) / 2], dim="sample")
    rows = []
    for e in point["effect"].values:
        for r in point["response"].values:
            for v in point["variable"].values:
                at = dict(effect=e, response=r, variable=v)
                rows.append({"effect": str(e), "response": str(r), "variable": str(v),
                             "estimate": float(point.sel(at)),
                             "low": float(q.sel(at).isel(quantile=0)),
                             "high": float(q.sel(at).isel(quantile=1))})
    return pd.DataFrame(rows)


def frequentist_effects(results, eigenvalues: np.ndarray, *, draws: int = 1000, seed: int = 0,
                        level: float = 0.95, W=None) -> pd.DataFrame:
    """GS3SLS impacts: plug-in estimate and a simulated ``level`` interval
    (:func:`simulated_impacts`, :func:`impact_intervals`); the discarded share of the draws is
    in ``attrs["discarded"]``. Raises InputError when the estimate itself is inadmissible: draw
    the effects forest with the posterior alone then (``frequentist_effects=None``).
    """
    point, sim, discarded = simulated_impacts(results, eigenvalues, draws=draws, seed=seed, W=W)
    out = impact_intervals(point, sim, level)
    out.attrs["discarded"] = discarded
    return out


# ----------------------------------------------------------------------------- drawing

def _panel(ax, frame: pd.DataFrame, label_col: str, title: str, xlabel: str) -> None:
    labels = list(dict.fromkeys(frame[label_col]))
    pos = {lab: len(labels) - 1 - i for i, lab in enumerate(labels)}
    for source in SOURCES:
        part = frame[frame["source"] == source]
        if part.empty:
            continue
        y = np.array([pos[v] for v in part[label_col]]) + _OFFSET[source]
        style = _STYLE[source]
        ok = part["low"].notna().to_numpy()
        ax.hlines(y[ok], part["low"][ok], part["high"][ok], color=style["color"], lw=1.6)
        ax.scatter(part["value"], y, s=22, zorder=3, label=source, **style)
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.set_yticks(range(len(labels)), labels[::-1])
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.grid(axis="x", alpha=0.3)


def _legend(fig, axes, caption: str) -> None:
    handles, labels = {}, []
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center",
               ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, -0.045))
    fig.text(0.5, -0.075, caption, ha="center", fontsize=8, wrap=True)


def coefficient_forest(idata, data: pd.DataFrame, path, **options) -> Path:
    """Write :func:`coefficient_forest_figure` (same options) as PNG; returns the path."""
    return save_figure(coefficient_forest_figure(idata, data, **options), path)


def coefficient_forest_figure(idata, data: pd.DataFrame, *, frequentist=None, truth=None,
                              weights=None, hdi_prob: float = 0.94, level: float = 0.95,
                              title: str = ""):
    """One panel per equation of standardised slopes, plus one panel of intercepts (data units).

    Markers: posterior mean (dot) with its ``hdi_prob`` HDI, GS3SLS estimate (square) with its
    ``level`` interval, truth (cross) where given. ``data`` and ``weights`` give the sds
    (:func:`coefficient_scales`). Returns the matplotlib Figure.
    """
    comp = coefficient_comparison(idata, frequentist, truth, hdi_prob=hdi_prob, level=level)
    pairs = comp[["equation", "term"]].drop_duplicates().itertuples(index=False)
    scaled = standardise(comp, coefficient_scales(data, list(pairs), weights))
    equations = list(dict.fromkeys(scaled["equation"]))
    intercepts = scaled[scaled["term"] == INTERCEPT]
    panels = len(equations) + (not intercepts.empty)
    rows = max((scaled["term"] != INTERCEPT).groupby(scaled["equation"]).sum().max() // 2, 3)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 0.45 * rows + 2.0),
                             squeeze=False,
                             gridspec_kw={"width_ratios": [3] * len(equations)
                                          + ([1.6] if not intercepts.empty else [])})
    axes = axes[0]
    for ax, eq in zip(axes, equations):
        part = scaled[(scaled["equation"] == eq) & (scaled["term"] != INTERCEPT)]
        _panel(ax, part, "term", f"equation {eq}", "standardised coefficient  b·sd(x)/sd(y)")
    if not intercepts.empty:
        _panel(axes[-1], intercepts.assign(label=intercepts["equation"]), "label",
               "intercepts", "data units")
    _legend(fig, axes, f"posterior mean and {hdi_prob:.0%} HDI; GS3SLS estimate and "
                       f"{level:.0%} interval; same sd(x)/sd(y) factor applied to all sources")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def effect_forest(idata, data: pd.DataFrame, path, **options) -> Path:
    """Write :func:`effect_forest_figure` (same options) as PNG; returns the path."""
    return save_figure(effect_forest_figure(idata, data, **options), path)


def effect_forest_figure(idata, data: pd.DataFrame, *, frequentist=None, truth=None,
                         hdi_prob: float = 0.94, title: str = ""):
    """A grid of panels, rows = responses, columns = direct / indirect / total, standardised.

    ``frequentist``: :func:`frequentist_effects` output; ``truth``: frame effect, response,
    variable, truth. Returns the matplotlib Figure.
    """
    comp = effect_comparison(idata, frequentist, truth, hdi_prob=hdi_prob)
    scaled = standardise(comp, effect_scales(data, comp), keys=("response", "variable"))
    responses = list(dict.fromkeys(scaled["response"]))
    effects = list(dict.fromkeys(scaled["effect"]))
    labels = scaled["variable"] + np.where(scaled["variable_kind"] == "shock", " (shock)", "")
    scaled = scaled.assign(label=labels)
    nvar = scaled["label"].nunique()
    fig, axes = plt.subplots(len(responses), len(effects),
                             figsize=(3.8 * len(effects), (0.32 * nvar + 1.2) * len(responses) + 1),
                             squeeze=False, sharey="row")
    for i, r in enumerate(responses):
        for j, e in enumerate(effects):
            part = scaled[(scaled["response"] == r) & (scaled["effect"] == e)]
            _panel(axes[i, j], part, "label", f"{e} effect on {r}",
                   "standardised effect  ·sd(x)/sd(y)")
    _legend(fig, axes.ravel(), f"posterior mean and {hdi_prob:.0%} HDI; GS3SLS plug-in estimate "
                               "and simulated interval; a shock is a unit innovation of that "
                               "dependent, scaled by its sd")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def comparison_figures(idata, data: pd.DataFrame, folder, *, frequentist=None,
                       frequentist_effects: pd.DataFrame | None = None,
                       truth: pd.DataFrame | None = None,
                       truth_effects: pd.DataFrame | None = None, weights=None,
                       prefix: str = "", hdi_prob: float = 0.94) -> list[Path]:
    """Both forests for one system (the effects one only when ``impact`` is in the posterior)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [coefficient_forest(idata, data, folder / f"{prefix}coefficients_forest.png",
                                frequentist=frequentist, truth=truth, weights=weights,
                                hdi_prob=hdi_prob)]
    if "impact" in idata.posterior:
        paths.append(effect_forest(idata, data, folder / f"{prefix}effects_forest.png",
                                   frequentist=frequentist_effects, truth=truth_effects,
                                   hdi_prob=hdi_prob))
    return paths


__all__ = ["coefficient_scales", "standardise", "coefficient_comparison", "effect_comparison",
           "effect_scales", "frequentist_effects", "coefficient_forest", "effect_forest",
           "coefficient_forest_figure", "effect_forest_figure", "comparison_figures"]
