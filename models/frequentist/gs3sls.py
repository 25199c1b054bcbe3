"""System estimators 2SLS, 3SLS, GS2SLS and GS3SLS (Kelejian & Prucha 2004), docs/method.md §2a.

Equation j: y_j = Z_j δ_j + u_j, Z_j = [spatial lags W y, other dependents, X_j];
instruments H from :meth:`SystemData.instruments` (spatial H = [Xu, W Xu, W² Xu, Q] whenever
W() terms are present or a GS method models spatial errors, else H = [Xu, Q]).
Steps of the ``gs3sls`` procedure:

1. 2SLS per equation with H → δ̃_j, residuals ũ_j = y_j − Z_j δ̃_j.
2. Equations with spatial errors: GM estimate ρ̃_j from ũ_j (Kelejian & Prucha 1999, see ``gm``);
   y*_j = y_j − ρ̃_j W y_j, Z*_j = Z_j − ρ̃_j W Z_j, H unchanged. Others: ρ_j = 0, y* = y, Z* = Z.
3. GS2SLS: 2SLS of y*_j on Z*_j → residuals ε̂_j = y*_j − Z*_j δ̂_j; Σ̂ = Ê'Ê/n.
4. GS3SLS: δ̂ = [Ẑ*'(Σ̂⁻¹⊗I)Ẑ*]⁻¹ Ẑ*'(Σ̂⁻¹⊗I) y*, Ẑ* = blockdiag(P Z*_j); Var(δ̂) = the inverse.

``2sls``/``3sls`` stop after step 1 (ρ not estimated) and use Σ̂ from the 2SLS residuals;
``gs2sls`` stops after step 3 with the cross-equation 2SLS covariance (see ``iv``). The variance
treats ρ̃ as known, as Kelejian & Prucha (2004) and spreg do.

``cov_type="clustered"`` replaces that covariance by the cluster-robust sandwich of
``iv.clustered_cov`` on the estimated (for GS methods, spatially filtered) equations: for a
stacked (city, year) panel, clusters = the city lets a city's errors be correlated over years.

``heteroskedastic=True`` (docs/method.md §2c): step 2 becomes the heteroskedasticity-robust GM of
``gm_het`` (Arraiz, Drukker, Kelejian & Prucha 2010: initial ρ̃, GS2SLS at ρ̃, efficient ρ̂),
and the covariance the robust sandwich ``iv.robust_cov`` with one city per cluster, the city's
residual vector ε̂_r correlated across equations (Drukker, Egger & Prucha 2023). ``gs2sls``
reports spreg's ``GM_Combo_Het`` / ``GM_Error_Het`` numbers: δ̂ from the GS2SLS at ρ̃, ρ̂, and the
covariance evaluated at ρ̂; ``gs3sls`` filters each equation at its ρ̂ before 3SLS. The standard
error of ρ̂ comes from the equation's joint covariance of (δ̂, ρ̂) (``gm_het``); the
homoskedastic Kelejian–Prucha (1999) step gives none, so ρ rows appear only here. Without
spatial errors: White's covariance of the spatial 2SLS (or its 3SLS analogue).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from data_prep.terms import is_lag
from models.frequentist.diagnostics import (COLUMNS, first_stage, spectrum_range,
                                            stability_warning, weak_identification_warnings)
from models.frequentist.gm import DEFAULT_BOUNDS, estimate_rho, spectral_bounds
from models.frequentist.gm_het import HetMatrices, RobustGM, robust_gs2sls
from models.frequentist.iv import (Projector, clustered_cov, residual_covariance, robust_cov,
                                   sigma_inverse, system_2sls_cov, three_sls, two_sls)
from models.frequentist.results import SystemResults
from models.spec.identification import identification_note

METHODS = ("2sls", "3sls", "gs2sls", "gs3sls")
COV_TYPES = ("unadjusted", "clustered")  # heteroskedastic=True reports cov_type "robust"


def _n_endogenous(eq) -> int:
    return len(eq.spatial_lags) + len(eq.endogenous)


def _identification_notes(system) -> list[str]:
    """The specification's plain-words note (identification through spatial lags only)."""
    note = identification_note(system)
    return note.split("\n") if note else []


def _bounds_note(W, bounds: tuple[float, float]) -> list[str]:
    """The default ρ range (−0.99, 0.99) presumes a row-standardised W (eigenvalues in [−1, 1])."""
    sums = np.asarray(W.sum(axis=1)).ravel()
    sums = sums[sums != 0]  # islands have empty rows
    if bounds == DEFAULT_BOUNDS and sums.size and not np.allclose(sums, 1.0):
        return ["W is not row-standardised, so the default search range (-0.99, 0.99) for the "
                "spatial-error rho may not match its stable range; pass rho_bounds = "
                "(1/lambda_min, 1/lambda_max) of W"]
    return []


