"""Shared tables (models.spec.coefficient_tables): LaTeX rules, per-equation lookups, dagger edges, validation."""

from __future__ import annotations

import pandas as pd
import pytest

from data_prep.errors import InputError
from models.spec.coefficient_tables import paper_table, posterior_frame, posterior_table, to_latex


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


def test_combined_table_puts_both_sides_in_one_row_order():
    from models.spec.coefficient_tables import combined_table

    freq = _frame("y", [("Intercept", 1.23456, 0.001), ("x", 0.5, 0.2)])
    post = _post([("Intercept", 1.2, 1.0, 1.4), ("x", 0.4, -0.1, 0.9)])
    table = combined_table({"GS3SLS": freq}, {"Bayes": post})
    assert list(table.columns) == ["term", "GS3SLS", "Bayes"]
    cells = {t: (f, b) for t, f, b in zip(table["term"], table["GS3SLS"], table["Bayes"])}
    assert cells["Constant"] == ("1.235***", "1.200†")      # three decimals by default
    assert cells["x"] == ("0.500", "0.400")
    only_freq = combined_table({"GS3SLS": freq})
    assert list(only_freq.columns) == ["term", "GS3SLS"]
    with pytest.raises(InputError, match="label GS3SLS is used twice"):
        combined_table({"GS3SLS": freq}, {"GS3SLS": post})


def test_each_equation_column_holds_only_its_own_terms():
    both = pd.concat([_frame("ER", [("Intercept", 1.0, 0.5), ("x1", 0.3, 0.5)]),
                      _frame("PSS", [("Intercept", 2.0, 0.5), ("z2", 0.7, 0.5)])])
    table = paper_table({"M": both})
    cells = {t: (a, b) for t, a, b in zip(table["term"], table["M: ER"], table["M: PSS"])}
    assert cells["x1"] == ("0.300", "") and cells["z2"] == ("", "0.700")
    assert cells["Constant"] == ("1.000", "2.000")


def test_latex_note_missing_figures_and_stars_of_none(tmp_path):
    from models.spec.coefficient_tables import stars, write_csv_atomic

    table = paper_table({"M": _frame("y", [("x", 0.3, 0.001)])}, rsquared={"other": 0.5})
    assert table.iloc[-1].tolist() == ["R²", ""]              # no R² for this column
    tex = to_latex(table, note="SE in parentheses & p < 0.1")
    assert tex.endswith("\\par\\footnotesize SE in parentheses \\& p $<$ 0.1\n")
    assert "\\par" not in to_latex(table)
    assert stars(None) == ""
    path = write_csv_atomic(table, tmp_path / "new" / "deeper" / "t.csv")
    assert pd.read_csv(path, keep_default_na=False).iloc[0, 0] == "x"


def test_repeated_pairs_are_named_five_at_most():
    from models.spec.coefficient_tables import coefficient_frame

    frame = pd.concat([_frame("y", [(f"x{k}", 0.1, 0.5) for k in range(7)])] * 2)
    with pytest.raises(InputError) as err:
        coefficient_frame(frame)
    assert str(err.value).endswith("repeats equation/term y/x0, y/x1, y/x2, y/x3, y/x4")


def test_write_text_atomic_creates_the_folder(tmp_path):
    from models.spec.coefficient_tables import write_text_atomic

    path = write_text_atomic("| a |\n", tmp_path / "tables" / "t1.md")
    assert path.read_text(encoding="utf-8") == "| a |\n"
    assert [p.name for p in path.parent.iterdir()] == ["t1.md"]      # no temporary left
