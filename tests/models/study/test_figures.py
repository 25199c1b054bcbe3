"""Comparison forest plots: the standardisation against a hand computation, the panels drawn,
and the GS3SLS effects against the plug-in impact formula."""

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import xarray as xr

from data_prep.errors import InputError
from data_prep.synthetic.simulate import default_truth, lattice_weights, simulate_system
from data_prep.spectrum.exact import eigenvalues
from models.study import figures
from models.bayes.effects import coefficient_matrices, impacts
from models.bayes.postprocess import add_effects_and_loo
from models.frequentist import estimate
from models.spec.system import build_system


def ring(n: int) -> sp.csr_matrix:
    C = sp.lil_matrix((n, n))
    for i in range(n):
        C[i, (i + 1) % n] = C[(i + 1) % n, i] = 1.0
    return sp.csr_matrix(C.multiply(1.0 / C.sum(axis=1)))


def test_scales_match_a_hand_computation():
    data = pd.DataFrame({"y": [1.0, 2.0, 4.0, 7.0], "x": [2.0, 0.0, 1.0, 5.0]})
    W = ring(4)  # each city's lag is the mean of its two ring neighbours
    scales = figures.coefficient_scales(data, [("y", "x"), ("y", "W(x)"), ("y", "Intercept")], W)
    # hand: sd(y) = sd(1,2,4,7) = sqrt(7); sd(x) = sd(2,0,1,5) = sqrt(14/3);
    # W x = ((5+0)/2, (2+1)/2, (0+5)/2, (1+2)/2) = (2.5, 1.5, 2.5, 1.5), sd = sqrt(1/3)
    sd_y = np.sqrt(((np.array([1, 2, 4, 7]) - 3.5) ** 2).sum() / 3)
    assert sd_y == pytest.approx(np.sqrt(7.0))
    assert scales[("y", "x")] == pytest.approx(np.sqrt(14 / 3) / np.sqrt(7.0))
    assert scales[("y", "W(x)")] == pytest.approx(np.sqrt(1 / 3) / np.sqrt(7.0))
    assert np.isnan(scales[("y", "Intercept")])
    frame = pd.DataFrame({"equation": ["y", "y"], "term": ["x", "Intercept"],
                          "source": ["GS3SLS", "GS3SLS"], "value": [0.3, 20.0],
                          "low": [-0.1, 18.0], "high": [0.7, 22.0]})
    out = figures.standardise(frame, scales)
    k = np.sqrt(14 / 3) / np.sqrt(7.0)
    np.testing.assert_allclose(out[["value", "low", "high"]].iloc[0], [0.3 * k, -0.1 * k, 0.7 * k])
    np.testing.assert_allclose(out[["value", "low", "high"]].iloc[1], [20.0, 18.0, 22.0])
    assert list(out["standardised"]) == [True, False]
    with pytest.raises(InputError, match="weights are needed"):
        figures.coefficient_scales(data, [("y", "W(x)")])
    with pytest.raises(InputError, match="no column 'q'"):
        figures.coefficient_scales(data, [("y", "q")])


@pytest.fixture(scope="module")
def fitted():
    """Simulated system, its GS3SLS fit and a fake posterior around the truth with impacts."""
    truth = default_truth()
    w = lattice_weights(6)
    sim = simulate_system(w, truth, seed=4)
    system = build_system(sim.formulas, sim.data, weights=w, check=False)
    res = estimate(system, "gs3sls")
    deps = list(system.spec.dependents)
    terms: list[str] = []
    for eq in system.spec.equations:
        terms += [t for t in eq.terms if t not in terms]
    rng = np.random.default_rng(0)
    coef = np.full((2, 100, 2, len(terms)), np.nan)
    for g, d in enumerate(deps):
        for t, v in truth.coefficients[d].items():
            coef[:, :, g, terms.index(t)] = v + 0.03 * rng.normal(size=(2, 100))
    idata = az.InferenceData(posterior=xr.Dataset(
        {"coef": (("chain", "draw", "equation", "term"), coef),
         "Sigma": (("chain", "draw", "equation", "equation2"),
                   np.broadcast_to(truth.Sigma, (2, 100, 2, 2)).copy())},
        coords={"chain": [0, 1], "draw": np.arange(100), "equation": deps, "equation2": deps,
                "term": terms}))
    eigs = eigenvalues(w)
    add_effects_and_loo(idata, system, eigs, loo=False)
    truth_frame = pd.DataFrame([(d, t, v) for d in deps for t, v in truth.coefficients[d].items()],
                               columns=["equation", "term", "truth"])
    return dict(sim=sim, w=w, res=res, idata=idata, eigs=eigs, truth=truth_frame, coef=coef,
                terms=terms, deps=deps)