def _sandwich(method: str, proj: Projector, work: list, deltas, Sigma, cov, equations,
              terms, clusters) -> tuple[np.ndarray, int | None]:
    """The cluster-robust (``iv.clustered_cov``) or, without ``clusters``, the
    heteroskedasticity-robust (``iv.robust_cov``) covariance of the final estimates: 3SLS
    weights Σ̂⁻¹ and bread = its unadjusted covariance; 2SLS weights I and bread
    blockdiag((Z_j'PZ_j)⁻¹). ``work``: the (y_j, Z_j) at which the covariance is evaluated,
    spatially filtered at the reported ρ for GS methods."""
    import scipy.linalg

    at = [two_sls(y, Z, proj, t, eq) for (y, Z), t, eq in zip(work, terms, equations)]
    resid = np.column_stack([y - Z @ d for (y, Z), d in zip(work, deltas)])
    Zhats = [proj.Q @ f.A for f in at]
    if method in ("2sls", "gs2sls"):
        weight, bread = np.eye(len(at)), scipy.linalg.block_diag(*[f.ztpz_inv for f in at])
    else:
        weight, bread = sigma_inverse(Sigma, equations), cov
    if clusters is None:
        return robust_cov(bread, Zhats, resid, weight), None
    return clustered_cov(bread, Zhats, resid, weight, clusters)


def _rho_step(y, Z, W, proj: Projector, fit, terms, eq, bounds, het: HetMatrices | None):
    """Step 2 for one equation: ρ and the fit the later steps start from — the KP (1999) GM
    and the GS2SLS at ρ̃, or (``het``) the robust GM, returned with its ``RobustGM``."""
    if het is None:
        rho = estimate_rho(fit.resid, W, eq.dependent, bounds).rho
        robust = None
    else:
        robust = robust_gs2sls(y, Z, het, proj, fit, terms, eq.dependent,
                               endogenous=_n_endogenous(eq) > 0, bounds=bounds)
        rho = robust.rho
    return rho, robust


