"""Instrumental-variable building blocks: projection on H, 2SLS per equation, 3SLS (Zellner–Theil).

P = H(H'H)⁻¹H' is never formed. A thin QR, H = Q R (CholeskyQR2), gives an orthonormal basis Q of
the instrument space (n × L), so P A = Q(Q'A). Every 2SLS/3SLS quantity needs only the small
coordinates A_j = Q'Z_j (L × p_j) and b_j = Q'y_j (L):

    2SLS  (Theil 1953):   δ̂_j = (Z_j'PZ_j)⁻¹ Z_j'P y_j = (A_j'A_j)⁻¹ A_j'b_j
    3SLS  (Zellner & Theil 1962):
          δ̂ = [Ẑ'(Σ̂⁻¹⊗I)Ẑ]⁻¹ Ẑ'(Σ̂⁻¹⊗I) y,   Ẑ = blockdiag(P Z_j),
          built from blocks  σ^{ij} Ẑ_i'Ẑ_j = σ^{ij} A_i'A_j  and  σ^{ij} Ẑ_i'y_j = σ^{ij} A_i'b_j,
          Var(δ̂) = [Ẑ'(Σ̂⁻¹⊗I)Ẑ]⁻¹  (never a Gn × Gn matrix).

Covariance of the equation-by-equation 2SLS estimator under errors correlated across equations
(homoskedastic within): Cov(δ̂_i, δ̂_j) = σ_ij (A_i'A_i)⁻¹ A_i'A_j (A_j'A_j)⁻¹, σ̂_ij = ê_i'ê_j/n —
the unadjusted system-OLS covariance of ``linearmodels.IV3SLS.fit(method="ols")``.

Cluster-robust covariance of either estimator (errors correlated within clusters, e.g. the years
of one city in a stacked panel): :func:`clustered_cov`; heteroskedasticity-robust (one city per
cluster): :func:`robust_cov`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from data_prep.errors import InputError

RANK_TOL = 1e-10  # relative tolerance on singular values of the column-scaled small matrices
GRAM_TOL = 1e-13  # λ_min/λ_max of the scaled H'H at or below which H is called singular


class SingularSystemError(InputError):
    """The instruments or the projected regressors are (numerically) collinear."""


@dataclass(frozen=True)
class Projector:
    """Orthonormal basis ``Q`` of span(H) (n × L) from a thin QR of H."""

    Q: np.ndarray
    names: tuple[str, ...]

    @classmethod
    def from_instruments(cls, H: np.ndarray, names: Sequence[str],
                         tol: float = GRAM_TOL) -> "Projector":
        """Orthonormalise H; raise :class:`SingularSystemError` naming collinear instruments.

        CholeskyQR2 (Fukaya et al. 2014): R₁ = chol(H'H), Q₁ = H R₁⁻¹, then once more on Q₁.
        Two Gram products and two small triangular inverses — level-3 BLAS only, several times
        faster than Householder QR for tall thin H and orthogonal to machine precision for
        cond(H) ≲ 1e7 (columns are scaled to unit norm first; rank is judged on that Gram
        matrix: λ_min/λ_max ≤ ``tol`` means H'H is numerically singular, i.e. a singular-value
        ratio of H below ≈ 3e-7).
        """
        H = np.asarray(H, dtype=float)
        names = tuple(names)
        if not np.all(np.isfinite(H)):
            bad = [names[k] for k in np.where(~np.isfinite(H).all(axis=0))[0]]
            raise InputError(f"instruments contain missing or infinite values: {', '.join(bad)}")
        if H.shape[1] > H.shape[0]:
            raise SingularSystemError(
                f"there are {H.shape[1]} instruments but only {H.shape[0]} observations")
        scale = np.linalg.norm(H, axis=0)
        zero = [names[k] for k in np.where(scale == 0)[0]]
        if zero:
            raise SingularSystemError(f"instrument column(s) identically zero: {', '.join(zero)}")
        Hs = H / scale
        gram = Hs.T @ Hs
        w, V = np.linalg.eigh(gram)
        if w[0] <= tol * w[-1]:
            involved = [names[k] for k in np.argsort(-np.abs(V[:, 0]))[:3]]
            raise SingularSystemError(
                "the instrument matrix H is singular (H'H not invertible): columns "
                f"{', '.join(involved)} are (nearly) linear combinations of each other; "
                "remove one of them or the variable it duplicates")
        Q = Hs
        for _ in range(2):
            try:
                R = np.linalg.cholesky(gram).T
            except np.linalg.LinAlgError:
                raise SingularSystemError("the instrument matrix H is numerically singular "
                                          "(H'H not positive definite)") from None
            # Q R⁻¹ through the small L × L inverse: one GEMM (a multi-threaded n-column trsm
            # is orders of magnitude slower on a busy machine)
            Q = Q @ np.linalg.inv(R)
            gram = Q.T @ Q
        return cls(Q=np.ascontiguousarray(Q), names=names)

    @property
    def rank(self) -> int:
        return self.Q.shape[1]

    def coords(self, A: np.ndarray) -> np.ndarray:
        """Q'A — coordinates of the projection of A on the instrument space."""
        return self.Q.T @ A

    def project(self, A: np.ndarray) -> np.ndarray:
        """P A = Q(Q'A)."""
        return self.Q @ (self.Q.T @ A)


@dataclass(frozen=True)
class TwoSLSFit:
    """One equation's 2SLS fit: δ̂, residuals y − Zδ̂, and the small pieces for 3SLS."""

    delta: np.ndarray       # (p,)
    resid: np.ndarray       # (n,)
    A: np.ndarray           # (L, p) = Q'Z
    b: np.ndarray           # (L,)   = Q'y
    ztpz_inv: np.ndarray    # (p, p) = (Z'PZ)⁻¹


def _scaled_inverse_and_solve(A: np.ndarray, b: np.ndarray, terms: Sequence[str],
                              equation: str) -> tuple[np.ndarray, np.ndarray]:
    """Solve min ‖Aδ − b‖ and return (δ, (A'A)⁻¹) via an SVD of the column-scaled A."""
    scale = np.linalg.norm(A, axis=0)
    zero = [terms[k] for k in np.where(scale == 0)[0]]
    if zero:
        raise SingularSystemError(
            f"equation {equation}: regressor(s) {', '.join(zero)} have no component in the "
            "instrument space (Z'PZ is singular)")
    U, s, Vt = np.linalg.svd(A / scale, full_matrices=False)
    if s[-1] <= RANK_TOL * s[0]:
        weak = [terms[k] for k in np.argsort(-np.abs(Vt[-1]))[:2]]
        raise SingularSystemError(
            f"equation {equation}: Z'PZ is singular — the instruments cannot separate the "
            f"regressors (most involved: {', '.join(weak)}); the equation is not identified, "
            "add excluded instruments or drop a regressor")
    V = Vt.T / scale[:, None]
    delta = V @ ((U.T @ b) / s)
    inv = (V / s**2) @ V.T
    return delta, inv


def two_sls(y: np.ndarray, Z: np.ndarray, proj: Projector, terms: Sequence[str],
            equation: str = "") -> TwoSLSFit:
    """2SLS of y on Z with instruments H (through ``proj``): δ̂ = (Z'PZ)⁻¹Z'Py."""
    y = np.asarray(y, dtype=float)
    Z = np.asarray(Z, dtype=float)
    if Z.shape[1] > proj.rank:
        raise SingularSystemError(
            f"equation {equation}: {Z.shape[1]} regressors but only {proj.rank} instruments "
            "(order condition fails)")
    A = proj.coords(Z)
    b = proj.coords(y)
    delta, inv = _scaled_inverse_and_solve(A, b, tuple(terms), equation)
    return TwoSLSFit(delta=delta, resid=y - Z @ delta, A=A, b=b, ztpz_inv=inv)


def residual_covariance(E: np.ndarray) -> np.ndarray:
    """Σ̂ = Ê'Ê / n (divide by n, docs/method.md §2a step 3)."""
    E = np.asarray(E, dtype=float)
    return E.T @ E / E.shape[0]


def system_2sls_cov(fits: Sequence[TwoSLSFit], Sigma: np.ndarray) -> np.ndarray:
    """Full covariance of stacked equation-by-equation 2SLS estimates:
    block (i, j) = σ_ij (A_i'A_i)⁻¹ A_i'A_j (A_j'A_j)⁻¹."""
    blocks = [[Sigma[i, j] * fi.ztpz_inv @ (fi.A.T @ fj.A) @ fj.ztpz_inv
               for j, fj in enumerate(fits)] for i, fi in enumerate(fits)]
    return np.block(blocks)


def sigma_inverse(Sigma: np.ndarray, equations: Sequence[str]) -> np.ndarray:
    """Σ̂⁻¹ (G × G) after a Cholesky check; a non-positive-definite Σ̂ raises in plain words."""
    try:
        np.linalg.cholesky(Sigma)
    except np.linalg.LinAlgError:
        eig = np.linalg.eigvalsh(Sigma)
        raise SingularSystemError(
            "the estimated cross-equation error covariance is not positive definite "
            f"(smallest eigenvalue {eig[0]:.3g}); equations {', '.join(equations)} have "
            "perfectly correlated or zero residuals, so 3SLS cannot weight them") from None
    return np.linalg.inv(Sigma)


def cluster_codes(clusters, n: int) -> tuple[np.ndarray, int]:
    """(integer code per row, number of clusters) of a length-n cluster id array; InputError
    for a wrong length, a missing id or fewer than two clusters."""
    import pandas as pd

    ids = pd.Series(np.asarray(clusters, dtype=object).ravel())
    if len(ids) != n:
        raise InputError(f"clustered standard errors: {len(ids)} cluster ids for {n} "
                         f"observations")
    if ids.isna().any():
        raise InputError(f"clustered standard errors: {int(ids.isna().sum())} observations "
                         f"have no cluster id")
    codes, uniques = pd.factorize(ids.astype(str))
    if len(uniques) < 2:
        raise InputError("clustered standard errors need at least two clusters, the data have "
                         f"{len(uniques)}")
    return codes, len(uniques)


def score_meat(Zhats: Sequence[np.ndarray], resid: np.ndarray, weight: np.ndarray,
               codes: np.ndarray | None = None, groups: int = 0) -> np.ndarray:
    """Σ_c s_c s_c' with s_c = Ẑ_c'(weight ⊗ I) ε̂_c summed over the rows of cluster c
    (``codes``: integer cluster per row, ``groups`` of them), or over single rows when
    ``codes`` is None. Block j of a row's score: Ẑ_j,r Σ_k weight_jk ε̂_rk."""
    weighted = resid @ weight  # column j: Σ_k weight_jk ε̂_k (weight is symmetric)
    scores = np.hstack([Z * weighted[:, [j]] for j, Z in enumerate(Zhats)])
    if codes is not None:
        n = len(codes)
        members = sp.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(groups, n))
        scores = members @ scores  # one row per cluster (a sparse sum beats np.add.at's loop)
    return scores.T @ scores


