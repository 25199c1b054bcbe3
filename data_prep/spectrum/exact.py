"""Eigenvalues of the spatial weights W, for log|I − ρW| = Σ log(1 − ρ λ_i) (Ord 1975).

Symmetric route: when W = D⁻¹C with C symmetric and non-negative (a row-standardised symmetric
relation, or the binary relation itself), W is similar to the symmetric matrix
S = D^{1/2} W D^{-1/2} = D^{-1/2} C D^{-1/2}, so its eigenvalues are real and
``scipy.linalg.eigvalsh(S)`` gives them stably. D need not be known: on each connected component
d_s / d_r = W_rs / W_sr along any link, which this module recovers by a breadth-first walk and
then checks on every link (a relation that is symmetric in pattern but not in values, e.g. an
asymmetric GWT, fails the check and takes the general route).

General route: ``scipy.linalg.eigvals(W)`` (complex in general).

A full spectrum needs the dense matrix: O(n²) memory and O(n³) time, which is why
:func:`eigenvalues` refuses n above ``max_n`` (default 20,000) and points to a quadrature or
Chebyshev approximation of the log-determinant instead. Islands kept with a zero row contribute
the eigenvalue 0. Above a few thousand cities :func:`data_prep.spectrum.chooser.spectrum` (the one chooser)
replaces the eigenvalues by quadrature nodes and weights; :mod:`data_prep.spectrum.stored`
keeps either on the dataset's dim ``eigen``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order, connected_components

from data_prep.errors import InputError

MAX_DENSE_N = 20_000


def symmetriser(W: sp.csr_matrix, rtol: float = 1e-10) -> np.ndarray | None:
    """Positive weights d with d_r W_rs = d_s W_sr on every link, or None when none exist.

    When they exist, D^{1/2} W D^{-1/2} (D = diag d) is symmetric, so W is similar to a
    symmetric matrix and its eigenvalues are real: the case of a row-standardised W = C / C1
    built from a symmetric relation C, where d = C1 (the row sums; Ord 1975, JASA 70). d is found
    by walking a spanning tree of each connected component (log d_s = log d_r + log W_rs −
    log W_sr along tree edges), then every link is checked within ``rtol``. Returned scaled so
    that max d = 1. O(nnz(W)).
    """
    n = W.shape[0]
    if ((W != 0) != (W.T != 0)).nnz:
        return None
    if (W.data < 0).any():
        return None
    if W.nnz == 0:
        return np.ones(n)
    WT = sp.csr_matrix(W.T)
    log_d = np.zeros(n)
    _, labels = connected_components(W, directed=False)
    for root in np.unique(labels, return_index=True)[1]:
        order, pred = breadth_first_order(W, root, directed=False, return_predecessors=True)
        kids = order[1:]
        if kids.size == 0:  # an island: any d will do
            continue
        parents = pred[kids]
        step = (np.log(np.asarray(W[parents, kids]).ravel())
                - np.log(np.asarray(WT[parents, kids]).ravel()))
        for node, parent, s in zip(kids, parents, step):  # parents precede children in BFS order
            log_d[node] = log_d[parent] + s
    coo = W.tocoo()
    lhs = log_d[coo.row] + np.log(coo.data)
    rhs = log_d[coo.col] + np.log(np.asarray(WT[coo.row, coo.col]).ravel())
    if not np.allclose(lhs, rhs, rtol=0, atol=rtol * 1e3):
        return None
    return np.exp(log_d - log_d.max())


def spectrum_method(weights) -> str:
    """'symmetric' when W is diagonally similar to a symmetric matrix, else 'general'."""
    return "symmetric" if symmetriser(sp.csr_matrix(weights.matrix, dtype=float)) is not None \
        else "general"


def eigenvalues(weights, *, max_n: int = MAX_DENSE_N) -> np.ndarray:
    """All eigenvalues of W: real and ascending on the symmetric route, complex otherwise.

    ``weights`` is a :class:`data_prep.weights.SpatialWeights` or a scipy sparse matrix.
    Builds one dense n × n array (unavoidable for a full spectrum); refuses n > ``max_n``.
    """
    W = sp.csr_matrix(weights if sp.issparse(weights) else weights.matrix, dtype=float)
    n = W.shape[0]
    if n > max_n:
        raise InputError(f"a full spectrum of W needs a dense {n} x {n} matrix; above "
                         f"{max_n} cities use a quadrature or Chebyshev approximation of "
                         f"log|I - rho W| instead")
    d = symmetriser(W)
    if d is not None:
        root = np.sqrt(d)
        S = sp.diags(root) @ W @ sp.diags(1.0 / root)
        dense = S.toarray()
        dense = (dense + dense.T) / 2.0  # remove rounding asymmetry before eigvalsh
        return la.eigvalsh(dense)
    return la.eigvals(W.toarray())


def check_spectrum(eigs: np.ndarray, W: sp.spmatrix, *, tol: float = 1e-6,
                   weights: np.ndarray | None = None) -> None:
    """InputError unless Σλ = trace(W) and Σλ² = trace(W²) = Σ_rs W_rs W_sr (sparse).

    With quadrature ``weights``: Στ = n, Στθ = trace(W), Στθ² = trace(W²) (both quadratures
    reproduce these exactly, up to rounding).
    """
    W = sp.csr_matrix(W, dtype=float)
    n = W.shape[0]
    if weights is None and eigs.size != n:
        raise InputError(f"the stored spectrum has {eigs.size} eigenvalues but W is {n} x {n}")
    w = np.ones(eigs.shape) if weights is None else np.asarray(weights, dtype=float)
    if weights is not None and not np.isclose(w.sum(), n, rtol=tol):
        raise InputError(f"the stored quadrature weights sum to {w.sum():.6g} but W is "
                         f"{n} x {n}")
    trace1 = float(W.diagonal().sum())
    trace2 = float(W.multiply(W.T).sum())
    s1, s2 = np.sum(w * eigs), np.sum(w * eigs ** 2)
    scale = max(1.0, abs(trace2))
    if abs(s1 - trace1) > tol * scale or abs(s2 - trace2) > tol * scale:
        raise InputError(f"the stored spectrum does not match W: sum of eigenvalues "
                         f"{np.real(s1):.6g} vs trace(W) {trace1:.6g}, sum of squares "
                         f"{np.real(s2):.6g} vs trace(W^2) {trace2:.6g}")
