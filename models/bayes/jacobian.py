"""Log-Jacobian of the spatial simultaneous system in O(n) per evaluation, from the spectrum of W.

The system (docs/method.md §2b) is 𝒜 y = X̃ b + ε with 𝒜 = I_Gn − (B0 ⊗ I_n + B1 ⊗ W). Every block of
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

Admissible region (docs/method.md §2b; the numpy reference and its derivation are in
``data_prep.spectrum.stability``): the region connected to 𝒜 = I along the ray from it, where the system
has a unique stable solution; outside it the log-density is −∞. With M_k = B0 + B1 λ_k and
N_k = I − M_k, whose characteristic polynomial ν^G − c1 ν^(G−1) + c2 ν^(G−2) − … has c1 = tr N,
c2 = the sum of the principal 2 × 2 minors and c_G = det N = f(λ_k):

* real λ_k: every real eigenvalue of N_k is positive (every real eigenvalue of M_k below 1).
  "f(λ_k) > 0 for every k" is not enough for G ≥ 2 (two negative eigen-factors multiply to a
  positive one). Closed forms: G = 1: f > 0; G = 2: f > 0 and (tr N > 0 or (tr N)² − 4 det N
  < 0); G = 3: f > 0 and (Δ < 0 or (c1 > 0 and c2 > 0)), Δ the cubic's discriminant (Δ < 0:
  one real root, of the sign of det N; Δ ≥ 0: all roots real, all positive iff c1, c2, c3 > 0
  by Descartes' rule of signs). c1 and c2 are polynomials of degree 1 and 2 in λ, so they cost
  O(n) like f.
* complex λ_k (a non-symmetric W, conjugate pairs; log|f| = ½ log(Re² + Im²)): the documented
  sufficient rule Re μ < 1 for every eigenvalue μ of M_k (each factor 1 − τμ keeps a positive
  real part along the ray). G = 1: Re f > 0; G = 2: Re(tr M)/2 + Re √((tr M)² − 4 det M)/2 < 1,
  written in real arithmetic without the square root.
* G ≥ 4, and G = 3 with a complex spectrum, are refused with an InputError: no closed form is
  implemented, and pytensor's batched eigensolver under the numba backend (nutpie) returned
  wrong eigenvalues for stacks of matrices when this was written. The numpy reference covers
  every G.
* a spatial-error factor 1 − ρ_g λ_k: Re(1 − ρ_g λ_k) > 0.

Written by hand because no library
provides the spectral Jacobian of a simultaneous system; the spectrum itself comes from
``data_prep.spectrum.exact``. A node/weight pair (quadrature) may replace the spectrum for huge n.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt

from data_prep.errors import InputError
from data_prep.spectrum.stability import REAL_TOL, admissible_mask, error_factor_mask


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

    Direct batched determinants, and the region from the batched eigenvalues of every
    M_k = B0 + B1 λ_k (:func:`data_prep.spectrum.stability.admissible_mask`): an independent route from the
    closed forms used in the model. ``rho`` lists the spatial-error coefficients of the
    equations that have one (their factors need Re(1 − ρ λ_k) > 0).
    """
    lam = clean_spectrum(eigenvalues)
    w = np.ones(lam.shape) if weights is None else np.asarray(weights, dtype=float)
    B0, B1 = np.atleast_2d(B0).astype(float), np.atleast_2d(B1).astype(float)
    G = B0.shape[0]
    inside = admissible_mask(B0, B1, lam).all()
    factors = [np.linalg.det(np.eye(G)[None] - B0[None] - B1[None] * lam[:, None, None])]
    if rho is not None:
        inside = inside and error_factor_mask(rho, lam).all()
        factors += [1.0 - r * lam for r in np.atleast_1d(rho)]
    if not inside:
        return -np.inf
    f = np.concatenate(factors)
    return float(np.sum(np.tile(w, len(factors)) * np.log(np.abs(f))))


# ---------------------------------------------------------------- pytensor expression