def _symmetric_sandwich(bread: np.ndarray, meat: np.ndarray) -> np.ndarray:
    cov = bread @ meat @ bread
    return (cov + cov.T) / 2.0


def clustered_cov(bread: np.ndarray, Zhats: Sequence[np.ndarray], resid: np.ndarray,
                  weight: np.ndarray, clusters) -> tuple[np.ndarray, int]:
    """Cluster-robust (sandwich) covariance of a 2SLS/3SLS system estimator.

    With Ẑ = blockdiag(Ẑ_j), Ẑ_j = P Z_j (the projected regressors of equation j), the
    weight Ω = Σ̂⁻¹ ⊗ I for 3SLS (``weight`` = Σ̂⁻¹) or I for equation-by-equation 2SLS
    (``weight`` = I_G), the final residuals ε̂ (n × G, of the estimated — for GS methods the
    spatially filtered — equations) and G_c clusters c:

        s_c = Ẑ_c'(Σ̂⁻¹ ⊗ I) ε̂_c,   block j: Σ_{r∈c} Ẑ_j,r Σ_k σ^{jk} ε̂_rk   (the score of c)
        V   = (Ẑ'ΩẐ)⁻¹ [G_c/(G_c − 1) Σ_c s_c s_c'] (Ẑ'ΩẐ)⁻¹,

    the bread ``bread`` = (Ẑ'ΩẐ)⁻¹ being the unadjusted covariance. Errors may be correlated
    arbitrarily within a cluster (over the equations and the rows, e.g. the years of a city)
    and are independent across clusters (Wooldridge 2010, Econometric Analysis of Cross Section
    and Panel Data, §8.3–8.4; Cameron & Miller 2015, "A practitioner's guide to cluster-robust
    inference", J. Human Resources 50(2), §II.C). Small-sample factor G_c/(G_c − 1) only (no
    (N − 1)/(N − K) term): it is linearmodels' ``group_debias=True`` clustered covariance times
    N/(N − 1). Returns (V, G_c).
    """
    codes, groups = cluster_codes(clusters, resid.shape[0])
    meat = score_meat(Zhats, resid, weight, codes, groups) * (groups / (groups - 1.0))
    return _symmetric_sandwich(bread, meat), groups