def estimate(system, method: str = "gs3sls", *,
             rho_bounds: tuple[float, float] | None = None, eigenvalues=None,
             cov_type: str = "unadjusted", clusters=None,
             heteroskedastic: bool = False) -> SystemResults:
    """Estimate the system by ``method`` in {"2sls", "3sls", "gs2sls", "gs3sls"}.

    ``system`` is a :class:`models.spec.system.SystemData`; ``eigenvalues``, when known, the spectrum
    of its W (the exact stability check and the ρ range use it). ``rho_bounds`` is the search
    range of the GM spatial-error ρ; by default 0.99·(1/λ_min, 1/λ_max) from the spectrum or
    the extreme eigenvalues of W (:func:`models.frequentist.gm.spectral_bounds`), and spreg's
    (−0.99, 0.99) when neither is available.
    ``cov_type``: "unadjusted" (default; errors iid over observations) or "clustered" with
    ``clusters`` (one id per row of the system, e.g. the city of each stacked (city, year)
    row): the cluster-robust sandwich of :func:`models.frequentist.iv.clustered_cov`.
    ``heteroskedastic=True``: the robust GM for ρ and the heteroskedasticity-robust covariance
    (module docstring); the results then carry ρ's standard error (``rho_std_errors``, a
    ``rho`` row per spatial-error equation in ``to_frame``) and, per such equation, the joint
    covariance of its GS2SLS (δ̂, ρ̂) (``joint_cov``).
    Raises ``InputError`` (or its subclass ``SingularSystemError``) in plain words for an unknown method, W terms without weights,
    collinear instruments, an unidentified equation or a non-positive-definite Σ̂.
    """
    method = str(method).lower()
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if cov_type not in COV_TYPES:
        raise InputError(f"unknown cov_type {cov_type!r}; choose one of {', '.join(COV_TYPES)}")
    if (cov_type == "clustered") != (clusters is not None):
        raise InputError("clusters go with cov_type='clustered', and it needs them")
    if heteroskedastic and cov_type == "clustered":
        raise InputError("heteroskedastic=True and cov_type='clustered' exclude each other: the "
                         "clustered sandwich is already robust to heteroskedasticity")
    spec = system.spec
    equations = [eq.dependent for eq in spec.equations]
    if spec.uses_weights and system.W is None:
        raise InputError("the system uses W() terms or spatial errors but no weights were given")
    # Spatial H whenever W() terms are present, and for GS methods with spatial errors
    # (Z* = Z − ρWZ then involves W X); spatial errors alone do not change H for 2sls/3sls.
    has_w_terms = any(eq.spatial_lags or any(is_lag(x) for x in eq.exogenous)
                      for eq in spec.equations)
    has_errors = any(eq.spatial_error for eq in spec.equations)
    spatial = has_w_terms or (has_errors and method.startswith("gs"))
    H, hnames = system.instruments(spatial=spatial)
    proj = Projector.from_instruments(H, hnames)
    W = system.W
    Y = np.asarray(system.Y, dtype=float)
    messages: list[str] = []

    Zs = [np.asarray(system.Z(j), dtype=float) for j in range(len(equations))]
    terms = [tuple(eq.terms) for eq in spec.equations]
    fits = [two_sls(Y[:, j], Zs[j], proj, terms[j], equations[j]) for j in range(len(equations))]
    work = [(Y[:, j], Zs[j]) for j in range(len(equations))]  # the equations estimated last

    rho: dict[str, float | None] = {eq: None for eq in equations}
    robust: dict[str, RobustGM] = {}
    want_rho = [eq.dependent for eq in spec.equations if eq.spatial_error]
    if eigenvalues is not None and np.asarray(eigenvalues).size != system.n:
        eigenvalues = None  # the spectrum of another map (e.g. before a subsample)
    extremes = None
    if method.startswith("gs") and want_rho:
        if rho_bounds is None:
            extremes = spectrum_range(W, eigenvalues)
            rho_bounds = DEFAULT_BOUNDS if extremes is None else spectral_bounds(*extremes)
            if extremes is None:
                messages += _bounds_note(W, rho_bounds)
        het = HetMatrices.from_weights(W) if heteroskedastic else None
        for j, eq in enumerate(spec.equations):
            if not eq.spatial_error:
                continue
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                r, found = _rho_step(Y[:, j], Zs[j], W, proj, fits[j], terms[j], eq,
                                     rho_bounds, het)
            for w in caught:
                messages.append(str(w.message))
                warnings.warn(str(w.message), stacklevel=2)
            rho[eq.dependent] = r
            y_star = Y[:, j] - r * (W @ Y[:, j])
            Z_star = Zs[j] - r * (W @ Zs[j])
            if found is not None:
                robust[eq.dependent] = found
            # the robust GS2SLS keeps δ̂ from the filter at ρ̃ (ADKP step 2a, as spreg)
            fits[j] = (found.fit if found is not None and method == "gs2sls"
                       else two_sls(y_star, Z_star, proj, terms[j], eq.dependent))
            work[j] = (y_star, Z_star)
    elif want_rho:
        messages.append(
            f"spatial errors requested for {', '.join(want_rho)} are not modelled by method "
            f"{method}; use gs2sls or gs3sls to estimate rho")

    E = np.column_stack([f.resid for f in fits])
    Sigma = residual_covariance(E)
    if method in ("2sls", "gs2sls"):
        deltas = [f.delta for f in fits]
        cov = system_2sls_cov(fits, Sigma)
    else:
        deltas, cov = three_sls([f.A for f in fits], [f.b for f in fits], Sigma,
                                equations, terms)
    n_clusters = None
    if cov_type == "clustered" or heteroskedastic:
        cov, n_clusters = _sandwich(method, proj, work, deltas, Sigma, cov, equations, terms,
                                    clusters)

    resid = np.column_stack([Y[:, j] - Zs[j] @ deltas[j] for j in range(len(equations))])
    rsquared = {eq: float(np.corrcoef(Y[:, j], Y[:, j] - resid[:, j])[0, 1] ** 2)
                for j, eq in enumerate(equations)}

    tables = [first_stage(eq.dependent, terms[j], Zs[j], _n_endogenous(eq), proj)
              for j, eq in enumerate(spec.equations)]
    tables = [t for t in tables if not t.empty]
    fs = (pd.concat(tables, ignore_index=True) if tables
          else pd.DataFrame(columns=list(COLUMNS)))
    messages += weak_identification_warnings(fs) + _identification_notes(system)
    values = dict(zip([(eq, t) for eq, ts in zip(equations, terms) for t in ts],
                      np.concatenate(deltas)))
    unstable = stability_warning(*spec.structural_matrices(lambda e, t: values[(e, t)]), W,
                                 eigenvalues=eigenvalues, extremes=extremes)
    if unstable:
        messages.append(unstable)

    index = pd.MultiIndex.from_tuples(
        [(eq, t) for eq, ts in zip(equations, terms) for t in ts], names=["equation", "term"])
    return SystemResults.from_arrays(
        method, index, np.concatenate(deltas), cov, Sigma, equations, rho, resid, rsquared,
        np.asarray(system.cities), fs, messages,
        cov_type="robust" if heteroskedastic else cov_type, n_clusters=n_clusters,
        rho_std_errors={eq: r.rho_se for eq, r in robust.items()},
        joint_cov={eq: _joint_frame(r, terms[equations.index(eq)]) for eq, r in robust.items()})


def _joint_frame(robust: RobustGM, terms) -> pd.DataFrame:
    """The joint covariance of one equation's (δ̂, ρ̂), labelled by its terms and ``rho``."""
    labels = [*terms, "rho"]
    return pd.DataFrame(robust.joint_cov, index=labels, columns=labels)
