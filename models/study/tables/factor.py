"""The paper's Table 10: the censored factor model, full sample and by city group, Tobit beside Bayes.

Columns as in the paper: full sample, tier 1..4, coastal, inland. In each column the Tobit ML
coefficient (stars, z statistic in parentheses; :func:`models.spec.coefficient_tables.paper_table`) stands beside
the posterior mean († when the 94 % HDI excludes 0, posterior sd in parentheses;
:func:`models.spec.coefficient_tables.posterior_table`). The Tobit columns of a group are separate regressions
on that group's cities (the paper's design); the Bayesian group columns come from ONE
hierarchical model per grouping whose group slopes are partially pooled toward the overall
slopes (:mod:`models.bayes.censored`), so a group too small for its own Tobit still gets a
(shrunken) estimate, and differences between groups come with posteriors: the contrasts table
(tier 1 − tier 4 and every other tier − tier 4, coastal − inland). The σ of a Bayesian group
column is the model's common σ. Intercepts and the city/year effects are estimated, not shown.
With ``mundlak`` the Bayesian columns add the city means of the factors (rows ``mean(x)``,
:mod:`models.spec.factor`), so that their random city effects and the Tobit's city dummies
estimate the same within-city slopes; the notes (:func:`assumption_notes`) say which assumption
each column makes. Functions return data only; the caller writes the files.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from models.frequentist.tobit import INCIDENTAL_NOTE, fit_tobit
from models.spec.coefficient_tables import DAGGER, paper_table, posterior_table
from models.spec.factor import factor_data

NOTE = ("Tobit: ML coefficient, z statistic in parentheses, *** p < 0.01, ** p < 0.05, "
        "* p < 0.10; Bayes: posterior mean, posterior sd in parentheses, † the 94 % HDI "
        "excludes 0. Tobit group columns are separate regressions; Bayesian group columns come "
        "from one hierarchical model per grouping (slopes partially pooled, common sigma).")


def assumption_notes(effects: Sequence[str], mundlak: bool) -> list[str]:
    """One note per kind of column: what it assumes about the city effects and the factors."""
    if "city" not in effects:
        return ["Tobit and Bayes: no city effects (rows pooled; a city effect correlated with "
                "a factor would bias its slope)"]
    bayes = ("Bayes: random city effects correlated with the factors only through their city "
             "means (Mundlak's correlated random effects, rows mean(x)); the slopes are the "
             "within-city effects that the fixed-effects Tobit estimates" if mundlak else
             "Bayes: random city effects assumed independent of the factors; a city effect "
             "correlated with a factor biases its slope (the Mundlak device, [study] mundlak = "
             "true, removes that assumption)")
    return ["Tobit: city fixed effects (dummies), any correlation with the factors allowed, "
            "with the incidental-parameter caveat (sigma and standard errors too small with few "
            "years per city)", bayes]


def _label(column: str, group: str) -> str:
    if column == "tier":
        return f"Tier {group}"
    if column == "coastal" and group in ("0", "1"):
        return "Coastal" if group == "1" else "Inland"
    return f"{column} = {group}"


def _group_order(column: str, groups: Sequence[str]) -> list[str]:
    # coastal before inland, as in the paper; otherwise the sorted labels
    return sorted(groups, reverse=(column == "coastal" and set(groups) == {"0", "1"}))


def _usable_bounds(y: np.ndarray, lower, upper, notes: list[str]):
    """Drop a bound that no observation reaches (the script refuses it; a table keeps going)."""
    kept = []
    for bound, hit, word in ((lower, lambda b: (y <= b).any(), "lower"),
                             (upper, lambda b: (y >= b).any(), "upper")):
        if bound is not None and not hit(bound):
            notes.append(f"no observation reaches the {word} bound {bound}; it was dropped")
            bound = None
        kept.append(bound)
    if kept == [None, None]:
        raise InputError("no observation is censored at either bound; use OLS")
    return kept


def _tobit_column(data, label: str, notes: list[str]):
    if "city" in data.effects:
        data = dataclasses.replace(data, mundlak=())   # the city dummies absorb the means
    k = len(data.factors) + len(data.mundlak) + 1
    if len(data.cities) < k:
        notes.append(f"{label}: {len(data.cities)} cities, fewer than the {k} parameters of a "
                     "separate Tobit; no Tobit column (the Bayesian column pools it)")
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fit = fit_tobit(data, label)
    except InputError as err:
        notes.append(f"{label}: no Tobit column ({err})")
        return None
    notes += [f"{label}: {n}" for n in fit.notes if "incidental" not in n]
    return fit


def factor_tables(panel: pd.DataFrame, outcome: str, factors: list[str],
                  groups: Sequence[str] = ("tier", "coastal"), *, draws: int = 1000,
                  tune: int = 1000, chains: int = 4, seed: int = 0, sampler: str = "nutpie",
                  progress: bool = False, lower: float | None = 0.0, upper: float | None = 1.0,
                  effects: Sequence[str] = ("city", "year"), priors: dict | None = None,
                  id_column: str = "city", year_column: str = "year", bayes: bool = True,
                  mundlak: bool = False, **model_options) -> dict[str, pd.DataFrame]:
    """Table 10 from a (city, year) panel (``data_prep.dataset.panel_table``).

    Returns ``{"table10": paper layout (two rows per coefficient, columns "<label> Tobit" and
    "<label> Bayes"), "table10_contrasts": group contrasts (grouping, contrast, factor, mean, sd,
    hdi_low, hdi_high, prob_positive), "tobit": long contract-2 rows with a ``column`` label,
    "posterior": long posterior summaries with a ``column`` label, "notes": one note a row}``.
    ``model_options`` go to :func:`models.bayes.censored.fit_censored` (city_parametrisation,
    group_parametrisation, target_accept). ``bayes=False`` gives the Tobit columns only (a fast
    look: no posterior, no contrasts). ``mundlak`` adds the city means to the Bayesian model
    only (the Tobit's city dummies absorb them; without city effects the Tobit gets them too).
    """
    # lazy: PyMC only to sample; planning the study (--dry-run) goes without it
    from models.bayes.censored import fit_censored, group_contrasts, summary_frame

    notes: list[str] = []
    if outcome not in panel.columns:
        raise InputError(f"panel has no column {outcome}")
    lower, upper = _usable_bounds(panel[outcome].to_numpy(float), lower, upper, notes)
    formula = f"{outcome} ~ {' + '.join(factors)}"
    common = dict(effects=effects, id_column=id_column, year_column=year_column,
                  source="panel", mundlak=mundlak)
    full = factor_data(panel, formula, lower, upper, **common)
    notes += assumption_notes(full.effects, bool(full.mundlak))
    if "city" in full.effects:
        notes.append(f"Tobit: {INCIDENTAL_NOTE}")
    sample = dict(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                  progress=progress, **model_options)
    tobit_frames: dict[str, pd.DataFrame] = {}
    bayes_frames: dict[str, pd.DataFrame] = {}
    nobs: dict[str, int] = {}
    contrasts = []
    failed: set[str] = set()   # posteriors that did not converge (no † in their columns)

    def posterior(data, label):
        idata = fit_censored(data, priors, **sample)
        report = json.loads(idata.posterior.attrs.get("convergence_report", "[]"))
        if report:
            notes.append(f"Bayes ({label}): {report[0]}")
        if report and not report[0].startswith("Convergence checks passed"):
            failed.add(label)
        return idata

    fit = _tobit_column(full, "Full sample", notes)
    if fit is not None:
        tobit_frames["Full sample"] = fit.to_frame()
    if bayes:
        post = summary_frame(posterior(full, "full sample"))
        bayes_frames["Full sample"] = post[post["term"] != "Intercept"]
    nobs["Full sample"] = full.n
    for column in groups:
        data = factor_data(panel, formula, lower, upper, group=column, **common)
        order = _group_order(column, data.groups)
        if not bayes:
            for g in order:
                label = _label(column, g)
                sub = data.subset(data.group == data.groups.index(g))
                nobs[label] = sub.n
                fit = _tobit_column(sub, label, notes)
                if fit is not None:
                    tobit_frames[label] = fit.to_frame()
            continue
        idata = posterior(data, f"by {column}")
        post = summary_frame(idata)
        for g in order:
            label = _label(column, g)
            if f"by {column}" in failed:
                failed.add(label)
            code = data.groups.index(g)
            sub = data.subset(data.group == code)
            nobs[label] = sub.n
            fit = _tobit_column(sub, label, notes)
            if fit is not None:
                tobit_frames[label] = fit.to_frame()
            rows = post[post["term"].str.endswith(f"[{g}]")].copy()
            rows["term"] = rows["term"].str[: -len(f"[{g}]")]
            common_rows = post[post["term"].isin([*data.mundlak_terms, "sigma"])]
            bayes_frames[label] = pd.concat([rows, common_rows], ignore_index=True)
        pairs = [(g, order[-1]) for g in order[:-1]]
        c = group_contrasts(idata, pairs)
        c["contrast"] = [" − ".join(_label(column, x) for x in pair.split(" - "))
                         for pair in c["contrast"]]
        c.insert(0, "grouping", column)
        contrasts.append(c)
    if "full sample" in failed:
        failed.add("Full sample")
    return {"table10": _combine(tobit_frames, bayes_frames, nobs,
                                [*factors, *full.mundlak_terms], failed),
            "table10_contrasts": pd.concat(contrasts, ignore_index=True) if contrasts
            else pd.DataFrame(),
            "tobit": _long(tobit_frames), "posterior": _long(bayes_frames),
            "notes": pd.DataFrame({"note": list(dict.fromkeys(notes))})}


def _long(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame()
    return pd.concat([f.assign(column=label) for label, f in frames.items()], ignore_index=True)


def _combine(tobit_frames, bayes_frames, nobs, factors,
             unmarked: set[str] = frozenset()) -> pd.DataFrame:
    """Interleave "<label> Tobit" and "<label> Bayes" columns on the rows factors… (and the
    Mundlak means), sigma; the Bayes columns of labels in ``unmarked`` (posteriors that did not
    converge) get no †."""
    keep = [*factors, "sigma"]
    labels = list(nobs)
    kinds = [("Tobit", tobit_frames, paper_table)]
    if bayes_frames:
        kinds.append(("Bayes", bayes_frames, posterior_table))
    rows = [t for f in keep for t in (f, "")] + ["Observations"]
    out = pd.DataFrame({"term": rows})
    for label in labels:
        for kind, frames, make in kinds:
            if label not in frames:
                out[f"{label} {kind}"] = ""
                continue
            frame = frames[label]
            frame = frame[frame["term"].isin(keep)]
            # the first row fixes the row order; make it the factors' order
            frame = frame.set_index("term").loc[[t for t in keep if t in set(frame["term"])]]
            marks = {"unmarked": unmarked} if kind == "Bayes" else {}
            table = make({label: frame.reset_index()}, nobs={label: nobs[label]}, **marks)
            cells = dict(zip(zip(table["term"].where(table["term"] != "", None).ffill(),
                                 table.groupby((table["term"] != "").cumsum()).cumcount()),
                             table[label]))
            column = [cells.get((_row_key(rows, i), _row_pos(rows, i)), "")
                      for i in range(len(rows))]
            # a scale's interval always excludes 0: no dagger for sigma
            column[rows.index("sigma")] = column[rows.index("sigma")].replace(DAGGER, "")
            out[f"{label} {kind}"] = column
    return out


def _row_key(rows: list[str], i: int) -> str:
    while rows[i] == "":
        i -= 1
    return rows[i]


def _row_pos(rows: list[str], i: int) -> int:
    return 0 if rows[i] != "" else 1
