"""After sampling: the contract-2 posterior summary, the impacts and the LOO densities.

:func:`summary_frame` summarises the posterior ``coef``, one row per (equation, term) pair present
in the system (the stacked layout of :mod:`models.bayes.idata`; columns of docs/contracts.md contract 2,
94 % highest-density intervals by default);
:func:`add_effects_and_loo` attaches the direct / indirect / total impacts
(:mod:`models.bayes.effects`) to the posterior and the leave-one-city-out conditional densities
(:mod:`models.bayes.loo`) streamed into their PSIS-LOO result (group ``loo``; the pointwise
``log_likelihood`` group too for small fits or when asked), read back by
:func:`models.bayes.loo.loo_result` in either layout; :func:`add_posterior_predictive` attaches
replicate data sets drawn from the reduced form (:mod:`models.bayes.predictive`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum, as_spectrum
from models.bayes.effects import coefficient_matrices, impacts
from models.bayes.idata import COEF_DIM, COEF_EQUATION, COEF_TERM, coef_grid, rho_grid, stacked_coef
from models.bayes.loo import (LOO_GROUP, iter_loglik, iter_loglik_t, log_likelihood_dataset,
                              loo_dataset, relative_efficiency)
from models.bayes.predictive import posterior_predictive
from models.bayes.psis_stream import StreamedLoo

HDI_PROB = 0.94


def summary_frame(idata, hdi_prob: float = HDI_PROB) -> pd.DataFrame:
    """Posterior summary of ``coef`` for the (equation, term) pairs present in the system, and
    for Student-t errors one more row (equation ``errors``, term ``nu``): the degrees of freedom.

    One row per entry of the stacked ``coef`` (:mod:`models.bayes.idata`), so exactly the terms
    each equation has; a grid ``coef`` (earlier files, constructed posteriors) is stacked first,
    its absent pairs (NaN in every draw) dropped *before* ArviZ computes the intervals and
    diagnostics, so it has no NaN to warn about."""

    coef = stacked_coef(idata.posterior)
    equations = [str(e) for e in coef[COEF_EQUATION].values]
    terms = [str(t) for t in coef[COEF_TERM].values]
    flat = coef.drop_vars([COEF_DIM, COEF_EQUATION, COEF_TERM]).rename({COEF_DIM: "entry"})
    frame = _summary_rows(flat, equations, terms, hdi_prob)
    if "nu" in idata.posterior:
        nu = idata.posterior["nu"].expand_dims(entry=["errors, nu"], axis=-1)
        frame = pd.concat([frame, _summary_rows(nu, ["errors"], ["nu"], hdi_prob)],
                          ignore_index=True)
    return frame


def _summary_rows(flat: xr.DataArray, equations: list, terms: list,
                  hdi_prob: float) -> pd.DataFrame:
    """mean, sd, HDI, R-hat and bulk ESS of each ``entry`` of a (chain, draw, entry) array."""
    import arviz as az

    post = xr.Dataset({"coef": flat})
    hdi = az.hdi(post, hdi_prob=hdi_prob)["coef"]
    chains = flat.sizes["chain"]
    rhat = az.rhat(post)["coef"].values if chains > 1 else np.full(flat.sizes["entry"], np.nan)
    ess = az.ess(post, method="bulk")["coef"].values
    mean, sd = flat.mean(("chain", "draw")).values, flat.std(("chain", "draw"), ddof=1).values
    return pd.DataFrame({"equation": equations, "term": terms, "mean": mean, "sd": sd,
                         "hdi_low": hdi.sel(hdi="lower").values,
                         "hdi_high": hdi.sel(hdi="higher").values,
                         "r_hat": rhat, "ess_bulk": ess},
                        columns=["equation", "term", "mean", "sd", "hdi_low", "hdi_high",
                                 "r_hat", "ess_bulk"])


def exogenous_part(system, coef: np.ndarray, terms: list[str]) -> np.ndarray:
    """(S, n, G) draws of X_g β_g for every equation (NaN coefficients of absent terms skipped)."""
    S = coef.shape[0]
    out = np.zeros((S, system.n, system.G))
    for g, eq in enumerate(system.spec.equations):
        cols = [terms.index(x) for x in eq.exogenous]
        out[:, :, g] = coef[:, g, cols] @ system.X[g].T
    return out


# Default rule for the pointwise ``log_likelihood`` group: kept when chains × draws × cities is at
# most this many values (32 MB of float64: the paper's 241 cities at 4 × 1,000 draws need 1e6);
# larger fits store only the per-city PSIS-LOO result (group ``loo``), unless asked.
POINTWISE_LIMIT = 4_000_000


def keeps_pointwise(samples: int, n: int, keep_pointwise: bool | None = None) -> bool:
    """Whether the pointwise group is written: ``keep_pointwise`` when given, else the size rule
    samples × n ≤ :data:`POINTWISE_LIMIT`."""
    return samples * n <= POINTWISE_LIMIT if keep_pointwise is None else bool(keep_pointwise)


def add_effects_and_loo(idata, system, spectrum, *, loo: bool = True,
                        exclude_variables: tuple[str, ...] = (),
                        keep_pointwise: bool | None = None) -> list[str]:
    """Attach the impacts and the PSIS-LOO result (see :func:`_add_effects_and_loo`).

    Runs with single-threaded BLAS: its products here are many small ones, and multi-threaded
    OpenBLAS made them up to 25 times slower on a busy two-core machine (measured)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _add_effects_and_loo(idata, system, as_spectrum(spectrum), loo=loo,
                                    exclude_variables=exclude_variables,
                                    keep_pointwise=keep_pointwise)


