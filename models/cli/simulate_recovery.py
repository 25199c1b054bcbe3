"""Parameter recovery and simulation-based calibration of the system estimators on dask.

Example:
    python scripts/simulate_recovery.py --replications 200 --n 241 --methods bayes,gs3sls \\
        --sbc --workers 2 --seed 1 --out results/recovery

R data sets are drawn from the structural simulator on a lattice of N cities (or the map of
--weights) with the two-equation truth of data_prep.synthetic.simulate.default_truth, or with --sbc from
the Bayesian model's own fixed-scale prior (Talts et al. 2018); each is fitted by every method,
one dask task per replication, on a LocalCluster of K worker processes (--workers K; 0 runs
in this process) or on the cluster at --scheduler ADDRESS. Replication r is seeded by
SeedSequence(seed).spawn(R)[r], so a seed gives the same tables wherever the tasks run.

Writes into DIR, all together or nothing: recovery.csv (method, equation, term, truth,
mean_estimate, bias, rmse, coverage90, replications), replications.csv (every replication's
estimate and 90 % interval), diagnostics.csv (each Bayesian fit's convergence), verdict.txt
(plain words), recovery_coverage.png, and with --sbc sbc_ranks.csv, sbc_uniformity.csv
(chi-square test per coefficient) and sbc_ranks.png. Bad input:
one line `error: ...`, exit status 2; Ctrl-C: `interrupted: ...`, exit status 130; nothing written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from data_prep.errors import InputError
from data_prep.files import check_output_paths
from models.cli.arguments import run_reporting_errors, write_outputs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Recovery study or simulation-based calibration of the Bayesian system and "
                    "GS3SLS on simulated data, spread over dask.distributed.")
    p.add_argument("--replications", type=int, required=True, metavar="R",
                   help="number of simulated data sets")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--n", type=int, default=241, metavar="N",
                       help="cities of a queen-contiguity lattice (default 241)")
    where.add_argument("--weights", metavar="W.gal", help="simulate on this map instead")
    p.add_argument("--methods", default="bayes,gs3sls", metavar="bayes,gs3sls",
                   help="comma-separated estimators (default bayes,gs3sls)")
    p.add_argument("--sbc", action="store_true",
                   help="draw each truth from the Bayesian prior and write SBC rank statistics")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a running dask scheduler (default: start a local cluster)")
    p.add_argument("--workers", type=int, default=2, metavar="K",
                   help="worker processes of the local cluster (default 2; 0 = run in-process)")
    p.add_argument("--seed", type=int, required=True, metavar="S", help="study seed")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    p.add_argument("--draws", type=int, default=500, help="posterior draws per chain (500)")
    p.add_argument("--tune", type=int, default=500, help="tuning steps per chain (500)")
    p.add_argument("--chains", type=int, default=2, help="chains per fit (2)")
    p.add_argument("--target-accept", type=float, metavar="A",
                   help="NUTS target acceptance (default the sampler's, 0.8); raise it toward 1 "
                        "when fits report divergences")
    p.add_argument("--sbc-draws", type=int, default=99, metavar="L",
                   help="thinned posterior draws the truth is ranked among (default 99)")
    return p


def _design(args):
    import numpy as np

    # lazy: fast --help, and a one-line Ctrl-C while numpy, pandas and the models load
    from data_prep.synthetic.simulate import default_truth
    from data_prep.spectrum.exact import eigenvalues
    from models.simulation.recovery import StudyDesign, check_methods, lattice_map

    methods = tuple(m.strip().lower() for m in args.methods.split(",") if m.strip())
    check_methods(methods, args.sbc)
    if args.replications < 2:
        raise InputError(f"--replications must be at least 2, not {args.replications}")
    if args.workers < 0:
        raise InputError(f"--workers must be 0 (in-process) or more, not {args.workers}")
    if args.weights:
        # lazy: fast --help, and a one-line Ctrl-C while numpy, pandas and the models load
        from data_prep.weights import weights_from_file

        weights = weights_from_file(args.weights)
    else:
        weights = lattice_map(args.n)
    lam = np.asarray(eigenvalues(weights))
    return StudyDesign(weights, lam, default_truth(), methods=methods, sbc=args.sbc,
                       draws=args.draws, tune=args.tune, chains=args.chains,
                       sbc_draws=args.sbc_draws, target_accept=args.target_accept)


def _progress(done: int, total: int, res) -> None:
    trouble = "; ".join(res.notes.get("failures", []))
    print(f"replication {res.replication} finished ({done}/{total})"
          + (f": {trouble}" if trouble else ""), flush=True)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    check_output_paths(folders=[("--out", out)])
    design = _design(args)

    # lazy: fast --help, and a one-line Ctrl-C while numpy, pandas and the models load
    from models.simulation.recovery import ESTIMATE_COLUMNS, combine, diagnostics_frame, recovery_table
    from models.simulation.report import coverage_figure, study_verdict
    from models.simulation.run import dask_client, run_study

    if args.scheduler or args.workers > 0:
        with dask_client(args.scheduler, args.workers) as client:
            print(f"running {args.replications} replications on dask "
                  f"({args.scheduler or f'local cluster of {args.workers} workers'})", flush=True)
            results = run_study(design, args.seed, args.replications, client, _progress)
    else:
        results = run_study(design, args.seed, args.replications, None, _progress)

    estimates, ranks, notes = combine(results)
    estimates = estimates[list(ESTIMATE_COLUMNS)]
    table = recovery_table(estimates, design.methods)
    diagnostics = diagnostics_frame(notes)
    sbc_sentence = None
    figures = [(out / "recovery_coverage.png", coverage_figure(estimates, table, design.methods),
                110)]
    outputs = [(out / "recovery.csv", lambda tmp: table.to_csv(tmp, index=False)),
               (out / "replications.csv", lambda tmp: estimates.to_csv(tmp, index=False)),
               (out / "diagnostics.csv", lambda tmp: diagnostics.to_csv(tmp, index=False))]
    if args.sbc:
        # lazy: fast --help, and a one-line Ctrl-C while numpy, pandas and the models load
        from models.simulation.sbc import rank_histogram_figure, rank_uniformity, uniformity_verdict

        uniform = rank_uniformity(ranks)
        sbc_sentence = uniformity_verdict(uniform)
        outputs += [(out / "sbc_ranks.csv", lambda tmp: ranks.to_csv(tmp, index=False)),
                    (out / "sbc_uniformity.csv", lambda tmp: uniform.to_csv(tmp, index=False))]
        figures.append((out / "sbc_ranks.png", rank_histogram_figure(ranks), 110))
    verdict = study_verdict(estimates, table, notes, design.methods, sbc_sentence,
                            design.sbc_draws if args.sbc else None)
    text = "\n".join(verdict) + "\n"
    outputs.append((out / "verdict.txt", lambda tmp: Path(tmp).write_text(text, "utf-8")))

    write_outputs(outputs, figures)
    print(text, end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors(run, build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
