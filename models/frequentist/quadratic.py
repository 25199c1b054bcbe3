"""Frequentist quadratic model (paper's Table 9): OLS or spatial 2SLS, turning point, Fieller set,
Lind–Mehlum U test (docs/method.md §3).

Conventions, as Stata's ``utest`` and R's ``lm``:

* OLS with the classical covariance V = σ̂²(X'X)⁻¹, σ̂² = e'e/(n − k); t statistics, p-values
  and intervals from t(n − k).
* Turning point θ = −c1/(2c2), delta-method standard error √(g'V₁₂g) with
  g = (−1/(2c2), c1/(2c2²)) and V₁₂ the covariance of (c1, c2).
* Fieller (1954) 95 % set {θ : (c1 + 2θc2)² ≤ q²·Var(c1 + 2θc2)}, q the 0.975 quantile. It is
  the solution of a θ² + b θ + c ≤ 0 with a = 4c2² − 4q²V22, b = 4c1c2 − 4q²V12,
  c = c1² − q²V11: a bounded interval only when a > 0 (c2 significant at the 5 % level); when
  a < 0 it is the whole line or two half-lines, and when a = 0 exactly (|t| of c2 equal to q)
  one half-line, all reported in words as "unbounded".
* Lind & Mehlum (2010, Oxford Bull. Econ. Stat. 72): the slopes s(x) = c1 + 2c2·x at
  x_l = min A and x_h = max A with t(x) = s(x)/SE(s(x)), Var s(x) = V11 + 4xV12 + 4x²V22. For
  an inverted U (c2 < 0) H1: s(x_l) > 0 > s(x_h), statistic min(t(x_l), −t(x_h)); for a U
  (c2 > 0) min(−t(x_l), t(x_h)); one-sided p-value P(T > statistic). A negative statistic means
  the extremum lies outside [x_l, x_h] (``utest``'s "trivial failure to reject").

With a spatial lag (y = ρWy + …, a one-equation SAR) the coefficients and covariance are the
spatial 2SLS of :func:`models.frequentist.estimate` (Kelejian–Prucha instruments [X, WX, W²X],
σ̂² = e'e/n) and the reference distribution is the standard normal (as that estimator's own
p-values). The total effect of A at level a (every city at a) is (c1 + 2c2·a)·m with
m = 1'(I − ρW)⁻¹1/n (= 1/(1 − ρ) for a row-standardised W), so its turning point is the same θ
whenever m ≠ 0 (:func:`total_effect_turning_point`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy import stats

from data_prep.errors import InputError
from models.frequentist import estimate
from models.spec.coefficient_tables import stars
from models.spec.quadratic import QuadraticData, slope, turning_point

LEVEL = 0.95
COLUMNS = ("equation", "term", "estimate", "std_error", "statistic", "p_value", "ci_low",
           "ci_high")


# ----------------------------------------------------------------------------- pieces

def ols(y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLS b = (X'X)⁻¹X'y through a QR of X; returns (b, V = σ̂²(X'X)⁻¹, residuals),
    σ̂² = e'e/(n − k)."""
    n, k = X.shape
    if n <= k:
        raise InputError(f"{n} cities for {k} coefficients: OLS needs more cities than "
                         f"coefficients")
    Q, R = np.linalg.qr(X)
    d = np.abs(np.diag(R))
    if d.min() <= 1e-10 * d.max():
        raise InputError("the regressors are (nearly) collinear: X'X is singular")
    b = np.linalg.solve(R, Q.T @ y)
    resid = y - X @ b
    Rinv = np.linalg.inv(R)
    cov = (resid @ resid / (n - k)) * (Rinv @ Rinv.T)
    return b, cov, resid


def critical_value(df: float | None, level: float = LEVEL) -> float:
    """Two-sided critical value at ``level``: t(df), or the standard normal when df is None."""
    p = 0.5 + level / 2
    return float(stats.norm.ppf(p) if df is None else stats.t.ppf(p, df))


def _sf(x: float, df: float | None) -> float:
    return float(stats.norm.sf(x) if df is None else stats.t.sf(x, df))


