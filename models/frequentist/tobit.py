"""Tobit (censored normal) regression by maximum likelihood, one- or two-limit (Tobin 1958).

Model: y*_i = x_i'β + e_i, e_i ~ N(0, σ²); observed y_i = L if y*_i ≤ L, U if y*_i ≥ U, else y*_i.
With θ = (β, γ = log σ) (the optimiser works on log σ so σ stays positive), a_i = (L − x_i'β)/σ,
c_i = (x_i'β − U)/σ and r_i = (y_i − x_i'β)/σ, the log-likelihood is

    ℓ(θ) = Σ_{y=L} log Φ(a_i) + Σ_{y=U} log Φ(c_i) + Σ_{inside} [log φ(r_i) − γ].

Gradient and Hessian are analytic: inside, ∂ℓ/∂β = r x/σ, ∂ℓ/∂γ = r² − 1, ∂²ℓ/∂β∂β' = −xx'/σ²,
∂²ℓ/∂β∂γ = −2r x/σ, ∂²ℓ/∂γ² = −2r²; at a bound with argument u (a or c),
∂²ℓ = ℓ''(u) ∇u∇u' + ℓ'(u) ∇²u with ℓ'(u) = λ(u) = φ(u)/Φ(u) (inverse Mills ratio, from log
densities so it stays finite far in the tail) and ℓ''(u) = −λ(u)(u + λ(u)) (Amemiya 1985, §10.4;
Greene, Econometric Analysis, §19.3). The optimum is found by a trust-region Newton method
(``scipy.optimize.minimize(method="trust-exact")``) started from OLS; the covariance is the
inverse of the negative analytic Hessian; σ's standard error is the delta method σ·se(γ).

**Fixed effects and the incidental-parameter problem.** City (and year) effects enter as dummy
variables (first level dropped, the intercept kept). With few years per city the ML estimates
of a nonlinear model with one dummy per city are inconsistent as the number of cities grows
(Neyman & Scott 1948). Greene's (2004, Econometrics Journal 7, 98–119) simulations show that
in the Tobit the slopes are only mildly biased but σ is biased downwards (as in the linear model,
where the ML variance carries the factor (T − 1)/T), so the reported σ and the standard errors
are too small with short panels. The
warning :data:`INCIDENTAL_NOTE` is issued (and kept in ``notes``) whenever city dummies are used;
the hierarchical Bayesian model (:mod:`models.bayes.censored`) treats city effects as random
instead.

**Which assumption each fit makes.** With city dummies the slopes allow any correlation between
the city effects and the factors (fixed effects, with the caveat above). Without them and with
``mundlak`` (:mod:`models.spec.factor`) the design carries the city means x̄_r, the pooled Tobit
of Mundlak's correlated random effects a_r = x̄_r'ξ + u_r: the latent model stays linear with a
normal error u_r + e_rt, so the slopes are consistent, but the rows of a city are not independent
and the reported standard errors (which treat them so) are too small.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from data_prep.errors import InputError
from models.spec.factor import FactorData
from models.spec.coefficient_tables import COEF_COLUMNS

INCIDENTAL_NOTE = ("city fixed effects as dummies in a Tobit suffer from the incidental-parameter "
                   "problem (Greene 2004): with few years per city sigma is biased downwards and "
                   "standard errors are too small; read them with care or use the hierarchical "
                   "Bayesian model (--method bayes), which treats city effects as random")


def _mills(u: np.ndarray) -> np.ndarray:
    """λ(u) = φ(u)/Φ(u) from log densities (finite far in the lower tail)."""
    return np.exp(stats.norm.logpdf(u) - stats.norm.logcdf(u))


def tobit_loglik(theta: np.ndarray, y: np.ndarray, X: np.ndarray, lower: float | None,
                 upper: float | None, *, derivatives: bool = True):
    """ℓ(θ) for θ = (β, log σ); with ``derivatives`` also its analytic gradient and Hessian."""
    beta, gamma = theta[:-1], theta[-1]
    sigma = np.exp(gamma)
    eta = X @ beta
    lo = (y <= lower) if lower is not None else np.zeros(y.size, bool)
    up = (y >= upper) if upper is not None else np.zeros(y.size, bool)
    inside = ~(lo | up)
    r = (y[inside] - eta[inside]) / sigma
    a = (lower - eta[lo]) / sigma if lo.any() else np.zeros(0)
    c = (eta[up] - upper) / sigma if up.any() else np.zeros(0)
    ll = (stats.norm.logcdf(a).sum() + stats.norm.logcdf(c).sum()
          + (stats.norm.logpdf(r) - gamma).sum())
    if not derivatives:
        return ll
    k = X.shape[1]
    grad = np.zeros(k + 1)
    hess = np.zeros((k + 1, k + 1))
    Xi = X[inside]
    grad[:k] += Xi.T @ r / sigma
    grad[k] += (r ** 2 - 1).sum()
    hess[:k, :k] -= Xi.T @ Xi / sigma ** 2
    hess[:k, k] -= 2 * Xi.T @ r / sigma
    hess[k, k] -= 2 * (r ** 2).sum()
    # at a bound: u = (L − η)/σ (sign −1) or (η − U)/σ (sign +1); ∇u = (sign·x/σ, −u),
    # ∇²u has ∂²u/∂β∂γ = −sign·x/σ and ∂²u/∂γ² = u
    for u, rows, sign in ((a, lo, -1.0), (c, up, 1.0)):
        if not rows.any():
            continue
        Xb = X[rows]
        lam = _mills(u)
        d2 = -lam * (u + lam)
        grad[:k] += sign * Xb.T @ lam / sigma
        grad[k] += -(lam * u).sum()
        hess[:k, :k] += (Xb * d2[:, None]).T @ Xb / sigma ** 2
        hess[:k, k] += sign * Xb.T @ (d2 * -u) / sigma - sign * Xb.T @ lam / sigma
        hess[k, k] += (d2 * u ** 2).sum() + (lam * u).sum()
    hess[k, :k] = hess[:k, k]
    return ll, grad, hess


@dataclass
class TobitFit:
    """Estimates of one Tobit: ``params`` (β..., σ), ``cov`` of (β, log σ), names without σ."""

    outcome: str
    names: list[str]
    beta: np.ndarray
    sigma: float
    cov: np.ndarray
    loglik: float
    n: int
    n_lower: int
    n_upper: int
    iterations: int
    hidden: set = field(default_factory=set)      # dummy columns left out of the table
    notes: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def std_errors(self) -> np.ndarray:
        """Standard errors of β and of σ (delta method: se(σ) = σ·se(log σ))."""
        se = np.sqrt(np.diag(self.cov))
        return np.append(se[:-1], self.sigma * se[-1])

    def to_frame(self, suffix: str = "", include_effects: bool = False) -> pd.DataFrame:
        """Contract-2 rows (equation = outcome); σ as term ``sigma`` with p_value NaN (a scale
        has no meaningful test of zero); ``suffix`` is appended to terms (``x1[g]``)."""
        est = np.append(self.beta, self.sigma)
        se = self.std_errors
        z = est / se
        p = 2 * stats.norm.sf(np.abs(z))
        p[-1] = np.nan
        rows = []
        for j, name in enumerate([*self.names, "sigma"]):
            if name in self.hidden and not include_effects:
                continue
            rows.append((self.outcome, f"{name}{suffix}", est[j], se[j], z[j], p[j]))
        return pd.DataFrame(rows, columns=list(COEF_COLUMNS))

    def summary(self) -> str:
        lines = [f"Tobit ML{f' ({self.label})' if self.label else ''}: {self.outcome}, "
                 f"n = {self.n}, censored {self.n_lower} at the lower and {self.n_upper} at the "
                 f"upper bound; log-likelihood {self.loglik:.3f} ({self.iterations} iterations)"]
        if self.hidden:
            lines.append(f"{len(self.hidden)} fixed-effect dummies estimated, not shown")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def tobit(y: np.ndarray, X: np.ndarray, lower: float | None = None,
          upper: float | None = None, names: list[str] | None = None, outcome: str = "y",
          *, tol: float = 1e-8, max_iter: int = 500) -> TobitFit:
    """Maximum-likelihood Tobit of ``y`` on the columns of ``X`` (include the intercept in X)."""
    y = np.asarray(y, float)
    X = np.asarray(X, float)
    names = list(names) if names is not None else [f"x{j}" for j in range(X.shape[1])]
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise InputError(f"Tobit of {outcome}: the regressors are collinear (the design matrix "
                         f"has rank {np.linalg.matrix_rank(X)} < {X.shape[1]} columns)")
    b0 = np.linalg.lstsq(X, y, rcond=None)[0]
    s0 = max(np.std(y - X @ b0), 1e-8 * max(1.0, np.abs(y).max()))
    theta0 = np.append(b0, np.log(s0))

    def fun(theta):
        ll, g, h = tobit_loglik(theta, y, X, lower, upper)
        return -ll, -g, -h

    cache = {}

    def value(theta):
        cache["v"] = fun(theta)
        cache["x"] = theta.copy()
        return cache["v"][0]

    def jac(theta):
        return fun(theta)[1] if not np.array_equal(cache.get("x"), theta) else cache["v"][1]

    def hess(theta):
        return fun(theta)[2] if not np.array_equal(cache.get("x"), theta) else cache["v"][2]

    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        res = optimize.minimize(value, theta0, jac=jac, hess=hess, method="trust-exact",
                                options={"gtol": tol, "maxiter": max_iter})
    ll, g, h = tobit_loglik(res.x, y, X, lower, upper)
    scale = np.maximum(1.0, np.abs(ll))
    if not np.all(np.isfinite(g)) or np.max(np.abs(g)) > 1e-4 * scale:
        raise InputError(f"Tobit of {outcome} did not converge (largest gradient entry "
                         f"{np.max(np.abs(g)):.2g} after {res.nit} iterations); check the "
                         "regressors for near-collinearity or extreme scales")
    try:
        cov = np.linalg.inv(-h)
    except np.linalg.LinAlgError:
        raise InputError(f"Tobit of {outcome}: the information matrix is singular at the "
                         "optimum (a regressor is constant among uncensored rows?)") from None
    if np.any(np.diag(cov) <= 0):
        raise InputError(f"Tobit of {outcome}: the Hessian is not negative definite at the "
                         "optimum; the likelihood is flat in some direction")
    lo = int((y <= lower).sum()) if lower is not None else 0
    up = int((y >= upper).sum()) if upper is not None else 0
    return TobitFit(outcome, names, res.x[:-1], float(np.exp(res.x[-1])), cov, float(ll),
                    y.size, lo, up, int(res.nit))


def design(data: FactorData) -> tuple[np.ndarray, list[str], set[str]]:
    """[Intercept, Z, Mundlak city means, city dummies, year dummies] (first level of each
    effect dropped). City dummies absorb the city means, so the two are refused together."""
    if data.mundlak and "city" in data.effects:
        raise InputError(f"Tobit of {data.outcome}: --mundlak with city fixed effects: the city "
                         "dummies absorb the city means (fixed effects already allow any "
                         "correlation with the factors); drop --mundlak or the city effects")
    cols = [np.ones(data.n), *data.Z.T, *data.M.T]
    names = ["Intercept", *data.factors, *data.mundlak_terms]
    hidden: set[str] = set()
    for effect, codes, labels in (("city", data.city, data.cities),
                                  ("year", data.year, data.years)):
        if effect not in data.effects:
            continue
        for j in range(1, len(labels)):
            cols.append((codes == j).astype(float))
            names.append(f"{effect}[{labels[j]}]")
            hidden.add(names[-1])
    return np.column_stack(cols), names, hidden


def fit_tobit(data: FactorData, label: str = "") -> TobitFit:
    """Tobit of ``data`` (ignoring its groups) with its fixed effects as dummies."""
    X, names, hidden = design(data)
    if X.shape[1] + 1 >= data.n:
        raise InputError(f"Tobit of {data.outcome}{f' ({label})' if label else ''}: "
                         f"{X.shape[1] + 1} parameters for {data.n} observations")
    _check_separation(data, X, names, hidden, label)
    fit = tobit(data.y, X, data.lower, data.upper, names, data.outcome)
    fit.hidden, fit.label = hidden, label
    if "city" in data.effects:
        fit.notes.append(INCIDENTAL_NOTE)
        warnings.warn(INCIDENTAL_NOTE, stacklevel=2)
    if fit.n_lower + fit.n_upper == 0:
        fit.notes.append("no observation of this sample is censored: the fit is OLS by ML")
    return fit


def _check_separation(data: FactorData, X, names, hidden, label) -> None:
    """A dummy whose every observation sits at one bound has its ML estimate at ±∞."""
    for j, name in enumerate(names):
        if name not in hidden:
            continue
        rows = X[:, j] > 0
        for mask, word in ((data.at_lower, "lower"), (data.at_upper, "upper")):
            if mask[rows].all():
                raise InputError(f"Tobit of {data.outcome}{f' ({label})' if label else ''}: "
                                 f"every observation of {name} is censored at the {word} "
                                 "bound, so its effect is not identified (the ML estimate "
                                 "runs off to infinity); drop that effect or use the "
                                 "Bayesian model")


def check_group_sizes(data: FactorData) -> None:
    """A separate Tobit per group needs at least as many cities as slopes plus intercept."""
    k = len(data.factors) + len(data.mundlak) + 1
    counts = np.bincount(data.group_of_city, minlength=len(data.groups))
    small = [f"{g} ({c})" for g, c in zip(data.groups, counts) if c < k]
    if small:
        raise InputError(f"group column {data.group_column}: {', '.join(small)} has fewer cities "
                         f"than the {k} parameters (slopes and intercept) of a separate Tobit; "
                         "merge groups or use the Bayesian model (--method bayes), which pools "
                         "small groups toward the overall slopes")


@dataclass
class GroupTobit:
    """A full-sample Tobit and one separate Tobit per group (the paper's Table 10 columns)."""

    full: TobitFit
    by_group: dict[str, TobitFit]

    def to_frame(self) -> pd.DataFrame:
        """Full-sample rows (``x1``, ``sigma``) then every group's (``x1[g]``, ``sigma[g]``)."""
        frames = [self.full.to_frame()]
        frames += [fit.to_frame(suffix=f"[{g}]") for g, fit in self.by_group.items()]
        return pd.concat(frames, ignore_index=True)

    def summary(self) -> str:
        return "\n".join([self.full.summary(), *(f.summary() for f in self.by_group.values())])


def fit_tobit_groups(data: FactorData) -> GroupTobit:
    """Full sample plus a separate Tobit per group of ``data.group_column``."""
    if data.group_of_city is None:
        raise InputError("a grouped Tobit needs a group column")
    check_group_sizes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the incidental-parameter warning is issued once below
        full = fit_tobit(data, "full sample")
        by_group = {}
        for code, g in enumerate(data.groups):
            sub = data.subset(data.group == code)
            by_group[g] = fit_tobit(sub, f"{data.group_column} = {g}")
    if "city" in data.effects:
        warnings.warn(INCIDENTAL_NOTE, stacklevel=2)
    return GroupTobit(full, by_group)