def _det3(M):
    """Closed-form 3 × 3 determinant (rule of Sarrus) of a (..., 3, 3) tensor."""
    return (M[..., 0, 0] * (M[..., 1, 1] * M[..., 2, 2] - M[..., 1, 2] * M[..., 2, 1])
            - M[..., 0, 1] * (M[..., 1, 0] * M[..., 2, 2] - M[..., 1, 2] * M[..., 2, 0])
            + M[..., 0, 2] * (M[..., 1, 0] * M[..., 2, 1] - M[..., 1, 1] * M[..., 2, 0]))


def _interpolation_nodes(G: int) -> tuple[np.ndarray, np.ndarray]:
    """G + 1 Chebyshev nodes and the inverse Vandermonde matrix that maps values to coefficients."""
    nodes = np.cos(np.pi * (np.arange(G + 1) + 0.5) / (G + 1))
    return nodes, np.linalg.inv(np.vander(nodes, G + 1, increasing=True))


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
    nodes, vinv = _interpolation_nodes(G)
    mats = (pt.eye(G) - B0)[None, :, :] - A[None, :, :] * nodes[:, None, None]
    values = _det3(mats) if G == 3 else pt.linalg.det(mats)
    return pt.dot(vinv, values)


def _minor_sum_coefficients(B0, B1, scale: float):
    """Coefficients of c2(t), the sum of the principal 2 × 2 minors of N(t) = I − B0 − scale·B1 t
    (G = 3; degree ≤ 2, interpolated exactly through c2 = ½(tr² N − tr N²) at 3 nodes)."""
    nodes, vinv = _interpolation_nodes(2)
    N = (pt.eye(3) - B0)[None, :, :] - (B1 * scale)[None, :, :] * nodes[:, None, None]
    tr = N[:, 0, 0] + N[:, 1, 1] + N[:, 2, 2]
    values = 0.5 * (tr ** 2 - pt.sum(N * N.transpose(0, 2, 1), axis=(1, 2)))
    return pt.dot(vinv, values)


def _inside_real_closed(B0, B1, G: int, scale, P, f):
    """Per real eigenvalue, in closed form (module docstring): every real eigenvalue of
    N_k = I − M_k positive, from the characteristic-polynomial coefficients of N_k.

    G = 1: f > 0. G = 2: f > 0 and (tr N > 0 or (tr N)² − 4 det N < 0). G = 3: f > 0 and
    (Δ < 0 or (c1 > 0 and c2 > 0)), Δ the discriminant of ν³ − c1ν² + c2ν − c3, c3 = f.
    """
    if G == 1:
        return f > 0
    c1 = G - pt.trace(B0) - pt.trace(B1) * scale * P[:, 1]
    if G == 2:
        return (f > 0) & ((c1 > 0) | (c1 ** 2 - 4.0 * f < 0))
    c2 = pt.dot(P[:, :3], _minor_sum_coefficients(B0, B1, scale))
    disc = (18.0 * c1 * c2 * f - 4.0 * c1 ** 3 * f + c1 ** 2 * c2 ** 2 - 4.0 * c2 ** 3
            - 27.0 * f ** 2)
    return (f > 0) & ((disc < 0) | ((c1 > 0) & (c2 > 0)))


def _inside_complex_closed(B0, B1, G: int, scale, P, Pi, f, fi):
    """Per complex eigenvalue (G ≤ 2): every eigenvalue μ of M_k has Re μ < 1.

    G = 1: Re f > 0. G = 2: μ = (tr M ± √z)/2 with z = (tr M)² − 4 det M, det M = f − 1 + tr M,
    so the rule is Re √z < c = 2 − Re tr M; with Re √z = √((|z| + Re z)/2) it reads c > 0,
    2c² − Re z > 0 and |z|² < (2c² − Re z)² (real arithmetic, no square root).
    """
    if G == 1:
        return f > 0
    tr_re = pt.trace(B0) + pt.trace(B1) * scale * P[:, 1]
    tr_im = pt.trace(B1) * scale * Pi[:, 1]
    det_re, det_im = f - 1.0 + tr_re, fi + tr_im
    z_re = tr_re ** 2 - tr_im ** 2 - 4.0 * det_re
    z_im = 2.0 * tr_re * tr_im - 4.0 * det_im
    c = 2.0 - tr_re
    bound = 2.0 * c ** 2 - z_re
    return (c > 0) & (bound > 0) & (z_re ** 2 + z_im ** 2 < bound ** 2)


