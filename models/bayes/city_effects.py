"""Per-city direct, indirect and total effects of the spatial system, per posterior draw.

For an exogenous x entering equation h with β_h (and its Durbin lag W(x) with θ_h), the n × n
matrix of effects on dependent g is (LeSage & Pace 2009, ch. 2.7; :mod:`models.bayes.effects`)

    S_g = Σ_h [𝒜⁻¹]_gh (β_h I + θ_h W),    𝒜 = I_Gn − (B0 ⊗ I_n + B1 ⊗ W),

where [𝒜⁻¹]_gh is the (g, h) n × n block of the reduced-form multiplier; for a unit shock to
equation h's disturbance S_g = [𝒜⁻¹]_gh (``variable_kind == "shock"``). Per city r:

* direct_r   = [S_g]_rr, the effect on y_g in r of a change of x in r itself (feedback included);
* total_r    = Σ_i [S_g]_ir, the column sum: the effect of a change of x in r on y_g summed over
  all cities (r included). The row sums — the effect on r of a change everywhere — are the same
  for every city when W is row-standardised (W1 = 1), which is why the column sum is the
  informative per-city total;
* indirect_r = total_r − direct_r, what a change in r spills over to the other cities.

Their means over the cities are the summary impacts of :func:`models.bayes.effects.impacts`.

Computation (no n × n inverse per draw): when D W is symmetric for a positive diagonal D (true
for any symmetric neighbour relation, row-standardised or not), M = D^½ W D^-½ is symmetric,
M = U Λ U', and every rational function f of W is f(W) = D^-½ U f(Λ) U' D^½. Each block of S_g is
such a function with f_g(λ) = Σ_h [(I_G − B0 − B1 λ)⁻¹]_gh (β_h + θ_h λ), so

    direct_r = Σ_k U_rk² f_g(λ_k),    total_r = Σ_k (1'D^-½U)_k f_g(λ_k) U_rk d_r^½.

One symmetric eigendecomposition of M (dense, O(n³), done once) and O(n² G) per draw. It is
refused above the dense-spectrum limit (``data_prep.spectrum.exact.MAX_DENSE_N``) and for W whose
relation is not symmetric (complex eigenvectors). Hand-written: no library computes per-region
impacts of a simultaneous spatial system.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import xarray as xr
from scipy.sparse.csgraph import breadth_first_order, connected_components

from data_prep.errors import InputError
from data_prep.spectrum import exact  # exact.MAX_DENSE_N read per call: a changed limit applies
from data_prep.spectrum.stability import admissible_mask
from models.bayes.effects import coefficient_matrices
from models.bayes.idata import coef_grid
from models.bayes.postprocess import thinned_draws

EFFECTS = ("direct", "indirect", "total")
_SYM_TOL = 1e-9


def symmetrising_scale(W: sp.spmatrix) -> np.ndarray:
    """A positive d with diag(d) W symmetric (d_s / d_r = w_rs / w_sr along every link).

    Raises InputError when none exists (an asymmetric neighbour relation, e.g. k-nearest).
    """
    W = sp.csr_matrix(W, dtype=float)
    n = W.shape[0]
    if (W != W.T).nnz == 0:
        return np.ones(n)
    Wt = sp.csr_matrix(W.T)
    d = np.ones(n)
    _, labels = connected_components(W, directed=False)
    for comp in np.unique(labels):
        root = int(np.flatnonzero(labels == comp)[0])
        order, pred = breadth_first_order(W + Wt, root, directed=False)
        for s in order[1:]:
            r = pred[s]
            w_rs, w_sr = W[r, s], W[s, r]
            if w_rs <= 0 or w_sr <= 0:
                raise InputError("per-city effects need a symmetric neighbour relation; W links "
                                 f"city {r} to {s} in one direction only")
            d[s] = d[r] * w_rs / w_sr
    DW = sp.diags(d) @ W
    gap = abs(DW - DW.T).max() if DW.nnz else 0.0
    if gap > _SYM_TOL * max(1.0, abs(DW).max()):
        raise InputError("per-city effects need W similar to a symmetric matrix (a symmetric "
                         "neighbour relation); this W is not, its eigenvectors are complex")
    return d


def _eigen_parts(W: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(λ, P, Q): eigenvalues, P[r, k] = U_rk², Q[r, k] = U_rk d_r^½ (1'D^-½U)_k."""
    n = W.shape[0]
    if n > exact.MAX_DENSE_N:
        raise InputError(f"{n} cities: per-city effects need the eigenvectors of W, computed "
                         f"densely only up to {exact.MAX_DENSE_N} cities; skipped")
    d = symmetrising_scale(W)
    h = np.sqrt(d)
    M = (sp.diags(h) @ sp.csr_matrix(W, dtype=float) @ sp.diags(1.0 / h)).toarray()
    lam, U = np.linalg.eigh(0.5 * (M + M.T))
    ones_u = (1.0 / h) @ U
    return lam, U ** 2, U * h[:, None] * ones_u[None, :]