def robust_cov(bread: np.ndarray, Zhats: Sequence[np.ndarray], resid: np.ndarray,
               weight: np.ndarray) -> np.ndarray:
    """Heteroskedasticity-robust covariance of a 2SLS/3SLS system estimator:

        V = (Ẑ'ΩẐ)⁻¹ (Ẑ'Ω Ŝ Ω Ẑ) (Ẑ'ΩẐ)⁻¹,   Ŝ = Σ_r (ε̂_r ε̂_r') ⊗ e_r e_r',

    ε̂_r the G residuals of city r (heteroskedastic across cities, correlated across equations
    within a city; Drukker, Egger & Prucha 2023, "Simultaneous equations models with
    higher-order spatial or social network interactions", Econometric Theory, 2023; for
    one equation with Ω = I, White's 2SLS covariance, spreg ``robust_vm``). It is
    :func:`clustered_cov` with one city per cluster and no G_c/(G_c − 1) factor.
    """
    return _symmetric_sandwich(bread, score_meat(Zhats, resid, weight))


def three_sls(As: Sequence[np.ndarray], bs: Sequence[np.ndarray], Sigma: np.ndarray,
              equations: Sequence[str], terms: Sequence[Sequence[str]]
              ) -> tuple[list[np.ndarray], np.ndarray]:
    """3SLS from per-equation coordinates A_j = Q'Z_j, b_j = Q'y_j.

    Returns the per-equation δ̂_j and Var(δ̂) = [Ẑ'(Σ̂⁻¹⊗I)Ẑ]⁻¹ (P × P, P = Σ p_j).
    """
    S = sigma_inverse(Sigma, equations)
    G = len(As)
    M = np.block([[S[i, j] * As[i].T @ As[j] for j in range(G)] for i in range(G)])
    r = np.concatenate([sum(S[i, j] * As[i].T @ bs[j] for j in range(G)) for i in range(G)])
    names = [f"{eq}:{t}" for eq, ts in zip(equations, terms) for t in ts]
    delta, cov = _scaled_inverse_and_solve_sym(M, r, names)
    splits = np.cumsum([A.shape[1] for A in As])[:-1]
    return np.split(delta, splits), cov


def _scaled_inverse_and_solve_sym(M: np.ndarray, r: np.ndarray,
                                  names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Solve M δ = r for symmetric positive-definite M with diagonal equilibration."""
    d = np.sqrt(np.diag(M))
    if np.any(d == 0):
        raise SingularSystemError("the 3SLS normal matrix has a zero diagonal entry")
    Ms = M / np.outer(d, d)
    w, V = np.linalg.eigh(Ms)
    if w[0] <= RANK_TOL * w[-1]:
        weak = [names[k] for k in np.argsort(-np.abs(V[:, 0]))[:2]]
        raise SingularSystemError(
            "the 3SLS normal matrix Ẑ'(Σ̂⁻¹⊗I)Ẑ is singular — the system is not identified "
            f"(most involved: {', '.join(weak)})")
    inv = (V / w) @ V.T / np.outer(d, d)
    return inv @ r, inv
