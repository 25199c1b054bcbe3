"""Layout of the shared table helper on hand-made frames (no fitting)."""

from __future__ import annotations

import pandas as pd
import pytest

from data_prep.errors import InputError
from models.spec.coefficient_tables import combined_table
from models.study.system_fit import SystemFit, paper_system_table


class _Result:
    """The slice of SystemResults that the layout reads."""

    def __init__(self, frame: pd.DataFrame, rsquared: dict, nobs: int):
        self.frame, self.rsquared, self.nobs, self.warnings = frame, rsquared, nobs, []

    def to_frame(self) -> pd.DataFrame:
        return self.frame


def _freq(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["equation", "term", "estimate", "std_error",
                                       "statistic", "p_value"])


def _post(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["equation", "term", "mean", "sd", "hdi_low", "hdi_high",
                                       "r_hat", "ess_bulk"])


FREQ = _freq([("ER", "W(ER)", 0.5, 0.1, 5.0, 0.0), ("ER", "A", -0.2, 0.2, -1.0, 0.3),
              ("ER", "x", 1.0, 0.5, 2.0, 0.04), ("ER", "Intercept", 2.0, 1.0, 2.0, 0.04),
              ("A", "ER", 0.3, 0.1, 3.0, 0.003), ("A", "x", 0.1, 0.1, 1.0, 0.3),
              ("A", "Intercept", 0.0, 1.0, 0.0, 1.0)])
POST = _post([("ER", "W(ER)", 0.45, 0.1, 0.3, 0.6, 1.0, 900),
              ("ER", "A", -0.1, 0.2, -0.5, 0.3, 1.0, 900),
              ("ER", "x", 0.9, 0.5, 0.1, 1.9, 1.0, 900),
              ("ER", "Intercept", 1.9, 1.0, 0.1, 3.9, 1.0, 900),
              ("A", "ER", 0.25, 0.1, 0.05, 0.45, 1.0, 900),
              ("A", "x", 0.1, 0.1, -0.1, 0.3, 1.0, 900),
              ("A", "Intercept", 0.0, 1.0, -2, 2, 1.0, 900)])


def test_combined_table_puts_posterior_beside_frequentist():
    table = combined_table({"GS3SLS": FREQ}, {"Bayes": POST}, nobs=10,
                           rsquared={"GS3SLS: ER": 0.25, "GS3SLS: A": 0.5})
    assert list(table.columns) == ["term", "GS3SLS: ER", "GS3SLS: A", "Bayes: ER", "Bayes: A"]
    assert table["term"].tolist() == ["W(ER)", "", "A", "", "ER", "", "x", "", "Constant", "",
                                      "Observations", "R²"]
    rows = table.set_index(table.index)
    assert rows.iloc[0].tolist() == ["W(ER)", "0.500***", "", "0.450†", ""]
    assert rows.iloc[1].tolist() == ["", "(5.00)", "", "(0.100)", ""]
    assert rows.iloc[4].tolist() == ["ER", "", "0.300***", "", "0.250†"]
    assert table.iloc[-1].tolist() == ["R²", "0.250", "0.500", "", ""]
    with pytest.raises(InputError, match="used twice"):
        combined_table({"x": FREQ}, {"x": POST})


def test_paper_table_hides_controls_and_reports_missing_and_failed_fits():
    fit = SystemFit(["ER ~ W(ER) + A + x", "A ~ ER + x"], None, nobs=10)
    fit.frequentist["GS3SLS"] = _Result(FREQ, {"ER": 0.25, "A": 0.5}, 10)
    fit.failed["3SLS"] = "the 3SLS normal matrix is singular"
    fit.summary = POST
    table = paper_system_table({"(1)": fit}, show_controls=False, missing={"(2)": ["ER_GDP"]},
                       indicators={"Year x region effects": {"(1)": "No"}},
                       order=["(2)", "(1)"])
    assert list(table.columns) == ["term", "(2)", "(1) GS3SLS: ER", "(1) GS3SLS: A", "(1) 3SLS",
                                   "(1) Bayes: ER", "(1) Bayes: A"]
    rows = table.set_index("term")
    assert "x" not in rows.index and "Constant" in rows.index
    assert rows.loc["Controls"].tolist() == ["", "Yes", "Yes", "", "Yes", "Yes"]
    assert rows.loc["Year x region effects"].tolist() == ["", "No", "No", "", "No", "No"]
    assert rows.loc["Missing input"].tolist() == ["ER_GDP", "", "", "", "", ""]
    assert rows.loc["Not estimable", "(1) 3SLS"].startswith("singular")
    assert rows.loc["Observations"].tolist() == ["", "10", "10", "", "10", "10"]
    assert table["term"].tolist()[-2:] == ["Observations", "R²"]
    assert any("not estimable" in w for w in fit.warnings)
