"""The admissible (stable) region of a spatial simultaneous system: numpy reference.

The system 𝒜 y = X̃ b + ε has 𝒜 = I_Gn − (B0 ⊗ I_n + B1 ⊗ W) (docs/method.md §2b). With λ_k the
eigenvalues of W, 𝒜 is similar to blocks I_G − M_k, M_k = B0 + B1 λ_k. Along the ray 𝒜(τ) =
I − τ(B0 ⊗ I + B1 ⊗ W), τ ∈ [0, 1], from 𝒜 = I,

    det(I − τ M_k) = Π_i (1 − τ μ_i),    μ_i the eigenvalues of M_k,

vanishes iff some μ_i is real and ≥ 1. The region used everywhere in the project (star-shaped
around 𝒜 = I, hence connected, and free of singular points):

* real λ_k: every real eigenvalue of M_k is below 1 (complex pairs of M_k never meet 1 on the
  ray). "Every factor det(I − M_k) positive" is not this region for G ≥ 2: two real eigenvalues
  above 1 give a positive factor (B0 = 0, B1 = 1.5 I is explosive with every factor ≥ 0);
* complex λ_k (a non-symmetric W, conjugate pairs): the documented sufficient rule Re μ < 1 for
  every eigenvalue of M_k (each factor 1 − τμ keeps a positive real part along the ray); for
  G = 1 this is 1 − ρ Re λ > 0;
* a spatial-error factor 1 − ρ_g λ_k: Re(1 − ρ_g λ_k) > 0 (the same rule with G = 1).

This module computes the eigenvalues of every M_k with batched ``np.linalg.eigvals``, an
independent route from the closed forms of the PyMC model (``models.bayes.jacobian``).
:func:`inadmissible_intervals` applies the rule on a whole interval of real λ exactly, for when
only the extreme eigenvalues of W are known. It lives in the bottom layer because ``data_prep``
(the demo truth) and ``models`` both use it. Hand-written: no library states this region.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import chebyshev as cheb

# An eigenvalue λ of W counts as real when |Im λ| ≤ REAL_TOL · max|λ| (rounding of a real
# spectrum computed by a general eigensolver); the model uses the same threshold.
REAL_TOL = 1e-10


def real_eigenvalue_mask(eigenvalues) -> np.ndarray:
    """True where an eigenvalue of W is real up to rounding (:data:`REAL_TOL`)."""
    lam = np.asarray(eigenvalues).reshape(-1)
    if not np.iscomplexobj(lam):
        return np.ones(lam.shape, dtype=bool)
    scale = float(np.abs(lam).max(initial=0.0)) or 1.0
    return np.abs(lam.imag) <= REAL_TOL * scale


def admissible_mask(B0, B1, eigenvalues) -> np.ndarray:
    """Per eigenvalue λ_k: does M_k = B0 + B1 λ_k satisfy the region's rule (module docstring)?

    ``B0``, ``B1``: (G, G) or draws (S, G, G). Returns bool of shape (n,) or (S, n). Real λ_k:
    no real eigenvalue of M_k is ≥ 1; complex λ_k: every eigenvalue of M_k has Re μ < 1.
    """
    B0, B1 = np.asarray(B0, dtype=float), np.asarray(B1, dtype=float)
    lam = np.asarray(eigenvalues).reshape(-1)
    real = real_eigenvalue_mask(lam)
    out = np.empty(np.broadcast_shapes(B0.shape[:-2], B1.shape[:-2]) + lam.shape, dtype=bool)
    # the real λ separately: a real M_k keeps its real eigenvalues exactly real in LAPACK
    out[..., real] = _rule(B0, B1, np.real(lam[real]), real_rule=True)
    out[..., ~real] = _rule(B0, B1, lam[~real], real_rule=False)
    return out


def _rule(B0: np.ndarray, B1: np.ndarray, lam: np.ndarray, real_rule: bool) -> np.ndarray:
    """No real eigenvalue of M_k ≥ 1 (``real_rule``), or Re μ < 1 for all of them."""
    if lam.size == 0:
        return np.empty(np.broadcast_shapes(B0.shape[:-2], B1.shape[:-2]) + (0,), dtype=bool)
    mu = np.linalg.eigvals(B0[..., None, :, :] + B1[..., None, :, :] * lam[:, None, None])
    if real_rule:
        # LAPACK returns an exactly zero imaginary part for the real eigenvalues of a real matrix
        return ~np.any((np.imag(mu) == 0) & (mu.real >= 1.0), axis=-1)
    return np.all(mu.real < 1.0, axis=-1)


def error_factor_mask(rho, eigenvalues) -> np.ndarray:
    """Per (equation, eigenvalue): Re(1 − ρ_g λ_k) > 0, the spatial-error factors' rule."""
    lam = np.asarray(eigenvalues).reshape(-1)
    return np.real(1.0 - np.atleast_1d(np.asarray(rho, dtype=float))[:, None] * lam) > 0


