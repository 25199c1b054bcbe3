"""The symmetric similar form of W and its extreme eigenpairs, without dense algebra.

W = D⁻¹C from a symmetric relation C is similar to S = D^{1/2} W D^{-1/2} = D^{-1/2} C D^{-1/2}
(``spectrum.symmetriser`` finds D), so its eigenvalues are real; :func:`symmetric_form` builds S
and refuses, with a one-line reason, a W that has no such form (a k-nearest-neighbour relation:
complex spectrum). The extreme eigenvalues bound the admissible region of a spatial lag
(1/λ_min < ρ < 1/λ_max) and are the exact end nodes of the quadratures in
``data_prep.spectrum.quadrature``. For a row-standardised W they are known in closed form where possible
(λ = 1 on each component with eigenvector D^{1/2}1; λ = −1 on each bipartite component with its
±-colouring), checked by the residual; otherwise ``scipy.sparse.linalg.eigsh`` (implicitly
restarted Lanczos, O(nnz) per iteration; Lehoucq, Sorensen & Yang 1998), and when it stalls on
a tightly clustered end, plain Lanczos steps (Paige 1976) with a warning.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from data_prep.errors import InputError
from data_prep.spectrum.exact import symmetriser


class NoQuadrature(InputError):
    """W is not similar to a symmetric matrix, so no quadrature of its spectrum applies."""


def as_csr(W) -> sp.csr_matrix:
    """W as a float CSR matrix, from a sparse matrix or a ``weights.SpatialWeights``."""
    M = W if sp.issparse(W) else getattr(W, "matrix", W)
    return sp.csr_matrix(M, dtype=float)


def symmetric_form(W) -> tuple[sp.csr_matrix, np.ndarray]:
    """(S, r): S = diag(r) W diag(1/r) symmetric (r = √d of ``spectrum.symmetriser``).

    InputError when W is not diagonally similar to a symmetric matrix: its spectrum is then
    complex and a symmetrised stand-in would be a silently wrong answer.
    """
    W = as_csr(W)
    d = symmetriser(W)
    if d is None:
        raise NoQuadrature(
            "W is not similar to a symmetric matrix (an asymmetric neighbour relation such as "
            "k-nearest neighbours), so its spectrum is complex and no quadrature applies: build "
            "a symmetric relation (symmetrise='union' in weights_from_coordinates, --symmetrise "
            "union in prepare_data) or raise the threshold to use the exact dense spectrum")
    r = np.sqrt(d)
    S = sp.csr_matrix(sp.diags(r) @ W @ sp.diags(1.0 / r))
    S = sp.csr_matrix((S + S.T) * 0.5)  # remove rounding asymmetry
    S.sort_indices()
    return S, r


# ------------------------------------------------------------------ extreme eigenpairs

def _known_pairs(W: sp.csr_matrix, S: sp.csr_matrix, r: np.ndarray, tol: float = 1e-10):
    """Closed-form extreme pairs of a row-standardised W: (values, vectors) or None.

    Each component with non-empty rows has λ = 1 with S-eigenvector r (restricted to it), and
    λ = −1 with r times its 2-colouring when it is bipartite. Checked by the residual.
    """
    rows = np.asarray(W.sum(axis=1)).ravel()
    live = rows != 0
    if not live.any() or not np.allclose(rows[live], 1.0, atol=1e-12, rtol=0):
        return None
    count, labels = connected_components(W, directed=False)
    sign = _two_colouring(S, labels, count)
    top, bottom = [], []
    for c in range(count):
        member = labels == c
        if not live[member].all():
            continue  # an island (zero row): eigenvalue 0, left to the quadrature
        v = np.where(member, r, 0.0)
        top.append(v / np.linalg.norm(v))
        if sign[c] is not None:
            u = np.where(member, r * sign[c], 0.0)
            bottom.append(u / np.linalg.norm(u))
    if not top:
        return None
    values = np.r_[-np.ones(len(bottom)), np.ones(len(top))]
    vectors = np.column_stack(bottom + top)
    if np.max(np.abs(S @ vectors - vectors * values)) > tol:
        return None
    return values, vectors, len(bottom), len(top)


def _two_colouring(S: sp.csr_matrix, labels: np.ndarray, count: int) -> list:
    """Per component: a ±1 vector (over all cities) making it bipartite, or None."""
    from scipy.sparse.csgraph import breadth_first_order

    colour = np.zeros(S.shape[0])
    out: list = []
    coo = S.tocoo()
    for c, root in enumerate(np.unique(labels, return_index=True)[1]):
        order, pred = breadth_first_order(S, root, directed=False, return_predecessors=True)
        colour[root] = 1.0
        for node in order[1:]:
            colour[node] = -colour[pred[node]]
        out.append(None)
    clash = (colour[coo.row] == colour[coo.col]) & (coo.row != coo.col)
    bad = set(labels[coo.row[clash]].tolist())
    # a self-loop (non-zero diagonal) also breaks bipartiteness
    bad |= set(labels[coo.row[(coo.row == coo.col) & (coo.data != 0)]].tolist())
    for c in range(count):
        if c not in bad and (labels == c).sum() > 1:
            out[c] = colour
    return out


def _lanczos_end(S: sp.csr_matrix, which: str, steps: int, v0: np.ndarray):
    """Extreme Ritz pair of ``steps`` plain Lanczos steps (no re-orthogonalisation: lost
    orthogonality only duplicates converged Ritz values, it does not move the extreme one;
    Paige 1976). The vector comes from a second pass of the same recurrence. Used when ARPACK
    stalls on a tightly clustered end of the spectrum (e.g. a large binary lattice)."""
    from scipy.linalg import eigh_tridiagonal

    def run(coef=None):
        v_prev, v = np.zeros_like(v0), v0 / np.linalg.norm(v0)
        alpha, beta, y = [], [], np.zeros_like(v0)
        b = 0.0
        for j in range(steps):
            if coef is not None:
                y += coef[j] * v
            u = S @ v - b * v_prev
            a = float(v @ u)
            u -= a * v
            b = float(np.linalg.norm(u))
            alpha.append(a)
            beta.append(b)
            if b < 1e-14 or (coef is not None and j + 1 == coef.size):
                break
            v_prev, v = v, u / b
        return np.array(alpha), np.array(beta[:-1]), y

    alpha, beta, _ = run()
    m = alpha.size
    idx = 0 if which == "SA" else m - 1
    theta, vec = eigh_tridiagonal(alpha, beta, select="i", select_range=(idx, idx))
    _, _, y = run(vec[:, 0])
    return theta, (y / np.linalg.norm(y))[:, None]


def _eigsh_end(S: sp.csr_matrix, k: int, which: str, tol: float):
    import warnings

    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    n = S.shape[0]
    if n <= max(50, 3 * k):
        lam, vec = np.linalg.eigh(S.toarray())
        idx = np.arange(k) if which == "SA" else np.arange(n - k, n)
        return lam[idx], vec[:, idx]
    # a random (fixed-seed) start: a constant one can be orthogonal to an extreme eigenvector
    # (e.g. the bottom one of a bipartite lattice with an even side)
    v0 = np.random.default_rng(20240601).standard_normal(n)
    try:
        return eigsh(S, k=k, which=which, tol=tol, ncv=max(2 * k + 1, 40), v0=v0, maxiter=30)
    except ArpackNoConvergence:
        end = "smallest" if which == "SA" else "largest"
        if k > 1:
            raise InputError(f"the sparse eigensolver did not converge on the {k} {end} "
                             f"eigenvalues of W; deflate fewer pairs") from None
        steps = 600
        warnings.warn(f"the sparse eigensolver did not converge on the {end} eigenvalue of W "
                      f"(a tightly clustered end of the spectrum); it is taken from {steps} "
                      f"plain Lanczos steps instead", stacklevel=4)
        return _lanczos_end(S, which, steps, v0)


def extreme_eigenpairs(W, deflate: int = 1, *, tol: float = 1e-8,
                       form: tuple[sp.csr_matrix, np.ndarray] | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The ``deflate`` smallest and largest eigenvalues of W and orthonormal eigenvectors of S.

    Returns (values ascending, vectors n × m). A row-standardised W with ``deflate == 1`` uses
    the closed form (one pair per component and end, see the module docstring); otherwise
    ``eigsh`` (which='SA' and 'LA', Lanczos with implicit restarts, O(nnz) per iteration).
    """
    if deflate < 1:
        raise InputError(f"deflate must be at least 1 (the extreme eigenvalues), not {deflate}")
    W = as_csr(W)
    S, r = symmetric_form(W) if form is None else form
    n = S.shape[0]
    known = _known_pairs(W, S, r) if deflate == 1 else None
    if known is not None:
        values, vectors, n_bottom, _ = known
        if n_bottom == 0:  # not bipartite: the lower end from the eigensolver
            lo, vlo = _eigsh_end(S, 1, "SA", tol)
            values, vectors = np.r_[lo, values], np.column_stack([vlo, vectors])
    else:
        k = min(deflate, max(1, (n - 1) // 2))
        lo, vlo = _eigsh_end(S, k, "SA", tol)
        hi, vhi = _eigsh_end(S, k, "LA", tol)
        values, vectors = np.r_[lo, hi], np.column_stack([vlo, vhi])
    order = np.argsort(values, kind="stable")
    return values[order], vectors[:, order]


def extreme_eigenvalues(W, *, tol: float = 1e-8) -> tuple[float, float]:
    """λ_min and λ_max of W (real: W must be similar to a symmetric matrix), without dense algebra.

    These bound the admissible region of a spatial lag, 1/λ_min < ρ < 1/λ_max.
    """
    values, _ = extreme_eigenpairs(W, 1, tol=tol)
    return float(values[0]), float(values[-1])
