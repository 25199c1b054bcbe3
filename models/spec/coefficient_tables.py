"""Coefficient tables shared by every estimator: contract-2 frames, paper layout, writers.

Two long formats (docs/contracts.md, contract 2):

* frequentist: ``equation, term, estimate, std_error, statistic, p_value``
* posterior summary: ``equation, term, mean, sd, hdi_low, hdi_high, r_hat, ess_bulk``

:func:`paper_table` turns one or more frequentist frames into the paper's layout (its Tables 2–9):
one column per equation or model, each coefficient as ``0.123***`` over its t statistic in
parentheses ``(2.45)``; stars *** p < 0.01, ** p < 0.05, * p < 0.10. Rows: spatial lags of the
dependents first (W(ER), W(PSS)/W(PSD)), then the endogenous regressors, then the controls, then
the intercept as "Constant", then "Observations" and "R²".

:func:`posterior_table` is the Bayesian analogue **(choice)**: posterior mean over the posterior
sd in parentheses, with "†" when the highest-density interval given in the summary
(``hdi_low``, ``hdi_high``; the sampler script's interval mass) excludes zero. Stars are not used
because a posterior has no p-value; the dagger is a plain "the interval excludes zero" flag, not a
test at a significance level.

The Markdown and LaTeX writers are a few lines each, written here rather than adding a table
library dependency for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Collection, Mapping

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from data_prep.files import atomic_write
from data_prep.terms import lag_name

COEF_COLUMNS = ("equation", "term", "estimate", "std_error", "statistic", "p_value")
POSTERIOR_COLUMNS = ("equation", "term", "mean", "sd", "hdi_low", "hdi_high", "r_hat", "ess_bulk")
STAR_LEVELS = ((0.01, "***"), (0.05, "**"), (0.10, "*"))
DAGGER = "†"
FREQUENTIST_NOTE = ("test statistics (estimate / std. error) in parentheses; "
                    "*** p < 0.01, ** p < 0.05, * p < 0.10.")
POSTERIOR_NOTE = ("posterior mean, posterior sd in parentheses; † the highest-density interval "
                  "excludes 0.")


def _validated(frame, columns: tuple[str, ...], numeric: tuple[str, ...],
               what: str) -> pd.DataFrame:
    frame = pd.DataFrame(frame)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{what} lacks column {', '.join(missing)} "
                         f"(expected {', '.join(columns)})")
    out = frame.loc[:, list(columns)].reset_index(drop=True)
    out["equation"] = out["equation"].astype(str)
    out["term"] = out["term"].astype(str)
    for c in numeric:
        try:
            out[c] = pd.to_numeric(out[c]).astype(float)
        except (TypeError, ValueError):
            raise InputError(f"{what}: column {c} is not numeric") from None
    dup = out.duplicated(["equation", "term"], keep=False)
    if dup.any():
        pairs = sorted({f"{e}/{t}" for e, t in out.loc[dup, ["equation", "term"]].to_numpy()})
        raise InputError(f"{what} repeats equation/term {', '.join(pairs[:5])}")
    return out


def coefficient_frame(frame) -> pd.DataFrame:
    """Validate a frequentist coefficient table; return it with exactly the contract-2 columns.

    Accepts a DataFrame or anything ``pd.DataFrame`` takes (records, dict of columns). Raises
    InputError for a missing column, a non-numeric value column or a repeated equation/term.
    """
    return _validated(frame, COEF_COLUMNS, COEF_COLUMNS[2:], "coefficient table")


def posterior_frame(frame) -> pd.DataFrame:
    """Validate a posterior summary table (columns ``POSTERIOR_COLUMNS``)."""
    return _validated(frame, POSTERIOR_COLUMNS, POSTERIOR_COLUMNS[2:], "posterior summary")


def stars(p: float) -> str:
    """Significance stars: *** p < 0.01, ** p < 0.05, * p < 0.10; none for NaN."""
    if p is None or not np.isfinite(p):
        return ""
    for level, mark in STAR_LEVELS:
        if p < level:
            return mark
    return ""


def write_csv_atomic(df: pd.DataFrame, path) -> Path:
    """Write ``df`` (without its index) to ``path`` via a temporary file and a rename."""
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False), create_folder=True)


def write_text_atomic(text: str, path) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and a rename."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"),
                        create_folder=True)


# ----------------------------------------------------------------------------- paper layout

def _columns(frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """One table column per (label, equation): a frame with several equations is split."""
    cols: dict[str, pd.DataFrame] = {}
    for label, frame in frames.items():
        eqs = list(dict.fromkeys(frame["equation"]))
        for eq in eqs:
            key = label if len(eqs) == 1 else f"{label}: {eq}"
            cols[key] = frame[frame["equation"] == eq]
            cols[key].attrs["label"] = label
    return cols


def row_order(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """The paper's order: W(dependent) lags, endogenous dependents, controls, then Intercept.

    Lags follow the order of the equations (W(ER) before W(PSS)); the other groups keep the
    order of first appearance across the columns.
    """
    deps = list(dict.fromkeys(eq for f in frames.values() for eq in f["equation"]))
    terms = list(dict.fromkeys(t for f in frames.values() for t in f["term"]))
    lags = [lag_name(d) for d in deps if lag_name(d) in terms]
    endo = [t for t in terms if t in deps]
    tail = [t for t in terms if t == "Intercept"]
    controls = [t for t in terms if t not in lags and t not in endo and t not in tail]
    return lags + endo + controls + tail


def _label(term: str) -> str:
    return "Constant" if term == "Intercept" else term


def _lookup(values, key: str, frame: pd.DataFrame):
    """A per-column figure from a number or a mapping keyed by column, equation or label."""
    if values is None:
        return None
    if not isinstance(values, Mapping):
        return values
    eq = frame["equation"].iloc[0] if len(frame) else None
    for candidate in (key, eq, frame.attrs.get("label")):
        if candidate in values:
            return values[candidate]
    return None


def _assemble(cols: dict[str, pd.DataFrame], cell, nobs, rsquared, digits: int) -> pd.DataFrame:
    """Rows in :func:`row_order`; ``cell`` formats a row (or is a mapping column → formatter)."""
    order = row_order(cols)
    rows: list[list[str]] = []
    for term in order:
        top, bottom = [_label(term)], [""]
        for key, frame in cols.items():
            hit = frame[frame["term"] == term]
            fmt = cell[key] if isinstance(cell, Mapping) else cell
            a, b = fmt(hit.iloc[0]) if len(hit) else ("", "")
            top.append(a)
            bottom.append(b)
        rows += [top, bottom]
    if nobs is not None:
        rows.append(["Observations"] + [_fmt_int(_lookup(nobs, k, f)) for k, f in cols.items()])
    if rsquared is not None:
        rows.append(["R²"] + [_fmt(_lookup(rsquared, k, f), digits) for k, f in cols.items()])
    return pd.DataFrame(rows, columns=["term", *cols])


def _fmt(x, digits: int) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def _fmt_int(x) -> str:
    return "" if x is None else str(int(x))


def paper_table(frames: Mapping[str, pd.DataFrame], nobs=None, rsquared=None,
                digits: int = 3) -> pd.DataFrame:
    """Paper-style table from contract-2 frames, keyed by column label.

    Each coefficient occupies two rows: ``"0.123***"`` and its t statistic ``"(2.45)"``.
    ``nobs`` and ``rsquared``: a number for all columns, or a mapping keyed by column label (or,
    for a single-equation frame, by its equation name, so ``SystemResults.rsquared`` works
    directly). A frame holding several equations gives one column per equation,
    labelled "label: equation". The first column ``term`` holds the row labels.
    """
    cols = _columns({k: coefficient_frame(v) for k, v in frames.items()})
    return _assemble(cols, _frequentist_cell(digits), nobs, rsquared, digits)


def _frequentist_cell(digits: int):
    def cell(row):
        return (f"{row['estimate']:.{digits}f}{stars(row['p_value'])}",
                f"({_fmt(row['statistic'], 2)})")
    return cell


def _posterior_cell(digits: int, mark: bool = True):
    """Mean (with † when the HDI excludes 0 and ``mark``) over sd; ``mark=False`` for a
    posterior whose convergence checks failed, whose interval means nothing."""
    def cell(row):
        excludes = mark and (row["hdi_low"] > 0 or row["hdi_high"] < 0)
        return (f"{row['mean']:.{digits}f}{DAGGER if excludes else ''}",
                f"({_fmt(row['sd'], digits)})")
    return cell


def posterior_table(frames: Mapping[str, pd.DataFrame], nobs=None, rsquared=None,
                    digits: int = 3, unmarked: Collection[str] = ()) -> pd.DataFrame:
    """Posterior analogue of :func:`paper_table`: mean (†: HDI excludes 0) over sd; labels in
    ``unmarked`` (posteriors that did not converge) get no †."""
    cols = _columns({k: posterior_frame(v) for k, v in frames.items()})
    cells = {k: _posterior_cell(digits, f.attrs["label"] not in set(unmarked))
             for k, f in cols.items()}
    return _assemble(cols, cells, nobs, rsquared, digits)


def combined_table(frequentist: Mapping[str, pd.DataFrame],
                   posterior: Mapping[str, pd.DataFrame] | None = None, nobs=None,
                   rsquared=None, digits: int = 3,
                   unmarked: Collection[str] = ()) -> pd.DataFrame:
    """Frequentist columns (as :func:`paper_table`) beside posterior columns (as
    :func:`posterior_table`) in one table with one shared row order. Posterior labels in
    ``unmarked`` (posteriors that did not converge) get no †.

    Column labels must differ between the two mappings; ``nobs`` / ``rsquared`` as in
    :func:`paper_table` (a column without an entry is left blank, e.g. R² of a posterior).
    """
    posterior = posterior or {}
    clash = sorted(set(frequentist) & set(posterior))
    if clash:
        raise InputError(f"combined table: label {', '.join(clash)} is used twice")
    freq = _columns({k: coefficient_frame(v) for k, v in frequentist.items()})
    post = _columns({k: posterior_frame(v) for k, v in posterior.items()})
    cells = {**{k: _frequentist_cell(digits) for k in freq},
             **{k: _posterior_cell(digits, post[k].attrs["label"] not in set(unmarked))
                for k in post}}
    return _assemble({**freq, **post}, cells, nobs, rsquared, digits)


# ----------------------------------------------------------------------------- writers

def to_markdown(table: pd.DataFrame, note: str | None = None) -> str:
    """GitHub pipe table (first column left-aligned, the rest right-aligned), optional note."""
    def esc(v) -> str:
        return str(v).replace("|", r"\|")

    header = [esc(c) for c in table.columns]
    body = [[esc(v) for v in row] for row in table.astype(str).to_numpy()]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "<": "$<$", ">": "$>$"}


def _latex_cell(value) -> str:
    text = "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(value))
    for mark in ("***", "**", "*"):
        if text.endswith(mark):
            return text[: -len(mark)] + f"$^{{{mark}}}$"
    text = text.replace(DAGGER, r"$^{\dagger}$")
    return text.replace("R²", "$R^2$").replace("²", "$^2$")


def to_latex(table: pd.DataFrame, note: str | None = None) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), optional note below."""
    ncol = table.shape[1]
    lines = [r"\begin{tabular}{l" + "c" * (ncol - 1) + "}", r"\toprule",
             " & ".join(_latex_cell(c) if i else "" for i, c in enumerate(table.columns))
             + r" \\", r"\midrule"]
    for row in table.astype(str).to_numpy():
        if row[0] == "Observations":
            lines.append(r"\midrule")
        lines.append(" & ".join(_latex_cell(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if note:
        lines.append(r"\par\footnotesize " + _latex_cell(note))
    return "\n".join(lines) + "\n"