def _add_effects_and_loo(idata, system, spectrum: Spectrum | None, *, loo: bool = True,
                         exclude_variables: tuple[str, ...] = (),
                         keep_pointwise: bool | None = None) -> list[str]:
    """Attach the impacts (posterior ``impact``) and the PSIS-LOO result; return notes.

    The leave-one-city-out conditional densities (:mod:`models.bayes.loo`) are computed over
    chunks of draws — the exogenous part X̃b of each chunk from its coefficients, never an
    (S, n, G) array — and streamed into the exact PSIS-LOO of :mod:`models.bayes.psis_stream`,
    stored as the small group ``loo`` (``elpd_i``, ``p_loo_i``, ``pareto_k`` per city; totals
    in its attrs). The (chain, draw, city) ``log_likelihood`` group for ``arviz.loo`` is added
    too when ``keep_pointwise`` is True, or, when it is None, for fits of at most
    :data:`POINTWISE_LIMIT` values (:func:`keeps_pointwise`). Memory is linear in n.
    A posterior with ``nu`` (Student-t errors) gets the scale-mixture conditional densities of
    :func:`models.bayes.loo.iter_loglik_t` (the other cities' scales drawn with a fixed seed,
    so the result is reproducible). ``loo=False`` skips LOO (panel mode: the rows of the within-transformed panel are
    arbitrary contrasts, not cities). ``exclude_variables`` are exogenous terms without an
    impact (the year-effect contrast dummies of panel mode).
    """
    notes = []
    post = idata.posterior
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    grid = coef_grid(post)
    B0, B1, betas, deps = coefficient_matrices(grid)
    betas = {k: v for k, v in betas.items() if k[1] not in set(exclude_variables)}
    Sigma = post["Sigma"].stack(sample=("chain", "draw")).transpose("sample", ...).values
    rho = None
    if "rho" in post:
        rho = np.nan_to_num(rho_grid(post).stack(sample=("chain", "draw"))
                            .transpose("sample", ...).values)
    W = system.W
    rows_one = W is not None and np.allclose(np.asarray(W.sum(axis=1)).ravel(), 1.0)
    if W is not None:
        if spectrum is None:
            raise InputError("the impacts need the spectrum of W")
        imp = impacts(B0, B1, betas, spectrum.nodes, row_standardised=rows_one,
                      dependents=deps, W=W, spectrum_weights=spectrum.normalised_weights)
        da = imp["impact"].transpose("sample", ...)
        values = da.values.reshape((chains, draws) + da.shape[1:])
        coords = {k: v for k, v in da.coords.items() if "sample" not in v.dims}
        idata.posterior["impact"] = xr.DataArray(
            values, dims=("chain", "draw") + da.dims[1:],
            coords={**coords, "chain": post["chain"].values, "draw": post["draw"].values})
    if not loo:
        return notes
    coef = grid.stack(sample=("chain", "draw")).transpose("sample", ...).values
    terms = [str(t) for t in grid["term"].values]
    S, n = chains * draws, system.n
    cities = [str(c) for c in system.cities]
    keep = keeps_pointwise(S, n, keep_pointwise)
    full = np.empty((S, n)) if keep else None
    acc = StreamedLoo(n, S, relative_efficiency(post))
    finite = True
    xb_of = lambda idx: exogenous_part(system, coef[idx], terms)  # noqa: E731
    if "nu" in post:
        nu = post["nu"].stack(sample=("chain", "draw")).values
        blocks = iter_loglik_t(system.Y, W, B0, B1, Sigma, rho, nu, xb_of, n_draws=S)
    else:
        blocks = iter_loglik(system.Y, W, B0, B1, Sigma, rho, xb_of)
    for idx, block in blocks:
        finite = finite and bool(np.all(np.isfinite(block)))
        if full is not None:
            full[idx] = block
        acc.add(block)
    # what was scored, so model comparisons can refuse different data (model_comparison.py)
    scored = {"outcomes": ",".join(system.spec.dependents),
              "outcome_sha256": outcome_fingerprint(system.Y),
              "errors": "student-t" if "nu" in post else "normal"}
    idata.add_groups({LOO_GROUP: loo_dataset(acc.result(), cities, var_name="y", **scored)})
    if full is not None:
        ds = log_likelihood_dataset(full, cities, chains, var_name="y")
        ds.attrs.update(scored)
        idata.add_groups(log_likelihood=ds.assign_coords(chain=post["chain"].values,
                                                         draw=post["draw"].values))
    if not finite:
        notes.append("some leave-one-city-out densities are not finite; LOO is unreliable")
    return notes


