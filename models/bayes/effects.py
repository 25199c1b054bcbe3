"""Direct, indirect and total impacts of the spatial simultaneous system, per posterior draw.

LeSage & Pace (2009, *Introduction to Spatial Econometrics*, ch. 2.7) summarise the n × n matrix
of partial derivatives ∂y/∂x' of a spatial lag model by three scalars: the average own-city
effect (direct = n⁻¹ tr S), the average total effect (total = n⁻¹ 1'S1) and their difference
(indirect, the average spill-over). For the system 𝒜(θ) y = X̃ b + u with
𝒜 = I_Gn − (B0 ⊗ I_n + B1 ⊗ W) (docs/method.md §2b), an exogenous variable x that enters equation h
with coefficient β_h (and possibly its Durbin lag W(x) with θ_h) moves dependent g through

    S_gh(W) = [𝒜⁻¹]_gh (β_h I + θ_h W),

and when x enters several equations its impact on y_g is Σ_h S_gh(W). Every block of 𝒜⁻¹ is a
rational function of W, so with W = V Λ V⁻¹,

    [𝒜⁻¹]_gh = V diag_k([(I_G − B0 − B1 λ_k)⁻¹]_gh) V⁻¹,
    tr S_gh = Σ_k [(I_G − B0 − B1 λ_k)⁻¹]_gh (β_h + θ_h λ_k),

which costs O(n G³) per draw from the spectrum and never forms an n × n matrix. For a
row-standardised W (W1 = 1, so 1 is the eigenvector of λ = 1)

    1'S_gh 1 / n = [(I_G − B0 − B1)⁻¹]_gh (β_h + θ_h).

For any other W the total is computed exactly by one sparse LU factorisation of 𝒜' per draw
(solving 𝒜' z_g = e_g ⊗ 1 gives 1'[𝒜⁻¹]_gh v = z_g,h' v for every right-hand side v).

Shocks (the effect of an endogenous regressor). A dependent y_h that appears as a regressor
elsewhere has no coefficient of its own to summarise; its meaningful "effect" is the response of
y_g to an exogenous unit shock to equation h's disturbance, S = [𝒜⁻¹]_gh — the impact of raising
y_h everywhere by one unit of its own innovation, including all feedback through the system.
These appear in the output under the dependent's name (``variable_kind == "shock"``).

A spectrum given as quadrature nodes with weights (large n) is accepted through
``spectrum_weights``: n⁻¹ tr f(W) ≈ Σ_q τ_q f(θ_q) with Σ_q τ_q = 1.

Hand-written because no library computes system (multi-equation) impacts from a spectrum.
"""

from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
import scipy.sparse as sp
import xarray as xr
from scipy.sparse.linalg import splu

from data_prep.spectrum.stability import admissible_mask
from data_prep.terms import lag_target
from models.bayes.draws import as_draws
from models.bayes.idata import coef_grid

# Minimum-degree ordering on A'+A: the system's pattern is (near) structurally symmetric, and this
# ordering gave half the fill and 1.3-3.7x faster factorisations than SuperLU's default COLAMD on
# lattice maps (n = 256 and 10,000).
_ORDERING = "MMD_AT_PLUS_A"

EFFECTS = ("direct", "indirect", "total")
# Upper bound on the entries of one batched (draws × eigenvalues × G × G) array, to keep memory
# flat on large maps with many draws.
_CHUNK_ENTRIES = 4_000_000


