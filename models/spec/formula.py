"""Reading system formulas: the hand-written part of the specification.

A right-hand side is split at top-level ``+``/``-`` and each term is classified as a spatial lag
of a system dependent (``W(y)``), a Durbin lag of an exogenous expression (``W(x)``), a
contemporaneous endogenous regressor (another equation's dependent) or an exogenous term left to
``formulaic``. No formula library knows about the dependents of *other* equations or about
spatial lags, which is why this small splitter exists; everything else is formulaic's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from formulaic import Formula

from data_prep.errors import InputError

LAG = re.compile(r"^W\((.*)\)$", re.S)
W_CALL = re.compile(r"(?<![\w.])W\(")
# a plain column name (left-hand sides, instruments, numeric checks)
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def split_terms(text: str) -> list[tuple[str, str]]:
    """Split a right-hand side at top-level + and - into (sign, term) pairs."""
    pieces: list[tuple[str, str]] = []
    depth, sign, start = 0, "+", 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced parentheses")
        elif ch in "+-" and depth == 0:
            pieces.append((sign, text[start:i].strip()))
            sign, start = ch, i + 1
    if depth != 0:
        raise ValueError("unbalanced parentheses")
    pieces.append((sign, text[start:].strip()))
    # a leading sign gives an empty first piece ("- 1 + x"); a dangling operator an empty later one
    if pieces and pieces[0] == ("+", ""):
        pieces = pieces[1:]
    if any(not term for _, term in pieces):
        raise ValueError("an operator has no term after it")
    return pieces


@dataclass(frozen=True)
class ParsedEquation:
    dependent: str
    formula: str
    intercept: bool
    pieces: tuple[tuple[str, str, str], ...]   # (kind, sign, text); kind lag|endog|durbin|exog


def read_formula(formula: str) -> tuple[str, list[tuple[str, str]]]:
    if formula.count("~") != 1:
        raise InputError(f"formula {formula!r}: expected exactly one '~' (\"y ~ x1 + x2\")")
    lhs, rhs = (s.strip() for s in formula.split("~"))
    if not NAME.match(lhs):
        raise InputError(f"formula {formula!r}: the left-hand side must be one column name, "
                         f"not {lhs!r}")
    if not rhs:
        raise InputError(f"equation {lhs}: the right-hand side is empty")
    try:
        pieces = split_terms(rhs)
    except ValueError as err:
        raise InputError(f"equation {lhs}: cannot read {rhs!r} ({err})") from None
    return lhs, pieces


def classify_terms(dep: str, formula: str, pieces, dependents: set[str]) -> ParsedEquation:
    intercept = True
    out: list[tuple[str, str, str]] = []
    for sign, text in pieces:
        if text in ("0", "1"):
            intercept = (text == "1") == (sign == "+")
            continue
        lag = LAG.match(text)
        if lag:
            inner = lag.group(1).strip()
            if sign == "-":
                raise InputError(f"equation {dep}: '- {text}' is not supported; "
                                 f"leave the term out instead")
            if not inner:
                raise InputError(f"equation {dep}: W() needs a variable inside")
            if inner in dependents:
                out.append(("lag", sign, inner))
                continue
            reject_dependents(dep, text, inner, dependents)
            out.append(("durbin", sign, inner))
            continue
        if W_CALL.search(text):
            raise InputError(f"equation {dep}: W(...) must be a whole term on its own, "
                             f"not part of {text!r}")
        if text == dep:
            raise InputError(f"equation {dep}: the dependent {dep} cannot be its own regressor "
                             f"(use W({dep}) for its spatial lag)")
        if text in dependents:
            if sign == "-":
                raise InputError(f"equation {dep}: '- {text}' is not supported; "
                                 f"leave the term out instead")
            out.append(("endog", sign, text))
            continue
        reject_dependents(dep, text, text, dependents)
        out.append(("exog", sign, text))
    if not intercept and not out:
        raise InputError(f"equation {dep}: no regressors")
    return ParsedEquation(dep, formula, intercept, tuple(out))


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain_error_text(err: BaseException) -> str:
    """First line of a library's error message without terminal colour codes (formulaic marks
    the faulty operator in red and draws it on further lines)."""
    text = ANSI_ESCAPE.sub("", str(err)).strip()
    return text.splitlines()[0].strip() if text else type(err).__name__


def reject_dependents(dep: str, term: str, expr: str, dependents: set[str]) -> None:
    """A transform or interaction of a dependent would be endogenous but is not modelled."""
    try:
        used = set(Formula(f"0 + {expr}").required_variables)
    except Exception as err:  # formulaic's parse errors are many classes
        raise InputError(f"equation {dep}: cannot read term {term!r} "
                         f"({plain_error_text(err)})") from None
    bad = sorted(used & dependents)
    if bad:
        raise InputError(f"equation {dep}: term {term!r} transforms the system dependent "
                         f"{', '.join(bad)}; only plain dependents and W(dependent) are supported")


def unique(items) -> tuple:
    return tuple(dict.fromkeys(items))


def spatial_error_set(spatial_errors, dependents: tuple[str, ...]) -> set[str]:
    if spatial_errors is None:
        return set()
    if isinstance(spatial_errors, str):
        key = spatial_errors.strip()
        if key.lower() in ("", "none"):
            return set()
        if key.lower() == "all":
            return set(dependents)
        names = [s.strip() for s in key.split(",") if s.strip()]
    else:
        names = [str(s).strip() for s in spatial_errors]
    unknown = [s for s in names if s not in dependents]
    if unknown:
        raise InputError(f"spatial errors requested for {', '.join(unknown)}, which is not a "
                         f"dependent of the system ({', '.join(dependents)})")
    return set(names)