def delta_se(c1: float, c2: float, V: np.ndarray) -> float:
    """Delta-method SE of θ = −c1/(2c2): √(g'Vg), g = (−1/(2c2), c1/(2c2²))."""
    g = np.array([-1.0 / (2 * c2), c1 / (2 * c2 ** 2)])
    return float(np.sqrt(g @ V @ g))


@dataclass(frozen=True)
class FiellerSet:
    """The Fieller confidence set of θ: bounded [low, high] or unbounded (described in words)."""

    low: float
    high: float
    bounded: bool
    description: str


def fieller_set(c1: float, c2: float, V: np.ndarray, q: float, square: str = "A^2"
                ) -> FiellerSet:
    """{θ : (c1 + 2θc2)² ≤ q²(V11 + 4θV12 + 4θ²V22)} (module docstring)."""
    a = 4 * c2 ** 2 - 4 * q ** 2 * V[1, 1]
    b = 4 * c1 * c2 - 4 * q ** 2 * V[0, 1]
    c = c1 ** 2 - q ** 2 * V[0, 0]
    disc = b * b - 4 * a * c
    if a > 0:
        # θ̂ itself satisfies the inequality, so disc ≥ 0 up to rounding
        root = np.sqrt(max(disc, 0.0))
        lo, hi = (-b - root) / (2 * a), (-b + root) / (2 * a)
        return FiellerSet(lo, hi, True, f"[{lo:.4g}, {hi:.4g}]")
    why = f"because the curvature {square} is not significant at the {1 - LEVEL:.0%} level"
    if a == 0 and b != 0:
        # |c2| / se(c2) = q exactly: the inequality is linear, b θ + c ≤ 0, a half-line
        r = -c / b
        half = f"(-inf, {r:.4g}]" if b > 0 else f"[{r:.4g}, +inf)"
        return FiellerSet(np.nan, np.nan, False, f"unbounded: {half}, {why}")
    if disc > 0:                         # here a < 0 (a = b = 0 gives disc = 0)
        r1, r2 = sorted(((-b - np.sqrt(disc)) / (2 * a), (-b + np.sqrt(disc)) / (2 * a)))
        return FiellerSet(np.nan, np.nan, False,
                          f"unbounded: (-inf, {r1:.4g}] and [{r2:.4g}, +inf), {why}")
    return FiellerSet(np.nan, np.nan, False, f"unbounded: the whole real line, {why}")


@dataclass(frozen=True)
class LindMehlum:
    """Lind–Mehlum test of an inverted U (``shape="inverted U"``) or a U on [x_l, x_h]."""

    shape: str
    statistic: float
    p_value: float
    x_low: float
    x_high: float
    slope_low: float
    slope_high: float
    t_low: float
    t_high: float

    def describe(self) -> str:
        article = "an" if self.shape.startswith("inverted") else "a"
        if self.statistic < 0:
            return (f"Lind-Mehlum test of {article} {self.shape} on [{self.x_low:.4g}, "
                    f"{self.x_high:.4g}]: the extremum lies outside the observed range (slopes "
                    f"{self.slope_low:.4g} and {self.slope_high:.4g} have the same sign), so "
                    f"there is no {self.shape} in the data (statistic {self.statistic:.3f}, "
                    f"p = {self.p_value:.3f})")
        return (f"Lind-Mehlum test of {article} {self.shape} on [{self.x_low:.4g}, "
                f"{self.x_high:.4g}]: "
                f"slope {self.slope_low:.4g} (t = {self.t_low:.2f}) at the low end and "
                f"{self.slope_high:.4g} (t = {self.t_high:.2f}) at the high end; statistic "
                f"{self.statistic:.3f}, one-sided p = {self.p_value:.4f}")


def lind_mehlum(c1: float, c2: float, V: np.ndarray, x_low: float, x_high: float,
                df: float | None) -> LindMehlum:
    """Lind & Mehlum (2010) U test at the ends of [x_l, x_h]; the shape follows the sign of c2."""
    def t_ratio(x):
        var = V[0, 0] + 4 * x * V[0, 1] + 4 * x * x * V[1, 1]
        return float(slope(c1, c2, x)), float(slope(c1, c2, x) / np.sqrt(var))

    s_l, t_l = t_ratio(x_low)
    s_h, t_h = t_ratio(x_high)
    if c2 < 0:
        shape, stat = "inverted U", min(t_l, -t_h)
    else:
        shape, stat = "U", min(-t_l, t_h)
    return LindMehlum(shape, stat, _sf(stat, df), x_low, x_high, s_l, s_h, t_l, t_h)


