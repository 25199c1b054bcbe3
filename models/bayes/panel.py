"""Panel mode with city (and year) fixed effects: Lee & Yu (2010) transformation approach.

Lee, L.-f. and Yu, J. (2010), "Estimation of spatial autoregressive panel data models with fixed
effects", Journal of Econometrics 154(2), 165–185.

City effects. Plain demeaning over years (J_T = I_T − (1/T)11') leaves T observations per city
whose errors are correlated and singular; treating them as T independent cross-sections (T times
the Jacobian, nT in the variance) biases Σ when T is small. Lee & Yu instead project on an
orthonormal basis F (T × (T − 1)) of the eigenvectors of J_T with eigenvalue 1 (F'F = I_{T−1},
F'1 = 0, FF' = J_T): the data (city, year) become (city, T − 1 contrasts), the city effects drop
out exactly, and because F is orthonormal the transformed errors are again iid N(0, Σ) across
cities and contrasts. The within log-likelihood of the system is therefore T − 1 copies of the
cross-section one:

    (T − 1) log|det 𝒜| − (n(T − 1)/2) log det Σ − ½ Σ_{r,c} ε_rc' Σ⁻¹ ε_rc − (n(T−1)G/2) log 2π

(plus (T − 1) Σ_g log|det(I − ρ_g W)| with spatial errors). The basis here is the Helmert one —
any orthonormal basis of the eigenvalue-1 eigenspace gives the same likelihood, since two such
bases differ by an orthogonal rotation of the contrasts, and Helmert is deterministic where a
numerical eigendecomposition of J_T is not. Spatial lags commute with it (W acts on cities, F on
years), so lags may be taken before or after transforming.

Year effects. They are removed across cities with J_n (subtract each year's cross-city mean). For
a row-standardised W (W1 = 1) this is compatible with the spatial lag because J_n W J_n = J_n W:
the demeaned lag of the demeaned data equals the demeaned lag of the raw data, so one demeans
every column of the design [y, Wy, (W²y,) X] *after* lagging. In Lee & Yu's orthonormal form
(F_n, n × (n − 1)) the system has W* = F_n' W F_n, whose eigenvalues are those of W with one
λ = 1 removed, so

    log|det 𝒜*| = Σ_k log|det(I − B0 − B1 λ_k)| − log|det(I − B0 − B1)|,

(likewise Σ_g[Σ_k log|1 − ρ_g λ_k| − log|1 − ρ_g|] for spatial errors), and the effective sample
size of the quadratic form is (n − 1)(T − 1). Both are exact, not approximations, but hold only
for a row-standardised W; :func:`within_loglik` is a reference implementation of the result.

Hand-written because no library offers the Lee & Yu transformation for a simultaneous system.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import xarray as xr

from models.bayes.draws import as_draws


def within_matrix(T: int) -> np.ndarray:
    """Orthonormal F (T × (T − 1)) with F'F = I, F'1 = 0, FF' = J_T (Helmert contrasts)."""
    if T < 2:
        raise ValueError(f"panel mode needs at least 2 years, got T = {T}")
    F = np.zeros((T, T - 1))
    for c in range(1, T):
        F[:c, c - 1] = 1.0
        F[c, c - 1] = -float(c)
        F[:, c - 1] /= np.sqrt(c * (c + 1.0))
    return F


def _check_finite(values: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what} has missing or non-finite values: the within transformation needs a "
                         "balanced panel (drop the incomplete year, e.g. ER's last year, first)")


def within_transform(x, axis: int = 1):
    """Remove city effects: project the year axis on F, (…, T, …) → (…, T − 1, …).

    numpy: ``axis`` is the year axis (default 1, for (city, year[, equation]) arrays).
    xarray: a DataArray or Dataset with a ``year`` dimension; ``year`` is replaced by ``contrast``
    (1 … T − 1); Dataset variables without ``year`` (city attributes) are dropped, since the
    transformation removes everything constant over years.
    """
    if isinstance(x, xr.Dataset):
        return xr.Dataset({name: within_transform(da) for name, da in x.data_vars.items()
                           if "year" in da.dims})
    if isinstance(x, xr.DataArray):
        if "year" not in x.dims:
            raise ValueError(f"{x.name or 'array'} has no 'year' dimension to transform")
        _check_finite(x.values, str(x.name or "array"))
        T = x.sizes["year"]
        F = xr.DataArray(within_matrix(T), dims=("year", "contrast"),
                         coords={"year": x["year"].values, "contrast": np.arange(1, T)})
        return xr.dot(x, F, dim="year").transpose(*[d if d != "year" else "contrast" for d in x.dims])
    arr = np.asarray(x, dtype=float)
    _check_finite(arr, "array")
    moved = np.moveaxis(arr, axis, -1)
    return np.moveaxis(moved @ within_matrix(moved.shape[-1]), -1, axis)


def remove_year_effects(x, axis: int = 0):
    """Remove year effects: subtract each year's mean across cities (J_n along ``axis``).

    Valid with a row-standardised W (J_n W J_n = J_n W); apply it to lagged columns after
    lagging. xarray inputs are demeaned along ``city``.
    """
    if isinstance(x, (xr.DataArray, xr.Dataset)):
        return x - x.mean("city")
    arr = np.asarray(x, dtype=float)
    return arr - arr.mean(axis=axis, keepdims=True)


