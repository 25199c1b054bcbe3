"""Shared coefficient tables: validation, paper layout, stars, posterior variant, writers."""

import numpy as np
import pandas as pd
import pytest

from data_prep.errors import InputError
from models.spec.coefficient_tables import (COEF_COLUMNS, coefficient_frame, paper_table, posterior_table,
                            row_order, stars, to_latex, to_markdown, write_csv_atomic)


def _frame(equation, rows):
    return pd.DataFrame([{"equation": equation, "term": t, "estimate": e, "std_error": abs(e) / z,
                          "statistic": z, "p_value": p} for t, e, z, p in rows])


@pytest.fixture
def system_frames():
    er = _frame("ER", [("Intercept", 1.5, 3.0, 0.003), ("Gov", -0.2, -1.7, 0.09),
                       ("PSS", 0.41234, 2.45, 0.014), ("W(PSS)", 0.2, 1.2, 0.23),
                       ("W(ER)", 0.3, 4.0, 0.0001)])
    pss = _frame("PSS", [("W(PSS)", 0.25, 2.0, 0.0499), ("ER", -0.3, -2.6, 0.0099),
                         ("Gov", 0.5, 0.5, 0.6), ("Intercept", 0.5, 1.0, 0.32)])
    return {"ER": er, "PSS": pss}


@pytest.mark.parametrize("p, mark", [(0.0099, "***"), (0.01, "**"), (0.0499, "**"),
                                     (0.05, "*"), (0.0999, "*"), (0.1, ""), (0.7, ""),
                                     (np.nan, "")])
def test_star_thresholds(p, mark):
    assert stars(p) == mark


def test_paper_table_layout_and_order(system_frames):
    table = paper_table(system_frames, nobs=241, rsquared={"ER": 0.5123, "PSS": 0.25})
    assert list(table.columns) == ["term", "ER", "PSS"]
    labels = [t for t in table["term"] if t]
    assert labels == ["W(ER)", "W(PSS)", "PSS", "ER", "Gov", "Constant", "Observations", "R²"]
    rows = table.set_index("term")
    assert table.iloc[0].tolist() == ["W(ER)", "0.300***", ""]   # W(ER) absent from PSS
    assert table.iloc[1].tolist() == ["", "(4.00)", ""]
    pss_row = table.index[table["term"] == "PSS"][0]
    assert table.loc[pss_row, "ER"] == "0.412**"
    assert table.loc[pss_row + 1, "ER"] == "(2.45)"
    wpss = table.index[table["term"] == "W(PSS)"][0]
    assert table.loc[wpss, ["ER", "PSS"]].tolist() == ["0.200", "0.250**"]
    assert table.loc[table.index[table["term"] == "Gov"][0] + 1, "ER"] == "(-1.70)"
    assert rows.loc["Constant", "ER"] == "1.500***"
    assert rows.loc["Observations"].tolist() == ["241", "241"]
    assert rows.loc["R²"].tolist() == ["0.512", "0.250"]


def test_frame_with_several_equations_is_split(system_frames):
    both = pd.concat(system_frames.values())
    table = paper_table({"GS3SLS": both}, nobs={"GS3SLS": 100})
    assert list(table.columns) == ["term", "GS3SLS: ER", "GS3SLS: PSS"]
    assert table.set_index("term").loc["Observations"].tolist() == ["100", "100"]
    # row order depends only on the terms, not on the grouping
    assert row_order({"a": both}) == ["W(ER)", "W(PSS)", "PSS", "ER", "Gov", "Intercept"]


def test_coefficient_frame_validation(system_frames):
    good = coefficient_frame(system_frames["ER"].assign(extra=1))
    assert tuple(good.columns) == COEF_COLUMNS
    with pytest.raises(InputError, match="lacks column p_value"):
        coefficient_frame(system_frames["ER"].drop(columns="p_value"))
    with pytest.raises(InputError, match="repeats equation/term ER/Gov"):
        coefficient_frame(pd.concat([system_frames["ER"], system_frames["ER"].iloc[[1]]]))
    with pytest.raises(InputError, match="column estimate is not numeric"):
        coefficient_frame(system_frames["ER"].assign(estimate="big"))


def test_posterior_table_marks_hdi_excluding_zero():
    post = pd.DataFrame({"equation": "ER", "term": ["W(ER)", "x1", "Intercept"],
                         "mean": [0.31, 0.05, 1.0], "sd": [0.1, 0.04, 0.2],
                         "hdi_low": [0.12, -0.02, 0.6], "hdi_high": [0.5, 0.13, 1.4],
                         "r_hat": 1.0, "ess_bulk": 900.0})
    table = posterior_table({"Bayes": post}).set_index("term")
    assert table.loc["W(ER)", "Bayes"] == "0.310†"
    assert table.loc["x1", "Bayes"] == "0.050"
    assert table.loc["Constant", "Bayes"] == "1.000†"
    assert table["Bayes"].tolist()[1] == "(0.100)"


def test_markdown_and_latex(system_frames):
    table = paper_table(system_frames, nobs=241)
    md = to_markdown(table, note="t statistics in parentheses")
    lines = md.splitlines()
    assert lines[0] == "| term | ER | PSS |"
    assert lines[1] == "|:---|---:|---:|"
    assert lines[2] == "| W(ER) | 0.300*** |  |"
    assert lines[-1] == "t statistics in parentheses"
    tex = to_latex(table)
    assert r"W(ER) & 0.300$^{***}$ &  \\" in tex
    assert r"Observations & 241 & 241 \\" in tex
    assert tex.startswith(r"\begin{tabular}{lcc}")
    post = pd.DataFrame({"equation": "y", "term": ["a_b"], "mean": [1.0], "sd": [0.1],
                         "hdi_low": [0.8], "hdi_high": [1.2], "r_hat": [1.0], "ess_bulk": [1e3]})
    tex = to_latex(posterior_table({"m": post}, rsquared=0.5))
    assert r"a\_b & 1.000$^{\dagger}$" in tex and r"$R^2$ & 0.500" in tex


def test_write_csv_atomic_leaves_no_temp_file(tmp_path, system_frames):
    path = write_csv_atomic(system_frames["ER"], tmp_path / "sub" / "coef.csv")
    back = pd.read_csv(path)
    pd.testing.assert_frame_equal(back, system_frames["ER"])
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["coef.csv"]

    class Boom(pd.DataFrame):
        def to_csv(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_csv_atomic(Boom({"a": [1]}), tmp_path / "sub" / "other.csv")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["coef.csv"]