def outcome_fingerprint(Y: np.ndarray) -> str:
    """SHA-256 of the observed dependents (float64, C order): equal only for identical data."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(Y, dtype=np.float64).tobytes()).hexdigest()


def thinned_draws(draws: int, chains: int, max_draws: int) -> np.ndarray:
    """Draw indices kept in every chain so that chains × kept ≤ max_draws (evenly spaced)."""
    step = max(1, int(np.ceil(chains * draws / max(int(max_draws), 1))))
    return np.arange(0, draws, step)


def add_posterior_predictive(idata, system, seed: int, max_draws: int = 500):
    """Attach a ``posterior_predictive`` group: one replicate data set per (thinned) draw.

    For each kept posterior draw θ_s, y_s = 𝒜(θ_s)⁻¹(X̃b_s + u_s) with u_s drawn from the
    model's error law (``models.bayes.predictive.posterior_predictive``, one sparse LU per draw).
    Each chain is thinned to evenly spaced draws when chains × draws exceeds ``max_draws``
    (choice: the predictive distribution is a posterior expectation, a few hundred draws estimate
    it well and the LU solves dominate the cost); the kept draw numbers are the ``draw``
    coordinate. Variables are named after the dependents, dims (chain, draw, city), in the
    data's units. The same seed gives identical replicates. Returns the idata.
    """

    post = idata.posterior
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    keep = thinned_draws(draws, chains, max_draws)
    sub = post.isel(draw=keep)
    grid = coef_grid(sub)
    B0, B1, _, deps = coefficient_matrices(grid)

    def stack(da):
        return da.stack(sample=("chain", "draw")).transpose("sample", ...).values

    Sigma = stack(sub["Sigma"])
    rho = stack(rho_grid(sub)) if "rho" in sub else None
    xb = exogenous_part(system, stack(grid), [str(t) for t in grid["term"].values])
    y = posterior_predictive(xb, system.W, B0, B1, Sigma, rho, seed=seed)   # (S, n, G)
    y = y.reshape(chains, keep.size, system.n, system.G)
    coords = {"chain": post["chain"].values, "draw": post["draw"].values[keep],
              "city": [str(c) for c in system.cities]}
    ds = xr.Dataset({dep: (("chain", "draw", "city"), y[..., g]) for g, dep in enumerate(deps)},
                    coords=coords)
    ds.attrs["thinned_from_draws"] = int(draws)
    idata.add_groups(posterior_predictive=ds)
    return idata
