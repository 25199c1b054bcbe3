"""The paper's Tables 4–6: robustness of the ER ↔ agglomeration systems (docs/method.md §6).

Every system is the paper's pair of ``models.study.headline.system_formulas`` (ER with W·ER, W·A, A and
controls; A with W·A, W·ER, ER and controls), fitted by GS3SLS and by the Bayesian
full-information model through :func:`models.study.system_fit.fit_system`; the tables put the
frequentist columns beside the posterior columns, structural rows only, "Controls: Yes".

* Table 4 (:func:`alternative_measures_table`): ER replaced by the change in GDP growth
  (column ``ER_GDP``), PSS by the output-based relative specialisation (``PSS_output``), PSD by
  1 − Gini (``PSD_gini``), and ER by Martin's index against the aggregate national growth rate
  (``ER_national``, see ``NATIONAL_BENCHMARK_NOTE``). The alternative column is fitted *under the original name* (the
  system with ER_GDP is written "ER ~ ...") so that the rows line up with Tables 2–3 as in the
  seed; the column header says which measure was used. A system whose column is absent is not
  fitted: its table column says which input is missing.
* Table 5 (:func:`sample_and_effects_table`): (a) the cities that are not provincial capitals or
  sub-provincial cities (``capital`` != 1), with W restricted to them and re-row-standardised
  (``data_prep.weights.restrict_weights``; cities left without neighbours follow
  ``island_policy``, default "drop", and the fit's notes name them); (b) year × region fixed
  effects on the (city, year) panel, see :func:`fixed_effects_fits`.
* Table 6 (:func:`instruments_table`): historical instruments, each set on its own as in the paper
  (rail access in the 1930s; 1984 population density). Frequentist: appended to the GS3SLS
  instrument matrix H (the paper's IV reading). Bayesian: a likelihood has no "instrument"; the
  full-information analogue **(choice)** puts the instruments into the agglomeration equation
  as exogenous variables excluded from the ER equation, which is exactly the exclusion
  restriction an instrument for A in the ER equation asserts, and it identifies the system
  beyond the spatial lags. Their posterior coefficients (the first-stage strength) are shown.

Fixed effects (Table 5b) **(choice)**. The paper adds year, region and year × region effects to
its cross-section of 241 cities, which a cross-section cannot hold; here the systems are fitted
on the balanced (city, year) panel stacked year by year, N = nT rows, with block-diagonal
weights I_T ⊗ W (cities interact within a year only) and one dummy per year × region cell
(they nest the year and the region effects). Both estimators see exactly this stacked system:
GS3SLS with H = [X, (I ⊗ W) X, (I ⊗ W)² X]; the Bayesian model with the spectrum of W, each
eigenvalue counted T times (the spectrum of I_T ⊗ W), so its Jacobian stays exact and O(n). The
existing Lee–Yu panel mode (``models.bayes.panel_system``) removes *city* effects and has no
place for region-specific year effects, so it is not used; city effects are not in the paper's
specification. Caveat stated in the table notes: without city effects the errors are treated
as iid across years and cities, so the posterior's uncertainty is understated when a city's
errors persist over years. The GS3SLS column therefore reports city-clustered standard errors
(``models.frequentist.iv.clustered_cov``: the sandwich over the stacked scores of each city's
years and equations), its estimates unchanged.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum
from data_prep.spectrum.exact import eigenvalues as spectrum
from data_prep.weights import restrict_weights
from models.bayes.panel_system import balanced_panel
from models.study.headline import HISTORICAL_INSTRUMENTS, system_formulas
from models.study.system_fit import SystemFit, fit_system, missing_columns, paper_system_table

ALTERNATIVES = {"ER": "ER_GDP", "ER_national": "ER_national", "PSS": "PSS_output",
                "PSD": "PSD_gini"}
ROBUSTNESS_METHODS = ("GS3SLS",)
CLUSTER_COLUMN = "panel_city"  # the city of a stacked (city, year) row: the cluster id
FIXED_EFFECTS_NOTE = ("Year × region effects: stacked (city, year) panel with weights I_T ⊗ W; "
                      "the fits treat the errors as iid across years and cities (no city "
                      "effects), so the posterior's uncertainty is understated when a city's "
                      "errors persist over years; the GS3SLS standard errors are clustered by "
                      "city (robust to any correlation of a city's errors over years and "
                      "equations).")
NATIONAL_BENCHMARK_NOTE = ("ER=ER_national: Martin's sensitivity index with the aggregate "
                           "national employment growth as the counterfactual, ΔE^C = g·E_rt, "
                           "instead of the industry mix Σ_i g_i·E_rit: the industry-mix "
                           "counterfactual nets out the shift-share structural channel through "
                           "which PSS and PSD act, the national rate keeps it in ER.")


def pair_formulas(agglomeration: str, controls: Sequence[str], exclude,
                  extra: str = "") -> list[str]:
    """The ER ↔ A pair; ``exclude`` is (ER's, A's) exclusions or {dependent: exclusions}."""
    if isinstance(exclude, Mapping):
        exclude = (exclude.get("ER", ()), exclude.get(agglomeration, ()))
    er, agg = system_formulas(agglomeration, controls, exclude=exclude)
    return [er, agg + extra]


def _pair(frame: pd.DataFrame, weights, eigenvalues, agglomeration: str,
          controls: Sequence[str], exclude, **options) -> SystemFit:
    return fit_system(pair_formulas(agglomeration, controls, exclude), frame, weights,
                      eigenvalues, **options)


# ----------------------------------------------------------------------------- Table 4

def alternative_systems(alternatives: Mapping[str, str] | None = None
                        ) -> list[tuple[str, str, str, str]]:
    """The paper's Table 4 systems as (column label, ER column, index, index column).

    ``alternatives`` maps "ER", "ER_national", "PSS", "PSD" to the alternative columns
    (defaults ``ALTERNATIVES``).
    """
    alt = {**ALTERNATIVES, **(alternatives or {})}
    systems = [("(1)-(2)", alt["ER"], "PSD", "PSD"), ("(3)-(4)", alt["ER"], "PSS", "PSS"),
               ("(5)-(6)", "ER", "PSS", alt["PSS"]), ("(7)-(8)", "ER", "PSD", alt["PSD"]),
               ("(9)-(10)", alt["ER_national"], "PSD", "PSD"),
               ("(11)-(12)", alt["ER_national"], "PSS", "PSS")]
    return [(f"{number} ER={er}, {agg}={column}", er, agg, column)
            for number, er, agg, column in systems]


def alternative_measures_table(frame: pd.DataFrame, weights, eigenvalues,
                               controls: Sequence[str], *,
                               alternatives: Mapping[str, str] | None = None,
                               exclude: tuple[Sequence[str], Sequence[str]] = ((), ()),
                               methods: Sequence[str] = ROBUSTNESS_METHODS,
                               **fit_options) -> tuple[pd.DataFrame, dict[str, SystemFit]]:
    """The paper's Table 4: (1)–(2) ER_GDP ↔ PSD, (3)–(4) ER_GDP ↔ PSS, (5)–(6) ER ↔ PSS_output,
    (7)–(8) ER ↔ PSD_gini, and (9)–(10) ER_national ↔ PSD, (11)–(12) ER_national ↔ PSS (ER
    by the national-rate benchmark, ``NATIONAL_BENCHMARK_NOTE``).

    ``alternatives`` maps "ER", "ER_national", "PSS", "PSD" to the alternative columns
    (defaults ``ALTERNATIVES``). A system whose columns are absent from ``frame`` is not fitted; its table
    column's "Missing input" row names them. ``fit_options`` go to ``fit_system``.
    Returns the table and the fits by column label.
    """
    fits, missing, order = {}, {}, []
    for label, er_column, agg, agg_column in alternative_systems(alternatives):
        order.append(label)
        absent = missing_columns(frame, [er_column, agg_column, *controls])
        if absent:
            missing[label] = absent
            continue
        data = frame.assign(ER=frame[er_column], **{agg: frame[agg_column]})
        fits[label] = _pair(data, weights, eigenvalues, agg, controls, exclude, **fit_options)
    table = paper_system_table(fits, methods, show_controls=False, missing=missing, order=order)
    return table, fits


# ----------------------------------------------------------------------------- Table 5a

def subsample_fits(frame: pd.DataFrame, weights, controls: Sequence[str], *,
                   agglomeration: Sequence[str] = ("PSD", "PSS"), capital: str = "capital",
                   island_policy: str = "drop",
                   exclude: tuple[Sequence[str], Sequence[str]] = ((), ()),
                   bayes: bool = True, **fit_options) -> dict[str, SystemFit]:
    """The paper's Table 5 (1)–(4): the systems without provincial capitals / sub-provincial cities.

    Rows with ``frame[capital] == 1`` are dropped and W is restricted to the remaining cities
    (``restrict_weights`` with ``island_policy``: "drop" removes cities left without
    neighbours, "keep" keeps them with a zero spatial lag, "refuse" raises); the spectrum of the
    restricted W is recomputed. InputError (one line) for a missing column.
    """
    absent = missing_columns(frame, ["city", "ER", capital, *agglomeration, *controls])
    if absent:
        raise InputError(f"subsample table: the data have no column {', '.join(absent)}")
    flag = pd.to_numeric(frame[capital], errors="coerce")
    if flag.isna().any():
        bad = frame.loc[flag.isna(), "city"].astype(str).tolist()[:5]
        raise InputError(f"subsample table: column {capital} is missing or not numeric for "
                         f"cities {', '.join(bad)}")
    kept = frame.loc[flag != 1, "city"].astype(str).tolist()
    dropped_capitals = int((flag == 1).sum())
    W, islands = restrict_weights(weights, kept, island_policy=island_policy,
                                  reason=f"the subsample without the {dropped_capitals} "
                                         f"cities with {capital} = 1")
    sub = frame[frame["city"].astype(str).isin(W.cities)].reset_index(drop=True)
    note = (f"subsample: {dropped_capitals} cities with {capital} = 1 removed"
            + (f"; {len(islands)} cities left without neighbours were removed too "
               f"(island policy 'drop'): {', '.join(islands)}" if islands else "")
            + f"; n = {len(sub)}")
    eigs = spectrum(W) if bayes else None
    fits = {}
    for agg in agglomeration:
        fit = _pair(sub, W, eigs, agg, controls, exclude, bayes=bayes, **fit_options)
        fit.notes.insert(0, note)
        fits[f"{agg}, without capitals"] = fit
    return fits


# ----------------------------------------------------------------------------- Table 5b

def stacked_panel(panel: pd.DataFrame, weights, *, year_column: str = "year"):
    """The balanced (city, year) panel stacked year-major: (frame, I_T ⊗ W, T).

    Rows are ordered by year, then by the cities of ``weights``; the id column ``city`` becomes
    "city|year" so that every row is one observation of the stacked system, and the city itself
    is kept in ``CLUSTER_COLUMN`` (the cluster of city-clustered standard errors).
    """
    cities, years = balanced_panel(panel, "city", year_column)
    order = [str(c) for c in weights.cities]
    if set(order) != set(cities):
        raise InputError("fixed-effects table: the panel's cities differ from the weights' "
                         "cities")
    position = {c: i for i, c in enumerate(order)}
    frame = panel.assign(city=panel["city"].astype(str))
    frame = frame.assign(_pos=frame["city"].map(position))
    frame = frame.sort_values([year_column, "_pos"]).drop(columns="_pos").reset_index(drop=True)
    frame[CLUSTER_COLUMN] = frame["city"]
    frame["city"] = frame["city"] + "|" + frame[year_column].astype(str)
    T = len(years)
    W = sp.kron(sp.identity(T, format="csr"), sp.csr_matrix(weights.matrix), format="csr")
    return frame, W, T


def fixed_effects_fits(panel: pd.DataFrame, weights, eigenvalues, controls: Sequence[str], *,
                       agglomeration: Sequence[str] = ("PSD", "PSS"), region: str = "region",
                       year_column: str = "year",
                       exclude: tuple[Sequence[str], Sequence[str]] = ((), ()),
                       clustered: bool = True, **fit_options) -> dict[str, SystemFit]:
    """The paper's Table 5 (5)–(8): the systems with year × region fixed effects (module docstring).

    ``panel``: one row per (city, year) (``data_prep.dataset.panel_table``) with the region
    attribute ``region``; ``eigenvalues``: the spectrum of the n × n W (each is counted T
    times). Impacts and LOO are not attached (``effects=False``). The GS3SLS standard errors
    are clustered by city (``cluster_column`` of ``fit_system``) unless ``clustered=False``. InputError for a missing
    column or an unbalanced panel.
    """
    absent = missing_columns(panel, ["city", year_column, region, "ER", *agglomeration,
                                     *controls])
    if absent:
        raise InputError(f"fixed-effects table: the panel has no column {', '.join(absent)}")
    stacked, W, T = stacked_panel(panel, weights, year_column=year_column)
    stacked["year_region"] = (stacked[year_column].astype(str) + "x"
                              + stacked[region].astype(str))
    # each eigenvalue of W is one of I_T ⊗ W's T times
    stacked_spectrum = (None if eigenvalues is None else
                        Spectrum(np.asarray(eigenvalues), np.full(np.shape(eigenvalues), float(T)),
                                 "stacked panel", {"multiplicity": T}))
    fits = {}
    for agg in agglomeration:
        er, eq = pair_formulas(agg, controls, exclude)
        formulas = [f"{er} + C(year_region)", f"{eq} + C(year_region)"]
        fit = fit_system(formulas, stacked, W, stacked_spectrum,
                         cluster_column=CLUSTER_COLUMN if clustered else None,
                         **{"effects": False, **fit_options})
        fit.notes.insert(0, FIXED_EFFECTS_NOTE)
        fits[f"{agg}, year x region effects"] = fit
    return fits


def sample_and_effects_table(frame: pd.DataFrame, panel: pd.DataFrame | None, weights,
                             eigenvalues, controls: Sequence[str], *,
                             agglomeration: Sequence[str] = ("PSD", "PSS"),
                             capital: str = "capital", region: str = "region",
                             island_policy: str = "drop",
                             exclude: tuple[Sequence[str], Sequence[str]] = ((), ()),
                             methods: Sequence[str] = ROBUSTNESS_METHODS,
                             **fit_options) -> tuple[pd.DataFrame, dict[str, SystemFit]]:
    """The paper's Table 5: subsample without capitals (a) beside year × region effects (b).

    A part whose input is absent (``capital`` in ``frame``; ``panel`` None or without
    ``region``) is not fitted; its columns' "Missing input" row names the input.
    """
    fits, missing = {}, {}
    if capital in frame.columns:
        fits.update(subsample_fits(frame, weights, controls, agglomeration=agglomeration,
                                   capital=capital, island_policy=island_policy,
                                   exclude=exclude, **fit_options))
    else:
        missing.update({f"{agg}, without capitals": [capital] for agg in agglomeration})
    if panel is not None and region in panel.columns:
        fits.update(fixed_effects_fits(panel, weights, eigenvalues, controls,
                                       agglomeration=agglomeration, region=region,
                                       exclude=exclude, **fit_options))
    else:
        what = [region] if panel is not None else ["the (city, year) panel"]
        missing.update({f"{agg}, year x region effects": what for agg in agglomeration})
    effects = {label: ("Yes" if "year x region" in label else "No") for label in fits}
    table = paper_system_table(fits, methods, show_controls=False, missing=missing,
                       indicators={"Year x region effects": effects})
    return table, fits


# ----------------------------------------------------------------------------- Table 6

def instruments_table(frame: pd.DataFrame, weights, eigenvalues, controls: Sequence[str], *,
                      instrument_sets: Mapping[str, Sequence[str]] | None = None,
                      agglomeration: Sequence[str] = ("PSD", "PSS"),
                      exclude: tuple[Sequence[str], Sequence[str]] = ((), ()),
                      methods: Sequence[str] = ROBUSTNESS_METHODS,
                      **fit_options) -> tuple[pd.DataFrame, dict[str, SystemFit]]:
    """The paper's Table 6: each instrument set with each agglomeration index (module docstring).

    ``instrument_sets``: {label: columns}, default one set per historical instrument as in the
    seed. GS3SLS: the set appended to H; Bayes: the set added to the agglomeration equation
    (excluded from ER), its coefficients shown. A set with an absent column is not fitted; its
    column's "Missing input" row names it.
    """
    sets = dict(instrument_sets or {name: [name] for name in HISTORICAL_INSTRUMENTS})
    fits, missing, shown = {}, {}, set()
    for name, columns in sets.items():
        for agg in agglomeration:
            label = f"{agg}, IV {name}"
            absent = missing_columns(frame, ["ER", agg, *controls, *columns])
            if absent:
                missing[label] = absent
                continue
            spatial = pair_formulas(agg, controls, exclude)
            bayes_formulas = pair_formulas(agg, controls, exclude, " + " + " + ".join(columns))
            fits[label] = fit_system(spatial, frame, weights, eigenvalues,
                                     spatial_instruments=list(columns),
                                     bayes_formulas=bayes_formulas, **fit_options)
            shown |= set(columns)
    table = paper_system_table(fits, methods, show_controls=False, show_terms=sorted(shown),
                       missing=missing)
    return table, fits


__all__ = ["ALTERNATIVES", "CLUSTER_COLUMN", "alternative_systems", "pair_formulas", "FIXED_EFFECTS_NOTE", "NATIONAL_BENCHMARK_NOTE",
           "alternative_measures_table", "subsample_fits", "stacked_panel",
           "fixed_effects_fits", "sample_and_effects_table", "instruments_table"]
