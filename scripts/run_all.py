"""Run the whole study and write results/ (docs/contracts.md contract 4).

    python scripts/run_all.py [--config FILE.toml] [--quick] [--out results] [--dry-run]

Without a config the embedded synthetic demo runs with ``models/study/configs/demo.toml``. Stages, in the
paper's order: data (indices, weights, spectrum → ``data.nc``); Table 1 and Moran's I (Figures
1–3) with maps; Tables 2–3 (the headline specification and the paper's, by GS3SLS, 3SLS and the
posterior, with the truth where the data are simulated) and the LOO comparisons; Tables 4–10
(robustness, regimes, quadratic, censored factor model); ``report.md`` and ``manifest.json``.
Before any estimation the data are loaded and the whole study is planned (every table, its
systems and their identification, ``models/study/plan.py``): every problem is listed at once,
each naming the config key to change, and nothing is written (exit 2). ``--dry-run`` prints
the plan and stops. The config keys are documented in ``models/study/config.py``; the modelling
lives in models/.
"""

from models.cli.run_all import main

if __name__ == "__main__":
    raise SystemExit(main())
