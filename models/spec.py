"""The one system specification shared by the frequentist and the Bayesian estimators.

A system of G equations (METHOD.md §2) is written as formulas such as

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

Splitting W() terms and dependents out of the formula is done here by hand because no formula
library knows about system dependents or spatial lags; everything else is formulaic's job.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import Formula, model_matrix

from data_prep.errors import InputError

_LAG = re.compile(r"^W\((.*)\)$", re.S)
_W_CALL = re.compile(r"(?<![\w.])W\(")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
# A column is dropped from H when its component orthogonal to the kept ones is this small
# relative to its own norm: exact duplicates/collinearity leave ~1e-15, real signal far more.
COLLINEAR_TOL = 1e-8


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
        return tuple(f"W({v})" for v in self.spatial_lags) + self.endogenous + self.exogenous

    @property
    def endogenous_terms(self) -> tuple[str, ...]:
        """The right-hand-side terms that need instruments (lags of dependents included)."""
        return tuple(f"W({v})" for v in self.spatial_lags) + self.endogenous


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
                   or any(t.startswith("W(") for t in eq.exogenous) for eq in self.equations)

    def equation(self, dependent: str) -> EquationSpec:
        for eq in self.equations:
            if eq.dependent == dependent:
                return eq
        raise KeyError(dependent)


# ----------------------------------------------------------------------------- parsing

def _split_top(text: str) -> list[tuple[str, str]]:
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
class _Parsed:
    dependent: str
    formula: str
    intercept: bool
    pieces: tuple[tuple[str, str, str], ...]   # (kind, sign, text); kind lag|endog|durbin|exog


def _parse_one(formula: str) -> tuple[str, list[tuple[str, str]]]:
    if formula.count("~") != 1:
        raise InputError(f"formula {formula!r}: expected exactly one '~' (\"y ~ x1 + x2\")")
    lhs, rhs = (s.strip() for s in formula.split("~"))
    if not _NAME.match(lhs):
        raise InputError(f"formula {formula!r}: the left-hand side must be one column name, "
                         f"not {lhs!r}")
    if not rhs:
        raise InputError(f"equation {lhs}: the right-hand side is empty")
    try:
        pieces = _split_top(rhs)
    except ValueError as err:
        raise InputError(f"equation {lhs}: cannot read {rhs!r} ({err})") from None
    return lhs, pieces


def _classify(dep: str, formula: str, pieces, dependents: set[str]) -> _Parsed:
    intercept = True
    out: list[tuple[str, str, str]] = []
    for sign, text in pieces:
        if text in ("0", "1"):
            intercept = (text == "1") == (sign == "+")
            continue
        lag = _LAG.match(text)
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
            _reject_dependents(dep, text, inner, dependents)
            out.append(("durbin", sign, inner))
            continue
        if _W_CALL.search(text):
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
        _reject_dependents(dep, text, text, dependents)
        out.append(("exog", sign, text))
    if not intercept and not out:
        raise InputError(f"equation {dep}: no regressors")
    return _Parsed(dep, formula, intercept, tuple(out))


def _reject_dependents(dep: str, term: str, expr: str, dependents: set[str]) -> None:
    """A transform or interaction of a dependent would be endogenous but is not modelled."""
    try:
        used = set(Formula(f"0 + {expr}").required_variables)
    except Exception as err:  # formulaic's parse errors are many classes
        raise InputError(f"equation {dep}: cannot read term {term!r} ({err})") from None
    bad = sorted(used & dependents)
    if bad:
        raise InputError(f"equation {dep}: term {term!r} transforms the system dependent "
                         f"{', '.join(bad)}; only plain dependents and W(dependent) are supported")


def _unique(items) -> tuple:
    return tuple(dict.fromkeys(items))


def _spatial_error_set(spatial_errors, dependents: tuple[str, ...]) -> set[str]:
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
    split = [_parse_one(f) for f in formulas]
    deps = [d for d, _ in split]
    dupes = sorted({d for d in deps if deps.count(d) > 1})
    if dupes:
        raise InputError(f"the dependent {', '.join(dupes)} has more than one equation")
    depset = set(deps)
    parsed = [_classify(d, f, p, depset) for (d, p), f in zip(split, formulas)]
    with_err = _spatial_error_set(spatial_errors, tuple(deps))
    if isinstance(instruments, str):
        instruments = [s for s in instruments.split(",")]
    inst = _unique(s.strip() for s in instruments if s and s.strip())
    bad = [q for q in inst if q in depset]
    if bad:
        raise InputError(f"instrument {', '.join(bad)} is a dependent of the system; "
                         f"an endogenous variable cannot instrument")
    equations = tuple(_equation_from(p, p.dependent in with_err, names=None) for p in parsed)
    spec = SystemSpec(equations, inst)
    object.__setattr__(spec, "_parsed", tuple(parsed))
    return spec


def _equation_from(p: _Parsed, spatial_error: bool, names: tuple[str, ...] | None) -> EquationSpec:
    lags = _unique(t for k, _, t in p.pieces if k == "lag")
    endog = _unique(t for k, _, t in p.pieces if k == "endog")
    if names is None:  # provisional names before data: one per term as written
        names = (("Intercept",) if p.intercept else ()) + _unique(
            (f"W({t})" if k == "durbin" else t) for k, s, t in p.pieces
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
                first = [(_lag_name(nm, 1), self.W @ c) for nm, c in lagged]
                second = [(_lag_name(nm, 2), self.W @ c)
                          for (nm, _), (_, c) in zip(lagged, first)]
                cols += first + second
            user = [(nm, self.Q[:, k]) for k, nm in enumerate(self.spec.instruments)]
            kept, dropped_user = _independent(cols, user)
            if dropped_user:
                warnings.warn(f"instrument {', '.join(dropped_user)} adds nothing: it is a copy "
                              f"or linear combination of the system's exogenous variables "
                              f"(or their spatial lags), so it was left out", stacklevel=2)
            H = np.column_stack([c for _, c in kept]) if kept else np.empty((self.n, 0))
            self._cache[key] = (H, tuple(nm for nm, _ in kept))
        return self._cache[key]


_POWER = re.compile(r"^W(\d*)\((.*)\)$", re.S)


def _lag_name(name: str, power: int) -> str:
    """Name of W^power applied to column ``name``: "W(x)", "W2(x)"; a Durbin column "W(x)"
    lagged once is "W2(x)", so numerically identical columns also share their name."""
    m = _POWER.match(name)
    if m and name != "Intercept":
        power += int(m.group(1) or 1)
        name = m.group(2)
    return f"W({name})" if power == 1 else f"W{power}({name})"


def _independent(cols, user) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """Keep columns in order, dropping name duplicates and columns in the span of kept ones.

    Greedy Gram–Schmidt with one re-orthogonalisation ("twice is enough"), O(n k²): the first of
    a set of collinear columns is kept, which a pivoted QR would not guarantee.
    """
    allcols = list(cols) + list(user)
    kept: list[tuple[str, np.ndarray]] = []
    names: set[str] = set()
    dropped_user: list[str] = []
    n_regular = len(cols)
    basis = np.empty((len(allcols[0][1]) if allcols else 0, len(allcols)))
    r_used = 0
    for pos, (name, col) in enumerate(allcols):
        if name in names:
            continue
        col = np.asarray(col, dtype=float)
        norm = np.linalg.norm(col)
        r = col.copy()
        B = basis[:, :r_used]
        for _ in range(2):
            r -= B @ (B.T @ r)
        rn = np.linalg.norm(r)
        if norm == 0 or rn <= COLLINEAR_TOL * norm:
            if pos >= n_regular:
                dropped_user.append(name)
            continue
        basis[:, r_used] = r / rn
        r_used += 1
        kept.append((name, col))
        names.add(name)
    return kept, dropped_user


def _cities_text(cities, mask, limit: int = 5) -> str:
    bad = [str(c) for c in np.asarray(cities)[mask]]
    more = f" and {len(bad) - limit} more" if len(bad) > limit else ""
    return ", ".join(bad[:limit]) + more


def _check_finite(values: np.ndarray, column: str, cities, where: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"{where}column {column} has missing or non-finite values for "
                         f"{bad.sum()} cities: {_cities_text(cities, bad)}")


def _read_data(data, id_column: str):
    """Return (DataFrame, weights found alongside the data or None)."""
    if isinstance(data, pd.DataFrame):
        return data, None
    path = Path(str(data))
    if not path.exists():
        raise InputError(f"data file {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            return pd.read_csv(path), None
        except Exception as err:
            raise InputError(f"{path}: cannot read as CSV ({err})") from None
    if suffix == ".nc":
        from data_prep.dataset import cross_section, load_dataset
        from data_prep.weights import weights_from_dataset

        ds = load_dataset(path)
        frame = cross_section(ds)
        weights = weights_from_dataset(ds) if "weight_origin" in ds else None
        return frame, weights
    raise InputError(f"data file {path}: unknown format {suffix!r} (expected .csv or .nc)")


def _align_weights(weights, cities: np.ndarray) -> sp.csr_matrix:
    """Weights as a CSR matrix whose rows/columns follow the data's city order."""
    n = cities.size
    if isinstance(weights, (str, Path)):
        from data_prep.weights import weights_from_file

        weights = weights_from_file(weights)
    if sp.issparse(weights):
        W = sp.csr_matrix(weights, dtype=float)
        if W.shape != (n, n):
            raise InputError(f"weights matrix has shape {W.shape} but the data have {n} cities")
    elif hasattr(weights, "matrix") and hasattr(weights, "cities"):
        wc = np.asarray(weights.cities, dtype=str)
        pos = {c: i for i, c in enumerate(wc)}
        missing = [c for c in cities if c not in pos]
        extra = sorted(set(wc) - set(cities))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} data cities have no weights "
                             f"({_cities_text(np.array(missing), slice(None))})")
            if extra:
                parts.append(f"{len(extra)} weights cities are not in the data "
                             f"({_cities_text(np.array(extra), slice(None))})")
            raise InputError(f"weights ({getattr(weights, 'source', 'given')}) do not match the "
                             f"data: {'; '.join(parts)}")
        idx = np.array([pos[c] for c in cities])
        W = sp.csr_matrix(weights.matrix, dtype=float)[idx][:, idx]
    else:
        raise InputError(f"weights must be a SpatialWeights, a sparse matrix or a file path, "
                         f"not {type(weights).__name__}")
    if not np.all(np.isfinite(W.data)):
        raise InputError("weights contain missing or non-finite values")
    return sp.csr_matrix(W)