def jacobian_multiplier(T: int) -> int:
    """The within log-Jacobian is (T − 1) times the cross-section one (Lee & Yu 2010)."""
    if T < 2:
        raise ValueError(f"panel mode needs at least 2 years, got T = {T}")
    return T - 1


def effective_sample_size(n: int, T: int, year_effects: bool = False) -> int:
    """Cities × contrasts entering the quadratic form and log det Σ: n(T−1), or (n−1)(T−1)."""
    return (n - int(year_effects)) * jacobian_multiplier(T)


def panel_log_jacobian(B0: np.ndarray, B1: np.ndarray, eigenvalues: np.ndarray, T: int,
                       year_effects: bool = False, rho: np.ndarray | None = None) -> np.ndarray:
    """(T − 1)·[Σ_k log|det(I − B0 − B1λ_k)| + Σ_g Σ_k log|1 − ρ_gλ_k|], per draw, shape (S,).

    With year effects the unit eigenvalue's factors, log|det(I − B0 − B1)| and log|1 − ρ_g|, are
    subtracted (W row-standardised; see the module docstring).
    """
    B0, B1 = as_draws(B0, 2, "B0"), as_draws(B1, 2, "B1")
    lam = np.asarray(eigenvalues).reshape(-1)
    G = B0.shape[1]
    K = np.eye(G) - B0[:, None] - B1[:, None] * lam[None, :, None, None]
    logdet = np.log(np.abs(np.linalg.det(K))).sum(axis=1)
    if year_effects:
        logdet = logdet - np.log(np.abs(np.linalg.det(np.eye(G) - B0 - B1)))
    if rho is not None:
        r = np.nan_to_num(as_draws(rho, 1, "rho"), nan=0.0)  # NaN = no spatial error
        logdet = logdet + np.log(np.abs(1.0 - r[:, :, None] * lam)).sum(axis=(1, 2))
        if year_effects:
            logdet = logdet - np.log(np.abs(1.0 - r)).sum(axis=1)
    return jacobian_multiplier(T) * logdet.real


def within_loglik(Y: np.ndarray, xb: np.ndarray, W: sp.spmatrix, B0: np.ndarray, B1: np.ndarray,
                  Sigma: np.ndarray, eigenvalues: np.ndarray, *, rho: np.ndarray | None = None,
                  year_effects: bool = False) -> np.ndarray:
    """Reference within (fixed-effects) log-likelihood of the system panel, per draw, shape (S,).

    Y, xb : (n, T, G) dependents and the exogenous part X̃b of each equation on the raw panel (an
    (S, n, T, G) xb gives per-draw values); city effects (and year effects) need not be included —
    they are removed by the transformation. W must be row-standardised when ``year_effects``.
    Computes panel_log_jacobian − (N/2) log det Σ − ½ Σ ε'Σ⁻¹ε − (N G/2) log 2π with
    N = effective_sample_size(n, T, year_effects) and ε the residuals of the transformed data.
    """
    Y = np.asarray(Y, dtype=float)
    n, T, G = Y.shape
    xb = np.asarray(xb, dtype=float)
    B0, B1, Sigma = as_draws(B0, 2, "B0"), as_draws(B1, 2, "B1"), as_draws(Sigma, 2, "Sigma")
    rho_arr = np.zeros((1, G)) if rho is None else np.nan_to_num(as_draws(rho, 1, "rho"), nan=0.0)
    S = max(B0.shape[0], B1.shape[0], Sigma.shape[0], rho_arr.shape[0], xb.shape[0] if xb.ndim == 4 else 1)
    W = sp.csr_matrix(W, dtype=float)
    if year_effects and not np.allclose(np.asarray(W.sum(axis=1)).ravel(), 1.0):
        raise ValueError("year effects by cross-city demeaning need a row-standardised W")
    at = lambda a, s: a[s if a.shape[0] == S else 0]
    lag = lambda M: np.stack([W @ M[:, c, :] for c in range(M.shape[1])], axis=1)

    Ys = within_transform(Y, axis=1)  # (n, T−1, G)
    WYs = lag(Ys)
    N = effective_sample_size(n, T, year_effects)
    out = np.empty(S)
    for s in range(S):
        b0, b1, sig, r = at(B0, s), at(B1, s), at(Sigma, s), at(rho_arr, s)
        xs = within_transform(xb[s] if xb.ndim == 4 else xb, axis=1)
        U = Ys - Ys @ b0.T - WYs @ b1.T - xs  # structural residuals, n × (T−1) × G
        E = U - lag(U) * r
        if year_effects:
            E = remove_year_effects(E, axis=0)  # J_n K (y − ·): see the module docstring
        quad = np.einsum("rcg,gh,rch->", E, np.linalg.inv(sig), E)
        _, logdet_sigma = np.linalg.slogdet(sig)
        jac = panel_log_jacobian(b0, b1, eigenvalues, T, year_effects, r)[0]
        out[s] = jac - 0.5 * N * logdet_sigma - 0.5 * quad - 0.5 * N * G * np.log(2 * np.pi)
    return out