def total_effect_multiplier(rho: float, W: sp.spmatrix) -> float:
    """m = 1'(I − ρW)⁻¹1 / n, the average total effect of a unit change of a regressor in every
    city (LeSage & Pace 2009); one sparse solve, = 1/(1 − ρ) when every row of W sums to one."""
    n = W.shape[0]
    S1 = spla.spsolve(sp.identity(n, format="csc") - rho * sp.csc_matrix(W), np.ones(n))
    return float(np.mean(S1))


def total_effect_turning_point(c1: float, c2: float, rho: float, W: sp.spmatrix
                               ) -> tuple[float, float]:
    """Turning point of the total effect a ↦ (c1 + 2c2·a)·m of A, and m.

    The multiplier m does not depend on a, so the root is −c1/(2c2), the direct turning point,
    whenever m ≠ 0 (always in the stable region of a row-standardised or symmetric W).
    """
    m = total_effect_multiplier(rho, W)
    if m == 0 or not np.isfinite(m):
        return np.nan, m
    # root of the linear function a ↦ m·(c1 + 2 c2 a), written out rather than assumed
    return float(-(m * c1) / (2 * m * c2)), m


# ----------------------------------------------------------------------------- the fit

@dataclass
class QuadraticFit:
    """Frequentist quadratic fit: coefficient table, turning point, Fieller set, Lind–Mehlum."""

    method: str                  # "ols" or "spatial 2sls"
    outcome: str
    term: str
    square: str
    coefficients: pd.DataFrame   # COLUMNS, coefficient rows only
    cov: np.ndarray              # covariance of the coefficients (term order)
    df: float | None             # t degrees of freedom, None = normal
    turning_point: float
    turning_point_se: float
    fieller: FiellerSet
    lind_mehlum: LindMehlum
    nobs: int
    rsquared: float
    rho: float | None = None
    total_turning_point: float | None = None
    multiplier: float | None = None
    notes: list[str] = field(default_factory=list)

    def coef(self, term: str) -> float:
        return float(self.coefficients.set_index("term").loc[term, "estimate"])

    def to_frame(self) -> pd.DataFrame:
        """Contract 6: the coefficient rows plus ``turning_point`` and ``lind_mehlum``."""
        extra = pd.DataFrame([
            {"equation": self.outcome, "term": "turning_point", "estimate": self.turning_point,
             "std_error": self.turning_point_se, "statistic": np.nan, "p_value": np.nan,
             "ci_low": self.fieller.low, "ci_high": self.fieller.high},
            {"equation": self.outcome, "term": "lind_mehlum", "estimate": np.nan,
             "std_error": np.nan, "statistic": self.lind_mehlum.statistic,
             "p_value": self.lind_mehlum.p_value, "ci_low": np.nan, "ci_high": np.nan}],
            columns=list(COLUMNS))
        return pd.concat([self.coefficients, extra], ignore_index=True)

    def summary(self) -> str:
        dist = "normal" if self.df is None else f"t({self.df:g})"
        lines = [f"Quadratic model of {self.outcome} in {self.term} ({self.method}), "
                 f"n = {self.nobs}, R² = {self.rsquared:.4f}",
                 f"statistics and {LEVEL:.0%} intervals from the {dist} distribution; "
                 "*** p<0.01, ** p<0.05, * p<0.10", "",
                 f"  {'term':<20}{'estimate':>12}{'std.err':>12}{'stat':>9}{'p':>9}"]
        for r in self.coefficients.itertuples():
            lines.append(f"  {r.term:<20}{r.estimate:>12.4f}{r.std_error:>12.4f}"
                         f"{r.statistic:>9.3f}{r.p_value:>9.4f} {stars(r.p_value)}")
        lines += ["", f"Turning point -c1/(2c2) = {self.turning_point:.4g} "
                      f"(delta-method s.e. {self.turning_point_se:.4g}); observed {self.term} "
                      f"range [{self.lind_mehlum.x_low:.4g}, {self.lind_mehlum.x_high:.4g}]",
                  f"Fieller {LEVEL:.0%} set: {self.fieller.description}",
                  self.lind_mehlum.describe()]
        if self.total_turning_point is not None:
            lines.append(f"Total effect of {self.term} (c1 + 2c2·{self.term})·m with spatial "
                         f"multiplier m = {self.multiplier:.4g} (rho = {self.rho:.4f}): its "
                         f"turning point is {self.total_turning_point:.4g}, the same point as "
                         f"the direct one (m only rescales the slope)")
        if self.notes:
            lines += ["", "Warnings:"] + [f"  - {w}" for w in self.notes]
        return "\n".join(lines)


