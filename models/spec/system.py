"""The one system specification shared by the frequentist and the Bayesian estimators.

A system of G equations (docs/method.md §2) is written as formulas such as

    "ER ~ PSS + W(ER) + W(PSS) + Gov + log(PGDP) - 1"

On the right-hand side ``W(v)`` is a spatial lag W·v: if v is a dependent of the system it is a
*spatial lag* (own or cross, endogenous); otherwise it is a Durbin term of an exogenous variable,
named ``"W(v)"`` and computed as W @ x. A plain regressor that is another equation's dependent is
a contemporaneous *endogenous* regressor. Everything else is exogenous and is handed to
``formulaic`` so that transforms (``log(x)``), categoricals (``C(tier)``) and interactions work;
the intercept (term ``"Intercept"``) is included unless ``- 1`` / ``+ 0``.

Equation j then reads y_j = Z_j δ_j + u_j with Z_j = [W·y_lags, endogenous, X_j] (that column
order is ``EquationSpec.terms``). Kelejian & Prucha (2004) instrument every equation with
H = [X_u, W X_u, W² X_u] over the union X_u of the system's exogenous columns, the constant's lags
dropped, duplicates and exactly collinear columns dropped, extra excluded instruments appended.

Modules behind this one: ``models.spec.formula`` (the hand-written term splitter: no formula library
knows about other equations' dependents or spatial lags), ``models.spec.instruments`` (lag names,
independent-column selection), ``models.spec.inputs`` (data and weights reading, checks) and
``models.spec.identification`` (order/rank conditions, the spatial-lags-only note).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import Formula, model_matrix

from data_prep.errors import InputError
from data_prep.terms import is_lag, lag_name
from models.spec.formula import (NAME, ParsedEquation, classify_terms, plain_error_text,
                            read_formula, spatial_error_set, unique)
from models.spec.identification import check_identification, identification_note
from models.spec.inputs import align_weights, check_finite, cities_text, numeric_check, read_data
from models.spec.instruments import independent_columns

__all__ = ["EquationSpec", "SystemSpec", "SystemData", "parse_system", "build_system",
           "check_identification", "identification_note"]


@dataclass(frozen=True)
class EquationSpec:
    """One structural equation: dependent, its spatial lags, endogenous and exogenous terms."""

    dependent: str
    formula: str
    spatial_lags: tuple[str, ...]
    endogenous: tuple[str, ...]
    exogenous: tuple[str, ...]
    spatial_error: bool = False

    @property
    def terms(self) -> tuple[str, ...]:
        """Column order of Z_j: spatial lags W(v), endogenous regressors, exogenous terms."""
        return tuple(lag_name(v) for v in self.spatial_lags) + self.endogenous + self.exogenous

    @property
    def endogenous_terms(self) -> tuple[str, ...]:
        """The right-hand-side terms that need instruments (lags of dependents included)."""
        return tuple(lag_name(v) for v in self.spatial_lags) + self.endogenous


@dataclass(frozen=True)
class SystemSpec:
    """A system of equations plus extra excluded instruments (column names)."""

    equations: tuple[EquationSpec, ...]
    instruments: tuple[str, ...] = ()

    @property
    def dependents(self) -> tuple[str, ...]:
        return tuple(eq.dependent for eq in self.equations)

    @property
    def uses_weights(self) -> bool:
        """True if any equation has a W() term or spatially autoregressive errors."""
        return any(eq.spatial_error or eq.spatial_lags
                   or any(is_lag(t) for t in eq.exogenous) for eq in self.equations)

    def structural_matrices(self, coefficient) -> tuple[np.ndarray, np.ndarray]:
        """B0 (contemporaneous endogenous) and B1 (spatial lags) of 𝒜 = I − (B0 ⊗ I + B1 ⊗ W).

        ``coefficient(equation, term)`` gives the value of a term; B0[g, h] is equation g's
        coefficient on y_h and B1[g, h] its coefficient on W(y_h) (docs/method.md §2b).
        """
        index = {d: g for g, d in enumerate(self.dependents)}
        G = len(index)
        B0, B1 = np.zeros((G, G)), np.zeros((G, G))
        for g, eq in enumerate(self.equations):
            for v in eq.spatial_lags:
                B1[g, index[v]] = coefficient(eq.dependent, lag_name(v))
            for v in eq.endogenous:
                B0[g, index[v]] = coefficient(eq.dependent, v)
        return B0, B1

    def equation(self, dependent: str) -> EquationSpec:
        for eq in self.equations:
            if eq.dependent == dependent:
                return eq
        raise KeyError(dependent)


# ----------------------------------------------------------------------------- parsing

def parse_system(formulas: Sequence[str] | str, instruments: Sequence[str] | str = (),
                 spatial_errors: str | Sequence[str] = "none") -> SystemSpec:
    """Parse one formula per equation into a :class:`SystemSpec`.

    ``instruments``: extra excluded instruments (column names; a comma string is split).
    ``spatial_errors``: "none", "all", a comma string or a sequence of dependents whose
    disturbances follow u = ρ W u + ε. The exogenous term names are only known once data are
    seen (categorical levels, transform names); here they are the names formulaic gives a
    single-column term, refined by :func:`build_system`.
    """
    if isinstance(formulas, str):
        formulas = [formulas]
    if not formulas:
        raise InputError("no equations given (use --equation \"y ~ x1 + x2\")")
    split = [read_formula(f) for f in formulas]
    deps = [d for d, _ in split]
    dupes = sorted({d for d in deps if deps.count(d) > 1})
    if dupes:
        raise InputError(f"the dependent {', '.join(dupes)} has more than one equation")
    depset = set(deps)
    parsed = [classify_terms(d, f, p, depset) for (d, p), f in zip(split, formulas)]
    with_err = spatial_error_set(spatial_errors, tuple(deps))
    if isinstance(instruments, str):
        instruments = [s for s in instruments.split(",")]
    inst = unique(s.strip() for s in instruments if s and s.strip())
    bad = [q for q in inst if q in depset]
    if bad:
        raise InputError(f"instrument {', '.join(bad)} is a dependent of the system; "
                         f"an endogenous variable cannot instrument")
    equations = tuple(_equation_from(p, p.dependent in with_err, names=None) for p in parsed)
    spec = SystemSpec(equations, inst)
    object.__setattr__(spec, "_parsed", tuple(parsed))
    return spec


def _equation_from(p: ParsedEquation, spatial_error: bool,
                   names: tuple[str, ...] | None) -> EquationSpec:
    lags = unique(t for k, _, t in p.pieces if k == "lag")
    endog = unique(t for k, _, t in p.pieces if k == "endog")
    if names is None:  # provisional names before data: one per term as written
        names = (("Intercept",) if p.intercept else ()) + unique(
            (lag_name(t) if k == "durbin" else t) for k, s, t in p.pieces
            if k in ("durbin", "exog") and s == "+")
    return EquationSpec(p.dependent, p.formula, lags, endog, tuple(names), spatial_error)


# ----------------------------------------------------------------------------- data

@dataclass(eq=False)
class SystemData:
    """Data of a system aligned with its specification (rows = cities, in ``cities`` order)."""

    spec: SystemSpec
    cities: np.ndarray
    W: sp.csr_matrix | None
    Y: np.ndarray
    X: list[np.ndarray]
    Q: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return int(self.Y.shape[0])

    @property
    def G(self) -> int:
        return int(self.Y.shape[1])

    def y(self, j: int) -> np.ndarray:
        return self.Y[:, j]

    def Z(self, j: int) -> np.ndarray:
        """Regressors of equation j, columns ``spec.equations[j].terms`` (W y via sparse W)."""
        eq = self.spec.equations[j]
        index = {d: g for g, d in enumerate(self.spec.dependents)}
        cols = [self.W @ self.Y[:, index[v]] for v in eq.spatial_lags]
        cols += [self.Y[:, index[v]] for v in eq.endogenous]
        blocks = [np.column_stack(cols)] if cols else []
        blocks.append(self.X[j])
        return np.hstack(blocks) if blocks else np.empty((self.n, 0))

    def exogenous_union(self) -> tuple[np.ndarray, tuple[str, ...]]:
        """Union of all equations' exogenous columns by name, in order of first appearance."""
        if "union" not in self._cache:
            cols: dict[str, np.ndarray] = {}
            for eq, Xj in zip(self.spec.equations, self.X):
                for k, name in enumerate(eq.exogenous):
                    cols.setdefault(name, Xj[:, k])
            names = tuple(cols)
            mat = np.column_stack(list(cols.values())) if cols else np.empty((self.n, 0))
            self._cache["union"] = (mat, names)
        return self._cache["union"]

    def instruments(self, spatial: bool = True) -> tuple[np.ndarray, tuple[str, ...]]:
        """Instrument matrix H and its column names.

        spatial=True (and weights present): H = [X_u, W X_u, W² X_u] (Kelejian & Prucha 2004),
        lags named "W(x)" and "W2(x)", the Intercept's lags dropped; spatial=False (or no
        weights): H = [X_u]. Columns duplicated by name or exactly collinear with earlier ones
        are dropped (the first is kept), then the extra instruments Q are appended (a Q column
        collinear with H is dropped with a warning).
        """
        key = ("H", bool(spatial) and self.W is not None)
        if key not in self._cache:
            Xu, names = self.exogenous_union()
            cols = [(nm, Xu[:, k]) for k, nm in enumerate(names)]
            if key[1]:
                lagged = [(nm, Xu[:, k]) for k, nm in enumerate(names) if nm != "Intercept"]
                first = [(lag_name(nm, 1), self.W @ c) for nm, c in lagged]
                second = [(lag_name(nm, 2), self.W @ c)
                          for (nm, _), (_, c) in zip(lagged, first)]
                cols += first + second
            user = [(nm, self.Q[:, k]) for k, nm in enumerate(self.spec.instruments)]
            kept, dropped_user = independent_columns(cols, user)
            if dropped_user:
                warnings.warn(f"instrument {', '.join(dropped_user)} adds nothing: it is a copy "
                              f"or linear combination of the system's exogenous variables "
                              f"(or their spatial lags), so it was left out", stacklevel=2)
            H = np.column_stack([c for _, c in kept]) if kept else np.empty((self.n, 0))
            self._cache[key] = (H, tuple(nm for nm, _ in kept))
        return self._cache[key]


