"""The pieces of the recovery / SBC study checked against hand computations and PyMC's own prior.

* recovery_table and coverage_check against literal formulas on a small hand-made frame;
* thinned_ranks and rank_uniformity against a hand count and the chi-square formula;
* prior_truth against draws of the model's own prior (pm.draw of ``coef`` and ``Sigma`` of
  ``build_system_model(..., standardise=False)``), two-sample KS tests at level 0.001, and the
  admissibility of every structural draw;
* run_replication: same seed, same numbers; another replication, other numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from data_prep.errors import InputError
from data_prep.synthetic.simulate import SystemTruth, default_truth, simulate_system, structural_parts
from data_prep.spectrum.exact import eigenvalues
from models.bayes.jacobian import log_jacobian_numpy
from models.simulation.recovery import (StudyDesign, coverage_check, lattice_map, recovery_table,
                             replication_seeds, run_replication)
from models.simulation.sbc import prior_truth, rank_bins, rank_uniformity, thinned_ranks


def _frame() -> pd.DataFrame:
    rows = []
    for r, (e1, e2, c1, c2) in enumerate([(1.2, 0.1, True, True), (0.9, -0.3, False, True),
                                          (1.0, 0.2, True, False), (np.nan, 0.0, False, True)]):
        rows.append((r, "m", "y", "a", 1.0, e1, e1 - 1, e1 + 1, c1))
        rows.append((r, "m", "y", "b", 0.0, e2, e2 - 1, e2 + 1, c2))
    return pd.DataFrame(rows, columns=["replication", "method", "equation", "term", "truth",
                                       "estimate", "lower", "upper", "covered"])


def test_recovery_table_matches_hand_formulas():
    full = recovery_table(_frame(), ["m"])
    assert list(full.columns) == ["method", "equation", "term", "truth", "mean_estimate", "bias",
                                  "rmse", "coverage90", "replications"]
    table = full.set_index("term")
    a = np.array([1.2, 0.9, 1.0]) - 1.0          # the NaN estimate is left out
    assert table.loc["a", "bias"] == pytest.approx(a.mean())
    assert table.loc["a", "rmse"] == pytest.approx(math.sqrt(np.mean(a ** 2)))
    assert table.loc["a", "coverage90"] == pytest.approx(2 / 3)
    assert table.loc["a", "replications"] == 3
    b = np.array([0.1, -0.3, 0.2, 0.0])
    assert table.loc["b", "mean_estimate"] == pytest.approx(b.mean())
    assert table.loc["b", "coverage90"] == pytest.approx(0.75)


def test_coverage_check_standard_error():
    check = coverage_check(_frame(), "m")
    per = np.array([1.0, 0.5, 0.5, 1.0])         # replication 3: only b has an estimate
    assert check.coverage == pytest.approx(5 / 7)
    sd = max(per.std(ddof=1), math.sqrt(0.09 / 2))
    assert check.se == pytest.approx(sd / 2)
    assert check.consistent == (abs(5 / 7 - 0.9) <= 3.29 * sd / 2)


def test_thinned_ranks_and_chi_square_by_hand():
    truth = SystemTruth({"y": {"a": 0.5}}, np.eye(1))
    draws = {("y", "a"): np.linspace(0.0, 1.0, 40)}   # stride 4 → 0, 4/39, …, 36/39
    ranks = thinned_ranks(3, truth, draws, 10)
    kept = np.linspace(0.0, 1.0, 40)[::4][:10]
    assert ranks.loc[0, "rank"] == int(np.sum(kept < 0.5)) == 5
    assert ranks.loc[0, "draws"] == 10 and ranks.loc[0, "replication"] == 3

    assert rank_bins(99, 200) == 20 and rank_bins(99, 40) == 5
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"equation": "y", "term": "a", "truth": 0.0, "draws": 99,
                          "replication": range(200), "rank": rng.integers(0, 100, 200)})
    out = rank_uniformity(frame).iloc[0]
    counts = np.bincount(frame["rank"] // 5, minlength=20)
    chi2 = np.sum((counts - 10.0) ** 2 / 10.0)
    assert out["chi2"] == pytest.approx(chi2)
    assert out["p_value"] == pytest.approx(stats.chi2.sf(chi2, 19))
    assert out["p_value"] > 0.001
    skewed = frame.assign(rank=np.minimum(99, rng.integers(0, 100, 200) + 30))
    assert rank_uniformity(skewed).iloc[0]["p_value"] < 1e-6


def test_lattice_map_any_size():
    w = lattice_map(241)
    assert w.n == 241 and not w.islands and w.n_components == 1
    np.testing.assert_allclose(np.asarray(w.matrix.sum(axis=1)).ravel(), 1.0)
    assert (w.matrix != 0).toarray().T.tolist() == (w.matrix != 0).toarray().tolist()
    with pytest.raises(InputError, match="at least 4"):
        lattice_map(3)


def test_prior_truth_matches_the_models_prior():
    import pymc as pm

    from models.bayes.system import build_system_model
    from models.spec.system import build_system, parse_system

    w = lattice_map(25)
    lam = eigenvalues(w)
    template = default_truth()
    rng = np.random.default_rng(1)
    truths = [prior_truth(template, lam, None, rng) for _ in range(1500)]
    for t in truths:
        B0, B1, _ = structural_parts(t)
        assert np.isfinite(log_jacobian_numpy(B0, B1, lam))
    assert prior_truth(template, lam, None, np.random.default_rng(5)).coefficients == \
        prior_truth(template, lam, None, np.random.default_rng(5)).coefficients

    sim = simulate_system(w, template, seed=0)
    system = build_system(parse_system(sim.formulas), sim.data, weights=sim.W, check=False)
    model = build_system_model(system, lam, standardise=False)
    coef, Sigma = pm.draw([model["coef"], model["Sigma"]], draws=1500, random_seed=2)
    terms, deps = list(model.coords["term"]), list(model.coords["equation"])
    # exogenous terms are not restricted: same distribution as the model's coef
    for eq, term in [("ER", "Intercept"), ("ER", "x1"), ("PSS", "z2")]:
        mine = [t.coefficients[eq][term] for t in truths]
        theirs = coef[:, deps.index(eq), terms.index(term)]
        assert stats.ks_2samp(mine, theirs).pvalue > 0.001, (eq, term)
    for i, j in [(0, 0), (1, 1), (0, 1)]:
        mine = [t.Sigma[i, j] for t in truths]
        assert stats.ks_2samp(mine, Sigma[:, i, j]).pvalue > 0.001, (i, j)
    # structural terms: the model's prior restricted to the admissible region by rejection
    raw = coef[:, deps.index("ER"), terms.index("W(ER)")]
    admissible = []
    for k in range(coef.shape[0]):
        t = SystemTruth({d: {tm: float(coef[k, g, terms.index(tm)])
                             for tm in template.coefficients[d]} for g, d in enumerate(deps)},
                        np.eye(2))
        B0, B1, _ = structural_parts(t)
        admissible.append(np.isfinite(log_jacobian_numpy(B0, B1, lam)))
    mine = [t.coefficients["ER"]["W(ER)"] for t in truths]
    assert stats.ks_2samp(mine, raw[np.array(admissible)]).pvalue > 0.001


def test_replication_is_a_function_of_seed_and_index():
    w = lattice_map(36)
    design = StudyDesign(w, eigenvalues(w), default_truth(), methods=("gs3sls",))
    seeds = replication_seeds(4, 3)
    a = run_replication(design, 1, seeds[1]).estimates
    b = run_replication(design, 1, replication_seeds(4, 3)[1]).estimates
    c = run_replication(design, 2, seeds[2]).estimates
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert not np.allclose(a["estimate"], c["estimate"])
    sbc = StudyDesign(w, eigenvalues(w), default_truth(), methods=("gs3sls", "bayes"), sbc=True)
    assert sbc.sbc
    with pytest.raises(InputError, match="needs the method bayes"):
        StudyDesign(w, eigenvalues(w), default_truth(), methods=("gs3sls",), sbc=True)
    with pytest.raises(InputError, match="unknown method"):
        StudyDesign(w, eigenvalues(w), default_truth(), methods=("ols",))


def test_sbc_verdict_and_figure_name_the_miscalibrated_term():
    import matplotlib.pyplot as plt

    from models.simulation.sbc import rank_histogram_figure, uniformity_verdict

    rng = np.random.default_rng(3)
    good = pd.DataFrame({"equation": "y", "term": "a", "truth": 0.0, "draws": 99,
                         "replication": range(200), "rank": rng.integers(0, 100, 200)})
    bad = good.assign(term="b", rank=np.clip(rng.normal(50, 8, 200), 0, 99).astype(int))
    table = rank_uniformity(pd.concat([good, bad], ignore_index=True))
    text = uniformity_verdict(table)
    assert text.startswith("SBC ranks are NOT uniform for y: b ")
    assert "y: a" not in text.split("(")[0]
    assert uniformity_verdict(rank_uniformity(good)).startswith("SBC ranks are consistent")
    fig = rank_histogram_figure(pd.concat([good, bad], ignore_index=True))
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    plt.close(fig)
