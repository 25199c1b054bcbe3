"""LOO model comparison: the tidy table against arviz.compare, the verdict, refusals, and the
log_likelihood group of a non-spatial system (no W) against the dense normal density."""

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.stats import multivariate_normal

from data_prep.errors import InputError
from data_prep.synthetic.simulate import default_truth, lattice_weights, simulate_system
from models.bayes.model_comparison import COLUMNS, compare_models, comparison_plot, verdict
from models.bayes.postprocess import add_effects_and_loo, outcome_fingerprint
from models.spec.system import build_system
from tests.references import fake_loo_fit


def test_table_matches_arviz_compare():
    models = {"a": fake_loo_fit(0.0, seed=1), "b": fake_loo_fit(0.05, seed=1), "c": fake_loo_fit(0.4, seed=2)}
    res = compare_models(models)
    ref = az.compare(models, ic="loo", method="stacking", scale="log")
    assert list(res.table.columns) == COLUMNS
    assert list(res.table["model"]) == list(ref.index)
    for col in ("elpd_loo", "se", "p_loo", "elpd_diff", "dse", "weight"):
        np.testing.assert_allclose(res.table[col].to_numpy(float), ref[col].to_numpy(float))
    assert res.table["warning"].dtype == bool


def test_verdict_reads_the_two_dse_rule():
    table = pd.DataFrame({"model": ["spatial", "plain", "other"], "elpd_loo": [-10.0, -20.0, -11.0],
                          "se": [2.0, 2.0, 2.0], "p_loo": [3.0, 2.0, 2.0],
                          "elpd_diff": [0.0, 10.0, 1.0], "dse": [0.0, 3.0, 1.5],
                          "weight": [0.9, 0.0, 0.1], "warning": [False, True, False]})
    text = verdict(table)
    assert text.startswith("spatial has the highest elpd_loo")
    assert "plain is 10.0 lower (dse 3.0): more than 2 dse, a clear preference for spatial" in text
    assert "other is 1.0 lower (dse 1.5): within 2 dse" in text
    assert "Pareto k above the reliability threshold for some cities in plain" in text


def test_refuses_different_data_and_missing_groups(tmp_path):
    good = fake_loo_fit(0.0)
    with pytest.raises(InputError, match="n = 30 and 25 cities"):
        compare_models({"a": good, "b": fake_loo_fit(0.0, n=25)})
    with pytest.raises(InputError, match="different cities .* position 0: c0 vs z0"):
        compare_models({"a": good, "b": fake_loo_fit(0.0, cities=[f"z{i}" for i in range(30)])})
    with pytest.raises(InputError, match="different outcomes \\(ER, PSS vs ER, PSD\\)"):
        compare_models({"a": good, "b": fake_loo_fit(0.0, deps=("ER", "PSD"))})
    no_ll = az.InferenceData(posterior=good.posterior)
    with pytest.raises(InputError, match="model b: no log_likelihood group"):
        compare_models({"a": good, "b": no_ll})
    with pytest.raises(InputError, match="at least two models"):
        compare_models({"a": good})
    other = fake_loo_fit(0.0)
    good.log_likelihood.attrs["outcome_sha256"] = outcome_fingerprint(np.ones((30, 2)))
    other.log_likelihood.attrs["outcome_sha256"] = outcome_fingerprint(np.zeros((30, 2)))
    with pytest.raises(InputError, match="different values of the outcomes"):
        compare_models({"a": good, "b": other})
    other.log_likelihood.attrs["outcome_sha256"] = outcome_fingerprint(np.ones((30, 2)))
    assert len(compare_models({"a": good, "b": other}).table) == 2
    renamed = az.InferenceData(posterior=good.posterior,
                               log_likelihood=good.log_likelihood.rename({"y": "ER"}))
    with pytest.raises(InputError, match="different outcomes \\(log-likelihood variables"):
        compare_models({"a": good, "b": renamed})


def test_plot_is_written(tmp_path):
    res = compare_models({"a": fake_loo_fit(0.0, seed=1), "b": fake_loo_fit(0.3, seed=3)})
    path = comparison_plot(res, tmp_path / "compare.png")
    assert path.exists() and path.stat().st_size > 1000


