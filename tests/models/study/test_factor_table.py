"""Table 10 (models.study.tables.factor): layout, cells equal to the fits they come from, contrasts."""

import numpy as np
import pytest

from data_prep.synthetic.censored import simulate_censored_panel
from models.spec.factor import factor_data
from models.frequentist.tobit import fit_tobit
from models.study.tables.factor import factor_tables
from tests.references import correlated_city_panel


@pytest.fixture(scope="module")
def tables():
    shift = [[0.3, 0.0], [0.1, 0.0], [0.0, 0.0], [-0.2, 0.0]]
    sim = simulate_censored_panel((2, 8, 8, 10), n_years=5, group_shift=shift, upper=1.0,
                                  alpha=0.4, sd_city=0.1, seed=12)
    panel = sim.data.rename(columns={"group": "tier"})
    panel["tier"] = panel["tier"].str[1:]
    cities = np.unique(panel["city"])
    coastal = {c: int(i % 3 == 0) for i, c in enumerate(cities)}
    panel["coastal"] = panel["city"].map(coastal)
    out = factor_tables(panel, "y", ["x1", "x2"], draws=300, tune=300, chains=2, seed=1,
                        effects=("year",))
    return panel, out


def test_layout(tables):
    _, out = tables
    t = out["table10"]
    labels = ["Full sample", "Tier 1", "Tier 2", "Tier 3", "Tier 4", "Coastal", "Inland"]
    assert list(t.columns) == ["term"] + [f"{lab} {k}" for lab in labels
                                          for k in ("Tobit", "Bayes")]
    assert list(t["term"]) == ["x1", "", "x2", "", "sigma", "", "Observations"]
    # tier 1 (2 cities) has no separate Tobit (3 parameters) but a pooled Bayesian column
    assert (t["Tier 1 Tobit"] == "").all() and t["Tier 1 Bayes"].iloc[0] != ""
    assert any("Tier 1: 2 cities" in n for n in out["notes"]["note"])
    assert t["Full sample Tobit"].iloc[1].startswith("(")
    assert "†" not in t["Full sample Bayes"].iloc[4]      # sigma: no "excludes 0" flag


def test_cells_come_from_the_fits(tables):
    panel, out = tables
    sub = panel[panel["tier"] == "4"]
    fit = fit_tobit(factor_data(sub, "y ~ x1 + x2", 0.0, 1.0, effects="year"))
    est = fit.to_frame().set_index("term").loc["x1"]
    cell = out["table10"]["Tier 4 Tobit"].iloc[0]
    assert cell.startswith(f"{est['estimate']:.3f}")
    assert out["table10"]["Tier 4 Tobit"].iloc[1] == f"({est['statistic']:.2f})"
    post = out["posterior"]
    row = post[(post["column"] == "Coastal") & (post["term"] == "x2")].iloc[0]
    assert out["table10"]["Coastal Bayes"].iloc[2].startswith(f"{row['mean']:.3f}")
    assert out["table10"]["Tier 4 Bayes"].iloc[-1] == str(len(sub))


def test_contrasts(tables):
    _, out = tables
    c = out["table10_contrasts"]
    assert set(c["contrast"]) == {"Tier 1 − Tier 4", "Tier 2 − Tier 4", "Tier 3 − Tier 4",
                                  "Coastal − Inland"}
    assert list(c.columns) == ["grouping", "contrast", "factor", "mean", "sd", "hdi_low",
                               "hdi_high", "prob_positive"]
    assert (c["hdi_low"] <= c["mean"]).all() and (c["mean"] <= c["hdi_high"]).all()


def test_notes_say_what_each_column_assumes_and_mundlak_adds_the_means():
    panel = correlated_city_panel(n_cities=60, n_years=4)
    panel = panel[panel.groupby("city")["y"].transform("max") > 0]   # finite city dummies
    quick = factor_tables(panel, "y", ["x1", "x2"], groups=(), bayes=False, upper=None)
    notes = list(quick["notes"]["note"])
    assert any(n.startswith("Tobit: city fixed effects") and "incidental" in n for n in notes)
    assert any(n.startswith("Bayes: random city effects assumed independent") for n in notes)
    out = factor_tables(panel, "y", ["x1", "x2"], groups=(), upper=None, mundlak=True,
                        draws=200, tune=200, chains=2, seed=1)
    notes = list(out["notes"]["note"])
    assert any("Mundlak's correlated random effects" in n for n in notes)
    t = out["table10"]
    assert list(t["term"]) == ["x1", "", "x2", "", "mean(x1)", "", "mean(x2)", "", "sigma", "",
                               "Observations"]
    means = t.index[t["term"] == "mean(x1)"][0]
    assert t.loc[means, "Full sample Tobit"] == ""          # city dummies absorb the means
    post = out["posterior"].set_index("term")
    assert t.loc[means, "Full sample Bayes"].startswith(f"{post.loc['mean(x1)', 'mean']:.3f}")
    tobit = out["tobit"]
    assert "mean(x1)" not in set(tobit["term"])