def _coefficient_draws(value, S: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(beta, theta) draws as float arrays of shape (S,); theta None or missing means 0."""
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(f"coefficient {name}: give (beta, theta), got {len(value)} items")
        beta, theta = value
    else:
        beta, theta = value, None
    out = []
    for part, arr in (("beta", beta), ("theta", theta)):
        a = np.zeros(S) if arr is None else np.asarray(arr, dtype=float).reshape(-1)
        if a.size == 1:
            a = np.full(S, a.item())
        if a.size != S:
            raise ValueError(f"coefficient {name}: {part} has {a.size} draws, expected {S}")
        out.append(a)
    return out[0], out[1]


def spectral_moments(B0: np.ndarray, B1: np.ndarray, eigenvalues: np.ndarray,
                     spectrum_weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """T0 = n⁻¹ Σ_k M_k and T1 = n⁻¹ Σ_k λ_k M_k with M_k = (I − B0 − B1 λ_k)⁻¹, per draw.

    These are n⁻¹ tr [𝒜⁻¹]_gh and n⁻¹ tr([𝒜⁻¹]_gh W) for all (g, h): shapes (S, G, G), real.
    Raises ValueError when a draw lies outside the admissible region (``data_prep.spectrum.stability``).
    """
    B0 = as_draws(B0, 2, "B0")
    B1 = as_draws(B1, 2, "B1")
    lam = np.asarray(eigenvalues).reshape(-1)
    if spectrum_weights is None:
        tau = np.full(lam.size, 1.0 / lam.size)
    else:
        tau = np.asarray(spectrum_weights, dtype=float).reshape(-1)
        if tau.size != lam.size:
            raise ValueError(f"spectrum_weights has {tau.size} entries for {lam.size} nodes")
    S, G = B0.shape[0], B0.shape[1]
    dtype = np.result_type(lam.dtype, float)
    T0 = np.empty((S, G, G), dtype=dtype)
    T1 = np.empty((S, G, G), dtype=dtype)
    step = max(1, _CHUNK_ENTRIES // max(1, lam.size * G * G))
    eye = np.eye(G)
    for start in range(0, S, step):
        sl = slice(start, start + step)
        if G == 2:
            # closed-form 2 × 2 inverse, entries laid out (s, g, h, k): elementwise and BLAS
            # products instead of millions of tiny LAPACK calls
            K = eye[None, :, :, None] - B0[sl, :, :, None] - B1[sl, :, :, None] * lam
            det = K[:, 0, 0] * K[:, 1, 1] - K[:, 0, 1] * K[:, 1, 0]
            M = np.stack([np.stack([K[:, 1, 1], -K[:, 0, 1]], 1),
                          np.stack([-K[:, 1, 0], K[:, 0, 0]], 1)], 1) / det[:, None, None]
        else:
            K = eye - B0[sl, None] - B1[sl, None] * lam[None, :, None, None]
            det = np.linalg.det(K)
            M = None
        # docs/method.md §2b: the impacts exist only inside the admissible region (every real
        # eigenvalue of B0 + B1 λ_k below 1; a positive det is not enough for G ≥ 2)
        bad = ~np.all(admissible_mask(B0[sl], B1[sl], lam), axis=1)
        if bad.any():
            raise ValueError(f"draw(s) {list(np.flatnonzero(bad)[:5] + start)} lie outside the "
                             "admissible region (some real eigenvalue of B0 + B1*lambda is >= 1): "
                             "the spatial multiplier does not exist there")
        if M is None:
            M = np.moveaxis(np.linalg.inv(K), 1, -1)  # (s, g, h, k)
        T0[sl] = M @ tau
        T1[sl] = M @ (tau * lam)
    # Complex eigenvalues come in conjugate pairs, so the sums are real up to rounding.
    return T0.real.copy(), T1.real.copy()


def _unit_totals_sparse(B0: np.ndarray, B1: np.ndarray, W: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """n⁻¹ 1'[𝒜⁻¹]_gh 1 and n⁻¹ 1'[𝒜⁻¹]_gh W 1 per draw by a sparse LU of 𝒜' (any W)."""
    S, G = B0.shape[0], B0.shape[1]
    n = W.shape[0]
    W = sp.csr_matrix(W, dtype=float)
    w1 = np.asarray(W.sum(axis=1)).ravel()
    ones_blocks = np.kron(np.eye(G), np.ones((n, 1)))  # (Gn, G): column g is e_g ⊗ 1
    I_Gn, I_n = sp.identity(G * n, format="csc"), sp.identity(n, format="csc")
    U0, U1 = np.empty((S, G, G)), np.empty((S, G, G))
    for s in range(S):
        A = I_Gn - sp.kron(B0[s], I_n) - sp.kron(B1[s], W)
        try:
            # column g of Z: 𝒜'⁻¹ (e_g ⊗ 1)
            Z = splu(sp.csc_matrix(A.T), permc_spec=_ORDERING).solve(ones_blocks)
        except RuntimeError:
            raise ValueError(f"draw {s} makes the system matrix singular") from None
        Zb = Z.T.reshape(G, G, n)  # [g, h, :] = block h of z_g
        U0[s] = Zb.sum(axis=2) / n
        U1[s] = Zb @ w1 / n
    return U0, U1


def impacts(B0: np.ndarray, B1: np.ndarray,
            betas: Mapping[tuple[Hashable, str], object],
            eigenvalues: np.ndarray,
            row_standardised: bool = True, *,
            dependents: Sequence[str] | None = None,
            shocks: bool | Sequence[str] = True,
            W: sp.spmatrix | None = None,
            spectrum_weights: np.ndarray | None = None) -> xr.Dataset:
    """Posterior summary impacts (LeSage & Pace 2009) of the spatial simultaneous system.

    Parameters
    ----------
    B0, B1 : (S, G, G) draws (or one (G, G) value) of the contemporaneous cross-endogenous and
        spatial-lag coefficient matrices, rows = equation, columns = regressor dependent.
    betas : ``{(equation, variable): (beta, theta)}`` where ``beta`` and ``theta`` are (S,) draws
        of x's coefficient in that equation and of its Durbin lag W(x) (``theta`` may be None;
        a bare array means beta only). ``equation`` is a dependent name when ``dependents`` is
        given, else an integer index. A variable entering several equations is summed over them.
    eigenvalues : the spectrum λ of W (real, or complex in conjugate pairs), or quadrature nodes
        together with ``spectrum_weights``.
    row_standardised : W1 = 1, so the total uses λ = 1 in closed form. Otherwise ``W`` is required
        and the total is computed by one sparse LU solve with 𝒜' per draw.
    dependents : names of the equations in order (default "0", "1", …).
    shocks : add the effect of a unit shock to each equation's disturbance (True: all dependents,
        or a list of dependent names), S = [𝒜⁻¹]_gh; see the module docstring.

    Returns
    -------
    Dataset with variable ``impact`` of dims (sample, effect, response, variable), effect =
    ["direct", "indirect", "total"], direct = n⁻¹ tr S, total = n⁻¹ 1'S1, indirect = total − direct,
    and a coordinate ``variable_kind`` ("exogenous" or "shock") on ``variable``.
    """
    B0 = as_draws(B0, 2, "B0")
    B1 = as_draws(B1, 2, "B1")
    if B0.shape[1:] != B1.shape[1:] or B0.shape[1] != B0.shape[2]:
        raise ValueError(f"B0 {B0.shape} and B1 {B1.shape} must be (S, G, G) alike")
    S = max(B0.shape[0], B1.shape[0])
    B0, B1 = np.broadcast_to(B0, (S,) + B0.shape[1:]), np.broadcast_to(B1, (S,) + B1.shape[1:])
    G = B0.shape[1]
    names = [str(g) for g in range(G)] if dependents is None else [str(d) for d in dependents]
    if len(names) != G:
        raise ValueError(f"{len(names)} dependents named for a {G}-equation system")
    index = {name: g for g, name in enumerate(names)} if dependents is not None else {g: g for g in range(G)}

    # Per-variable coefficient vectors over equations: beta[s, h], theta[s, h].
    variables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for (equation, variable), value in betas.items():
        if equation not in index:
            raise ValueError(f"coefficient ({equation!r}, {variable!r}): unknown equation; "
                             f"known: {list(index)}")
        beta, theta = _coefficient_draws(value, S, f"({equation}, {variable})")
        b, t = variables.setdefault(str(variable), (np.zeros((S, G)), np.zeros((S, G))))
        b[:, index[equation]] += beta
        t[:, index[equation]] += theta
    shock_names = (names if shocks is True else [] if shocks is False else [str(s) for s in shocks])
    for s_name in shock_names:
        if s_name not in names:
            raise ValueError(f"shock {s_name!r} is not a dependent: {names}")
        if s_name in variables:
            raise ValueError(f"{s_name!r} is both an exogenous variable and a dependent")

    T0, T1 = spectral_moments(B0, B1, eigenvalues, spectrum_weights)
    if row_standardised:
        eye = np.eye(G)
        try:
            U0 = np.linalg.inv(eye - B0 - B1)  # n⁻¹ 1'[𝒜⁻¹]_gh 1, from W1 = 1
        except np.linalg.LinAlgError:
            raise ValueError("a draw makes I - B0 - B1 singular: outside the admissible region") from None
        U1 = U0  # W1 = 1, so 1'[𝒜⁻¹]_gh W 1 = 1'[𝒜⁻¹]_gh 1
    else:
        if W is None:
            raise ValueError("W is required for the total impact when it is not row-standardised")
        U0, U1 = _unit_totals_sparse(np.ascontiguousarray(B0), np.ascontiguousarray(B1), W)

    var_names = list(variables) + shock_names
    out = np.empty((S, 3, G, len(var_names)))
    for j, name in enumerate(variables):
        b, t = variables[name]
        direct = np.einsum("sgh,sh->sg", T0, b) + np.einsum("sgh,sh->sg", T1, t)
        total = np.einsum("sgh,sh->sg", U0, b) + np.einsum("sgh,sh->sg", U1, t)
        out[:, 0, :, j], out[:, 2, :, j] = direct, total
    for j, name in enumerate(shock_names, start=len(variables)):
        h = names.index(name)
        out[:, 0, :, j], out[:, 2, :, j] = T0[:, :, h], U0[:, :, h]
    out[:, 1] = out[:, 2] - out[:, 0]
    kinds = ["exogenous"] * len(variables) + ["shock"] * len(shock_names)
    return xr.Dataset(
        {"impact": (("sample", "effect", "response", "variable"), out)},
        coords={"sample": np.arange(S), "effect": list(EFFECTS), "response": names,
                "variable": var_names, "variable_kind": ("variable", kinds)},
        attrs={"method": "LeSage & Pace (2009) summary impacts generalised to the system; "
                         "direct = tr(S)/n, total = 1'S1/n, indirect = total - direct",
               "total_route": "closed form (row-standardised W)" if row_standardised else "sparse LU"},
    )


Betas = dict[tuple[str, str], tuple[np.ndarray, np.ndarray | None]]


def coefficient_matrices(coef: xr.DataArray) -> tuple[np.ndarray, np.ndarray, Betas, tuple[str, ...]]:
    """Split posterior ``coef`` (chain, draw, equation, term) into B0, B1, betas and dependents.

    Term names follow the shared specification: ``W(v)`` with v a dependent is a spatial lag
    (B1[g, v]), a dependent's name is a contemporaneous endogenous regressor (B0[g, v]), ``W(x)``
    an exogenous Durbin lag (theta of x), anything else an exogenous coefficient (beta of x);
    NaN marks terms absent from an equation. ``Intercept`` is skipped (it has no impact).
    Draws are flattened chain-major to a leading sample axis (also accepts dims (sample, equation, term)).
    The stacked ``coef`` of the posterior (dimension ``coefficient``, :mod:`models.bayes.idata`)
    is put back on the grid first, its dependents in order of first appearance (pass
    ``coef_grid(posterior)`` to follow the posterior's ``equation`` coordinate instead).
    """
    coef = coef_grid(coef)
    if {"chain", "draw"} <= set(coef.dims):
        coef = coef.stack(sample=("chain", "draw"))
    values = coef.transpose("sample", "equation", "term").values
    deps = tuple(str(d) for d in coef["equation"].values)
    terms = [str(t) for t in coef["term"].values]
    index = {d: g for g, d in enumerate(deps)}
    S, G = values.shape[0], len(deps)
    B0, B1 = np.zeros((S, G, G)), np.zeros((S, G, G))
    betas: dict[tuple[str, str], list] = {}
    for j, term in enumerate(terms):
        lagged = lag_target(term)
        for g, dep in enumerate(deps):
            v = values[:, g, j]
            if np.all(np.isnan(v)) or term == "Intercept":
                continue
            if lagged in index:
                B1[:, g, index[lagged]] = v
            elif term in index:
                B0[:, g, index[term]] = v
            else:
                entry = betas.setdefault((dep, lagged or term), [np.zeros(S), None])
                if lagged:
                    entry[1] = v
                else:
                    entry[0] = v
    return B0, B1, {k: (b, t) for k, (b, t) in betas.items()}, deps