def test_comparison_standardises_all_sources_alike(fitted):
    comp = figures.coefficient_comparison(fitted["idata"], fitted["res"].to_frame(),
                                          fitted["truth"])
    pairs = comp[["equation", "term"]].drop_duplicates().itertuples(index=False)
    scales = figures.coefficient_scales(fitted["sim"].data, list(pairs), fitted["w"])
    out = figures.standardise(comp, scales).set_index(["equation", "term", "source"])
    data = fitted["sim"].data
    Wy = fitted["w"].matrix @ data["PSS"].to_numpy()
    k = np.std(Wy, ddof=1) / np.std(data["ER"], ddof=1)   # the W(PSS) term of the ER equation
    g, j = fitted["deps"].index("ER"), fitted["terms"].index("W(PSS)")
    post = out.loc[("ER", "W(PSS)", "posterior")]
    assert post["value"] == pytest.approx(fitted["coef"][:, :, g, j].mean() * k)
    est = fitted["res"].to_frame().set_index(["equation", "term"]).loc[("ER", "W(PSS)")]
    gs = out.loc[("ER", "W(PSS)", "GS3SLS")]
    assert gs["value"] == pytest.approx(est["estimate"] * k)
    assert gs["high"] - gs["low"] == pytest.approx(2 * 1.959964 * est["std_error"] * k, rel=1e-5)
    assert out.loc[("ER", "W(PSS)", "truth"), "value"] == pytest.approx(0.20 * k)
    assert out.loc[("ER", "Intercept", "truth"), "value"] == pytest.approx(1.0)  # data units


def _panels(fig) -> int:
    return sum(1 for ax in fig.axes if ax.get_title())


def test_coefficient_and_effect_forests(fitted, tmp_path):
    fig = figures.coefficient_forest_figure(fitted["idata"], fitted["sim"].data,
                                            frequentist=fitted["res"].to_frame(),
                                            truth=fitted["truth"], weights=fitted["w"])
    assert _panels(fig) == 3  # two equations + the intercepts
    # every slope panel is on the standardised scale: no point beyond a few sds
    assert max(abs(x) for ax in fig.axes[:2] for x in ax.get_xlim()) < 5
    plt.close(fig)
    effects = figures.frequentist_effects(fitted["res"], fitted["eigs"], draws=200, seed=1)
    fig = figures.effect_forest_figure(fitted["idata"], fitted["sim"].data, frequentist=effects)
    assert _panels(fig) == 6  # 2 responses × direct / indirect / total
    plt.close(fig)
    paths = figures.comparison_figures(fitted["idata"], fitted["sim"].data, tmp_path,
                                       frequentist=fitted["res"].to_frame(),
                                       frequentist_effects=effects, truth=fitted["truth"],
                                       weights=fitted["w"], prefix="pss_")
    assert [p.name for p in paths] == ["pss_coefficients_forest.png", "pss_effects_forest.png"]
    assert all(p.exists() and p.stat().st_size > 5000 for p in paths)


def test_frequentist_effects_point_is_the_plug_in_impact(fitted):
    res = fitted["res"]
    effects = figures.frequentist_effects(res, fitted["eigs"], draws=300, seed=2)
    coef = xr.DataArray(np.full((1, 2, len(fitted["terms"])), np.nan),
                        dims=("sample", "equation", "term"),
                        coords={"equation": fitted["deps"], "term": fitted["terms"]})
    for (e, t), v in res.params.items():
        coef.loc[dict(sample=0, equation=e, term=t)] = v
    B0, B1, betas, deps = coefficient_matrices(coef)
    ref = impacts(B0, B1, betas, fitted["eigs"], dependents=deps)["impact"].isel(sample=0)
    for row in effects.itertuples():
        at = dict(effect=row.effect, response=row.response, variable=row.variable)
        assert row.estimate == pytest.approx(float(ref.sel(at)), abs=1e-12)
        assert row.low <= row.high
    assert 0.0 <= effects.attrs["discarded"] < 0.5
    # same seed, same interval
    again = figures.frequentist_effects(res, fitted["eigs"], draws=300, seed=2)
    pd.testing.assert_frame_equal(effects, again)