def test_non_spatial_system_gets_exact_log_likelihood():
    # No W terms and no weights: cities are independent, so the leave-one-city-out density is
    # the city's joint normal density of its G values under the reduced form.
    truth = default_truth()
    sim = simulate_system(lattice_weights(4), truth, seed=2)
    formulas = ["ER ~ PSS + x1 + x2 + z1", "PSS ~ ER + x1 + x2 + z2"]
    system = build_system(formulas, sim.data, weights=None, check=False)
    assert system.W is None
    terms = ["PSS", "ER", "Intercept", "x1", "x2", "z1", "z2"]
    rng = np.random.default_rng(0)
    coef = np.full((2, 3, 2, len(terms)), np.nan)
    for g, dep in enumerate(("ER", "PSS")):
        for t, v in truth.coefficients[dep].items():
            if not t.startswith("W("):
                coef[:, :, g, terms.index(t)] = v + 0.05 * rng.normal(size=(2, 3))
    Sigma = np.broadcast_to(truth.Sigma, (2, 3, 2, 2)).copy()
    idata = az.InferenceData(posterior=xr.Dataset(
        {"coef": (("chain", "draw", "equation", "term"), coef),
         "Sigma": (("chain", "draw", "equation", "equation2"), Sigma)},
        coords={"chain": [0, 1], "draw": [0, 1, 2], "equation": ["ER", "PSS"],
                "equation2": ["ER", "PSS"], "term": terms}))
    notes = add_effects_and_loo(idata, system, None)
    assert notes == [] and "impact" not in idata.posterior
    assert idata.log_likelihood.attrs["outcomes"] == "ER,PSS"
    assert idata.log_likelihood.attrs["outcome_sha256"] == outcome_fingerprint(system.Y)
    ll = idata.log_likelihood["y"]
    assert ll.shape == (2, 3, 16)
    Y = sim.data[["ER", "PSS"]].to_numpy()
    X = {"ER": ["Intercept", "x1", "x2", "z1"], "PSS": ["Intercept", "x1", "x2", "z2"]}
    data = sim.data.assign(Intercept=1.0)
    for c in range(2):
        for d in range(3):
            b = coef[c, d]
            B0 = np.array([[0.0, b[0, terms.index("PSS")]], [b[1, terms.index("ER")], 0.0]])
            xb = np.column_stack([data[X[dep]].to_numpy() @ b[g, [terms.index(t) for t in X[dep]]]
                                  for g, dep in enumerate(("ER", "PSS"))])
            Ai = np.linalg.inv(np.eye(2) - B0)
            ref = multivariate_normal(np.zeros(2), Ai @ truth.Sigma @ Ai.T).logpdf(Y - xb @ Ai.T)
            np.testing.assert_allclose(ll.values[c, d], ref, rtol=1e-10)


def test_study_loo_stage_ranks_the_headline_against_its_variants(tmp_path):
    """The study's LOO stage (a full run's; quick mode skips it): the headline against its
    non-spatial version and the paper's controls, a table, a verdict and a figure."""
    from types import SimpleNamespace

    from models.study.config import load_config
    from models.study.run import Study, _loo_comparisons

    study = Study(load_config(None), tmp_path, progress=False)
    study.controls = list(study.cfg.controls)
    study.fits["headline"] = SimpleNamespace(idata=fake_loo_fit(0.0, seed=1))
    asked = []

    def fit(formulas, **options):
        asked.append((tuple(formulas), options))
        return SimpleNamespace(idata=fake_loo_fit(0.5 + 0.5 * len(asked), seed=1 + len(asked)))

    _loo_comparisons(study, fit)
    assert len(asked) == 2 and all(o == {"frequentist": False} for _, o in asked)
    assert not any("W(" in f for f in asked[0][0])            # the non-spatial version
    table = pd.read_csv(tmp_path / "tables" / "loo_headline.csv")
    assert table["model"].iloc[0] == "spatial (headline)"
    assert set(table["model"]) == {"spatial (headline)", "non-spatial", "paper controls"}
    assert (tmp_path / "figures" / "loo_headline.png").is_file()
    assert any(v.startswith("LOO (headline): ") for v in study.report.verdicts)
