"""Result container of the frequentist system estimators (2SLS, 3SLS, GS2SLS, GS3SLS).

Inference conventions (documented choices):
* statistic = estimate / std_error, p-value from the standard normal (two-sided) for every method —
  the estimators are justified asymptotically (Kelejian & Prucha 2004), and spreg reports the same
  z-statistics for its spatial 2SLS estimators.
* R² per equation = squared correlation between y_j and the fitted values Z_jδ̂_j (observed
  endogenous regressors and spatial lags) — spreg's ``pr2``; it lies in [0, 1] even though
  1 − SSR/SST
  can be negative for IV estimators.
* ``cov_type`` "unadjusted" (errors iid over observations), "clustered" (cluster-robust
  sandwich over ``n_clusters`` clusters, ``models.frequentist.iv.clustered_cov``) or "robust"
  (heteroskedasticity-robust, ``models.frequentist.iv.robust_cov``); the coefficient table
  (contract 2) has the same columns either way. With "robust" each spatial-error equation's
  table gains a row with term ``rho`` (the robust GM estimate, its standard error from the
  joint covariance of (δ̂, ρ̂), z and p as for the other rows; docs/contracts.md contract 9).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from models.spec.coefficient_tables import stars  # one definition of the significance marks


@dataclass
class SystemResults:
    method: str
    params: pd.Series            # MultiIndex (equation, term)
    std_errors: pd.Series
    tstats: pd.Series
    pvalues: pd.Series
    cov: pd.DataFrame
    sigma: pd.DataFrame          # G × G Σ̂ used by the estimator (from the 2SLS/GS2SLS residuals)
    rho: dict[str, float | None]
    resid: pd.DataFrame          # n × G, u = y − Zδ̂ (untransformed disturbances)
    rsquared: dict[str, float]
    nobs: int
    first_stage: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    cov_type: str = "unadjusted"
    n_clusters: int | None = None
    rho_std_errors: dict[str, float] = field(default_factory=dict)
    joint_cov: dict[str, pd.DataFrame] = field(default_factory=dict)  # (δ_j, ρ_j) of GS2SLS

    @classmethod
    def from_arrays(cls, method: str, index: pd.MultiIndex, delta: np.ndarray, cov: np.ndarray,
                    sigma: np.ndarray, equations: list[str], rho: dict[str, float | None],
                    resid: np.ndarray, rsquared: dict[str, float], cities: np.ndarray,
                    first_stage: pd.DataFrame, warnings: list[str],
                    cov_type: str = "unadjusted", n_clusters: int | None = None,
                    rho_std_errors: dict[str, float] | None = None,
                    joint_cov: dict[str, pd.DataFrame] | None = None) -> "SystemResults":
        """Assemble the tables; std errors = √diag(cov), z = δ̂/se, p = 2(1 − Φ(|z|))."""
        se = np.sqrt(np.diag(cov))
        z = delta / se
        p = 2.0 * stats.norm.sf(np.abs(z))
        return cls(
            method=method,
            params=pd.Series(delta, index=index, name="estimate"),
            std_errors=pd.Series(se, index=index, name="std_error"),
            tstats=pd.Series(z, index=index, name="statistic"),
            pvalues=pd.Series(p, index=index, name="p_value"),
            cov=pd.DataFrame(cov, index=index, columns=index),
            sigma=pd.DataFrame(sigma, index=equations, columns=equations),
            rho=rho,
            resid=pd.DataFrame(resid, index=pd.Index(cities, name="city"), columns=equations),
            rsquared=rsquared,
            nobs=int(resid.shape[0]),
            first_stage=first_stage,
            warnings=list(warnings),
            cov_type=cov_type,
            n_clusters=n_clusters,
            rho_std_errors=dict(rho_std_errors or {}),
            joint_cov=dict(joint_cov or {}),
        )

    def to_frame(self) -> pd.DataFrame:
        """Columns equation, term, estimate, std_error, statistic, p_value (contract 2); a
        ``rho`` row closes each equation whose ρ has a standard error."""
        frame = pd.concat([self.params, self.std_errors, self.tstats, self.pvalues], axis=1)
        frame.columns = ["estimate", "std_error", "statistic", "p_value"]
        frame.index = frame.index.set_names(["equation", "term"])
        frame = frame.reset_index()
        if not self.rho_std_errors:
            return frame
        blocks = []
        for eq, block in frame.groupby("equation", sort=False):
            blocks.append(block)
            if eq in self.rho_std_errors:
                est, se = float(self.rho[eq]), self.rho_std_errors[eq]
                blocks.append(pd.DataFrame([{
                    "equation": eq, "term": "rho", "estimate": est, "std_error": se,
                    "statistic": est / se, "p_value": 2.0 * stats.norm.sf(abs(est / se))}]))
        return pd.concat(blocks, ignore_index=True)

    def summary(self) -> str:
        """Plain-text table per equation with stars, R², ρ, n, Σ̂ and warnings."""
        title = {"2sls": "2SLS", "3sls": "3SLS", "gs2sls": "GS2SLS (Kelejian-Prucha)",
                 "gs3sls": "GS3SLS (Kelejian-Prucha 2004)"}.get(self.method, self.method)
        lines = [f"{title} estimates, n = {self.nobs}",
                 "z-statistics, normal p-values; *** p<0.01, ** p<0.05, * p<0.10"]
        if self.cov_type == "clustered":
            lines.append(f"standard errors clustered by {self.n_clusters} clusters")
        elif self.cov_type == "robust":
            lines.append("heteroskedasticity-robust GM for rho and standard errors")
        lines.append("")
        frame = self.to_frame()
        for eq, block in frame.groupby("equation", sort=False):
            rho = self.rho.get(eq)
            extra = f", rho = {rho:.4f}" if rho is not None else ""
            lines.append(f"Equation {eq}  (R² = {self.rsquared[eq]:.4f}{extra})")
            lines.append(f"  {'term':<20}{'estimate':>12}{'std.err':>12}{'z':>9}{'p':>9}")
            for row in block.itertuples():
                lines.append(f"  {row.term:<20}{row.estimate:>12.4f}{row.std_error:>12.4f}"
                             f"{row.statistic:>9.3f}{row.p_value:>9.4f} {stars(row.p_value)}")
            lines.append("")
        lines.append("Error covariance Sigma:")
        lines.append(self.sigma.to_string(float_format=lambda v: f"{v:.4f}"))
        if not self.first_stage.empty:
            lines += ["", "First-stage diagnostics:",
                      self.first_stage.to_string(index=False, float_format=lambda v: f"{v:.3f}")]
        if self.warnings:
            lines += ["", "Warnings:"] + [f"  - {w}" for w in self.warnings]
        return "\n".join(lines)