def _numeric_check(frame: pd.DataFrame, column: str, where: str) -> None:
    s = frame[column]
    if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
        raise InputError(f"{where}column {column} is not numeric (e.g. {s.iloc[0]!r}); "
                         f"write C({column}) to use it as a categorical variable")


def _formula_frame(frame: pd.DataFrame, formula: str, dep: str) -> pd.DataFrame:
    try:
        # invalid values (log of a negative) become NaN and are reported by _check_finite
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return model_matrix(Formula(formula, _ordering="none"), frame, na_action="ignore")
    except Exception as err:  # formulaic raises many error classes for bad terms
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"equation {dep}: cannot evaluate {formula!r} ({msg})") from None


def _exogenous_design(p: _Parsed, frame: pd.DataFrame, W, cities):
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
        if kind in ("exog", "durbin") and _NAME.match(text):
            _numeric_check(frame, text, where)

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
                _check_finite(x, col, cities, where)
                out.setdefault(f"W({col})", W @ x)
    for term in slices:  # anything formulaic expanded that the walk did not reach
        emit_term(term)
    names = tuple(out)
    mat = np.column_stack(list(out.values())) if out else np.empty((len(frame), 0))
    for k, name in enumerate(names):
        _check_finite(mat[:, k], name, cities, where)
    return names, mat


