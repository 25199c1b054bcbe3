"""Structural simulator: draws data from the spatial simultaneous system with known parameters.

The system (docs/method.md §2) for G dependents y_1..y_G over n cities is

    y_g = Σ_h B1[g,h] W y_h + Σ_{h≠g} B0[g,h] y_h + X_g β_g + u_g,
    u_g = ρ_g W u_g + ε_g,        (ε_1r, …, ε_Gr) ~ iid N(0, Σ) over cities r,

i.e. 𝒜 y = X̃ b + u with 𝒜 = I_Gn − (B0 ⊗ I_n + B1 ⊗ W), y stacked by equation. The simulator
solves that sparse Gn × Gn system (never a dense inverse), so it scales to large maps. Terms use
the names of the shared system specification: ``Intercept``, ``x`` (exogenous), ``W(x)`` (Durbin
lag of an exogenous variable), ``W(y)`` (spatial lag of a dependent), ``y`` (contemporaneous
endogenous regressor). The recovery tests of every estimator draw their data here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from data_prep.errors import InputError
from data_prep.terms import lag_target, structural_slot
from data_prep.weights import SpatialWeights, row_standardise


@dataclass
class SystemTruth:
    """True parameters: equation → term → coefficient, the error covariance and spatial-error ρ."""

    coefficients: dict[str, dict[str, float]]
    Sigma: np.ndarray
    rho: dict[str, float] = field(default_factory=dict)

    @property
    def dependents(self) -> tuple[str, ...]:
        return tuple(self.coefficients)


@dataclass
class SimulatedSystem:
    """Simulated data with the truth that generated it."""

    data: pd.DataFrame
    formulas: list[str]
    truth: SystemTruth
    W: sp.csr_matrix
    cities: np.ndarray


def default_truth(dependents: Sequence[str] = ("ER", "PSS")) -> SystemTruth:
    """An identified two-equation system shaped like the paper's ER ↔ agglomeration pair.

    Both equations carry own and cross spatial lags and the other dependent; they share x1, x2,
    and each has one excluded exogenous variable (z1 only in the first, z2 only in the second),
    so identification does not rest on spatial lags alone (docs/method.md §2, identification warning).
    """
    y1, y2 = dependents
    coefficients = {
        y1: {f"W({y1})": 0.30, f"W({y2})": 0.20, y2: 0.40,
             "Intercept": 1.0, "x1": 1.0, "x2": -0.5, "z1": 0.8},
        y2: {f"W({y2})": 0.25, f"W({y1})": -0.15, y1: -0.30,
             "Intercept": 0.5, "x1": 0.5, "x2": 0.7, "z2": 1.0},
    }
    return SystemTruth(coefficients, np.array([[1.0, 0.3], [0.3, 0.8]]))


def structural_parts(truth: SystemTruth):
    """Split the coefficient dicts into B0, B1 and the exogenous terms of each equation."""
    deps = truth.dependents
    index = {d: g for g, d in enumerate(deps)}
    G = len(deps)
    B0, B1 = np.zeros((G, G)), np.zeros((G, G))
    exog: list[dict[str, float]] = []
    for g, dep in enumerate(deps):
        terms: dict[str, float] = {}
        for term, value in truth.coefficients[dep].items():
            slot = structural_slot(term, index)
            if slot is None:
                terms[term] = value
            elif slot[1] == 1:
                B1[g, index[slot[0]]] = value
            elif term == dep:
                raise InputError(f"equation {dep}: a dependent cannot be its own regressor")
            else:
                B0[g, index[term]] = value
        exog.append(terms)
    return B0, B1, exog


def _as_matrix(weights) -> tuple[sp.csr_matrix, np.ndarray]:
    if sp.issparse(weights):
        W = sp.csr_matrix(weights, dtype=float)
        return W, np.array([f"c{i:05d}" for i in range(W.shape[0])])
    return sp.csr_matrix(weights.matrix, dtype=float), np.asarray(weights.cities, dtype=str)


def simulate_system(weights, truth: SystemTruth | None = None, seed: int = 0,
                    exogenous: pd.DataFrame | None = None,
                    error_sd: np.ndarray | None = None, errors: str = "normal",
                    nu: float = 3.0, outlier_share: float = 0.0) -> SimulatedSystem:
    """Draw one data set from the structural system with parameters ``truth``.

    Exogenous base variables are iid N(0, 1) unless ``exogenous`` gives them (one row per city in
    the weights' order, a column per base variable; the errors are then the random paper's first draws);
    errors are N(0, Σ) across equations — times ``error_sd[r]`` for city r when given
    (heteroskedastic: Var(ε_r) = error_sd[r]² Σ) — filtered by (I − ρ_g W)⁻¹ where ρ_g is
    given. ``errors="student-t"``: each city's error vector is multivariate Student-t(ν, Σ),
    ε_r = z_r / √w_r with z_r ~ N(0, Σ) and w_r ~ Gamma(ν/2, rate ν/2) (the scale mixture of
    the Bayesian model, docs/method.md §2c). ``outlier_share``: that share of cities (rounded, drawn
    at random) get their error vector times :data:`OUTLIER_FACTOR`, gross outliers outside
    either error law. Returns the
    data (``city``, dependents, exogenous bases) and one formula per equation in the
    specification's syntax.
    """
    truth = truth or default_truth()
    W, cities = _as_matrix(weights)
    n = W.shape[0]
    deps = truth.dependents
    G = len(deps)
    Sigma = np.asarray(truth.Sigma, dtype=float)
    if Sigma.shape != (G, G):
        raise InputError(f"Sigma has shape {Sigma.shape}, expected ({G}, {G}) for equations {deps}")
    B0, B1, exog = structural_parts(truth)
    rng = np.random.default_rng(seed)

    bases = sorted({lag_target(t) or t for terms in exog for t in terms} - {"Intercept"})
    if exogenous is None:
        X = {name: rng.standard_normal(n) for name in bases}
    else:
        absent = [b for b in bases if b not in exogenous.columns]
        if absent:
            raise InputError(f"exogenous data lack column(s) {', '.join(absent)}")
        if len(exogenous) != n:
            raise InputError(f"exogenous data have {len(exogenous)} rows, the weights {n} cities")
        X = {name: exogenous[name].to_numpy(dtype=float) for name in bases}

    def column(term: str) -> np.ndarray:
        if term == "Intercept":
            return np.ones(n)
        base = lag_target(term)
        return W @ X[base] if base else X[term]

    eps = _errors(rng, Sigma, n, errors, nu, outlier_share)
    if error_sd is not None:
        eps *= np.asarray(error_sd, dtype=float).reshape(n, 1)
    rhs = np.empty((n, G))
    for g, dep in enumerate(deps):
        u = eps[:, g]
        rho = truth.rho.get(dep, 0.0)
        if rho:
            u = splu(sp.csc_matrix(sp.identity(n) - rho * W)).solve(u)
        rhs[:, g] = sum(v * column(t) for t, v in exog[g].items()) + u

    A = sp.identity(G * n, format="csc") - sp.kron(B0, sp.identity(n)) - sp.kron(B1, W)
    try:
        y = splu(sp.csc_matrix(A)).solve(rhs.T.reshape(-1))
    except RuntimeError as err:
        raise InputError(f"the system matrix is singular for these parameters ({err})") from None
    Y = y.reshape(G, n).T

    data = pd.DataFrame({"city": cities})
    for g, dep in enumerate(deps):
        data[dep] = Y[:, g]
    for name in bases:
        data[name] = X[name]
    formulas = []
    for dep in deps:
        terms = [t for t in truth.coefficients[dep] if t != "Intercept"]
        rhs_text = " + ".join(terms) if terms else "1"
        if "Intercept" not in truth.coefficients[dep]:
            rhs_text += " - 1"
        formulas.append(f"{dep} ~ {rhs_text}")
    return SimulatedSystem(data, formulas, truth, W, cities)


OUTLIER_FACTOR = 10.0
ERRORS = ("normal", "student-t")


def _errors(rng: np.random.Generator, Sigma: np.ndarray, n: int, errors: str, nu: float,
            outlier_share: float) -> np.ndarray:
    """(n, G) error vectors: N(0, Σ), or t_ν(0, Σ) as z_r/√w_r, w_r ~ Gamma(ν/2, rate ν/2);
    then round(share · n) random cities scaled by :data:`OUTLIER_FACTOR`."""
    if errors not in ERRORS:
        raise InputError(f"errors must be one of {', '.join(ERRORS)}, not {errors!r}")
    if not nu > 0:
        raise InputError(f"the degrees of freedom nu must be positive, not {nu}")
    if not 0.0 <= outlier_share <= 1.0:
        raise InputError(f"outlier_share must lie between 0 and 1, not {outlier_share}")
    # normal errors are the paper's first error draws, as before the Student-t option existed
    eps = rng.multivariate_normal(np.zeros(Sigma.shape[0]), Sigma, size=n)
    if errors == "student-t":
        eps /= np.sqrt(rng.gamma(0.5 * nu, 2.0 / nu, size=n))[:, None]
    count = int(round(outlier_share * n))
    if count:
        eps[rng.choice(n, size=count, replace=False)] *= OUTLIER_FACTOR
    return eps


def lattice_weights(side: int, contiguity: str = "rook"):
    """Row-standardised rook or queen contiguity on a side × side lattice (n = side²), for tests.

    The binary relation is symmetric, so the spectrum of W is real.
    """
    if contiguity not in ("rook", "queen"):
        raise InputError(f"contiguity must be 'rook' or 'queen', not {contiguity!r}")
    i, j = np.divmod(np.arange(side * side), side)
    shifts = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if contiguity == "queen" else [])
    rows, cols = [], []
    for di, dj in shifts:
        ok = (i + di < side) & (j + dj >= 0) & (j + dj < side)
        a, b = (i * side + j)[ok], ((i + di) * side + j + dj)[ok]
        rows += [a, b]
        cols += [b, a]
    r, c = np.concatenate(rows), np.concatenate(cols)
    C = sp.csr_matrix((np.ones(r.size), (r, c)), shape=(side * side,) * 2)
    W = row_standardise(C)
    cities = tuple(f"c{i:05d}" for i in range(side * side))
    return SpatialWeights(matrix=W, cities=cities, transform="R", symmetric_relation=True,
                          source=f"{contiguity} lattice {side}x{side}", island_policy="refuse",
                          islands=(), n_components=1)