def _formula_frame(frame: pd.DataFrame, formula: str, dep: str) -> pd.DataFrame:
    try:
        # invalid values (log of a negative) become NaN and are reported by check_finite
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return model_matrix(Formula(formula, _ordering="none"), frame, na_action="ignore")
    except Exception as err:  # formulaic raises many error classes for bad terms
        raise InputError(f"equation {dep}: cannot evaluate {formula!r} "
                         f"({plain_error_text(err)})") from None


def _exogenous_design(p: ParsedEquation, frame: pd.DataFrame, W, cities):
    """Exogenous design of one equation: (names, matrix) in formula order, Intercept first."""
    dep = p.dependent
    where = f"equation {dep}: "
    required: set[str] = set()
    for kind, _, text in p.pieces:
        if kind in ("exog", "durbin"):
            required |= set(Formula(f"0 + {text}").required_variables)
    missing = sorted(required - set(frame.columns))
    if missing:
        raise InputError(f"equation {dep}: unknown variable {', '.join(missing)} "
                         f"(not a column of the data)")
    for kind, _, text in p.pieces:
        if kind in ("exog", "durbin") and NAME.match(text):
            numeric_check(frame, text, where, cities)

    body = [f"{'+' if s == '+' else '-'} {t}" for k, s, t in p.pieces if k == "exog"]
    text = ("1" if p.intercept else "0") + (" " + " ".join(body) if body else "")
    mm = _formula_frame(frame, text, dep)
    slices = {str(term): sl for term, sl in mm.model_spec.term_slices.items()}
    values = mm.to_numpy(dtype=float)
    colnames = list(mm.columns)
    out: dict[str, np.ndarray] = {}

    def emit_term(term: str) -> None:
        sl = slices.get(term)
        if sl is None:
            return
        for k in range(sl.start, sl.stop):
            out.setdefault(colnames[k], values[:, k])

    if p.intercept:
        emit_term("1")
    for kind, sign, txt in p.pieces:
        if sign != "+":
            continue
        if kind == "exog":
            for term in Formula(f"0 + {txt}", _ordering="none"):
                emit_term(str(term))
        elif kind == "durbin":
            if W is None:
                raise InputError(f"equation {dep}: W({txt}) needs spatial weights but none were "
                                 f"given (use --weights)")
            inner = _formula_frame(frame, f"1 + {txt}", dep).drop(columns="Intercept")
            for col in inner.columns:
                x = inner[col].to_numpy(dtype=float)
                check_finite(x, col, cities, where)
                out.setdefault(lag_name(col), W @ x)
    for term in slices:  # anything formulaic expanded that the walk did not reach
        emit_term(term)
    names = tuple(out)
    mat = np.column_stack(list(out.values())) if out else np.empty((len(frame), 0))
    for k, name in enumerate(names):
        check_finite(mat[:, k], name, cities, where)
    return names, mat


