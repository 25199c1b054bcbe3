"""Kelejian–Prucha (1999) generalized-moments estimator of a spatial-error coefficient ρ.

For disturbances u = ρ W u + ε with ε iid (0, σ²), the three moment conditions of Kelejian &
Prucha (1999, eq. 7) written in the residuals ũ (ū = Wũ, ů = W²ũ) are

    g = G · [ρ, ρ², σ²]ᵀ,  g = (1/n)[ũ'ũ, ū'ū, ũ'ū]ᵀ,
    G = (1/n) [[2ũ'ū,        −ū'ū,  n       ],
               [2ū'ů,        −ů'ů,  tr(W'W) ],
               [ũ'ů + ū'ū,   −ū'ů,  0       ]],

the same moments as ``spreg.error_sp._momentsGM_Error``. ρ̃ minimises the unweighted
nonlinear least-squares criterion ‖g − G[ρ, ρ², σ²]ᵀ‖² over ρ in bounds and σ² ≥ 0 (as
``spreg.utils.optim_moments`` does with L-BFGS-B). Written by hand because the criterion has an
exact solution: for fixed ρ the optimal σ² is a linear least-squares fit, and the profiled
criterion is a quartic polynomial in ρ, so its global minimum is found from the real roots of a
cubic — no iterative optimiser, no tolerance, and seeds give identical numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

DEFAULT_BOUNDS: tuple[float, float] = (-0.99, 0.99)  # as spreg; |ρ| < 1 for row-standardised W
BOUND_MARGIN = 0.99  # the spectral bounds are shrunk as spreg shrinks (−1, 1)


def spectral_bounds(lam_min: float, lam_max: float,
                    margin: float = BOUND_MARGIN) -> tuple[float, float]:
    """Search range of ρ from the spectrum: margin · (1/λ_min, 1/λ_max), the interval where
    every factor 1 − ρ Re λ stays positive (LeSage & Pace 2009, §4.1); (−0.99, 0.99) for a
    row-standardised W with λ_min = −1. A side without an eigenvalue of that sign keeps the
    default bound."""
    lo = margin / lam_min if lam_min < 0 else DEFAULT_BOUNDS[0]
    hi = margin / lam_max if lam_max > 0 else DEFAULT_BOUNDS[1]
    return float(lo), float(hi)


@dataclass(frozen=True)
class GMEstimate:
    """Result of the GM step: ρ̃, σ̃², the criterion value and whether ρ̃ hit a bound."""

    rho: float
    sigma2: float
    objective: float
    at_bound: bool


def kp_moments(u: np.ndarray, W: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """Return (G, g) of Kelejian–Prucha (1999) for residual vector ``u`` (sparse W only)."""
    if not sp.issparse(W):
        raise TypeError("the GM estimator needs W as a scipy.sparse matrix")
    u = np.asarray(u, dtype=float).ravel()
    n = u.size
    wu = W @ u
    wwu = W @ wu
    tr_wtw = float(W.multiply(W).sum())  # tr(W'W) = sum of squared entries
    uu, wuwu, uwu = u @ u, wu @ wu, u @ wu
    wuwwu, wwuwwu, uwwu = wu @ wwu, wwu @ wwu, u @ wwu
    g = np.array([uu, wuwu, uwu]) / n
    G = np.array([
        [2.0 * uwu, -wuwu, n],
        [2.0 * wuwwu, -wwuwwu, tr_wtw],
        [uwwu + wuwu, -wuwwu, 0.0],
    ]) / n
    return G, g


def _criterion(G: np.ndarray, g: np.ndarray, rho: float, s2: float) -> float:
    r = g - G @ np.array([rho, rho * rho, s2])
    return float(r @ r)


def _profile_sigma2(G: np.ndarray, g: np.ndarray, rho: float) -> float:
    """Least-squares σ² for fixed ρ, clipped at zero (the criterion is convex in σ²)."""
    g3 = G[:, 2]
    s2 = g3 @ (g - G[:, 0] * rho - G[:, 1] * rho * rho) / (g3 @ g3)
    return max(0.0, float(s2))


def stationary_points(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Real roots of d/dρ ‖a − bρ − cρ²‖², i.e. of
    a'b + (2a'c − b'b)ρ − 3b'c ρ² − 2c'c ρ³ = 0."""
    coeffs = [-2.0 * (c @ c), -3.0 * (b @ c), 2.0 * (a @ c) - b @ b, a @ b]
    roots = np.roots(coeffs) if np.any(np.abs(coeffs[:3]) > 0) else np.array([])
    return roots[np.abs(roots.imag) < 1e-9 * np.maximum(1.0, np.abs(roots.real))].real


def gm_rho(G: np.ndarray, g: np.ndarray,
           bounds: tuple[float, float] = DEFAULT_BOUNDS) -> GMEstimate:
    """Global minimiser of ‖g − G[ρ, ρ², σ²]ᵀ‖² over ρ ∈ bounds, σ² ≥ 0.

    Candidates: stationary points of the σ²-profiled quartic (σ² free, via the projection
    M = I − G₃G₃'/‖G₃‖²), stationary points of the σ² = 0 quartic, the points where the free
    σ²(ρ) crosses zero, and the two bounds; the profiled criterion is evaluated at each.
    """
    lo, hi = bounds
    g3 = G[:, 2]
    M = np.eye(3) - np.outer(g3, g3) / (g3 @ g3)
    candidates = [lo, hi]
    candidates += list(stationary_points(M @ g, M @ G[:, 0], M @ G[:, 1]))
    candidates += list(stationary_points(g, G[:, 0], G[:, 1]))
    # σ²(ρ) = 0  ⇔  g3'(g − G1ρ − G2ρ²) = 0
    q = np.roots([-(g3 @ G[:, 1]), -(g3 @ G[:, 0]), g3 @ g])
    candidates += list(q[np.abs(q.imag) < 1e-12].real)
    best = None
    for rho in candidates:
        if not (lo <= rho <= hi):
            continue
        s2 = _profile_sigma2(G, g, rho)
        value = _criterion(G, g, rho, s2)
        if best is None or value < best[2]:
            best = (float(rho), s2, value)
    rho, s2, value = best
    at_bound = bool(np.isclose(rho, lo) or np.isclose(rho, hi))
    return GMEstimate(rho=rho, sigma2=s2, objective=value, at_bound=at_bound)


def bound_warning(equation: str, rho: float, bounds: tuple[float, float]) -> str:
    """The plain-words warning for a GM estimate of ρ on a bound of its search range."""
    return (f"equation {equation}: the spatial-error coefficient rho was estimated at the bound "
            f"{rho:+.2f} of its allowed range {bounds}; the spatial-error model may be "
            "misspecified or W unsuitable, so treat this equation's results with caution")


def estimate_rho(u: np.ndarray, W: sp.spmatrix, equation: str = "",
                 bounds: tuple[float, float] = DEFAULT_BOUNDS) -> GMEstimate:
    """GM estimate of ρ from residuals ``u``; warns in plain words when ρ̃ sits on a bound."""
    G, g = kp_moments(u, W)
    est = gm_rho(G, g, bounds)
    if est.at_bound:
        warnings.warn(bound_warning(equation, est.rho, bounds), stacklevel=2)
    if est.sigma2 <= 0.0:
        warnings.warn(
            f"equation {equation}: the GM step estimated a zero error variance; the residuals "
            "carry no usable information about spatial error dependence",
            stacklevel=2,
        )
    return est
