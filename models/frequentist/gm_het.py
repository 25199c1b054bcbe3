"""Heteroskedasticity-robust GM estimator of a SAR error coefficient ρ and the GS2SLS around it.

Model: y = Zδ + u, u = ρWu + ε, ε_i independent with unknown variances σ_i² (docs/method.md §2c).
Arraiz, Drukker, Kelejian & Prucha (2010, J. Regional Science 50(2), "ADKP") and Kelejian &
Prucha (2010, J. Econometrics 157) use the moments E[ε'A_qε]/n = 0 for the zero-diagonal
A1 = W'W − diag(w_i'w_i) and A2 = W, which hold under heteroskedasticity. In the residuals u
(ū = Wu), ε = u − ρū gives g = G[ρ, ρ²]' with

    g = (1/n)[u'A1u, u'Wu]',
    G = (1/n)[[2u'A1ū, −ū'A1ū], [u'(W + W')ū, −ū'Wū]]          (spreg ``_moments2eqs``).

ρ minimises (g − G[ρ, ρ²]')' Ψ⁻¹ (g − G[ρ, ρ²]'), a quartic in ρ, solved exactly from the real
roots of its derivative (a cubic) and the bounds (spreg runs L-BFGS-B with a numerical
gradient on the same criterion). The steps are spreg's ``GM_Combo_Het`` / ``GM_Error_Het``
with ``step1c=False`` and ``max_iter=1`` (ADKP steps 1a, 1b, 2a, 2b):

1. ρ̃ from the initial 2SLS residuals with Ψ = I;
2. GS2SLS: 2SLS of y − ρ̃Wy on Z − ρ̃WZ with the untransformed H → δ̂, u = y − Zδ̂;
3. ρ̂ from u with the efficient weight Ψ(ρ̃)⁻¹;
4. the joint covariance of (δ̂, ρ̂) at ρ̂ (ADKP eqs. 20–21, spreg ``get_Omega_GS2SLS``):
   with ε̂ = u − ρ̂Wu, Σ = diag(ε̂²), Z* = Z − ρ̂WZ, F = PZ*(Z*'PZ*)⁻¹ (= HP/n in spreg),
   α_q = −(1/n) Z*'(A_q + A_q')ε̂, a_q = nFα_q, B_q = A_q + A_q',

       Ψ_qs = (1/2n) tr(B_qΣB_sΣ) + (1/n) a_q'Σa_s,   J = G[1, 2ρ̂]',
       Var(δ̂) = F'ΣF,  Cov(δ̂, ρ̂) = F'Σ[a1, a2] Ψ⁻¹J(J'Ψ⁻¹J)⁻¹/n,  Var(ρ̂) = (J'Ψ⁻¹J)⁻¹/n.

With exogenous regressors only α_q = 0 (E[X*'A_qε] = 0 since A_q has a zero diagonal, ADKP
§3), so Ψ loses its second term and Cov(δ̂, ρ̂) = 0 — exactly spreg's ``GM_Error_Het``. The
trace term is σ'(B_q ∘ B_s)σ/(2n) for the symmetric sparse B_q: no n × n dense matrix and no
(I − ρW)⁻¹ (that inverse enters spreg only with ``step1c=True``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from models.frequentist.gm import DEFAULT_BOUNDS, bound_warning, stationary_points
from models.frequentist.iv import Projector, SingularSystemError, TwoSLSFit, robust_cov, two_sls


@dataclass(frozen=True)
class HetMatrices:
    """W, A1 = W'W − diag(W'W) and the symmetric B1 = 2A1, B2 = W + W' of the moments."""

    W: sp.csr_matrix
    A1: sp.csr_matrix
    B: tuple[sp.csr_matrix, sp.csr_matrix]

    @classmethod
    def from_weights(cls, W: sp.spmatrix) -> "HetMatrices":
        if not sp.issparse(W):
            raise TypeError("the robust GM estimator needs W as a scipy.sparse matrix")
        W = sp.csr_matrix(W, dtype=float)
        WtW = (W.T @ W).tocsr()
        A1 = (WtW - sp.diags(WtW.diagonal())).tocsr()
        A1.eliminate_zeros()
        return cls(W=W, A1=A1, B=((2.0 * A1).tocsr(), (W + W.T).tocsr()))


@dataclass(frozen=True)
class RobustGM:
    """One equation's robust GS2SLS: ρ̂ (efficient), ρ̃ (initial), the GS2SLS fit at ρ̃, the
    joint covariance of (δ̂, ρ̂) ((p + 1) × (p + 1), ρ last) and whether ρ̂ hit a bound."""

    rho: float
    rho_initial: float
    fit: TwoSLSFit
    joint_cov: np.ndarray
    at_bound: bool

    @property
    def rho_se(self) -> float:
        return float(np.sqrt(self.joint_cov[-1, -1]))


def het_moments(u: np.ndarray, m: HetMatrices) -> tuple[np.ndarray, np.ndarray]:
    """(G, g) of the two heteroskedasticity-robust moments for residuals ``u`` (see module)."""
    n = u.size
    wu = m.W @ u
    wwu = m.W @ wu
    a1wu = m.A1 @ wu
    g = np.array([u @ (m.A1 @ u), u @ wu]) / n
    # u'(W + W')ū = u'Wū + ū'ū
    G = np.array([[2.0 * (u @ a1wu), -(wu @ a1wu)],
                  [u @ wwu + wu @ wu, -(wu @ wwu)]]) / n
    return G, g


