"""Benchmark of the Bayesian spatial simultaneous system (prints a table; not run by CI).

Side by side on the paper-sized system (n = 241 cities of the embedded demo map, queen contiguity,
G = 2, the simulator's default identified truth):

* ours   — spectral O(n) Jacobian + sufficient-statistic likelihood, nutpie (numba) NUTS with a
           low-rank mass matrix, 4 chains × 1,000 draws (1,000 tuning);
* naive  — the literal formulation: dense 𝒜 = I − (B0 ⊗ I + B1 ⊗ W) with ``pt.linalg.slogdet``
           and a per-city MvNormal likelihood of the residuals, PyMC's default NUTS, fewer draws
           (optionally, ``--naive-nutpie``, the same naive likelihood on nutpie, to separate
           likelihood from sampler gains; its dense LAPACK calls segfaulted inside nutpie's worker
           threads with the pip OpenBLAS build here).

Figures: slowest-coefficient bulk ESS per second of sampling (target ≥ 1,000), compile time and
end-to-end time including compilation (target < 60 s). The machine may be shared, so timings are
indicative; the ESS/s ratio is the comparable figure.

Usage: python benchmarks/bench_bayes.py [--naive-draws 30] [--naive-nutpie] [--skip-naive]
       [--lattice]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt

from data_prep.synthetic.simulate import lattice_weights, simulate_system
from data_prep.spectrum.exact import eigenvalues
from models.bayes.sampling import quiet_arviz
from models.bayes.system import DEFAULT_PRIORS, build_system_model, system_layout
from models.spec.system import build_system, parse_system


def paper_sized_weights(lattice: bool):
    if lattice:
        return lattice_weights(16)  # 256 cells, the size quoted in docs/method.md §2b
    from data_prep.synthetic.demo import demo_inputs
    from data_prep.weights import weights_from_polygons

    return weights_from_polygons(demo_inputs().geometry, island_policy="nearest")


def min_ess(idata) -> float:
    with quiet_arviz():
        ess = az.ess(idata.posterior[["coef"]], method="bulk")["coef"].values
    return float(np.nanmin(ess))


def run_ours(system, lam, draws: int, tune: int, chains: int, seed: int) -> dict:
    import nutpie

    t0 = time.perf_counter()
    model = build_system_model(system, lam)
    compiled = nutpie.compile_pymc_model(
        model, jitter_rvs={rv for rv in model.free_RVs if rv.name != "structural_std"})
    t1 = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                          progress_bar=False, low_rank_modified_mass_matrix=True)
    t2 = time.perf_counter()
    ess = min_ess(idata)
    return {"compile_s": t1 - t0, "sample_s": t2 - t1, "total_s": t2 - t0, "min_ess": ess,
            "ess_per_s": ess / (t2 - t1), "draws": f"{chains} x {draws}",
            "divergences": int(idata.sample_stats["diverging"].sum()),
            "grad_evals": int(idata.sample_stats["n_steps"].sum())}


def naive_model(system) -> pm.Model:
    """The literal formulation, same standardisation and priors (dense n × n, benchmark only)."""
    layout = system_layout(system)
    G, n = layout.G, layout.n
    Y = (system.Y - layout.y_centre) / layout.y_scale
    W = system.W.toarray()
    Xu, names = system.exogenous_union()
    Xc = (Xu - Xu.mean(0)) / np.where(Xu.std(0) > 0, Xu.std(0), 1.0)
    Xc[:, [i for i, nm in enumerate(names) if nm == "Intercept"]] = 1.0
    hp = DEFAULT_PRIORS
    with pm.Model(coords={"structural": layout.labels["structural"],
                          "exogenous": layout.labels["exogenous"]}) as model:
        s = pm.Normal("structural_std", 0, hp["structural_sigma"], dims="structural")
        b = pm.Normal("beta_std", 0, hp["beta_sigma"], dims="exogenous")
        chol, _, _ = pm.LKJCholeskyCov("chol_std", n=G, eta=hp["lkj_eta"],
                                       sd_dist=pm.HalfNormal.dist(hp["sd_sigma"], shape=G))
        B0 = pt.dot(layout.L0, s).reshape((G, G))
        B1 = pt.dot(layout.L1, s).reshape((G, G))
        A = pt.eye(G * n) - pt.linalg.kron(B0, pt.eye(n)) - pt.linalg.kron(B1, W)
        sign, logdet = pt.linalg.slogdet(A)
        Bmat = pt.zeros((Xu.shape[1], G))
        xpos = {x: i for i, x in enumerate(names)}
        for j, (g, x) in enumerate(layout.exogenous):
            Bmat = pt.set_subtensor(Bmat[xpos[x], g], b[j])
        E = Y - pt.dot(Y, B0.T) - pt.dot(pt.dot(W, Y), B1.T) - pt.dot(Xc, Bmat)
        ll = pm.logp(pm.MvNormal.dist(mu=np.zeros(G), chol=chol), E).sum()
        pm.Potential("loglik", pt.switch(sign > 0, logdet + ll, -np.inf))
        coef = pt.concatenate([s, b])
        pm.Deterministic("coef", coef.reshape((1, -1)), dims=None)
    return model


def run_naive_nutpie(system, draws: int, tune: int, chains: int, seed: int) -> dict:
    """The naive formulation with the fast sampler, to separate likelihood and sampler gains."""
    import nutpie

    t0 = time.perf_counter()
    model = naive_model(system)
    compiled = nutpie.compile_pymc_model(
        model, jitter_rvs={rv for rv in model.free_RVs if rv.name != "structural_std"})
    t1 = time.perf_counter()
    idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                          progress_bar=False, low_rank_modified_mass_matrix=True)
    t2 = time.perf_counter()
    with quiet_arviz():
        ess = float(np.nanmin(az.ess(idata.posterior[["structural_std", "beta_std"]],
                                     method="bulk").to_array().values))
    return {"compile_s": t1 - t0, "sample_s": t2 - t1, "total_s": t2 - t0, "min_ess": ess,
            "ess_per_s": ess / (t2 - t1), "draws": f"{chains} x {draws}",
            "divergences": int(idata.sample_stats["diverging"].sum()),
            "grad_evals": int(idata.sample_stats["n_steps"].sum())}


def run_naive(system, draws: int, tune: int, chains: int, seed: int) -> dict:
    t0 = time.perf_counter()
    model = naive_model(system)
    with model, contextlib.redirect_stdout(io.StringIO()):
        # compile once outside the timed sampling (PyMC compiles inside pm.sample otherwise)
        model.compile_logp()
        model.compile_dlogp()
    t1 = time.perf_counter()
    with model:
        idata = pm.sample(draws=draws, tune=tune, chains=chains, cores=1, random_seed=seed,
                          progressbar=False, compute_convergence_checks=False)
    t2 = time.perf_counter()
    with quiet_arviz():
        ess = float(np.nanmin(az.ess(idata.posterior[["structural_std", "beta_std"]],
                                     method="bulk").to_array().values))
    # PyMC's own sampling_time excludes its (cached) compilation inside pm.sample
    sample_s = float(idata.posterior.attrs.get("sampling_time", t2 - t1))
    return {"compile_s": t1 - t0, "sample_s": sample_s, "total_s": t2 - t0, "min_ess": ess,
            "ess_per_s": ess / sample_s, "draws": f"{chains} x {draws}",
            "divergences": int(idata.sample_stats["diverging"].sum()),
            "grad_evals": int(idata.sample_stats["n_steps"].sum())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--naive-draws", type=int, default=30)
    ap.add_argument("--naive-chains", type=int, default=2)
    ap.add_argument("--nutpie-naive-draws", type=int, default=300)
    ap.add_argument("--naive-nutpie", action="store_true",
                    help="also run the naive likelihood on nutpie (its dense LAPACK calls have "
                         "crashed nutpie's worker threads with some OpenBLAS builds)")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--lattice", action="store_true",
                    help="16 x 16 lattice instead of the demo map")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    w = paper_sized_weights(args.lattice)
    sim = simulate_system(w, seed=args.seed)
    system = build_system(parse_system(sim.formulas), sim.data, weights=w)
    lam = eigenvalues(w)
    print(f"system: n = {system.n}, G = {system.G}, "
          f"{sum(len(eq.terms) for eq in system.spec.equations)} coefficients; W: {w.source}")

    rows = {"ours (spectral + sufficient statistics, nutpie)":
            run_ours(system, lam, args.draws, args.draws, args.chains, args.seed)}
    if not args.skip_naive:
        rows["naive (dense slogdet + MvNormal, PyMC NUTS)"] = run_naive(
            system, args.naive_draws, args.naive_draws, args.naive_chains, args.seed)
    if args.naive_nutpie:
        rows["naive likelihood, nutpie sampler"] = run_naive_nutpie(
            system, args.nutpie_naive_draws, args.nutpie_naive_draws, args.naive_chains,
            args.seed)
    cols = ["draws", "compile_s", "sample_s", "total_s", "min_ess", "ess_per_s", "grad_evals",
            "divergences"]
    print(f"{'formulation':52s}" + "".join(f"{c:>12s}" for c in cols))
    for name, r in rows.items():
        cells = [f"{r[c]:>12}" if isinstance(r[c], (str, int)) else f"{r[c]:>12.2f}" for c in cols]
        print(f"{name:52s}" + "".join(cells))
    if len(rows) > 1:
        ours, naive = list(rows.values())[:2]
        print(f"ratio of slowest-coefficient bulk-ESS per second of sampling: "
              f"{ours['ess_per_s'] / naive['ess_per_s']:.0f} x")
        per_grad = [r["sample_s"] / max(r["grad_evals"], 1) * 1e6 for r in (ours, naive)]
        print(f"time per gradient evaluation: ours {per_grad[0]:.1f} us, naive "
              f"{per_grad[1]:.1f} us (ratio {per_grad[1] / per_grad[0]:.0f} x)")
    if len(rows) > 2:
        third = list(rows.values())[2]
        print(f"ratio against the naive likelihood on nutpie: "
              f"{ours['ess_per_s'] / third['ess_per_s']:.0f} x")
    ours = next(iter(rows.values()))
    print(f"targets: ESS/s >= 1000 -> {'met' if ours['ess_per_s'] >= 1000 else 'NOT met'}; "
          f"end-to-end < 60 s -> {'met' if ours['total_s'] < 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
