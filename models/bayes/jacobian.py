"""Log-Jacobian of the spatial simultaneous system in O(n) per evaluation, from the spectrum of W.

The system (METHOD.md §2b) is 𝒜 y = X̃ b + ε with 𝒜 = I_Gn − (B0 ⊗ I_n + B1 ⊗ W). Every block of
𝒜 is a polynomial in W, so with λ_1..λ_n the eigenvalues of W

    log|det 𝒜| = Σ_k log det(I_G − B0 − B1 λ_k)                        (LeSage & Pace 2009, §4;
                                                                          Kelejian & Prucha 2004)

and a spatially autoregressive disturbance u_g = ρ_g W u_g + ε_g adds Σ_k log(1 − ρ_g λ_k).

Each factor f(λ) = det(I − B0 − B1 λ) is a polynomial of degree ≤ G in λ. We evaluate it as
f(λ_k) = Σ_d a_d t_k^d on the rescaled spectrum t = λ / s (s = max |λ|, so |t| ≤ 1 and the powers
stay well scaled): the coefficients a_d come in closed form for G = 1 and G = 2
((1 − a11 t)(1 − a22 t) − (b12 + a12 t)(b21 + a21 t)), and for G ≥ 3 by exact polynomial
interpolation of G + 1 small determinants at Chebyshev nodes (closed-form 3 × 3 determinant for
G = 3, a batched ``det`` beyond). The per-evaluation cost is then one (n × (G+1)) matrix–vector
product and n logarithms, whatever G is.

Admissible region: every factor positive (the region connected to 𝒜 = I, where the system has a
unique stable solution); outside it the log-density is −∞. A non-symmetric neighbour relation
gives complex eigenvalues in conjugate pairs; then log|f(λ)| = ½ log(Re² + Im²) and, as a
documented choice, the region asks Re f(λ) > 0 for the complex eigenvalues too (the factor stays
in the right half-plane along the path from 𝒜 = I; for one equation and row-standardised W this
is implied by the usual interval 1/λ_min < ρ < 1). Written by hand because no library
provides the spectral Jacobian of a simultaneous system; the spectrum itself comes from
``data_prep.spectrum``. A node/weight pair (quadrature) may replace the spectrum for huge n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from common.errors import InputError


@dataclass(frozen=True)
class SpectralBasis:
    """Precomputed powers of the rescaled spectrum t = λ / scale (numpy, built once).

    ``powers[k, d] = Re t_k^d`` for d = 0..G and ``powers_imag`` its imaginary part (None for a
    real spectrum); ``weights[k]`` are multiplicities (1 for an exact spectrum, quadrature
    weights summing to n otherwise).
    """

    eigenvalues: np.ndarray
    weights: np.ndarray
    scale: float
    powers: np.ndarray
    powers_imag: np.ndarray | None = None

    @property
    def n(self) -> float:
        return float(self.weights.sum())

    @property
    def lambda_min(self) -> float:
        return float(np.real(self.eigenvalues).min())

    @property
    def lambda_max(self) -> float:
        return float(np.real(self.eigenvalues).max())


def clean_spectrum(eigenvalues, tol: float = 1e-8) -> np.ndarray:
    """The spectrum as a real array, or complex when some imaginary parts are not negligible."""
    lam = np.asarray(eigenvalues)
    if lam.ndim != 1 or lam.size == 0 or not np.all(np.isfinite(lam)):
        raise InputError("the eigenvalues of W must be a non-empty finite 1-d array")
    if np.iscomplexobj(lam):
        if np.max(np.abs(lam.imag)) <= tol * max(1.0, np.max(np.abs(lam.real))):
            return np.asarray(lam.real, dtype=float)
        return lam.astype(complex)
    return lam.astype(float)


def spectral_basis(eigenvalues, G: int, weights=None) -> SpectralBasis:
    """Build the power basis for polynomials of degree ≤ max(G, 1) in t = λ / max|λ|."""
    lam = clean_spectrum(eigenvalues)
    w = np.ones(lam.shape) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != lam.shape:
        raise InputError("quadrature weights and nodes differ in length")
    scale = float(np.max(np.abs(lam))) or 1.0
    t = lam / scale
    powers = np.vander(t, max(G, 1) + 1, increasing=True)
    if np.iscomplexobj(powers):
        return SpectralBasis(lam, w, scale, np.ascontiguousarray(powers.real),
                             np.ascontiguousarray(powers.imag))
    return SpectralBasis(lam, w, scale, powers)


# ---------------------------------------------------------------- numpy reference (for tests)

def log_jacobian_numpy(B0, B1, eigenvalues, rho=None, weights=None) -> float:
    """Σ_k w_k log|det(I − B0 − B1 λ_k)| + Σ_g Σ_k w_k log|1 − ρ_g λ_k|, −∞ outside the region.

    Direct batched determinants (an independent route from the polynomial form used in the model).
    ``rho`` lists the spatial-error coefficients of the equations that have one. The region:
    every factor has a positive real part (real factors: positive).
    """
    lam = clean_spectrum(eigenvalues)
    w = np.ones(lam.shape) if weights is None else np.asarray(weights, dtype=float)
    B0, B1 = np.atleast_2d(B0).astype(float), np.atleast_2d(B1).astype(float)
    G = B0.shape[0]
    mats = np.eye(G)[None] - B0[None] - B1[None] * lam[:, None, None]
    factors = [np.linalg.det(mats)]
    if rho is not None:
        factors += [1.0 - r * lam for r in np.atleast_1d(rho)]
    f = np.concatenate(factors)
    ww = np.tile(w, len(factors))
    if np.min(np.real(f)) <= 0:
        return -np.inf
    return float(np.sum(ww * np.log(np.abs(f))))


# ---------------------------------------------------------------- pytensor expression

def _det3(M):
    """Closed-form 3 × 3 determinant (rule of Sarrus) of a (..., 3, 3) tensor."""
    return (M[..., 0, 0] * (M[..., 1, 1] * M[..., 2, 2] - M[..., 1, 2] * M[..., 2, 1])
            - M[..., 0, 1] * (M[..., 1, 0] * M[..., 2, 2] - M[..., 1, 2] * M[..., 2, 0])
            + M[..., 0, 2] * (M[..., 1, 0] * M[..., 2, 1] - M[..., 1, 1] * M[..., 2, 0]))


def factor_coefficients(B0, B1, G: int, scale: float):
    """Coefficients a_0..a_G of f(t) = det(I − B0 − (scale·B1) t) as a pytensor vector."""
    A = B1 * scale
    if G == 1:
        return pt.stack([pt.ones(()), -A[0, 0]])
    if G == 2:
        a11, a12, a21, a22 = A[0, 0], A[0, 1], A[1, 0], A[1, 1]
        b12, b21 = B0[0, 1], B0[1, 0]
        return pt.stack([
            1.0 - b12 * b21,
            -(a11 + a22) - (b12 * a21 + a12 * b21),
            a11 * a22 - a12 * a21,
        ])
    # G ≥ 3: f is a polynomial of degree ≤ G, so G + 1 values determine it exactly.
    nodes = np.cos(np.pi * (np.arange(G + 1) + 0.5) / (G + 1))
    vinv = np.linalg.inv(np.vander(nodes, G + 1, increasing=True))
    mats = (pt.eye(G) - B0)[None, :, :] - A[None, :, :] * nodes[:, None, None]
    values = _det3(mats) if G == 3 else pt.linalg.det(mats)
    return pt.dot(vinv, values)


def log_jacobian(B0, B1, basis: SpectralBasis, G: int, rho=None, powers=None, powers_imag=None,
                 weights=None, scale=None):
    """Pytensor log|det 𝒜| (+ spatial-error terms for the entries of ``rho``), and −∞ outside.

    Returns ``(logdet, min_factor)``. ``powers``, ``weights`` and ``scale`` may be shared/pm.Data
    versions of ``basis.powers``, ``basis.weights`` and ``basis.scale``. The switch guards the
    logarithm so gradients stay finite at the boundary.
    """
    P = basis.powers if powers is None else powers
    w = basis.weights if weights is None else weights
    scale = basis.scale if scale is None else scale
    a = factor_coefficients(B0, B1, G, scale)
    f = pt.dot(P[:, : G + 1], a)
    fmin = pt.min(f)
    if basis.powers_imag is None:
        total = pt.sum(w * pt.log(pt.switch(f > 0, f, 1.0)))
    else:
        # conjugate pairs: log|f| = ½ log(Re f² + Im f²); the region asks Re f > 0 (module doc)
        Pi = basis.powers_imag if powers_imag is None else powers_imag
        fi = pt.dot(Pi[:, : G + 1], a)
        total = 0.5 * pt.sum(w * pt.log(pt.switch(f > 0, f ** 2 + fi ** 2, 1.0)))
    if rho is not None:
        # 1 − ρ λ = 1 − (ρ s) t, for each spatial-error equation (columns of a (n, J) matrix)
        fr = 1.0 - P[:, 1][:, None] * (scale * rho)[None, :]
        fmin = pt.minimum(fmin, pt.min(fr))
        if basis.powers_imag is None:
            total = total + pt.sum(w[:, None] * pt.log(pt.switch(fr > 0, fr, 1.0)))
        else:
            Pi = basis.powers_imag if powers_imag is None else powers_imag
            fri = -Pi[:, 1][:, None] * (scale * rho)[None, :]
            total = total + 0.5 * pt.sum(
                w[:, None] * pt.log(pt.switch(fr > 0, fr ** 2 + fri ** 2, 1.0)))
    return pt.switch(fmin > 0, total, -np.inf), fmin


# ---------------------------------------------------------------- quadrature for huge n
# One implementation, in data_prep.quadrature (re-exported here for existing callers).
from data_prep.quadrature import lanczos_quadrature  # noqa: E402,F401