def weighted_rho(G: np.ndarray, g: np.ndarray, Psi: np.ndarray | None,
                 bounds: tuple[float, float] = DEFAULT_BOUNDS) -> float:
    """Global minimiser over ρ ∈ bounds of r'Ψ⁻¹r, r = g − G[ρ, ρ²]' (Ψ = I when None): with
    Ψ⁻¹ = LL', r'Ψ⁻¹r = ‖L'g − L'G₁ρ − L'G₂ρ²‖², whose stationary points are cubic roots."""
    if Psi is None:
        E = np.eye(2)
    else:
        try:
            E = np.linalg.cholesky(np.linalg.inv(Psi)).T
        except np.linalg.LinAlgError:
            raise SingularSystemError(
                "the covariance of the robust GM moments is not positive definite; the "
                "residuals carry too little information about spatial error dependence") from None
    a, b, c = E @ g, E @ G[:, 0], E @ G[:, 1]
    lo, hi = bounds
    candidates = [lo, hi] + [r for r in stationary_points(a, b, c) if lo <= r <= hi]
    values = [float(np.sum((a - b * r - c * r * r) ** 2)) for r in candidates]
    return float(candidates[int(np.argmin(values))])


def _instrument_basis(proj: Projector, fit: TwoSLSFit) -> np.ndarray:
    """F = PZ*(Z*'PZ*)⁻¹ = Q A (A'A)⁻¹ (n × p), the instrument combination of each δ̂ (HP/n)."""
    return proj.Q @ (fit.A @ fit.ztpz_inv)


def moment_covariance(m: HetMatrices, eps: np.ndarray, Zstar: np.ndarray | None,
                      F: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(Ψ, [a1, a2]) of the two moments at the filtered residuals ``eps`` (see module).

    ``Zstar`` and ``F`` are None for an equation with exogenous regressors only (α_q = 0).
    """
    n = eps.size
    s = eps * eps
    B1, B2 = m.B
    psi = np.array([[s @ (B1.multiply(B1) @ s), s @ (B1.multiply(B2) @ s)],
                    [0.0, s @ (B2.multiply(B2) @ s)]]) / (2.0 * n)
    psi[1, 0] = psi[0, 1]
    a = np.zeros((n, 2))
    if Zstar is not None:
        alpha = -np.column_stack([Zstar.T @ (B @ eps) for B in m.B]) / n  # p × 2
        a = n * (F @ alpha)
        psi += (a * s[:, None]).T @ a / n
    return psi, a


def _filtered(y: np.ndarray, Z: np.ndarray, W: sp.csr_matrix,
              rho: float) -> tuple[np.ndarray, np.ndarray]:
    return y - rho * (W @ y), Z - rho * (W @ Z)


def robust_gs2sls(y: np.ndarray, Z: np.ndarray, m: HetMatrices, proj: Projector,
                  initial: TwoSLSFit, terms: Sequence[str], equation: str = "",
                  endogenous: bool = True,
                  bounds: tuple[float, float] = DEFAULT_BOUNDS) -> RobustGM:
    """ADKP steps 1b–2b and the joint covariance for one equation, from its initial 2SLS fit
    ``initial`` (step 1a). ``endogenous``: whether Z holds spatial lags or other dependents
    (else α_q = 0, spreg's ``GM_Error_Het``). Warns in plain words when ρ̂ sits on a bound."""
    W = m.W
    rho0 = weighted_rho(*het_moments(initial.resid, m), None, bounds)
    fit = two_sls(*_filtered(y, Z, W, rho0), proj, terms, equation)
    u = y - Z @ fit.delta
    G, g = het_moments(u, m)

    def psi_at(rho: float, at: TwoSLSFit):
        """(ε̂, Ψ, [a1, a2], F) at ρ with Z* = Z − ρWZ, whose projection ``at`` holds."""
        eps = u - rho * (W @ u)
        F = _instrument_basis(proj, at) if endogenous else None
        Zstar = Z - rho * (W @ Z) if endogenous else None
        return (eps, *moment_covariance(m, eps, Zstar, F), F)

    rho = weighted_rho(G, g, psi_at(rho0, fit)[1], bounds)
    # only A = Q'Z* and (A'A)⁻¹ at ρ̂ are used from this fit
    at = two_sls(*_filtered(y, Z, W, rho), proj, terms, equation)
    eps, psi, a, F = psi_at(rho, at)
    joint = _joint_cov(proj, at, eps, psi, a, F, G, rho)
    at_bound = bool(np.isclose(rho, bounds[0]) or np.isclose(rho, bounds[1]))
    if at_bound:
        warnings.warn(bound_warning(equation, rho, bounds), stacklevel=2)
    return RobustGM(rho=rho, rho_initial=rho0, fit=fit, joint_cov=joint, at_bound=at_bound)


def _joint_cov(proj: Projector, at: TwoSLSFit, eps: np.ndarray, psi: np.ndarray,
               a: np.ndarray, F: np.ndarray | None, G: np.ndarray, rho: float) -> np.ndarray:
    """[[F'ΣF, Cov(δ̂, ρ̂)], [·, Var(ρ̂)]] of the module docstring, Σ = diag(ε̂²)."""
    n = eps.size
    p = at.A.shape[1]
    J = G @ np.array([1.0, 2.0 * rho])
    psi_inv = np.linalg.inv(psi)
    var_rho = 1.0 / (J @ psi_inv @ J)
    out = np.zeros((p + 1, p + 1))
    out[:p, :p] = robust_cov(at.ztpz_inv, [proj.Q @ at.A], eps[:, None], np.eye(1))
    if F is not None:
        out[:p, p] = out[p, :p] = (F.T @ (a * (eps * eps)[:, None])) @ psi_inv @ J * var_rho / n
    out[p, p] = var_rho / n
    return out
