"""Parameter recovery of the spatial simultaneous system: one replication, and the summary table.

A replication r draws a data set from the structural simulator (``data_prep.synthetic.simulate``) with a
fixed truth (a recovery study) or with a truth drawn from the Bayesian model's own prior
(simulation-based calibration, :mod:`models.simulation.sbc`), fits it by each method and returns, per
coefficient, the truth, the point estimate and a 90 % interval:

* ``gs3sls``: the estimate and the Wald interval estimate ± z₀.₉₅ · se (Kelejian & Prucha 2004);
* ``bayes``: the posterior mean and the central 90 % interval (5 % and 95 % quantiles of the
  draws) of ``models.bayes.system``; for SBC also the rank of the truth among L thinned draws.

Seeds (choice): replication r uses ``np.random.SeedSequence(seed).spawn(R)[r]``, from which the
truth, the data and the sampler seeds are generated, so a replication's numbers depend only on
(seed, r), never on where or in which order it runs (in-process or on any dask worker).

The summary (:func:`recovery_table`) per method and coefficient is the mean estimate,
bias = mean(estimate − truth), RMSE = √mean((estimate − truth)²) and the share of intervals that
cover the truth; truth is the mean truth (constant in a recovery study).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm

from data_prep.errors import InputError
from data_prep.synthetic.simulate import SystemTruth, lattice_weights, simulate_system
from data_prep.weights import restrict_weights
from models.frequentist import estimate
from models.simulation.sbc import prior_truth, thinned_ranks
from models.spec.system import build_system, parse_system

METHODS: tuple[str, ...] = ("bayes", "gs3sls")
LEVEL = 0.90
RECOVERY_COLUMNS = ("method", "equation", "term", "truth", "mean_estimate", "bias", "rmse",
                    "coverage90", "replications")
ESTIMATE_COLUMNS = ("replication", "method", "equation", "term", "truth", "estimate", "lower",
                    "upper", "covered")


@dataclass(frozen=True)
class StudyDesign:
    """Everything a replication needs besides its seed (sent once to every task).

    ``weights``: SpatialWeights of the map; ``eigenvalues``: its spectrum (for the Bayesian
    Jacobian and the SBC prior's admissible region); ``truth``: the fixed truth, or for SBC the
    template whose terms the prior draws fill; ``sbc_draws``: L, the thinned posterior draws
    against which the truth is ranked (ranks 0..L).
    """

    weights: Any
    eigenvalues: np.ndarray
    truth: SystemTruth
    methods: tuple[str, ...] = METHODS
    sbc: bool = False
    draws: int = 500
    tune: int = 500
    chains: int = 2
    sbc_draws: int = 99
    priors: Mapping[str, float] = field(default_factory=dict)
    target_accept: float | None = None

    def __post_init__(self):
        check_methods(self.methods, self.sbc)
        for name in ("draws", "tune", "chains", "sbc_draws"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"{name} must be a positive integer, not {getattr(self, name)}")
        if self.target_accept is not None and not 0.0 < self.target_accept < 1.0:
            raise InputError(f"the target acceptance must lie between 0 and 1, not "
                             f"{self.target_accept}")
        if self.sbc and self.draws * self.chains < self.sbc_draws:
            raise InputError(f"SBC ranks against {self.sbc_draws} thinned draws need at least "
                             f"that many posterior draws (chains x draws = "
                             f"{self.draws * self.chains})")


def check_methods(methods: Sequence[str], sbc: bool = False) -> None:
    """InputError unless ``methods`` is a non-empty subset of :data:`METHODS` (bayes for SBC)."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InputError(f"unknown method(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(METHODS)}")
    if sbc and "bayes" not in methods:
        raise InputError("simulation-based calibration (--sbc) needs the method bayes")


def lattice_map(n: int, contiguity: str = "queen"):
    """Row-standardised contiguity on the first n cells (row by row) of the smallest square
    lattice that holds them, so any n ≥ 4 has a map (n = 241 fills 15 rows of 16 and one cell)."""
    if n < 4:
        raise InputError(f"--n must be at least 4 cities, not {n}")
    side = math.isqrt(n - 1) + 1
    full = lattice_weights(side, contiguity)
    if side * side == n:
        return full
    weights, _ = restrict_weights(full, full.cities[:n], reason=f"the first {n} lattice cells")
    return weights


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    """One independent SeedSequence per replication: ``SeedSequence(seed).spawn(R)``."""
    if replications < 1:
        raise InputError(f"--replications must be at least 1, not {replications}")
    return np.random.SeedSequence(int(seed)).spawn(int(replications))


@dataclass
class ReplicationResult:
    """Per-replication output: estimate rows, SBC rank rows and plain-words diagnostics."""

    replication: int
    estimates: pd.DataFrame
    ranks: pd.DataFrame | None
    notes: dict[str, Any]


def _truth_rows(truth: SystemTruth) -> list[tuple[str, str, float]]:
    return [(eq, t, float(v)) for eq, terms in truth.coefficients.items() for t, v in terms.items()]


def _rows(r: int, method: str, truth, values: Mapping, lower: Mapping, upper: Mapping):
    rows = []
    for eq, term, value in _truth_rows(truth):
        est, lo, hi = (float(m.get((eq, term), np.nan)) for m in (values, lower, upper))
        rows.append((r, method, eq, term, value, est, lo, hi,
                     bool(lo <= value <= hi) if np.isfinite(lo) and np.isfinite(hi) else False))
    return rows


def _fit_gs3sls(system, level: float) -> tuple[dict, dict, dict]:
    res = estimate(system, "gs3sls")
    z = norm.ppf(0.5 + level / 2)
    est, se = res.params, res.std_errors
    return est.to_dict(), (est - z * se).to_dict(), (est + z * se).to_dict()


def _fit_bayes(system, design: StudyDesign, seed: int, level: float):
    """Posterior mean, central interval and (for SBC) the flat draws of ``coef``; notes."""
    # lazy: PyMC only with the Bayesian method (a GS3SLS-only study runs without it)
    from models.bayes import sampling
    from models.bayes.idata import coef_grid
    from models.bayes.system import build_system_model

    model = build_system_model(system, design.eigenvalues, dict(design.priors) or None,
                               standardise=not design.sbc)
    before = sampling.compiled_structures()
    with contextlib.redirect_stdout(io.StringIO()):   # the report is kept in the notes instead
        idata = sampling.sample(model, draws=design.draws, tune=design.tune,
                                chains=design.chains, seed=seed, progress=False,
                                target_accept=design.target_accept)
    coef = coef_grid(idata.posterior)
    flat = coef.stack(sample=("chain", "draw")).transpose("equation", "term", "sample")
    report = json.loads(idata.attrs["convergence_report"])
    ess = _min_ess(idata)
    notes = {"compiled": sampling.compiled_structures() > before,
             "converged": report[0].startswith("Convergence checks passed"),
             "convergence": report[0],
             "divergences": int(idata.sample_stats["diverging"].sum()),
             "min_ess": ess}
    q = (0.5 - level / 2, 0.5 + level / 2)
    values, lower, upper, draws = {}, {}, {}, {}
    for eq in flat["equation"].values:
        for term in flat["term"].values:
            x = flat.sel(equation=eq, term=term).values
            if np.isnan(x).all():
                continue
            key = (str(eq), str(term))
            values[key] = float(x.mean())
            lower[key], upper[key] = (float(v) for v in np.quantile(x, q))
            draws[key] = x
    return values, lower, upper, draws, notes


def _min_ess(idata) -> float:
    import arviz as az

    # lazy: PyMC only with the Bayesian method (a GS3SLS-only study runs without it)
    from models.bayes.sampling import present_entries, quiet_arviz

    with quiet_arviz():
        ess = az.ess(present_entries(idata.posterior["coef"]).to_dataset(name="coef"),
                     method="bulk")
    return float(np.nanmin(ess["coef"].values))


def run_replication(design: StudyDesign, r: int, seed: np.random.SeedSequence,
                    level: float = LEVEL) -> ReplicationResult:
    """Simulate replication ``r`` and fit it by each method of ``design`` (module docstring).

    A method that fails on these data (a singular system, a sampler error) gives NaN estimates
    for the replication and its message in ``notes["failures"]``; it is reported, not hidden.
    """
    truth_seed, data_seed, sampler_seed = (int(s) for s in seed.generate_state(3))
    truth = (prior_truth(design.truth, design.eigenvalues, design.priors,
                         np.random.default_rng(truth_seed)) if design.sbc else design.truth)
    sim = simulate_system(design.weights, truth, seed=data_seed)
    system = build_system(parse_system(sim.formulas), sim.data, weights=sim.W, check=False)
    rows: list[tuple] = []
    ranks = None
    notes: dict[str, Any] = {"replication": r, "pid": os.getpid(), "failures": []}
    for method in design.methods:
        values: dict = {}
        lower: dict = {}
        upper: dict = {}
        try:
            if method == "gs3sls":
                values, lower, upper = _fit_gs3sls(system, level)
            else:
                values, lower, upper, draws, bayes_notes = _fit_bayes(system, design,
                                                                      sampler_seed, level)
                notes.update(bayes_notes)
                if design.sbc:
                    ranks = thinned_ranks(r, truth, draws, design.sbc_draws)
        except (InputError, np.linalg.LinAlgError, RuntimeError, ValueError) as err:
            notes["failures"].append(f"{method}: {err}")
        rows += _rows(r, method, truth, values, lower, upper)
    return ReplicationResult(r, pd.DataFrame(rows, columns=list(ESTIMATE_COLUMNS)), ranks, notes)


def combine(results: Sequence[ReplicationResult]) -> tuple[pd.DataFrame, pd.DataFrame | None,
                                                           list[dict]]:
    """Estimates, ranks and notes of all replications in replication order (whatever order the
    tasks finished in), so the tables do not depend on the scheduling."""
    ordered = sorted(results, key=lambda res: res.replication)
    estimates = pd.concat([res.estimates for res in ordered], ignore_index=True)
    ranks = [res.ranks for res in ordered if res.ranks is not None]
    return (estimates, pd.concat(ranks, ignore_index=True) if ranks else None,
            [res.notes for res in ordered])


def diagnostics_frame(notes: Sequence[dict]) -> pd.DataFrame:
    """One row per replication: the Bayesian fit's convergence (passed, first report sentence,
    divergences, smallest bulk ESS of a coefficient) and any failed fit's message. Where and
    whether it compiled are left out: they depend on the scheduling, the rest does not."""
    rows = [{"replication": n["replication"], "converged": n.get("converged"),
             "divergences": n.get("divergences"), "min_ess": n.get("min_ess"),
             "convergence": n.get("convergence", ""), "failures": "; ".join(n["failures"])}
            for n in notes]
    return pd.DataFrame(rows, columns=["replication", "converged", "divergences", "min_ess",
                                       "convergence", "failures"])


def recovery_table(estimates: pd.DataFrame, methods: Sequence[str] = METHODS) -> pd.DataFrame:
    """Per method and coefficient: truth (mean), mean estimate, bias, RMSE, coverage of the 90 %
    intervals and the number of replications with an estimate (contract 7 columns)."""
    order = {m: i for i, m in enumerate(methods)}
    rows = []
    for (method, eq, term), g in estimates.groupby(["method", "equation", "term"], sort=False):
        ok = g[np.isfinite(g["estimate"])]
        err = (ok["estimate"] - ok["truth"]).to_numpy()
        rows.append({"method": method, "equation": eq, "term": term,
                     "truth": float(g["truth"].mean()),
                     "mean_estimate": float(ok["estimate"].mean()) if len(ok) else np.nan,
                     "bias": float(err.mean()) if len(ok) else np.nan,
                     "rmse": float(np.sqrt(np.mean(err ** 2))) if len(ok) else np.nan,
                     "coverage90": float(ok["covered"].mean()) if len(ok) else np.nan,
                     "replications": int(len(ok))})
    table = pd.DataFrame(rows, columns=list(RECOVERY_COLUMNS))
    key = table["method"].map(order).fillna(len(order))
    return table.assign(_k=key).sort_values("_k", kind="stable").drop(columns="_k") \
        .reset_index(drop=True)


@dataclass(frozen=True)
class CoverageCheck:
    """Pooled coverage of one method with its standard error and the ±z·se band around 0.9."""

    method: str
    coverage: float
    se: float
    replications: int
    terms: int
    z: float = 3.29

    @property
    def consistent(self) -> bool:
        return abs(self.coverage - LEVEL) <= self.z * self.se


def coverage_check(estimates: pd.DataFrame, method: str, z: float = 3.29) -> CoverageCheck:
    """Pooled coverage of ``method`` and a standard error that respects the correlation of the
    intervals within a replication.

    The replication-level coverages c_r (share of a replication's K intervals covering the
    truth) are iid across replications, so se = sd(c_r)/√R; as the sample sd of a short run can
    be small by chance, it is bounded below by √(0.9·0.1/K), the sd of c_r for independent
    intervals. z = 3.29 gives a two-sided 99.9 % band (normal approximation).
    """
    rows = estimates[(estimates["method"] == method) & np.isfinite(estimates["estimate"])]
    if rows.empty:
        return CoverageCheck(method, np.nan, np.nan, 0, 0, z)
    per = rows.groupby("replication")["covered"].mean()
    K = int(rows.groupby("replication").size().max())
    R = int(per.size)
    sd = max(float(per.std(ddof=1)) if R > 1 else 0.0, math.sqrt(LEVEL * (1 - LEVEL) / K))
    return CoverageCheck(method, float(rows["covered"].mean()), sd / math.sqrt(R), R, K, z)
