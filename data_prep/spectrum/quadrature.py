"""Spectrum of W without a dense eigendecomposition: quadrature nodes θ_q and weights τ_q.

Every spectral quantity the models need is a trace Σ_k h(λ_k) = tr h(W) (the log-Jacobian with
h(λ) = log|det(I − B0 − B1 λ)|, docs/method.md §2b; the impacts with h(λ) = (I − B0 − B1 λ)⁻¹ λ^p).
Above a few thousand cities a dense eigendecomposition (O(n³)) is replaced by a quadrature
Σ_q τ_q h(θ_q), τ summing to n, which drops into the same code as an exact spectrum (nodes =
eigenvalues, weights = 1).

Both routes work on the symmetric similar form S = D^{1/2} W D^{-1/2} (``spectrum.symmetriser``):

* **Chebyshev moments** (:func:`chebyshev_quadrature`, the default). The spectrum is mapped to
  [−1, 1] with the extreme eigenvalues, and its Chebyshev moments μ_j = tr T_j(S̃) are computed
  *exactly* up to order 2K from the sparse matrices T_0..T_K(S̃), built a block of columns at a
  time (tr T_{a+b} = 2 Σ T_a∘T_b − tr T_{|a−b|}; K ≤ 20, limited by a fill-in budget), and
  beyond that by Hutchinson's estimator with Rademacher probes and the three-term recurrence
  (the kernel polynomial method, Weiße, Wellein, Alvermann & Fehske 2006, Rev. Mod. Phys. 78;
  Han, Malioutov & Shin 2015, ICML). The exact low orders remove the probe noise where the
  smooth log terms put almost all their weight; the probe noise left sits in orders whose
  Chebyshev coefficients are small. The moments are turned into a
  Gauss rule (positive weights, exact for polynomials up to the moments' degree) by Gautschi's
  modified Chebyshev algorithm (Gautschi 2004, *Orthogonal Polynomials*, §2.1.7) and the
  Golub–Welsch eigenproblem. No Jackson damping: it keeps a plotted density non-negative but
  blurs the spectrum by ~π/degree, a bias the log-determinant near the boundary would feel.
* **Stochastic Lanczos quadrature** (:func:`lanczos_quadrature`; Ubaru, Chen & Saad 2017, SIAM
  J. Matrix Anal. Appl. 38): per probe the Ritz values and squared first components of a Lanczos
  run; weights then corrected (least relative change) to reproduce the exact low-order moments.

In both, the extreme eigenpairs are *deflated*: their eigenvalues are nodes of weight 1 and the
probes are projected off their eigenvectors, so the admissible region (every factor > 0 at every
node) ends exactly where the true one does and the near-singular log terms at the region's ends
are exact. They come from ``data_prep.spectrum.extremes`` (closed form for a row-standardised W where
possible, else ``scipy.sparse.linalg.eigsh``, O(nnz) per iteration).

A W that is not similar to a symmetric matrix (e.g. a k-nearest-neighbour relation) has a
complex spectrum; none of these routes applies, and :func:`symmetric_form` refuses it with a
one-line reason (the exact dense route of ``spectrum.eigenvalues`` handles it below the dense
limit). :func:`spectrum` is the one chooser: exact up to ``threshold`` cities, quadrature above.

Measured (benchmarks/bench_quadrature.py; 41-point ρ grid from 0.99/λ_min to 0.99/λ_max without
|ρ| < 0.05; 2 shared cores): n = 4,900 rook lattice, Chebyshev 1.1e-6 max relative log-det error
in 1.2 s, Lanczos 7e-7 in 6.5 s (dense: 73 s); 6-NN union relation, Chebyshev 1.9e-5 in 14 s,
Lanczos 9e-7 in 20 s (dense: 117 s). n = 99,856: Chebyshev 20 s (rook), 29 s (6-NN union); on
the binary rook lattice, against its closed-form spectrum, 4.3e-6 (94 s, most of it finding
the tightly clustered extreme eigenvalues).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from data_prep.errors import InputError
from data_prep.spectrum.extremes import as_csr, extreme_eigenpairs, symmetric_form

DEFAULT_THRESHOLD = 3000
METHODS = ("auto", "exact", "chebyshev", "lanczos")
# default effort of the quadratures (measured in benchmarks/bench_quadrature.py)
CHEBYSHEV_DEGREE = 200
CHEBYSHEV_PROBES = 50       # at most; fewer for large n (see chebyshev_probes)
EXACT_ORDER = 40            # exact Chebyshev moments up to this order ...
EXACT_BUDGET = 5_000_000    # ... while the sparse T_k(S̃) hold at most this many entries
                            # (or 250 per city, whichever is larger)
LANCZOS_STEPS = 40
LANCZOS_PROBES = 100


def chebyshev_probes(n: int) -> int:
    """Default probe count: the probe error of μ_j/n falls like 1/√(probes · n), so large n
    needs fewer probes for the same relative accuracy (50 up to 10,000 cities, 10 from 50,000)."""
    return int(min(CHEBYSHEV_PROBES, max(10, -(-500_000 // max(n, 1)))))


# ------------------------------------------------------------------ Chebyshev moments

def _budget(budget: int | None, n: int) -> int:
    """Entries allowed in T_K(S̃) (all columns): ``budget``, by default max(5e6, 250 n)."""
    return max(EXACT_BUDGET, 250 * n) if budget is None else int(budget)


def _exact_moments(St: sp.csr_matrix, order: int, budget: int,
                   chunk_entries: int = 2_000_000) -> np.ndarray:
    """tr T_j(S̃) for j = 0..2K exactly (2K ≤ order), K limited by ``budget`` entries in T_K.

    tr T_{2k} = 2‖T_k‖_F² − n and tr T_{2k+1} = 2 Σ T_{k+1}∘T_k − tr T_1 (T_k symmetric, and
    T_aT_b = ½(T_{a+b} + T_{|a−b|})). The sparse columns X_k = T_k(S̃) E_B of a block B of unit
    vectors follow the recurrence X_{k+1} = 2 S̃ X_k − X_{k−1}; blocks of columns keep the memory
    near ``chunk_entries`` whatever n, and the first block fixes K (its fill-in, scaled to n).
    """
    n = St.shape[0]
    St = sp.csr_matrix(St)
    St.sum_duplicates()  # canonical (sorted, no duplicates): element-wise products need it
    tr1 = float(St.diagonal().sum())
    K = max(order // 2, 1)
    frob = np.zeros(K + 1)   # Σ_B ‖X_k‖_F², k = 0..K
    cross = np.zeros(K + 1)  # Σ_B Σ X_k∘X_{k-1}, k = 1..K
    start, width = 0, min(n, max(16, chunk_entries // 2000))
    while start < n:
        stop = min(n, start + width)
        cols = np.arange(start, stop)
        prev = sp.csr_matrix((np.ones(cols.size), (cols, np.arange(cols.size))),
                             shape=(n, cols.size))
        cur = sp.csr_matrix(St[cols].T)  # = S̃[:, B], S̃ symmetric
        frob[0] += cols.size
        frob[1] += float(np.sum(cur.data ** 2))
        cross[1] += float(cur.multiply(prev).sum())
        for k in range(2, K + 1):
            nxt = sp.csr_matrix(2.0 * (St @ cur) - prev)
            if start == 0 and nxt.nnz * (n / cols.size) > budget:
                K = k - 1  # the first block decides how far the exact orders go
                break
            nxt.sum_duplicates()
            frob[k] += float(np.sum(nxt.data ** 2))
            cross[k] += float(nxt.multiply(cur).sum())
            prev, cur = cur, nxt
        if start == 0:  # later blocks sized from the first block's fill-in
            per_col = max(cur.nnz / cols.size, 1.0)
            width = max(1, int(chunk_entries // per_col))
        start = stop
    out = [float(n), tr1]
    for k in range(1, K + 1):
        out.append(2.0 * frob[k] - n)                    # tr T_{2k}
        if k < K:
            out.append(2.0 * cross[k + 1] - tr1)         # tr T_{2k+1}
    return np.asarray(out[: order + 1])


def _probe_moments(St: sp.csr_matrix, U: np.ndarray, degree: int, probes: int,
                   seed: int) -> np.ndarray:
    """Hutchinson estimates of tr(P T_j(S̃) P), j = 0..degree, P = I − UUᵀ.

    Rademacher probes z projected by P; V_k = T_k(S̃) Pz by the three-term recurrence, and the
    doubling identities z'T_{2k}z = 2V_k'V_k − z'z, z'T_{2k+1}z = 2V_{k+1}'V_k − z'S̃z halve the
    number of products (Weiße et al. 2006, §II.C).
    """
    n = St.shape[0]
    rng = np.random.default_rng(seed)
    Z = rng.choice([-1.0, 1.0], size=(n, probes))
    Z -= U @ (U.T @ Z)
    mu = np.zeros(degree + 1)
    half = (degree + 1) // 2 + 1
    prev, cur = Z, St @ Z
    v0, v1 = np.einsum("ij,ij->", Z, Z), np.einsum("ij,ij->", Z, cur)
    mu[0], mu[1] = v0, v1
    if degree >= 2:
        mu[2] = 2.0 * np.einsum("ij,ij->", cur, cur) - v0
    for k in range(2, half):
        nxt = 2.0 * (St @ cur) - prev
        if 2 * k - 1 <= degree:
            mu[2 * k - 1] = 2.0 * np.einsum("ij,ij->", nxt, cur) - v1
        if 2 * k <= degree:
            mu[2 * k] = 2.0 * np.einsum("ij,ij->", nxt, nxt) - v0
        prev, cur = cur, nxt
    return mu / probes


def gauss_from_chebyshev_moments(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss rule on [−1, 1] from Chebyshev moments μ_j = ∫ T_j dσ, j = 0..2N−1.

    Modified Chebyshev algorithm (Gautschi 2004, Alg. 2.1) with the monic Chebyshev
    polynomials π_0 = 1, π_k = 2^{1−k} T_k (recurrence a_k = 0, b_1 = ½, b_k = ¼) gives the
    Jacobi matrix of σ; its eigenvalues are the nodes and the squared first components × σ's
    mass the weights (Golub & Welsch 1969). Stops early, with fewer nodes, where a recursion
    coefficient β_k is not positive (moments that no positive measure has: probe noise).
    """
    mu = np.asarray(mu, dtype=float)
    N = mu.size // 2
    mass = mu[0]
    scale = np.r_[1.0, 2.0 ** (1.0 - np.arange(1, 2 * N))]
    m = mu[: 2 * N] / mass * scale
    a = np.zeros(2 * N)
    b = np.r_[0.0, 0.5, np.full(2 * N - 2, 0.25)]
    alpha, beta = np.zeros(N), np.zeros(N)
    alpha[0], beta[0] = m[1] / m[0], m[0]
    sig_prev = np.zeros(2 * N)
    sig = m.copy()
    size = N
    for k in range(1, N):
        l = np.arange(k, 2 * N - k)
        new = np.zeros(2 * N)
        new[l] = (sig[l + 1] - (alpha[k - 1] - a[l]) * sig[l] - beta[k - 1] * sig_prev[l]
                  + b[l] * sig[l - 1])
        if not (new[k] > 0 and sig[k - 1] > 0 and np.isfinite(new[k])):
            size = k
            break
        alpha[k] = a[k] + new[k + 1] / new[k] - sig[k] / sig[k - 1]
        beta[k] = new[k] / sig[k - 1]
        sig_prev, sig = sig, new
    J = np.diag(alpha[:size]) + np.diag(np.sqrt(beta[1:size]), 1) + \
        np.diag(np.sqrt(beta[1:size]), -1)
    x, V = np.linalg.eigh(J)
    return np.clip(x, -1.0, 1.0), mass * V[0] ** 2