def _coefficient_rows(outcome, terms, b, cov, df) -> pd.DataFrame:
    se = np.sqrt(np.diag(cov))
    stat = b / se
    p = 2 * (stats.norm.sf(np.abs(stat)) if df is None else stats.t.sf(np.abs(stat), df))
    q = critical_value(df)
    return pd.DataFrame({"equation": outcome, "term": list(terms), "estimate": b,
                         "std_error": se, "statistic": stat, "p_value": p,
                         "ci_low": b - q * se, "ci_high": b + q * se}, columns=list(COLUMNS))


def fit_quadratic_frequentist(data: QuadraticData) -> QuadraticFit:
    """OLS (no spatial lag) or spatial 2SLS (with W·y) of the quadratic model, and the
    turning-point inference of the module docstring."""
    terms = list(data.terms)
    notes: list[str] = []
    rho = total = mult = None
    if data.spatial_lag:
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = estimate(data.system, "2sls")
        notes += list(res.warnings) + [str(w.message) for w in caught
                                       if str(w.message) not in res.warnings]
        b = res.params.to_numpy(dtype=float)
        cov = res.cov.to_numpy(dtype=float)
        df, method = None, "spatial 2SLS, Kelejian-Prucha instruments"
        rsq = float(res.rsquared[data.outcome])
        rho = float(b[terms.index(f"W({data.outcome})")])
    else:
        y, X = data.y, data.design()
        b, cov, resid = ols(y, X)
        df = float(X.shape[0] - X.shape[1])
        method = "OLS"
        has_const = "Intercept" in terms
        sst = np.sum((y - y.mean()) ** 2) if has_const else np.sum(y ** 2)
        rsq = float(1 - resid @ resid / sst)
    if not np.all(np.isfinite(b)) or not np.all(np.isfinite(np.diag(cov))):
        raise InputError("the estimates or their standard errors are not finite; the model is "
                         "not identified by these data")
    i1, i2 = terms.index(data.term), terms.index(data.square)
    c1, c2 = float(b[i1]), float(b[i2])
    V = cov[np.ix_([i1, i2], [i1, i2])]
    if c2 == 0:
        raise InputError(f"the estimated curvature {data.square} is exactly zero; the turning "
                         "point is undefined")
    theta = float(turning_point(c1, c2))
    q = critical_value(df)
    x_low, x_high = data.range
    lm = lind_mehlum(c1, c2, V, x_low, x_high, df)
    fs = fieller_set(c1, c2, V, q, data.square)
    if not fs.bounded:
        notes.append(f"the Fieller {LEVEL:.0%} set of the turning point is {fs.description}")
    if data.spatial_lag:
        total, mult = total_effect_turning_point(c1, c2, rho, data.system.W)
    return QuadraticFit(
        method=method, outcome=data.outcome, term=data.term, square=data.square,
        coefficients=_coefficient_rows(data.outcome, terms, b, cov, df), cov=cov, df=df,
        turning_point=theta, turning_point_se=delta_se(c1, c2, V), fieller=fs,
        lind_mehlum=lm, nobs=int(data.y.size), rsquared=rsq, rho=rho,
        total_turning_point=total, multiplier=mult, notes=notes)