def _check_full_rank(dep: str, names: tuple[str, ...], X: np.ndarray) -> None:
    kept, _ = _independent([(nm, X[:, k]) for k, nm in enumerate(names)], [])
    lost = [nm for nm in names if nm not in {k for k, _ in kept}]
    if lost:
        raise InputError(f"equation {dep}: exogenous column {', '.join(lost)} is constant zero, "
                         f"a duplicate or a linear combination of the others; remove it")


def check_identification(system: SystemData, spatial: bool = True) -> None:
    """Order and rank conditions per equation with the instruments of ``system.instruments``.

    Order: the excluded instruments (columns of H beyond the equation's own exogenous columns)
    must be at least as many as its endogenous regressors, lags of dependents included.
    Rank: the projection of Z_j on H must have full column rank (computed through a thin QR
    of H, never the n × n projection matrix). Raises InputError naming the equation.
    """
    H, hnames = system.instruments(spatial)
    Qh = np.linalg.qr(H)[0] if H.shape[1] else np.empty((system.n, 0))
    for j, eq in enumerate(system.spec.equations):
        endo = eq.endogenous + tuple(f"W({v})" for v in eq.spatial_lags)
        k_j = system.X[j].shape[1]
        excluded = H.shape[1] - k_j
        if len(endo) > excluded:
            raise InputError(
                f"equation {eq.dependent}: {len(endo)} endogenous regressor"
                f"{'s' if len(endo) > 1 else ''} ({', '.join(endo)}) "
                f"but only {max(excluded, 0)} excluded instruments; add exogenous variables "
                f"excluded from this equation, their spatial lags, or --instruments")
        Z = system.Z(j)
        proj = Qh @ (Qh.T @ Z)
        rank = np.linalg.matrix_rank(proj)
        if rank < Z.shape[1]:
            raise InputError(
                f"equation {eq.dependent}: the instruments cannot tell its {Z.shape[1]} "
                f"regressors apart (rank {rank}); add exogenous variables excluded from this "
                f"equation, their spatial lags, or --instruments")


