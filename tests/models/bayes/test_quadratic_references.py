"""The Bayesian quadratic's reported quantities, without sampling: its deterministics at random
parameter values against numpy, and its posterior summaries on stored draws against arviz/numpy.

Fast by design (no NUTS): the shape probabilities, turning point, Lind–Mehlum indicators and the
contract-6 summary rows must each follow their definitions (docs/method.md §3), boundary cases
included (a curvature of exactly 0 is neither a U nor an inverted U).
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from models.bayes.quadratic import build_quadratic_model, quadratic_posterior
from models.spec.quadratic import build_quadratic

NAMES = ["coef", "turning_point", "slope_ends", "inverted_u", "u_shape", "inside_range",
         "lind_mehlum_inverted_u", "lind_mehlum_u"]


def _frame(n: int = 120, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    A = rng.uniform(0, 4, n)
    x1 = rng.normal(size=n)
    y = 1 + 2 * A - 0.5 * A ** 2 + 0.7 * x1 + 0.8 * rng.normal(size=n)
    return pd.DataFrame({"city": [f"c{i:04d}" for i in range(n)], "y": y, "A": A, "x1": x1})


@pytest.fixture(scope="module")
def built():
    data = build_quadratic(_frame(), "y ~ A + x1", "A")
    model = build_quadratic_model(data)
    outputs = model.replace_rvs_by_values([model[name] for name in NAMES])
    fn = model.compile_fn(outputs, inputs=model.value_vars, point_fn=True,
                          on_unused_input="ignore")
    return data, model, fn


def _expected(c1: float, c2: float, lo: float, hi: float) -> dict:
    tp = -c1 / (2 * c2) if c2 != 0 else np.copysign(np.inf, -c1)
    ends = np.array([c1 + 2 * c2 * lo, c1 + 2 * c2 * hi])
    return {"turning_point": tp, "slope_ends": ends,
            "inverted_u": float(c1 > 0 and c2 < 0), "u_shape": float(c1 < 0 and c2 > 0),
            "inside_range": float(lo <= tp <= hi),
            "lind_mehlum_inverted_u": float(ends[0] > 0 and ends[1] < 0),
            "lind_mehlum_u": float(ends[0] < 0 and ends[1] > 0)}


def test_deterministics_follow_their_definitions(built):
    data, model, fn = built
    terms = list(model.layout.terms)
    i1, i2 = terms.index("A"), terms.index("A^2")
    lo, hi = data.range
    rng = np.random.default_rng(0)
    start = model.initial_point()
    seen = set()
    for k in range(60):
        point = {name: v + rng.normal(0.0, 1.5, np.shape(v)) for name, v in start.items()}
        values = dict(zip(NAMES, fn(point)))
        c1, c2 = float(values["coef"][0, i1]), float(values["coef"][0, i2])
        expected = _expected(c1, c2, lo, hi)
        np.testing.assert_allclose(values["slope_ends"], expected["slope_ends"], rtol=1e-12)
        assert float(values["turning_point"]) == pytest.approx(expected["turning_point"],
                                                               rel=1e-12)
        for name in ("inverted_u", "u_shape", "inside_range", "lind_mehlum_inverted_u",
                     "lind_mehlum_u"):
            assert float(values[name]) == expected[name], (name, c1, c2)
            if expected[name]:
                seen.add(name)
    assert seen == {"inverted_u", "u_shape", "inside_range", "lind_mehlum_inverted_u",
                    "lind_mehlum_u"}


def test_zero_curvature_is_neither_shape(built):
    """c2 = 0 exactly (its standardised slope at 0: the offset of a slope is 0)."""
    data, model, fn = built
    labels = list(model.coords["exogenous"])
    for sign in (1.0, -1.0):
        point = model.initial_point()
        point["beta_std"] = np.zeros_like(point["beta_std"])
        point["beta_std"][labels.index("y: A")] = sign
        point["beta_std"][labels.index("y: A^2")] = 0.0
        values = dict(zip(NAMES, fn(point)))
        terms = list(model.layout.terms)
        assert float(values["coef"][0, terms.index("A^2")]) == 0.0
        assert float(values["inverted_u"]) == 0.0 and float(values["u_shape"]) == 0.0
        # and a slope of exactly 0 at A = 0 (c1 = 0) with either curvature: neither shape
        point["beta_std"][labels.index("y: A")] = 0.0
        point["beta_std"][labels.index("y: A^2")] = sign
        values = dict(zip(NAMES, fn(point)))
        assert float(values["coef"][0, terms.index("A")]) == 0.0
        assert float(values["inverted_u"]) == 0.0 and float(values["u_shape"]) == 0.0


def _posterior(model, data, c1: np.ndarray, c2: np.ndarray, seed: int = 0) -> az.InferenceData:
    """Stored draws (chain, draw) of coef with the deterministics computed from their definitions."""
    rng = np.random.default_rng(seed)
    chains, draws = c1.shape
    terms = list(model.layout.terms)
    coef = rng.normal(0.3, 0.1, (chains, draws, 1, len(terms)))
    coef[..., 0, terms.index("A")] = c1
    coef[..., 0, terms.index("A^2")] = c2
    lo, hi = data.range
    tp = -c1 / (2 * c2)
    ends = np.stack([c1 + 2 * c2 * lo, c1 + 2 * c2 * hi], -1)
    post = xr.Dataset({
        "coef": (("chain", "draw", "equation", "term"), coef),
        "Sigma": (("chain", "draw", "equation", "equation2"),
                  rng.uniform(0.5, 1.0, (chains, draws, 1, 1))),
        "turning_point": (("chain", "draw"), tp),
        "slope_ends": (("chain", "draw", "end"), ends),
        "inverted_u": (("chain", "draw"), ((c1 > 0) & (c2 < 0)).astype(float)),
        "u_shape": (("chain", "draw"), ((c1 < 0) & (c2 > 0)).astype(float)),
        "inside_range": (("chain", "draw"), ((tp >= lo) & (tp <= hi)).astype(float)),
        "lind_mehlum_inverted_u": (("chain", "draw"),
                                   ((ends[..., 0] > 0) & (ends[..., 1] < 0)).astype(float)),
        "lind_mehlum_u": (("chain", "draw"),
                          ((ends[..., 0] < 0) & (ends[..., 1] > 0)).astype(float)),
    }, coords={"chain": np.arange(chains), "draw": np.arange(draws), "equation": ["y"],
               "equation2": ["y"], "term": terms, "end": ["low", "high"]})
    return az.InferenceData(posterior=post)


@pytest.mark.parametrize("shape, c1_mean, c2_mean", [("inverted U", 2.0, -0.5),
                                                     ("U", -2.0, 0.5)])
def test_posterior_summary_on_stored_draws(built, shape, c1_mean, c2_mean):
    data, model, _ = built
    rng = np.random.default_rng(4)
    c1 = rng.normal(c1_mean, 0.3, (3, 400))
    c2 = rng.normal(c2_mean, 0.05, (3, 400))
    idata = _posterior(model, data, c1, c2)
    result = quadratic_posterior(idata, model)
    post = idata.posterior
    assert result.shape == shape
    assert not result.notes                       # the curvature's sign is certain here
    lm = "lind_mehlum_inverted_u" if shape == "inverted U" else "lind_mehlum_u"
    for name, key in (("inverted_u", "inverted_u"), ("u_shape", "u_shape"),
                      ("inside_range", "inside_range"), (lm, "lind_mehlum")):
        assert result.probabilities[key] == pytest.approx(float(post[name].mean()), abs=1e-15)
    tp = post["turning_point"].values
    assert result.turning_point_median == pytest.approx(float(np.median(tp)), rel=1e-12)
    hdi = az.hdi(post[["turning_point"]], hdi_prob=0.94)["turning_point"].values
    np.testing.assert_allclose(result.turning_point_hdi, hdi, rtol=1e-12)

    table = result.summary
    assert list(table.index) == list(range(len(table)))
    row = table.set_index("term").loc["turning_point"]
    assert row["mean"] == pytest.approx(float(tp.mean()), rel=1e-12)
    assert row["sd"] == pytest.approx(float(np.std(tp, ddof=1)), rel=1e-12)
    assert (row["hdi_low"], row["hdi_high"]) == pytest.approx(tuple(hdi), rel=1e-12)
    assert row["r_hat"] == pytest.approx(float(az.rhat(post[["turning_point"]])["turning_point"]),
                                         rel=1e-12)
    assert row["ess_bulk"] == pytest.approx(
        float(az.ess(post[["turning_point"]], method="bulk")["turning_point"]), rel=1e-12)
    p = table.set_index("term").loc["p_inverted_u"]
    assert p["mean"] == pytest.approx(float(post["inverted_u"].mean()), abs=1e-15)
    assert np.isnan(p["hdi_low"]) and np.isnan(p["hdi_high"])
    if np.ptp(post["inverted_u"].values) == 0:          # every draw the same: nothing to diagnose
        assert np.isnan(p["r_hat"]) and np.isnan(p["ess_bulk"])
    coefs = table[~table["term"].isin(["turning_point", "p_inverted_u", "p_inverted_u_range",
                                       "p_turning_point_in_range"])]
    assert set(coefs["term"]) == set(model.layout.terms)


def test_uncertain_curvature_sign_is_reported(built):
    data, model, _ = built
    rng = np.random.default_rng(5)
    c1 = rng.normal(0.5, 0.5, (2, 300))
    c2 = rng.normal(-0.02, 0.05, (2, 300))          # about a third of the draws are positive
    idata = _posterior(model, data, c1, c2)
    result = quadratic_posterior(idata, model)
    assert result.shape == "inverted U"
    assert len(result.notes) == 1 and "sign of the curvature" in result.notes[0]
    # two chains, and a probability whose draws are 0 or 1: R-hat and ESS are still reported
    rows = result.summary.set_index("term")
    post = idata.posterior
    for term, name in (("turning_point", "turning_point"), ("p_inverted_u", "inverted_u")):
        assert rows.loc[term, "r_hat"] == pytest.approx(float(az.rhat(post[[name]])[name]),
                                                        rel=1e-12)
        assert rows.loc[term, "ess_bulk"] == pytest.approx(
            float(az.ess(post[[name]], method="bulk")[name]), rel=1e-12)
    # a single chain: no R-hat (arviz needs two), the other columns still filled
    one = _posterior(model, data, c1[:1], c2[:1])
    row = quadratic_posterior(one, model).summary.set_index("term").loc["turning_point"]
    assert np.isnan(row["r_hat"]) and row["ess_bulk"] > 0


def test_prior_probability_of_an_inside_turning_point():
    """P(x_l ≤ θ ≤ x_h) = [atan(x_h/γ) − atan(x_l/γ)]/π with γ = scale(c1)/(2 scale(c2)), checked
    by prior draws of the model's own coefficients on a range away from 0 (A in [1, 5])."""
    import pymc as pm

    frame = _frame()
    frame["A"] = frame["A"] + 1.0
    data = build_quadratic(frame, "y ~ A + x1", "A")
    model = build_quadratic_model(data)
    terms = list(model.layout.terms)
    coef = pm.draw(model["coef"], draws=20000, random_seed=11)
    c1, c2 = coef[:, 0, terms.index("A")], coef[:, 0, terms.index("A^2")]
    theta = -c1 / (2 * c2)
    lo, hi = data.range
    share = float(np.mean((theta >= lo) & (theta <= hi)))
    expected = model.prior_probabilities["inside_range"]
    assert expected == pytest.approx(share, abs=4 * np.sqrt(share * (1 - share) / 20000))
    gamma = np.std(c1) / (2 * np.std(c2))
    assert expected == pytest.approx((np.arctan(hi / gamma) - np.arctan(lo / gamma)) / np.pi,
                                     abs=0.01)