def _real_entries(Pi):
    """Which rescaled eigenvalues t_k are real up to rounding (as :data:`REAL_TOL`)."""
    return pt.abs(Pi[:, 1]) <= REAL_TOL


def _inside(B0, B1, G: int, scale, P, Pi, f, fi):
    """Per eigenvalue: M_k = B0 + B1 λ_k satisfies the region's rule (module docstring)."""
    if G >= 4 or (G == 3 and Pi is not None):
        raise InputError(
            f"the Bayesian model states the admissible region in closed form for up to 3 "
            f"equations with a real spectrum and up to 2 with a complex one (a non-symmetric W); "
            f"this system has {G} equations"
            + (" and a complex spectrum" if Pi is not None else "")
            + ": use fewer equations, or a symmetric neighbour relation for 3")
    ok_real = _inside_real_closed(B0, B1, G, scale, P, f)
    if Pi is None:
        return ok_real
    return pt.switch(_real_entries(Pi), ok_real,
                     _inside_complex_closed(B0, B1, G, scale, P, Pi, f, fi))


def log_jacobian(B0, B1, basis: SpectralBasis, G: int, rho=None, powers=None, powers_imag=None,
                 weights=None, scale=None):
    """Pytensor log|det 𝒜| (+ spatial-error terms for the entries of ``rho``), and −∞ outside.

    Returns ``(logdet, inside)``, ``inside`` the boolean "in the admissible region".
    ``powers``, ``weights`` and ``scale`` may be shared/pm.Data versions of ``basis.powers``,
    ``basis.weights`` and ``basis.scale``. The switches guard the logarithm so gradients stay
    finite at the boundary; the indicator itself carries no gradient.
    """
    P = basis.powers if powers is None else powers
    w = basis.weights if weights is None else weights
    scale = basis.scale if scale is None else scale
    Pi = None
    if basis.powers_imag is not None:
        Pi = basis.powers_imag if powers_imag is None else powers_imag
    a = factor_coefficients(B0, B1, G, scale)
    f = pt.dot(P[:, : G + 1], a)
    fi = None if Pi is None else pt.dot(Pi[:, : G + 1], a)
    inside = pt.all(_inside(B0, B1, G, scale, P, Pi, f, fi))
    if Pi is None:
        total = pt.sum(w * pt.log(pt.switch(f > 0, f, 1.0)))
    else:
        # conjugate pairs: log|f| = ½ log(Re f² + Im f²)
        mod2 = f ** 2 + fi ** 2
        total = 0.5 * pt.sum(w * pt.log(pt.switch(mod2 > 0, mod2, 1.0)))
    if rho is not None:
        # 1 − ρ λ = 1 − (ρ s) t, for each spatial-error equation (columns of a (n, J) matrix);
        # the region asks Re(1 − ρ λ) > 0
        fr = 1.0 - P[:, 1][:, None] * (scale * rho)[None, :]
        inside = inside & pt.all(fr > 0)
        if Pi is None:
            total = total + pt.sum(w[:, None] * pt.log(pt.switch(fr > 0, fr, 1.0)))
        else:
            fri = -Pi[:, 1][:, None] * (scale * rho)[None, :]
            total = total + 0.5 * pt.sum(
                w[:, None] * pt.log(pt.switch(fr > 0, fr ** 2 + fri ** 2, 1.0)))
    return pt.switch(inside, total, -np.inf), inside
