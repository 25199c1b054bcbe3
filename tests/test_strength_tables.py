"""Shared tables (models.results): LaTeX rules, per-equation lookups, dagger edges, validation."""

from __future__ import annotations

import pandas as pd
import pytest

from data_prep.errors import InputError
from models.results import paper_table, posterior_frame, posterior_table, to_latex


def _frame(equation, rows):
    return pd.DataFrame([{"equation": equation, "term": t, "estimate": e, "std_error": 0.1,
                          "statistic": e / 0.1, "p_value": p} for t, e, p in rows])


def _post(rows):
    return pd.DataFrame([{"equation": "y", "term": t, "mean": m, "sd": 0.1, "hdi_low": lo,
                          "hdi_high": hi, "r_hat": 1.0, "ess_bulk": 1e3}
                         for t, m, lo, hi in rows])


def test_latex_rules_and_header():
    both = pd.concat([_frame("ER", [("x", 0.3, 0.001)]), _frame("PSS", [("x", 0.1, 0.2)])])
    tex = to_latex(paper_table({"M": both}, nobs=10, rsquared={"ER": 0.5, "PSS": 0.25}))
    lines = tex.splitlines()
    assert lines[2] == r" & M: ER & M: PSS \\"        # the row-label column has no header
    assert [i for i, line in enumerate(lines) if line == r"\midrule"] == [3, 6]
    assert lines[7].startswith("Observations &")
    assert r"$R^2$ & 0.500 & 0.250 \\" in lines          # R² looked up by equation name


def test_dagger_edges():
    table = posterior_table({"B": _post([("a", -0.2, -0.5, 0.0), ("b", -0.6, -0.9, -0.5),
                                         ("c", 0.4, 0.0, 0.8), ("d", 0.4, 0.1, 0.8)])})
    cells = dict(zip(table["term"], table["B"]))
    # an interval touching 0 does not exclude it
    assert cells["a"] == "-0.200" and cells["c"] == "0.400"
    assert cells["b"] == "-0.600†" and cells["d"] == "0.400†"


def test_posterior_frame_checks_every_numeric_column():
    frame = _post([("a", 0.1, 0.0, 0.2)]).astype({"mean": object})
    frame.loc[0, "mean"] = "abc"
    with pytest.raises(InputError, match="column mean is not numeric"):
        posterior_frame(frame)
