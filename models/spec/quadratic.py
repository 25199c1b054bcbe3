"""The quadratic specification of paper's Table 9, shared by the frequentist and Bayesian fits.

    y = c0 + c1·A + c2·A² + X·β (+ ρ·W·y) + ε            (docs/method.md §3)

The user writes an ordinary one-equation formula, ``"ER ~ PSS + Gov + Fdi"``, and names the
term A that enters squared (``quadratic="PSS"``). This module adds the square as a data column
placed right after A, puts the spatial lag W(y) in front when asked, evaluates the formula with
the one system specification (:func:`models.spec.system.build_system`) and names the square's term
``"A^2"`` (docs/contracts.md contract 6). The derived quantities of a quadratic,

    turning point θ = −c1 / (2 c2),     slope s(a) = c1 + 2 c2 a,

are written once here and used by both sides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from models.spec.formula import LAG, NAME, W_CALL, read_formula
from models.spec.inputs import numeric_check, read_data
from models.spec.system import SystemSpec, build_system, parse_system

SQUARE_SUFFIX = "^2"


def square_name(term: str) -> str:
    """The term name of A² in every output: ``"A^2"``."""
    return f"{term}{SQUARE_SUFFIX}"


def turning_point(c1, c2):
    """θ = −c1 / (2 c2), where the slope c1 + 2 c2 a of the quadratic is zero (arrays work)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.asarray(c1) / (2.0 * np.asarray(c2))


def slope(c1, c2, a):
    """The partial effect ∂y/∂A = c1 + 2 c2 a of the quadratic at A = a."""
    return np.asarray(c1) + 2.0 * np.asarray(c2) * np.asarray(a)


@dataclass(frozen=True)
class QuadraticData:
    """A built one-equation system with A and A² in it, plus what the reports need."""

    system: object              # models.spec.system.SystemData, one equation
    term: str                   # A
    square: str                 # "A^2"
    values: np.ndarray          # A over the cities, in system order
    spatial_lag: bool

    @property
    def outcome(self) -> str:
        return self.system.spec.dependents[0]

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(self.system.spec.equations[0].terms)

    @property
    def range(self) -> tuple[float, float]:
        """(x_l, x_h) = (min A, max A): the interval of the Lind–Mehlum test."""
        return float(self.values.min()), float(self.values.max())

    def design(self) -> np.ndarray:
        """Regressor matrix Z (columns ``terms``; W·y first with a spatial lag)."""
        return np.asarray(self.system.Z(0), dtype=float)

    @property
    def y(self) -> np.ndarray:
        return np.asarray(self.system.y(0), dtype=float)


def _rewrite(formula: str, term: str, placeholder: str, spatial_lag: bool) -> tuple[str, str]:
    """The formula with ``placeholder`` (the square's column) right after A and W(y) in front."""
    dep, pieces = read_formula(formula)
    hits = [k for k, (sign, text) in enumerate(pieces) if text == term]
    if not NAME.match(term):
        raise InputError(f"--quadratic {term!r}: give the name of one data column that is a "
                         f"term of the formula")
    if term == dep:
        raise InputError(f"--quadratic {term}: {term} is the dependent of {formula!r}")
    if not hits or pieces[hits[0]][0] != "+":
        raise InputError(f"--quadratic {term}: {term} is not a term of the formula {formula!r} "
                         f"(write it as a regressor, e.g. \"{dep} ~ {term} + x1\")")
    lag = f"W({dep})"
    has_lag = any(LAG.match(text) and LAG.match(text).group(1).strip() == dep
                  for _, text in pieces)
    out = list(pieces)
    out.insert(hits[0] + 1, ("+", placeholder))
    if spatial_lag and not has_lag:
        out.insert(0, ("+", lag))
    rhs = " ".join((text if k == 0 and sign == "+" else f"{sign} {text}")
                   for k, (sign, text) in enumerate(out))
    return f"{dep} ~ {rhs}", dep


def _check_columns(frame: pd.DataFrame, term: str, formula: str) -> None:
    """A must be numeric with at least three distinct values; plain regressors must vary."""
    if term not in frame.columns:
        raise InputError(f"--quadratic {term}: {term} is not a column of the data")
    numeric_check(frame, term, f"--quadratic {term}: ")
    values = pd.to_numeric(frame[term], errors="coerce").dropna().unique()
    if values.size <= 2:
        shown = ", ".join(f"{v:g}" for v in np.sort(values))
        raise InputError(f"--quadratic {term}: {term} takes only {values.size} distinct value(s) "
                         f"({shown}), so {square_name(term)} is an exact linear function of "
                         f"{term} and the constant; the curvature cannot be estimated")
    _, pieces = read_formula(formula)
    for sign, text in pieces:
        if sign == "+" and NAME.match(text) and text in frame.columns:
            col = frame[text]
            if (pd.api.types.is_numeric_dtype(col) and col.notna().all()
                    and col.nunique() == 1):
                raise InputError(f"regressor {text} does not vary: every city has the value "
                                 f"{col.iloc[0]}, so its coefficient cannot be told apart from "
                                 f"the constant; drop it from the formula")


def build_quadratic(data, formula: str, quadratic: str, weights=None, spatial_lag: bool = False,
                    id_column: str = "city") -> QuadraticData:
    """Evaluate ``formula`` with A = ``quadratic`` and its square (term ``"A^2"``).

    ``data``: a DataFrame, a .csv or a prepared .nc (its cross-section and stored weights, as in
    :func:`models.spec.system.build_system`). ``spatial_lag`` adds W(y) (a one-equation SAR) and needs
    weights (given, or stored in the .nc); a W(y) written in the formula counts as the same.
    Bad input raises :class:`InputError` in one line: A not a term of the formula, A with at most
    two distinct values (A² collinear with A), a regressor without variation, a spatial lag
    without weights, or anything :func:`models.spec.system.build_system` rejects.
    """
    frame, stored = read_data(data, id_column)
    frame = frame.copy()
    placeholder = f"{quadratic}__squared"
    while placeholder in frame.columns:
        placeholder += "_"
    text, dep = _rewrite(formula, quadratic, placeholder, spatial_lag)
    _check_columns(frame, quadratic, formula)
    if weights is None:
        weights = stored
    uses_lag = spatial_lag or f"W({dep})" in text.replace(" ", "")
    if uses_lag and weights is None:
        raise InputError("--spatial-lag needs spatial weights: give --weights W.gal (or a "
                         "prepared .nc that stores them)")
    frame[placeholder] = pd.to_numeric(frame[quadratic], errors="coerce") ** 2
    try:
        # weights only when a W() term needs them: an unused W would make the Bayesian
        # model ask for its spectrum
        system = build_system(parse_system([text]), frame,
                              weights if W_CALL.search(text) else None, id_column=id_column)
    except InputError as err:
        raise InputError(str(err).replace(placeholder, square_name(quadratic))) from None
    eq = system.spec.equations[0]
    renamed = tuple(square_name(quadratic) if t == placeholder else t for t in eq.exogenous)
    spec = SystemSpec((dataclasses.replace(eq, exogenous=renamed),), system.spec.instruments)
    object.__setattr__(spec, "_parsed", getattr(system.spec, "_parsed", None))
    system = dataclasses.replace(system, spec=spec, _cache={})
    values = np.asarray(system.X[0][:, renamed.index(quadratic)], dtype=float)
    return QuadraticData(system=system, term=quadratic, square=square_name(quadratic),
                         values=values, spatial_lag=uses_lag)