@dataclass(frozen=True)
class _Deflated:
    values: np.ndarray       # eigenvalues kept as exact nodes
    vectors: np.ndarray      # their orthonormal S-eigenvectors (n × m)
    lo: float
    hi: float


def _deflated(W, S, r, deflate: int, tol: float) -> _Deflated:
    values, vectors = extreme_eigenpairs(W, deflate, tol=tol, form=(S, r))
    q, _ = np.linalg.qr(vectors)  # re-orthonormalise (vectors of a repeated eigenvalue)
    return _Deflated(values, q, float(values[0]), float(values[-1]))


def chebyshev_quadrature(W, degree: int = CHEBYSHEV_DEGREE, probes: int | None = None,
                         seed: int = 0, *, deflate: int = 1, exact_order: int = EXACT_ORDER,
                         exact_budget: int | None = None, tol: float = 1e-8,
                         details: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (Σ = n) of the spectrum of W from Chebyshev moments (module docstring).

    μ_j = tr T_j(S̃) of the deflated spectrum, S̃ = (S − c)/h mapping [λ_min, λ_max] onto
    [−1, 1]; exact for j ≤ 2K, probed for 2K < j ≤ ``degree``; then a Gauss rule with about
    degree/2 nodes, plus the deflated extreme eigenvalues with weight 1. Cost: O(probes · degree ·
    nnz) plus the sparse powers (at most ``exact_budget`` entries each, default
    max(5e6, 50 n)). ``details`` (a dict) is
    filled with what was done (exact order reached, nodes, extremes).
    """
    W = as_csr(W)
    probes = chebyshev_probes(W.shape[0]) if probes is None else probes
    if degree < 2 or probes < 1:
        raise InputError(f"chebyshev_quadrature needs degree >= 2 and probes >= 1, not "
                         f"{degree} and {probes}")
    S, r = symmetric_form(W)
    n = S.shape[0]
    defl = _deflated(W, S, r, deflate, tol)
    c, h = 0.5 * (defl.hi + defl.lo), 0.5 * (defl.hi - defl.lo) * (1 + 1e-9) or 1.0
    St = sp.csr_matrix((S - c * sp.identity(n, format="csr")) / h)
    shift = (defl.values - c) / h
    k = np.arange(degree + 1)
    removed = np.cos(k[:, None] * np.arccos(np.clip(shift, -1, 1))[None, :]).sum(axis=1)
    mu = _probe_moments(St, defl.vectors, degree, probes, seed)
    exact = _exact_moments(St, min(exact_order, degree), _budget(exact_budget, n))
    J = exact.size - 1
    mu[: J + 1] = exact - removed[: J + 1]
    mu[0] = n - defl.values.size  # the deflated mass is exact too
    x, w = gauss_from_chebyshev_moments(mu)
    nodes = np.r_[defl.values, c + h * x]
    weights = np.r_[np.ones(defl.values.size), w]
    if details is not None:
        details.update(degree=int(degree), probes=int(probes), seed=int(seed),
                       exact_order=int(J), deflated=int(defl.values.size),
                       gauss_nodes=int(x.size), lambda_min=defl.lo, lambda_max=defl.hi)
    return nodes, weights


# ------------------------------------------------------------------ stochastic Lanczos

def _chebyshev_matrix(x: np.ndarray, order: int) -> np.ndarray:
    """T_j(x_q) for j = 0..order, shape (len(x), order + 1)."""
    return np.cos(np.arccos(np.clip(x, -1.0, 1.0))[:, None] * np.arange(order + 1)[None, :])


def _match_moments(x: np.ndarray, weights: np.ndarray, targets: np.ndarray
                   ) -> tuple[np.ndarray, int]:
    """Weights τ(1 + Vc), V_qj = T_j(x_q), that reproduce the exact moments ``targets``_j.

    The least relative change of τ (weighted least squares): a control variate for the part of
    h that the exact low-order Chebyshev moments already integrate. If some weight would turn
    negative, fewer moments are matched (halving the order; order 0 is a rescaling to Σ = n).
    Returns (weights, order matched).
    """
    order = targets.size - 1
    while True:
        V = _chebyshev_matrix(x, order)
        A = V.T @ (weights[:, None] * V)
        c = np.linalg.lstsq(A, targets[: order + 1] - V.T @ weights, rcond=None)[0]
        out = weights * (1.0 + V @ c)
        if np.all(out >= 0) or order == 0:
            return (out if order else weights * targets[0] / weights.sum()), order
        order //= 2


def lanczos_quadrature(W, steps: int = LANCZOS_STEPS, probes: int = LANCZOS_PROBES,
                       seed: int = 0, *, deflate: int = 1, exact_order: int = EXACT_ORDER,
                       exact_budget: int | None = None, tol: float = 1e-8,
                       details: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stochastic Lanczos quadrature of the spectrum of W: nodes θ_q and weights τ_q (Σ = n).

    With S = D^{1/2} W D^{-1/2} symmetric, Σ_k h(λ_k) = tr h(S) ≈ (1/m) Σ_probes ‖Pz‖²
    Σ_j (e_1'Q_j)² h(θ_j), where θ_j, Q_j are the Ritz values and vectors of ``steps`` Lanczos
    steps (full re-orthogonalisation) started from the projected Rademacher probe Pz/‖Pz‖
    (Ubaru, Chen & Saad 2017). P removes the deflated extreme eigenvectors, whose eigenvalues
    enter as nodes of weight 1; the other weights are then corrected (least relative change) to
    reproduce the exact Chebyshev moments of :func:`chebyshev_quadrature` (a control variate;
    fewer if a weight would turn negative). Cost O(m k nnz(W) + m k² n).
    """
    if steps < 1 or probes < 1:
        raise InputError(f"lanczos_quadrature needs steps >= 1 and probes >= 1, not {steps} "
                         f"and {probes}")
    W = as_csr(W)
    S, r = symmetric_form(W)
    n = S.shape[0]
    defl = _deflated(W, S, r, deflate, tol)
    U = defl.vectors
    rng = np.random.default_rng(seed)
    k = min(steps, n - U.shape[1]) if n > U.shape[1] else 0
    nodes, weights = [defl.values], [np.ones(defl.values.size)]
    for _ in range(probes if k > 0 else 0):
        z = rng.choice([-1.0, 1.0], size=n)
        z -= U @ (U.T @ z)
        norm2 = float(z @ z)
        if norm2 <= 1e-24:
            continue
        V = np.zeros((k, n))
        alpha, beta = np.zeros(k), np.zeros(k)
        V[0] = z / np.sqrt(norm2)
        m = k
        for j in range(k):
            u = S @ V[j]
            alpha[j] = V[j] @ u
            for _ in range(2):  # twice is enough (Giraud et al. 2005)
                u -= V[: j + 1].T @ (V[: j + 1] @ u)
                u -= U @ (U.T @ u)
            if j + 1 < k:
                beta[j] = np.linalg.norm(u)
                if beta[j] < 1e-12:
                    m = j + 1
                    break
                V[j + 1] = u / beta[j]
        T = np.diag(alpha[:m]) + np.diag(beta[: m - 1], 1) + np.diag(beta[: m - 1], -1)
        theta, Q = np.linalg.eigh(T)
        nodes.append(theta)
        weights.append(Q[0] ** 2 * norm2 / probes)
    nodes_r, weights_r = np.concatenate(nodes[1:] or [np.zeros(0)]), \
        np.concatenate(weights[1:] or [np.zeros(0)])
    matched = -1
    if nodes_r.size:
        c, h = 0.5 * (defl.hi + defl.lo), 0.5 * (defl.hi - defl.lo) * (1 + 1e-9) or 1.0
        St = sp.csr_matrix((S - c * sp.identity(n, format="csr")) / h)
        exact = _exact_moments(St, exact_order, _budget(exact_budget, n))
        exact -= _chebyshev_matrix((defl.values - c) / h, exact.size - 1).sum(axis=0)
        weights_r, matched = _match_moments((nodes_r - c) / h, weights_r, exact)
    if details is not None:
        details.update(steps=int(steps), probes=int(probes), seed=int(seed),
                       deflated=int(defl.values.size), matched_order=int(matched),
                       lambda_min=defl.lo, lambda_max=defl.hi)
    return np.r_[defl.values, nodes_r], np.r_[np.ones(defl.values.size), weights_r]
