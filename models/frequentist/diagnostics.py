"""Identification diagnostics of each equation's first stage.

For equation j with endogenous regressors Y_e (spatial lags of dependents and other equations'
dependents), included exogenous X_j and instruments H ⊇ X_j (L columns, q = L − rank X_j
excluded instruments), with P_H, P_X the projections (via QR bases, never n × n):

* partial first-stage F of regressor y (Stock, Wright & Yogo 2002):
      F = [(SSR_r − SSR_u)/q] / [SSR_u/(n − L)],  SSR_u = y'(I − P_H)y,  SSR_r = y'(I − P_X)y,
  the F test of the excluded instruments in the OLS regression of y on H; partial R² =
  (SSR_r − SSR_u)/SSR_r.
* Cragg–Donald minimum-eigenvalue statistic (Cragg & Donald 1993; Stock & Yogo 2005, eq. 3.4):
      CD = λ_min( Σ̂_VV^{-1/2} Y_e'(P_H − P_X)Y_e Σ̂_VV^{-1/2} ) / q,
      Σ̂_VV = Y_e'(I − P_H)Y_e/(n − L);
  with one endogenous regressor it equals that regressor's partial F.
* Sanderson–Windmeijer (2016) conditional F of regressor k: ε̂ = residual of the 2SLS regression
  of y_k on the other endogenous regressors and X_j with instruments H;
      F_SW = [ε̂'(P_H − P_X)ε̂/(q − k_e + 1)] / [ε̂'(I − P_H)ε̂/(n − L)];
  it equals the partial F when k_e = 1.

Rule of thumb for the plain-words warnings: F, F_SW or CD below 10 (Staiger & Stock 1997).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from data_prep.spectrum import exact  # exact.MAX_DENSE_N read per call: a changed limit applies
from data_prep.spectrum.exact import eigenvalues as dense_eigenvalues
from data_prep.spectrum.extremes import NoQuadrature, extreme_eigenvalues
from data_prep.spectrum.stability import admissible_mask, inadmissible_intervals
from data_prep.terms import is_lag
from models.frequentist.iv import Projector

WEAK_F = 10.0
COLUMNS = ("equation", "regressor", "partial_F", "df_num", "df_den", "p_value", "partial_r2",
           "sw_F", "cragg_donald")


def _basis(X: np.ndarray) -> np.ndarray:
    """Orthonormal basis of span(X) (n × k), tolerant of an empty X (X_j is full rank: the
    specification checks it)."""
    if X.shape[1] == 0:
        return np.zeros((X.shape[0], 0))
    return Projector.from_instruments(X, [f"x{k}" for k in range(X.shape[1])]).Q


def _quadratic_forms(Y: np.ndarray, QH: np.ndarray, QX: np.ndarray):
    """Y'(P_H − P_X)Y and Y'(I − P_H)Y from the QR bases."""
    ah, ax = QH.T @ Y, QX.T @ Y
    explained = ah.T @ ah - ax.T @ ax
    resid = Y.T @ Y - ah.T @ ah
    return explained, resid


def first_stage(equation: str, terms: Sequence[str], Z: np.ndarray, n_endog: int,
                proj: Projector) -> pd.DataFrame:
    """Diagnostics table for one equation: one row per endogenous regressor.

    ``Z`` has the endogenous columns first (``n_endog`` of them), then the included exogenous.
    Columns: equation, regressor, partial_F, df_num, df_den, p_value, partial_r2, sw_F,
    cragg_donald (the equation's CD, repeated on each row).
    """
    cols = list(COLUMNS)
    if n_endog == 0:
        return pd.DataFrame(columns=cols)
    n = Z.shape[0]
    Ye, X = Z[:, :n_endog], Z[:, n_endog:]
    QH, QX = proj.Q, _basis(X)
    L, q = QH.shape[1], QH.shape[1] - QX.shape[1]
    df_den = n - L
    explained, resid = _quadratic_forms(Ye, QH, QX)
    ssr_u = np.diag(resid)
    ssr_r = ssr_u + np.diag(explained)
    F = (np.diag(explained) / q) / (ssr_u / df_den)
    p = stats.f.sf(F, q, df_den)
    r2 = np.diag(explained) / ssr_r

    S_vv = resid / df_den
    w, V = np.linalg.eigh(S_vv)
    root_inv = (V / np.sqrt(w)) @ V.T
    cd = float(np.linalg.eigvalsh(root_inv @ explained @ root_inv)[0] / q)

    sw = np.empty(n_endog)
    for k in range(n_endog):
        if n_endog == 1:
            sw[k] = F[0]
            continue
        others = np.column_stack([np.delete(Ye, k, axis=1), X])
        A = QH.T @ others
        coef, *_ = np.linalg.lstsq(A, QH.T @ Ye[:, k], rcond=None)
        e = (Ye[:, k] - others @ coef)[:, None]
        ex, re = _quadratic_forms(e, QH, QX)
        sw[k] = (ex[0, 0] / (q - n_endog + 1)) / (re[0, 0] / df_den)
    return pd.DataFrame({
        "equation": equation, "regressor": list(terms[:n_endog]), "partial_F": F,
        "df_num": q, "df_den": df_den, "p_value": p, "partial_r2": r2, "sw_F": sw,
        "cragg_donald": cd,
    })[cols]


def weak_identification_warnings(table: pd.DataFrame, threshold: float = WEAK_F) -> list[str]:
    """Plain-words warnings for first-stage F, conditional F or Cragg–Donald below threshold."""
    out: list[str] = []
    # plain lists: pandas row iteration costs more than the estimator itself on small systems
    cols = {c: table[c].tolist() for c in ("equation", "regressor", "partial_F", "sw_F",
                                            "cragg_donald")}
    for eq, reg, F, sw in zip(cols["equation"], cols["regressor"], cols["partial_F"],
                              cols["sw_F"]):
        if F < threshold:
            out.append(
                f"equation {eq}: the instruments are weak for {reg} "
                f"(first-stage partial F = {F:.2f} < {threshold:g}); its coefficient "
                "and standard error may be unreliable")
        elif sw < threshold:
            out.append(
                f"equation {eq}: {reg} is weakly identified given the other "
                f"endogenous regressors (Sanderson-Windmeijer F = {sw:.2f} < {threshold:g})")
    seen: dict[str, tuple[float, int]] = {}
    for eq, cd in zip(cols["equation"], cols["cragg_donald"]):
        seen[eq] = (cd, seen.get(eq, (cd, 0))[1] + 1)
    for eq, (cd, count) in seen.items():
        if count > 1 and cd < threshold:
            out.append(
                f"equation {eq}: the endogenous regressors are jointly weakly identified "
                f"(Cragg-Donald minimum eigenvalue statistic = {cd:.2f} < {threshold:g})")
    return out


def lag_only_identification(equation: str, excluded: Sequence[str], n_endog: int) -> str | None:
    """Note when every excluded instrument of an endogenous equation is a spatial lag W(x)/W2(x)."""
    if n_endog == 0 or not excluded:
        return None
    if all(is_lag(name) for name in excluded):
        return (f"equation {equation}: identification comes only from spatial lags of the "
                "exogenous variables (no excluded exogenous variable or user instrument); "
                "estimates can be fragile — add an excluded instrument if theory offers one")
    return None


def spectrum_range(W, eigenvalues=None) -> tuple[float, float] | None:
    """[λ_min, λ_max] of the real parts of W's spectrum: from ``eigenvalues`` when given, else
    the extreme eigenvalues (``data_prep.spectrum.extremes``, sparse Lanczos; W similar to a symmetric
    matrix); None when neither is available (a complex spectrum without its eigenvalues)."""
    if eigenvalues is not None:
        re = np.real(np.asarray(eigenvalues))
        return float(re.min()), float(re.max())
    if W is None:
        return None
    try:
        return extreme_eigenvalues(W)
    except NoQuadrature:
        return None


def stability_warning(B0: np.ndarray, B1: np.ndarray, W, *, eigenvalues=None,
                      extremes: tuple[float, float] | None = None) -> str | None:
    """Plain-words warning when estimates leave the system's admissible region.

    The region (docs/method.md §2b, ``data_prep.spectrum.stability``): for every eigenvalue λ of W, every real
    eigenvalue of M(λ) = B0 + B1 λ is below 1 (Re μ < 1 for complex λ); outside it the reduced
    form y = 𝒜⁻¹(Xb + u) is not the stable equilibrium connected to 𝒜 = I. With the spectrum
    (``eigenvalues``, exact) the rule is applied at every eigenvalue. Without it, on the whole
    interval [λ_min, λ_max] of ``extremes`` (or of :func:`spectrum_range`), exactly: the
    verdict can only change where f(λ) = det(I − B0 − B1 λ) or the discriminant of M(λ) vanishes
    (``data_prep.spectrum.stability.inadmissible_intervals``); that is conservative for the discrete
    spectrum inside the interval. A W whose spectrum is complex and not given is checked
    through its dense eigenvalues (up to ``data_prep.spectrum.exact.MAX_DENSE_N`` cities). With
    B1 = 0 the check is on I − B0 alone (no W needed). No row-standardisation is assumed.
    """
    B0, B1 = np.atleast_2d(np.asarray(B0, float)), np.atleast_2d(np.asarray(B1, float))
    if not np.any(B1):
        bad = inadmissible_intervals(B0, B1, 0.0, 0.0)
        return _unstable_message("I - B0 has a real eigenvalue <= 0", "") if bad else None
    if eigenvalues is None and extremes is None:
        if W is None:
            return None
        extremes = spectrum_range(W)
        if extremes is None and W.shape[0] <= exact.MAX_DENSE_N:
            eigenvalues = dense_eigenvalues(W)
        elif extremes is None:
            return None
    if eigenvalues is not None:
        lam = np.asarray(eigenvalues).reshape(-1)
        fail = ~admissible_mask(B0, B1, lam)
        if not fail.any():
            return None
        re = np.real(lam[fail])
        kind = ("a real eigenvalue >= 1" if not np.iscomplexobj(lam) else
                "a real eigenvalue >= 1 (for complex lambda: one with real part >= 1)")
        return _unstable_message(
            f"at {int(fail.sum())} of the {lam.size} eigenvalues of W (lambda in "
            f"[{re.min():.2f}, {re.max():.2f}]) B0 + B1*lambda has {kind}", "")
    lo, hi = extremes
    bad = inadmissible_intervals(B0, B1, lo, hi)
    if not bad:
        return None
    where = " and ".join(f"lambda in [{a:.2f}, {b:.2f}]" for a, b in bad)
    return _unstable_message(f"for {where} B0 + B1*lambda has a real eigenvalue >= 1",
                             f" (checked on the whole range [{lo:.2f}, {hi:.2f}] of the "
                             "eigenvalues of W)")


def _unstable_message(what: str, scope: str) -> str:
    return (f"the estimated spatial and endogenous coefficients lie outside the admissible "
            f"region: {what}{scope}, so the system has no stable equilibrium reached "
            f"continuously from no interaction, the spatial multiplier (reduced form) does not "
            f"exist or explodes, and the estimates cannot be read as an equilibrium; weak "
            f"identification or a misspecified system often causes this")