def test_bad_inputs(fitted):
    no_coef = az.InferenceData(posterior=fitted["idata"].posterior[["Sigma"]])
    with pytest.raises(InputError, match="no variable 'coef'"):
        figures.coefficient_comparison(no_coef)
    with pytest.raises(InputError, match="no variable 'impact'"):
        figures.effect_comparison(no_coef)
    with pytest.raises(InputError, match="truth frame lacks column truth"):
        figures.coefficient_comparison(fitted["idata"], truth=pd.DataFrame(
            {"equation": ["ER"], "term": ["x1"], "value": [1.0]}))
    with pytest.raises(InputError, match="weights are 36 x 36 but the data have 5 rows"):
        figures.coefficient_scales(fitted["sim"].data.head(5).drop(columns="city"),
                                   [("ER", "W(PSS)")], fitted["w"].matrix)


def test_impact_table_sets_posterior_beside_gs3sls_with_one_convention_each(fitted):
    from models.study.headline import IMPACT_COLUMNS, gs3sls_impacts, impact_sentence, impact_table
    from models.study.system_fit import SystemFit

    fit = SystemFit(list(fitted["sim"].formulas), None, nobs=36)
    fit.idata = fitted["idata"]
    gs = gs3sls_impacts(fitted["res"], fitted["eigs"], seed=3, draws=200)
    table = impact_table(fit, gs, ["ER", "PSS"])
    assert list(table.columns) == IMPACT_COLUMNS
    # 2 responses × (4 exogenous variables + a shock to each of the 2 equations) × 3 effects
    assert len(table) == 36
    assert set(table.loc[table["kind"] == "shock", "variable"]) == {"ER", "PSS"}
    assert list(table["effect"][:3]) == ["direct", "indirect", "total"]
    row = table.set_index(["response", "variable", "effect"]).loc[("ER", "z1", "total")]
    draws = fitted["idata"].posterior["impact"].sel(response="ER", variable="z1", effect="total")
    assert row["mean"] == pytest.approx(float(draws.mean()))
    assert row["sd"] == pytest.approx(float(draws.std(ddof=1)))
    assert row["hdi_low"] < row["mean"] < row["hdi_high"] and row["hdi_excludes_0"] == "†"
    ref = figures.frequentist_effects(fitted["res"], fitted["eigs"], draws=200, seed=3)
    ref = ref.set_index(["response", "variable", "effect"])
    assert row["gs3sls"] == pytest.approx(ref.loc[("ER", "z1", "total"), "estimate"])
    assert row["ci_low"] == pytest.approx(ref.loc[("ER", "z1", "total"), "low"])
    # stars: *** exactly where the simulated 99 % interval excludes 0, none without a 90 % one
    wide = figures.frequentist_effects(fitted["res"], fitted["eigs"], draws=200, seed=3,
                                       level=0.99).set_index(["response", "variable", "effect"])
    keyed = table.set_index(["response", "variable", "effect"])
    outside = (wide["low"] > 0) | (wide["high"] < 0)
    assert ((keyed["gs3sls_stars"] == "***") == outside.reindex(keyed.index)).all()
    narrow = figures.frequentist_effects(fitted["res"], fitted["eigs"], draws=200, seed=3,
                                         level=0.90).set_index(["response", "variable", "effect"])
    inside = ((narrow["low"] <= 0) & (narrow["high"] >= 0)).reindex(keyed.index)
    assert (keyed.loc[inside, "gs3sls_stars"] == "").all()
    assert not keyed["hdi_excludes_0"].str.contains(r"\*").any()
    assert not keyed["gs3sls_stars"].str.contains("†").any()
    text = impact_sentence(table, "ER", "PSS")
    assert text.startswith("the total impact of a unit shock to the PSS equation on ER is ")
    assert "in the posterior (94 % HDI" in text and "by GS3SLS (simulated 95 % interval" in text
    only_er = impact_table(fit, None, ["ER"])
    assert set(only_er["variable"]) == {"ER", "x1", "x2", "z1", "z2"}
    assert only_er["gs3sls"].isna().all() and (only_er["gs3sls_stars"] == "").all()
    assert impact_sentence(only_er, "ER", "x1").endswith(
        "and none by GS3SLS (not estimable, or outside the admissible region)")