def test_sign_note_needs_more_than_five_percent(built):
    data, model, _ = built
    rng = np.random.default_rng(6)
    c1 = rng.normal(2.0, 0.3, (2, 300))
    c2 = -np.abs(rng.normal(0.5, 0.1, (2, 300)))
    c2.ravel()[:30] *= -1.0                         # exactly 30 of 600 draws (5 %) positive
    result = quadratic_posterior(_posterior(model, data, c1, c2), model)
    assert result.notes == []
    c2.ravel()[30] *= -1.0                          # 31 of 600: more than 5 %
    result = quadratic_posterior(_posterior(model, data, c1, c2), model)
    assert len(result.notes) == 1


def test_range_probabilities_differ_from_the_signs_at_zero():
    """A in [1, 5] and draws with c1 > 0, c2 < 0 but the vertex θ ≈ 0.5 left of the data: the
    slope c1 + 2c2·a is negative over the whole observed range, so P(c1 > 0, c2 < 0) ≈ 1 while
    the inverted U on the observed range and the inside turning point have probability ≈ 0."""
    frame = _frame()
    frame["A"] = frame["A"] + 1.0
    data = build_quadratic(frame, "y ~ A + x1", "A")
    model = build_quadratic_model(data)
    rng = np.random.default_rng(8)
    c1 = rng.normal(1.0, 0.4, (2, 500))
    c2 = rng.normal(-1.0, 0.3, (2, 500))
    result = quadratic_posterior(_posterior(model, data, c1, c2), model)
    lo, hi = data.range
    assert lo > 0.9
    at_zero = np.mean((c1 > 0) & (c2 < 0))
    on_range = np.mean((c1 + 2 * c2 * lo > 0) & (c1 + 2 * c2 * hi < 0))
    tp = -c1 / (2 * c2)
    inside = np.mean((lo < tp) & (tp < hi))
    assert at_zero > 0.9 and on_range < 0.1 and on_range > 0 and inside < 0.1
    rows = result.summary.set_index("term")
    assert rows.loc["p_inverted_u", "mean"] == pytest.approx(at_zero, abs=1e-15)
    assert rows.loc["p_inverted_u_range", "mean"] == pytest.approx(on_range, abs=1e-15)
    assert rows.loc["p_turning_point_in_range", "mean"] == pytest.approx(inside, abs=1e-15)
    assert result.summary["term"].tolist()[-4:] == ["turning_point", "p_inverted_u",
                                                    "p_inverted_u_range",
                                                    "p_turning_point_in_range"]
    for term in ("p_inverted_u_range", "p_turning_point_in_range"):
        assert np.isnan(rows.loc[term, "hdi_low"]) and np.isnan(rows.loc[term, "hdi_high"])
    assert result.probabilities["inverted_u_range"] == pytest.approx(on_range, abs=1e-15)
    assert f"= {on_range:.3f}" in result.describe()
