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

from models.cli.simulate_recovery import main

if __name__ == "__main__":
    raise SystemExit(main())