def is_admissible(B0, B1, eigenvalues) -> bool:
    """True when every M_k = B0 + B1 λ_k satisfies the rule (the system is in the region)."""
    return bool(np.all(admissible_mask(B0, B1, eigenvalues)))


# ------------------------------------------------------------------ a whole interval of λ

def _chebyshev_roots(values: np.ndarray, x: np.ndarray, degree: int) -> np.ndarray:
    """Real roots in [−1, 1] of the degree-``degree`` polynomial through (x, values)."""
    if np.max(np.abs(values)) <= 1e-13 * max(1.0, np.max(np.abs(values))):
        return np.empty(0)  # identically zero: no isolated change point
    coef = cheb.chebfit(x, values, degree)
    coef[np.abs(coef) < 1e-14 * np.abs(coef).max()] = 0.0
    nz = np.flatnonzero(coef)
    if nz.size == 0 or nz[-1] == 0:
        return np.empty(0)
    roots = cheb.chebroots(coef[: nz[-1] + 1])
    near = np.abs(roots.imag) <= 1e-6 * max(1.0, float(np.abs(roots).max()))
    r = roots[near].real
    return r[(r >= -1.0 - 1e-12) & (r <= 1.0 + 1e-12)].clip(-1.0, 1.0)


def _factor_values(M: np.ndarray) -> np.ndarray:
    """det(I − M) of a stack of matrices."""
    return np.linalg.det(np.eye(M.shape[-1]) - M)


def _discriminant_values(M: np.ndarray) -> np.ndarray:
    """Discriminant Π_{i<j} (μ_i − μ_j)² of the characteristic polynomial of each matrix."""
    mu = np.linalg.eigvals(M)
    i, j = np.triu_indices(M.shape[-1], 1)
    return np.prod((mu[..., i] - mu[..., j]) ** 2, axis=-1).real


def change_points(B0, B1, lo: float, hi: float) -> np.ndarray:
    """The λ in [lo, hi] where the real-λ rule can change: roots of f(λ) = det(I − B0 − B1 λ)
    (an eigenvalue of M(λ) crosses 1) and of the discriminant D(λ) of the characteristic
    polynomial of M(λ) (two real eigenvalues meet and leave, or enter, the real axis: a pair
    above 1 turning real leaves f positive, so the roots of f alone are not enough for G ≥ 2).

    f has degree ≤ G and D degree ≤ G(G − 1) in λ; both are interpolated exactly through their
    values (batched determinants and eigenvalues) at Chebyshev points of [lo, hi].
    """
    B0, B1 = np.asarray(B0, dtype=float), np.asarray(B1, dtype=float)
    G = B0.shape[0]
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
    points = []
    for degree, values_at in ((G, _factor_values), (G * (G - 1), _discriminant_values)):
        if degree == 0:
            continue
        x = np.cos(np.pi * (np.arange(degree + 1) + 0.5) / (degree + 1))
        values = values_at(B0[None] + B1[None] * (mid + half * x)[:, None, None])
        points.append(mid + half * _chebyshev_roots(values, x, degree))
    return np.unique(np.concatenate(points)) if points else np.empty(0)


def inadmissible_intervals(B0, B1, lo: float, hi: float) -> list[tuple[float, float]]:
    """Sub-intervals of real λ ∈ [lo, hi] where M(λ) = B0 + B1 λ breaks the rule (exact).

    Between consecutive :func:`change_points` the rule's verdict is constant, so it is evaluated
    at the ends, at every change point and at one point between consecutive ones; consecutive
    failing points are merged into intervals. A root of f inside [lo, hi] is a singular point of
    𝒜 and always fails. Exact for the interval, hence conservative for a discrete spectrum in it.
    """
    B0, B1 = np.asarray(B0, dtype=float), np.asarray(B1, dtype=float)
    if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        points = np.array([lo])
        fail = ~admissible_mask(B0, B1, points)
    else:
        cps = change_points(B0, B1, lo, hi)
        knots = np.unique(np.r_[lo, cps, hi])
        points = np.sort(np.r_[knots, 0.5 * (knots[:-1] + knots[1:])])
        fail = ~admissible_mask(B0, B1, points)
        f = _factor_values(B0[None] + B1[None] * points[:, None, None])
        roots = np.isin(points, cps) & (np.abs(f) <= 1e-8 * max(1.0, float(np.abs(f).max())))
        fail |= roots
    out: list[tuple[float, float]] = []
    for k in np.flatnonzero(fail):
        if out and k > 0 and fail[k - 1]:
            out[-1] = (out[-1][0], float(points[k]))
        else:
            out.append((float(points[k]), float(points[k])))
    return out