def _check_full_rank(dep: str, names: tuple[str, ...], X: np.ndarray) -> None:
    kept, _ = independent_columns([(nm, X[:, k]) for k, nm in enumerate(names)], [])
    lost = [nm for nm in names if nm not in {k for k, _ in kept}]
    if lost:
        raise InputError(f"equation {dep}: exogenous column {', '.join(lost)} is constant zero, "
                         f"a duplicate or a linear combination of the others; remove it")


def build_system(spec: SystemSpec | Sequence[str], data, weights=None,
                 id_column: str = "city", check: bool = True) -> SystemData:
    """Evaluate ``spec`` on ``data`` and align it with the weights.

    data: a DataFrame with an id column, or a path to a .csv or a prepared .nc (the latter
    through ``data_prep.dataset.cross_section``; its stored weights are used when ``weights`` is
    None). weights: SpatialWeights (reordered to the data's cities), a scipy sparse matrix
    aligned with the data rows, or a path (.gal/.gwt/polygon file). With ``check``, the order and
    rank conditions are verified with the instruments the estimators use (spatial lags of X
    only when the system has W() terms or spatial errors and weights are given)
    (see :func:`check_identification`).
    """
    if not isinstance(spec, SystemSpec):
        spec = parse_system(spec)
    frame, stored = read_data(data, id_column)
    if id_column not in frame.columns:
        raise InputError(f"the data have no id column {id_column!r} "
                         f"(columns: {', '.join(map(str, frame.columns[:10]))})")
    cities = frame[id_column].astype(str).to_numpy()
    dup = pd.Series(cities).duplicated(keep=False).to_numpy()
    if dup.any():
        raise InputError(f"the id column {id_column} repeats cities: {cities_text(cities, dup)}")
    frame = frame.reset_index(drop=True)
    if weights is None:
        weights = stored
    W = align_weights(weights, cities) if weights is not None else None
    if W is None:
        for eq in spec.equations:
            lagged = [lag_name(v) for v in eq.spatial_lags]
            if lagged or eq.spatial_error:
                what = ", ".join(lagged) if lagged else "spatially autoregressive errors"
                raise InputError(f"equation {eq.dependent} uses {what} but no spatial weights "
                                 f"were given (use --weights)")

    parsed = getattr(spec, "_parsed", None)
    if parsed is None:
        parsed = parse_system([eq.formula for eq in spec.equations])._parsed
    Ys = []
    for dep in spec.dependents:
        if dep not in frame.columns:
            raise InputError(f"equation {dep}: unknown variable {dep} (not a column of the data)")
        numeric_check(frame, dep, f"equation {dep}: ", cities)
        y = frame[dep].to_numpy(dtype=float)
        check_finite(y, dep, cities, f"equation {dep}: ")
        Ys.append(y)
    Y = np.column_stack(Ys)

    equations, X = [], []
    for p, eq in zip(parsed, spec.equations):
        names, mat = _exogenous_design(p, frame, W, cities)
        _check_full_rank(p.dependent, names, mat)
        equations.append(_equation_from(p, eq.spatial_error, names))
        X.append(mat)

    Qcols = []
    for q in spec.instruments:
        if NAME.match(q) and q not in frame.columns:
            raise InputError(f"instrument {q}: unknown variable (not a column of the data)")
        if NAME.match(q):
            numeric_check(frame, q, "instrument ", cities)
        m = _formula_frame(frame, f"0 + {q}", q)
        if m.shape[1] != 1:
            raise InputError(f"instrument {q} gives {m.shape[1]} columns; give one column each")
        v = m.iloc[:, 0].to_numpy(dtype=float)
        check_finite(v, q, cities, "instrument ")
        Qcols.append(v)
    Q = np.column_stack(Qcols) if Qcols else np.empty((len(cities), 0))

    final = SystemSpec(tuple(equations), spec.instruments)
    object.__setattr__(final, "_parsed", tuple(parsed))
    system = SystemData(final, cities, W, Y, X, Q)
    if check:
        check_identification(system, spatial=W is not None and final.uses_weights)
    return system