def identification_note(system: SystemData | SystemSpec) -> str | None:
    """Plain-words note when an equation leans on spatial lags of X for identification.

    An equation's excluded instruments that are not spatial lags are the system's exogenous
    variables it leaves out plus the extra instruments. If it has none while having endogenous
    regressors, every excluded instrument is a spatial lag (W x, W² x): identification rests on
    the spatial structure alone (METHOD.md §2, identification warning: identical X sets made the
    seed-like system multi-modal). If it has fewer than its contemporaneous endogenous
    regressors, some of those are identified only through the spatial lags. Returns None when no
    equation is in either case; one line per equation otherwise.
    """
    spec = system.spec if isinstance(system, SystemData) else system
    union = _unique(nm for eq in spec.equations for nm in eq.exogenous)
    lines = []
    for eq in spec.equations:
        endo = eq.endogenous + tuple(f"W({v})" for v in eq.spatial_lags)
        plain = len(spec.instruments) + sum(
            1 for nm in union if nm not in eq.exogenous and not _POWER.match(nm))
        hint = ("An exogenous variable left out of this equation, or --instruments, would "
                "strengthen identification.")
        if endo and plain == 0:
            lines.append(
                f"equation {eq.dependent}: every excluded instrument is a spatial lag (W x, W² x) "
                f"of an exogenous variable, so its endogenous regressor{'s' * (len(endo) > 1)} "
                f"({', '.join(endo)}) {'are' if len(endo) > 1 else 'is'} identified only through "
                f"the spatial structure; estimates may be weak or unstable. {hint}")
        elif plain < len(eq.endogenous):
            lines.append(
                f"equation {eq.dependent}: only {plain} excluded instrument"
                f"{'s' * (plain > 1)} besides spatial lags for {len(eq.endogenous)} endogenous "
                f"regressors ({', '.join(eq.endogenous)}), so part of the identification rests "
                f"on the spatial structure alone; estimates may be weak or unstable. {hint}")
    return "\n".join(lines) or None


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
    frame, stored = _read_data(data, id_column)
    if id_column not in frame.columns:
        raise InputError(f"the data have no id column {id_column!r} "
                         f"(columns: {', '.join(map(str, frame.columns[:10]))})")
    cities = frame[id_column].astype(str).to_numpy()
    dup = pd.Series(cities).duplicated(keep=False).to_numpy()
    if dup.any():
        raise InputError(f"the id column {id_column} repeats cities: {_cities_text(cities, dup)}")
    frame = frame.reset_index(drop=True)
    if weights is None:
        weights = stored
    W = _align_weights(weights, cities) if weights is not None else None
    if W is None:
        for eq in spec.equations:
            lagged = [f"W({v})" for v in eq.spatial_lags]
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
        _numeric_check(frame, dep, f"equation {dep}: ")
        y = frame[dep].to_numpy(dtype=float)
        _check_finite(y, dep, cities, f"equation {dep}: ")
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
        if _NAME.match(q) and q not in frame.columns:
            raise InputError(f"instrument {q}: unknown variable (not a column of the data)")
        if _NAME.match(q):
            _numeric_check(frame, q, "instrument ")
        m = _formula_frame(frame, f"0 + {q}", q)
        if m.shape[1] != 1:
            raise InputError(f"instrument {q} gives {m.shape[1]} columns; give one column each")
        v = m.iloc[:, 0].to_numpy(dtype=float)
        _check_finite(v, q, cities, "instrument ")
        Qcols.append(v)
    Q = np.column_stack(Qcols) if Qcols else np.empty((len(cities), 0))

    final = SystemSpec(tuple(equations), spec.instruments)
    object.__setattr__(final, "_parsed", tuple(parsed))
    system = SystemData(final, cities, W, Y, X, Q)
    if check:
        check_identification(system, spatial=W is not None and final.uses_weights)
    return system