def city_effects(idata, W, *, max_draws: int = 200, shocks: bool = True) -> xr.Dataset:
    """Per-city effects (module docstring) for a thinned set of posterior draws.

    ``W``: the system's weights (SpatialWeights, whose cities name the ``city`` coordinate, or a
    sparse matrix). Each chain is thinned evenly so that chains × kept ≤ ``max_draws``
    (:func:`models.bayes.postprocess.thinned_draws`). Returns a Dataset with ``city_effect``
    dims (sample, effect, response, variable, city) and coordinate ``variable_kind``.
    """
    cities = None
    if hasattr(W, "matrix"):
        W, cities = W.matrix, list(W.cities)
    W = sp.csr_matrix(W, dtype=float)
    n = W.shape[0]
    cities = cities or [str(i) for i in range(n)]
    post = idata.posterior
    if "coef" not in post:
        raise InputError("the posterior has no variable 'coef'")
    keep = thinned_draws(post.sizes["draw"], post.sizes["chain"], max_draws)
    B0, B1, betas, deps = coefficient_matrices(coef_grid(post.isel(draw=keep)))
    S, G = B0.shape[0], len(deps)
    lam, P, Q = _eigen_parts(W)

    bad = ~np.all(admissible_mask(B0, B1, lam), axis=1)
    if bad.any():
        raise InputError(f"{int(bad.sum())} of {S} draws lie outside the admissible region "
                         "(some real eigenvalue of B0 + B1*lambda is >= 1); per-city effects "
                         "are undefined there")
    K = np.eye(G) - B0[:, None] - B1[:, None] * lam[None, :, None, None]   # (S, n, G, G)
    Minv = np.linalg.inv(K)

    names, kinds, F = [], [], []
    variables: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for (eq, var), (beta, theta) in betas.items():
        b, t = variables.setdefault(var, (np.zeros((S, G)), np.zeros((S, G))))
        b[:, deps.index(eq)] += beta
        if theta is not None:
            t[:, deps.index(eq)] += theta
    for var, (b, t) in variables.items():
        coef = b[:, None, :] + t[:, None, :] * lam[None, :, None]              # (S, n, G)
        F.append(np.einsum("skgh,skh->skg", Minv, coef))
        names.append(var)
        kinds.append("exogenous")
    if shocks:
        for h, dep in enumerate(deps):
            F.append(Minv[..., h])
            names.append(dep)
            kinds.append("shock")
    F = np.stack(F, axis=-1)                                                  # (S, n, G, V)
    direct = np.einsum("rk,skgv->sgvr", P, F)
    total = np.einsum("rk,skgv->sgvr", Q, F)
    out = np.stack([direct, total - direct, total], axis=1)
    return xr.Dataset(
        {"city_effect": (("sample", "effect", "response", "variable", "city"), out)},
        coords={"sample": np.arange(S), "effect": list(EFFECTS), "response": list(deps),
                "variable": names, "variable_kind": ("variable", kinds), "city": cities},
        attrs={"definition": "direct = diag of S, total = column sums of S (effect of a change "
                             "in the city on all cities), indirect = total - direct",
               "draws_used": int(S)})


def city_effect_summary(effects: xr.Dataset) -> xr.Dataset:
    """Posterior mean and sd (ddof = 1) of ``city_effect`` over the draws."""
    da = effects["city_effect"]
    return xr.Dataset({"mean": da.mean("sample"), "sd": da.std("sample", ddof=1)})
