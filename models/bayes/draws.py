"""Posterior draws as arrays with a leading ``sample`` axis (chain-major, as
``posterior.stack(sample=("chain", "draw"))`` gives them)."""

from __future__ import annotations

import numpy as np


def as_draws(a, trailing: int, name: str) -> np.ndarray:
    """Return ``a`` with a leading sample axis, added when it has only the ``trailing`` dims."""
    arr = np.asarray(a, dtype=float)
    if arr.ndim == trailing:
        arr = arr[None]
    if arr.ndim != trailing + 1:
        raise ValueError(f"{name} must have {trailing} dims (+ a leading sample axis), "
                         f"got shape {arr.shape}")
    return arr
