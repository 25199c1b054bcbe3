"""Instrument columns: spatial-lag names and the greedy independent-column selection.

Kelejian & Prucha (2004) instrument with H = [X, W X, W² X]; W applied to a column already
named "W(x)" gives "W2(x)", so numerically identical columns share their name and are dropped by
name before any arithmetic.
"""

from __future__ import annotations

import numpy as np

# A column is dropped from H when its component orthogonal to the kept ones is this small
# relative to its own norm: exact duplicates/collinearity leave ~1e-15, real signal far more.
COLLINEAR_TOL = 1e-8

def unit_columns(M: np.ndarray) -> np.ndarray:
    """``M`` with every nonzero column scaled to unit Euclidean length (zero columns stay zero).

    The largest absolute entry is divided out before the norm is taken, so a column of huge
    values (1e200) does not overflow its sum of squares. Rank and collinearity decisions are
    made on these columns, so they do not depend on the units of a variable.
    """
    M = np.asarray(M, dtype=float)
    peak = np.abs(M).max(axis=0) if M.size else np.zeros(M.shape[1])
    safe = np.where(peak > 0, peak, 1.0)
    scaled = M / safe
    norms = np.linalg.norm(scaled, axis=0)
    return scaled / np.where(norms > 0, norms, 1.0)


def independent_columns(cols, user) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    """Keep columns in order, dropping name duplicates and columns in the span of kept ones.

    Greedy Gram–Schmidt with one re-orthogonalisation ("twice is enough"), O(n k²), on columns
    scaled to unit length (:func:`unit_columns`): the first of a set of collinear columns is
    kept, which a pivoted QR would not guarantee, and the decision does not depend on units.
    """
    allcols = list(cols) + list(user)
    kept: list[tuple[str, np.ndarray]] = []
    names: set[str] = set()
    dropped_user: list[str] = []
    n_regular = len(cols)
    basis = np.empty((len(allcols[0][1]) if allcols else 0, len(allcols)))
    r_used = 0
    for pos, (name, col) in enumerate(allcols):
        if name in names:
            continue
        col = np.asarray(col, dtype=float)
        r = unit_columns(col[:, None])[:, 0]  # decide on unit length: units do not matter
        norm = np.linalg.norm(r)
        B = basis[:, :r_used]
        for _ in range(2):
            r -= B @ (B.T @ r)
        rn = np.linalg.norm(r)
        if norm == 0 or rn <= COLLINEAR_TOL * norm:
            if pos >= n_regular:
                dropped_user.append(name)
            continue
        basis[:, r_used] = r / rn
        r_used += 1
        kept.append((name, col))
        names.add(name)
    return kept, dropped_user
