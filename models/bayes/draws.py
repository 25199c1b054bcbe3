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


def system_draws(xb, B0, B1, Sigma, rho, n: int, G: int):
    """Draws of the system's parameters, each with a leading axis of length 1 or S.

    Returns (xb (·, n, G), B0, B1, Sigma (·, G, G), rho (·, G), S); a missing ``rho`` and NaN
    entries (the posterior's "no spatial error") become 0. Raises ValueError on a shape mismatch.
    """
    xb = as_draws(xb, 2, "xb")
    B0, B1, Sigma = as_draws(B0, 2, "B0"), as_draws(B1, 2, "B1"), as_draws(Sigma, 2, "Sigma")
    rho = np.zeros((1, G)) if rho is None else np.nan_to_num(as_draws(rho, 1, "rho"), nan=0.0)
    S = max(a.shape[0] for a in (xb, B0, B1, Sigma, rho))
    for name, a, shape in (("B0", B0, (G, G)), ("B1", B1, (G, G)), ("Sigma", Sigma, (G, G)),
                           ("xb", xb, (n, G)), ("rho", rho, (G,))):
        if a.shape[1:] != shape or a.shape[0] not in (1, S):
            raise ValueError(f"{name} has shape {a.shape}, expected ({S} or 1,) + {shape}")
    return xb, B0, B1, Sigma, rho, S
