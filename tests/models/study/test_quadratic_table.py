"""The paper's Table 9 (models.study.tables.quadratic): layout from given fits (fast) and end to end (slow)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.bayes.quadratic import QuadraticPosterior
from models.frequentist.quadratic import fit_quadratic_frequentist
from models.spec.quadratic import build_quadratic
from models.study.tables.quadratic import quadratic_table, quadratic_table_from_fits

CONTROLS = ["Gov", "Fdi"]


def _frame(n=240, seed=6):
    rng = np.random.default_rng(seed)
    PSS = rng.uniform(1, 5, n)
    PSD = rng.uniform(1.5, 2.8, n)
    Gov, Fdi = rng.normal(size=n), rng.normal(size=n)
    ER = (0.5 + 1.2 * PSS - 0.2 * PSS ** 2 + 0.6 * PSD + 0.3 * Gov - 0.2 * Fdi
          + 0.5 * rng.normal(size=n))
    return pd.DataFrame({"city": [f"c{i:03d}" for i in range(n)], "ER": ER, "PSS": PSS,
                         "PSD": PSD, "Gov": Gov, "Fdi": Fdi})


def _stand_in_posterior(fit) -> QuadraticPosterior:
    """A posterior summary made from the OLS fit (mean = estimate, sd = s.e.), layout only."""
    c = fit.coefficients
    summary = pd.DataFrame({"equation": c.equation, "term": c.term, "mean": c.estimate,
                            "sd": c.std_error, "hdi_low": c.ci_low, "hdi_high": c.ci_high,
                            "r_hat": 1.0, "ess_bulk": 800.0})
    return QuadraticPosterior(
        outcome=fit.outcome, term=fit.term, summary=summary,
        turning_point_median=fit.turning_point, turning_point_hdi=(1.0, 2.0),
        probabilities={"inverted_u": 0.9, "u_shape": 0.0, "inside_range": 0.8,
                       "lind_mehlum": 0.7, "inverted_u_range": 0.6},
        prior={"inverted_u": 0.25, "u_shape": 0.25, "inside_range": 0.3}, shape="inverted U",
        range=(0.0, 1.0), spatial_lag=False)


def test_layout_from_fits():
    df = _frame()
    fits = {}
    for a in ("PSS", "PSD"):
        fit = fit_quadratic_frequentist(build_quadratic(df, f"ER ~ {a} + Gov + Fdi", a))
        fits[a] = (fit, None, _stand_in_posterior(fit))
    table = quadratic_table_from_fits(fits)
    assert list(table.columns) == ["term", "PSS: OLS", "PSS: posterior", "PSD: OLS",
                                   "PSD: posterior"]
    labels = [t for t in table.term if t]
    assert labels == ["A", "A²", "Gov", "Fdi", "Constant", "Turning point", "Lind–Mehlum test",
                      "P(inverted U on the observed range)", "P(turning point inside range)",
                      "Observations", "R²", "P(c1 > 0, c2 < 0): slope sign at A = 0"]
    inside = table.index[table.term == "P(turning point inside range)"][0]
    assert table.loc[inside + 1, "PSS: posterior"] == "(prior 0.300)"
    rows = table.set_index("term")
    pss = fits["PSS"][0]
    c2 = pss.coefficients.set_index("term").loc["PSS^2"]
    assert rows.loc["A²", "PSS: OLS"] == f"{c2.estimate:.3f}***"
    assert rows.loc["A²", "PSS: posterior"] == f"{c2.estimate:.3f}†"
    tp_row = table.index[table.term == "Turning point"][0]
    assert table.loc[tp_row, "PSS: OLS"] == f"{pss.turning_point:.3f}"
    assert table.loc[tp_row + 1, "PSS: OLS"] == f"[{pss.fieller.low:.3f}, {pss.fieller.high:.3f}]"
    # the verdict row is the range probability; P(c1 > 0, c2 < 0) is shown, last, as what it is
    assert table.loc[table.term == "P(inverted U on the observed range)",
                     "PSS: posterior"].item() == "0.600"
    assert table.loc[table.term == "P(c1 > 0, c2 < 0): slope sign at A = 0",
                     "PSS: posterior"].item() == "0.900"
    assert table.loc[table.term == "Observations", "PSD: OLS"].item() == "240"
    # PSD has no curvature in the simulation: its Fieller set is reported as unbounded
    if not fits["PSD"][0].fieller.bounded:
        assert table.loc[tp_row + 1, "PSD: OLS"] == "(unbounded)"


@pytest.mark.slow
def test_quadratic_table_end_to_end():
    df = _frame()
    table = quadratic_table(df, "ER", ["PSS", "PSD"], CONTROLS, draws=300, tune=300, chains=2,
                            seed=1)
    rows = table.set_index("term")
    p = float(rows.loc["P(inverted U on the observed range)", "PSS: posterior"])
    assert p > 0.95
    assert rows.loc["A²", "PSS: posterior"].endswith("†")
    turning = table.loc[table.term == "Turning point"].iloc[0]
    assert table.shape[1] == 5 and "" not in turning.iloc[1:].tolist()
