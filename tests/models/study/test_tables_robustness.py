"""The paper's Tables 4–8 as table functions on the embedded demo: shape, labels, missing inputs.

Fast tests fit the frequentist columns only (``bayes=False``); the posterior columns' layout
is checked on hand-made frames (test_tables_common) and on the G = 3 recovery fit
(test_regimes). Slow tests (about 2 minutes per posterior under load, compile time dominates)
run the regime table and every robustness table with a quick posterior (1 chain × 60 draws,
layout only). The stacked-panel and subsample constructions are checked
against direct computations.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from data_prep.errors import InputError

CONTROLS = ["Gov", "PGDP", "Fdi"]
QUICK = dict(draws=60, tune=60, chains=1, seed=5)


@pytest.fixture(scope="module")
def demo():
    from data_prep.dataset import cross_section, demo_dataset, panel_table
    from data_prep.regimes import add_regimes
    from data_prep.spectrum.stored import spectrum_from_dataset
    from data_prep.weights import weights_from_dataset

    ds = add_regimes(demo_dataset())
    frame = cross_section(ds)
    panel = panel_table(ds)
    # the demo has no region attribute: two regions by the map's east-west median
    east = pd.Series(ds["x"].values > np.median(ds["x"].values), index=ds.city.values)
    panel["region"] = panel["city"].map(east).map({True: "East", False: "West"})
    return frame, panel, weights_from_dataset(ds), spectrum_from_dataset(ds)


def _quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # weak-identification warnings of the demo systems
        return function(*args, **kwargs)


def _coefficient_rows(table: pd.DataFrame) -> list[str]:
    return [t for t in table["term"] if t]


def test_alternative_measures_table_with_missing_inputs(demo):
    from models.study.tables.robustness import alternative_measures_table

    frame, _, weights, eigs = demo
    # the demo has every alternative measure: take three away to see the "missing input" columns
    frame = frame.drop(columns=["ER_GDP", "PSS_output", "ER_national"])
    frame = frame.assign(PSD_gini=frame["PSD"] / frame["PSD"].max())
    table, fits = _quiet(alternative_measures_table, frame, weights, eigs, CONTROLS, bayes=False)
    fitted = "(7)-(8) ER=ER, PSD=PSD_gini"
    assert list(fits) == [fitted]
    assert list(table.columns) == ["term", "(1)-(2) ER=ER_GDP, PSD=PSD",
                                   "(3)-(4) ER=ER_GDP, PSS=PSS",
                                   "(5)-(6) ER=ER, PSS=PSS_output",
                                   f"{fitted} GS3SLS: ER", f"{fitted} GS3SLS: PSD",
                                   "(9)-(10) ER=ER_national, PSD=PSD",
                                   "(11)-(12) ER=ER_national, PSS=PSS"]
    rows = table.set_index("term")
    assert rows.loc["Missing input"].tolist() == ["ER_GDP", "ER_GDP", "PSS_output", "", "",
                                                  "ER_national", "ER_national"]
    assert _coefficient_rows(table) == ["W(ER)", "W(PSD)", "PSD", "ER", "Constant", "Controls",
                                        "Missing input", "Observations", "R²"]
    # the alternative column is fitted under the original name: same numbers as a direct fit
    from models.frequentist import estimate
    from models.spec.system import build_system
    from models.study.headline import system_formulas

    direct = estimate(build_system(system_formulas("PSD", CONTROLS),
                                   frame.assign(PSD=frame["PSD_gini"]), weights), "gs3sls")
    got = fits[fitted].frequentist["GS3SLS"].params
    pd.testing.assert_series_equal(got, direct.params)


def test_alternative_measures_table_gains_the_national_benchmark_columns(demo):
    from models.frequentist import estimate
    from models.spec.system import build_system
    from models.study.headline import system_formulas
    from models.study.tables.robustness import NATIONAL_BENCHMARK_NOTE, alternative_measures_table

    frame, _, weights, eigs = demo
    assert frame["ER_national"].notna().all()  # the demo dataset stores it
    keep = ["city", "ER", "PSS", "PSD", "ER_national", *CONTROLS]
    table, fits = _quiet(alternative_measures_table, frame[keep], weights, eigs, CONTROLS,
                         bayes=False)
    labels = ["(9)-(10) ER=ER_national, PSD=PSD", "(11)-(12) ER=ER_national, PSS=PSS"]
    assert list(fits) == labels
    assert [c for c in table.columns if c.startswith("(9)")] == [
        f"{labels[0]} GS3SLS: ER", f"{labels[0]} GS3SLS: PSD"]
    direct = estimate(build_system(system_formulas("PSS", CONTROLS),
                                   frame.assign(ER=frame["ER_national"]), weights), "gs3sls")
    pd.testing.assert_series_equal(fits[labels[1]].frequentist["GS3SLS"].params, direct.params)
    assert "nets out the shift-share structural channel" in NATIONAL_BENCHMARK_NOTE


def test_subsample_drops_capitals_and_restricts_weights(demo):
    from data_prep.weights import restrict_weights
    from models.study.tables.robustness import subsample_fits

    frame, _, weights, _ = demo
    fits = _quiet(subsample_fits, frame, weights, CONTROLS, agglomeration=("PSS",), bayes=False)
    fit = fits["PSS, without capitals"]
    kept = frame.loc[frame["capital"] != 1, "city"].tolist()
    restricted, dropped = restrict_weights(weights, kept, island_policy="drop")
    # on the demo map one island city (linked to its nearest city, a capital) loses its only
    # neighbour: policy "drop" removes it and the note names it
    assert len(dropped) >= 1 and all(c in fit.notes[0] for c in dropped)
    assert fit.nobs == len(kept) - len(dropped) == restricted.n < len(frame)
    assert fit.notes[0].startswith(f"subsample: {len(frame) - len(kept)} cities with capital = 1")
    # W restricted then row-standardised: a direct dense computation on the remaining rows
    idx = [weights.cities.index(c) for c in restricted.cities]
    dense = weights.matrix.toarray()[np.ix_(idx, idx)]
    dense = dense / dense.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(restricted.matrix.toarray(), dense)
    with pytest.raises(InputError, match="leaves cities without neighbours"):
        subsample_fits(frame, weights, CONTROLS, island_policy="refuse", bayes=False)


def test_restrict_weights_island_policies():
    from data_prep.synthetic.simulate import lattice_weights
    from data_prep.weights import restrict_weights

    w = lattice_weights(3)           # c00004 is the centre; corners have two neighbours
    corner_neighbours = ["c00001", "c00003"]
    keep = [c for c in w.cities if c not in corner_neighbours]
    with pytest.raises(InputError, match="leaves cities without neighbours: c00000"):
        restrict_weights(w, keep, island_policy="refuse")
    dropped_w, dropped = restrict_weights(w, keep, island_policy="drop")
    assert dropped == ("c00000",) and "c00000" not in dropped_w.cities
    assert np.allclose(dropped_w.matrix.sum(axis=1), 1.0)
    kept_w, dropped = restrict_weights(w, keep, island_policy="keep")
    assert dropped == () and kept_w.islands == ("c00000",)
    assert kept_w.matrix[0].nnz == 0


def test_stacked_panel_is_block_diagonal(demo):
    from models.study.tables.robustness import stacked_panel

    _, panel, weights, _ = demo
    frame, W, T = stacked_panel(panel, weights)
    n = weights.n
    assert T == panel["year"].nunique() and W.shape == (n * T, n * T)
    assert frame["city"].iloc[0] == f"{weights.cities[0]}|{panel['year'].min()}"
    # block t is W itself, off-diagonal blocks are zero; rows follow (year, weights' city order)
    assert abs(W[n:2 * n, n:2 * n] - weights.matrix).max() == 0
    assert W[:n, n:].nnz == 0
    first = frame.iloc[n:2 * n]
    assert (first["city"].str.split("|").str[0] == list(weights.cities)).all()
    with pytest.raises(InputError, match="unbalanced panel"):
        stacked_panel(panel.iloc[1:], weights)


def test_stacked_fit_clusters_by_city_with_the_sandwich(demo):
    from models.frequentist import estimate
    from models.spec.system import build_system
    from models.study.tables.robustness import CLUSTER_COLUMN, fixed_effects_fits, stacked_panel

    _, panel, weights, eigs = demo
    panel = panel[panel["year"] <= panel["year"].min() + 2]  # three years keep it quick
    fits = _quiet(fixed_effects_fits, panel, weights, eigs, CONTROLS, agglomeration=("PSS",),
                  bayes=False)
    iid = _quiet(fixed_effects_fits, panel, weights, eigs, CONTROLS, agglomeration=("PSS",),
                 bayes=False, clustered=False)
    got = fits["PSS, year x region effects"]
    clustered, plain = got.frequentist["GS3SLS"], iid["PSS, year x region effects"].frequentist[
        "GS3SLS"]
    pd.testing.assert_series_equal(clustered.params, plain.params)
    assert not np.allclose(clustered.std_errors, plain.std_errors)
    # a direct sandwich: clusters = the city of each stacked row, G/(G - 1) small-sample factor
    frame, W, T = stacked_panel(panel, weights)
    frame["year_region"] = frame["year"].astype(str) + "x" + frame["region"].astype(str)
    system = build_system(got.formulas, frame, W)
    direct = estimate(system, "gs3sls", cov_type="clustered",
                      clusters=frame[CLUSTER_COLUMN].to_numpy())
    np.testing.assert_allclose(clustered.std_errors, direct.std_errors, rtol=1e-10)
    assert clustered.n_clusters == weights.n and T == 3
    assert "clustered by city" in got.notes[0] and "iid across years" in got.notes[0]


def test_sample_effects_and_instruments_tables(demo):
    from models.study.tables.robustness import instruments_table, sample_and_effects_table

    frame, panel, weights, eigs = demo
    table, fits = _quiet(sample_and_effects_table, frame, panel, weights, eigs, CONTROLS,
                         bayes=False)
    assert len(table.columns) == 1 + 8
    rows = table.set_index("term")
    effects = rows.loc["Year x region effects"]
    assert effects.tolist() == ["No"] * 4 + ["Yes"] * 4
    n, T = len(frame), panel["year"].nunique()
    assert rows.loc["Observations"].tolist()[4:] == [str(n * T)] * 4
    # no dummy coefficient rows: only structural terms, the constant and indicator rows
    assert not any(t.startswith("C(") for t in table["term"])
    # the stacked fits' GS3SLS errors are clustered by city, the subsample's are not
    stacked = fits["PSD, year x region effects"].frequentist["GS3SLS"]
    assert stacked.cov_type == "clustered" and stacked.n_clusters == n
    assert fits["PSD, without capitals"].frequentist["GS3SLS"].cov_type == "unadjusted"
    # without the region attribute the fixed-effect columns say what is missing
    table, fits = _quiet(sample_and_effects_table, frame, panel.drop(columns="region"),
                         weights, eigs, CONTROLS, agglomeration=("PSS",), bayes=False)
    assert table.set_index("term").loc["Missing input"].iloc[-1] == "region"
    assert list(fits) == ["PSS, without capitals"]

    table, fits = _quiet(instruments_table, frame, weights, eigs, CONTROLS, bayes=False,
                         instrument_sets={"rail": ["rail_1930s"], "none": ["no_such_column"]},
                         agglomeration=("PSS",))
    assert list(fits) == ["PSS, IV rail"]
    assert table.columns[-1] == "PSS, IV none"
    assert table.set_index("term").loc["Missing input", "PSS, IV none"] == "no_such_column"
    hnames = fits["PSS, IV rail"].frequentist["GS3SLS"].first_stage
    assert not hnames.empty


@pytest.mark.slow
def test_regime_table_on_demo_with_quick_posterior(demo):
    from models.study.tables.regimes import regime_table

    frame, _, weights, eigs = demo
    table, fit = _quiet(regime_table, frame, weights, eigs, "PSD", CONTROLS,
                        exclude={"PSD_H": ["Fdi"], "PSD_L": ["Gov"]}, **QUICK)
    deps = ["ER", "PSD_H", "PSD_L"]
    expected = [f"{m}: {d}" for m in ("GS3SLS", "3SLS", "Bayes") for d in deps]
    got = [c for c in table.columns[1:] if c != "3SLS"]
    assert got == [c for c in expected if c in got]
    assert {f"GS3SLS: {d}" for d in deps} <= set(got) and {f"Bayes: {d}" for d in deps} <= set(got)
    terms = _coefficient_rows(table)
    assert terms[:5] == ["W(ER)", "W(PSD_H)", "W(PSD_L)", "PSD_H", "PSD_L"]
    assert "Controls" in terms and "Fdi" not in terms
    # exclusions reach the formulas; the posterior covers the same (equation, term) pairs
    assert "Fdi" not in fit.formulas[1] and "Gov" not in fit.formulas[2]
    freq = fit.frequentist["GS3SLS"].to_frame()
    assert sorted(zip(freq.equation, freq.term)) == sorted(zip(fit.summary.equation,
                                                               fit.summary.term))
    assert fit.convergence and fit.convergence[0].startswith("Convergence checks")
    # G = 3 impacts and leave-one-city-out densities are attached by default
    assert "impact" in fit.idata.posterior and "log_likelihood" in fit.idata.groups()
    with pytest.raises(InputError, match="no column PSS_H, PSS_L .*add_regimes"):
        regime_table(frame.drop(columns=["PSS_H", "PSS_L"]), weights, eigs, "PSS", CONTROLS,
                     bayes=False)
    with pytest.raises(InputError, match="exclude names"):
        regime_table(frame, weights, eigs, "PSS", CONTROLS, exclude={"PSD": ["Gov"]},
                     bayes=False)


@pytest.mark.slow
def test_every_table_with_quick_posteriors(demo):
    from models.study.tables.regimes import regime_table
    from models.study.tables.robustness import (alternative_measures_table, instruments_table,
                                          sample_and_effects_table)

    frame, panel, weights, eigs = demo
    frame = frame.assign(ER_GDP=frame["ER"] + 0.1, PSS_output=frame["PSS"] ** 0.5,
                         PSD_gini=frame["PSD"] / 3)
    for table, fits in (
            _quiet(alternative_measures_table, frame, weights, eigs, CONTROLS, **QUICK),
            _quiet(sample_and_effects_table, frame, panel, weights, eigs, CONTROLS, **QUICK),
            _quiet(instruments_table, frame, weights, eigs, CONTROLS, **QUICK)):
        for label, fit in fits.items():
            assert fit.summary is not None and f"{label} Bayes: ER" in table.columns
    _, fits = _quiet(instruments_table, frame, weights, eigs, CONTROLS, **QUICK,
                     agglomeration=("PSS",), instrument_sets={"rail": ["rail_1930s"]})
    summary = fits["PSS, IV rail"].summary
    assert ("PSS", "rail_1930s") in set(zip(summary.equation, summary.term))
    assert ("ER", "rail_1930s") not in set(zip(summary.equation, summary.term))
    table, _ = _quiet(regime_table, frame, weights, eigs, "PSS", CONTROLS, **QUICK)
    assert "Bayes: PSS_H" in table.columns
