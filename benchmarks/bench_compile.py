"""First-fit benchmark: how long a user waits for a fit in a new process, cold and warm caches.

Two figures of issue 21 and one of issue 18:

* ``scripts/sample_posteriors.py``, two equations on the demo's 241-city map, 4 × 1,000 draws,
  end to end in a new process: the first time (every compile cache empty: this project's
  ``RESILIENCE_CACHE_DIR`` and PyTensor's ``base_compiledir`` both point into a fresh folder)
  and in a second process with the same structure (the caches the first one filled). Each run
  reports its stages (bench_scale's timers; ``callbacks`` is the part of ``compile`` spent on
  nutpie's two C callbacks, loaded from the disk cache when warm; ``imports`` the rest of the
  process: interpreter start and imports);
* the 40-city ``run_all.py --quick --config configs/tiny.toml`` study, cold and warm, with the
  stage times the pipeline prints.

Usage: python benchmarks/bench_compile.py [--skip-study] (prints the records as JSON);
benchmarks/run.py turns them into table rows (check ``compile``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

STAGE_LINE = re.compile(r"^\[run_all\] (.+): done in ([0-9.]+) s", re.M)


def cold_caches(folder: Path) -> dict[str, str]:
    """Environment pointing both compile caches into ``folder`` (empty: a first process)."""
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    base = f"base_compiledir={folder / 'pytensor'}"
    return {"RESILIENCE_CACHE_DIR": str(folder / "cache"),
            "PYTENSOR_FLAGS": f"{flags},{base}" if flags else base}


def sample_posteriors_runs(folder: Path) -> list[dict]:
    """The n = 241 fit twice in new processes sharing fresh caches: [first, second]."""
    from bench_scale import make_case, run_case

    env = cold_caches(folder)
    case = make_case(241, seed=0, folder=folder / "case", relation="demo")
    runs = []
    for _ in range(2):
        r = run_case(case, 1000, 1000, 4, 1, env=env)
        r["imports"] = r["wall"] - r["total"]
        runs.append({k: v for k, v in r.items() if isinstance(v, (int, float))})
    return runs


def study_runs(folder: Path) -> list[dict]:
    """The 40-city quick study twice in new processes sharing fresh caches: [cold, warm]."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **cold_caches(folder)}
    runs = []
    for i in range(2):
        out = folder / f"study{i}"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "scripts/run_all.py", "--quick", "--config",
                               "models/study/configs/tiny.toml", "--out", str(out)], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"run_all.py --quick failed ({proc.returncode}): "
                               f"{(proc.stderr or proc.stdout)[-2000:]}")
        stages = {name: float(s) for name, s in STAGE_LINE.findall(proc.stdout + proc.stderr)}
        runs.append({"wall": wall, "stages": stages})
    return runs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-study", action="store_true", help="only the sample_posteriors runs")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = {"load_average": os.getloadavg(),
                  "sample_posteriors": sample_posteriors_runs(Path(tmp) / "fit")}
        if not args.skip_study:
            result["study"] = study_runs(Path(tmp) / "study")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
