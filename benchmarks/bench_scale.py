"""Scale benchmark of scripts/sample_posteriors.py: stage times, peak memory and file size at large n.

A two-equation system (the simulator's default identified truth) on a row-standardised rook
lattice (side × side, a symmetric neighbour relation) is written as CSV + GAL; the script then runs
in a child process under ``/usr/bin/time -v`` (peak resident memory) with its stages wrapped by
timers (build, spectrum, model, compile, sampling, impacts, LOO, summary, write). The result also
gives the posterior file's size, the largest R-hat of ``coef`` and how many true coefficients lie
in their 94 % highest-density intervals.

Functions for a harness: ``make_case(n, seed) -> paths`` and ``run_case(paths, ...) -> dict``.
With ``--errors student-t`` the data have multivariate Student-t(3) errors per city and the fit
is the Student-t system (``sample_posteriors.py --errors student-t``: per-city quadratic forms
while sampling, the scale-mixture LOO afterwards).

Usage: python benchmarks/bench_scale.py --n 10000 [--draws 1000 --tune 1000 --chains 4]
       [--keep-pointwise] [--quadrature] [--blas-threads 1] [--folder DIR]
       [--relation rook|knn6] [--errors normal|student-t]
The machine may be shared: run large n rarely; timings are indicative.
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
SCRIPT = ROOT / "scripts" / "sample_posteriors.py"
STAGES = ("build", "spectrum", "model", "compile", "callbacks", "sampling", "impacts", "loo",
          "summary", "write")


# degrees of freedom of the simulated Student-t errors (the recovery study's heavy tails)
T_DATA_NU = 3.0


def make_case(n: int, seed: int = 0, folder: str | Path | None = None,
              relation: str = "rook", errors: str = "normal") -> dict:
    """Simulate the default two-equation system and write data, map and truth.

    ``relation``: "rook" — a ⌊√n⌋² rook lattice (n rounded to a square number); "knn6" — the
    6-nearest-neighbour relation of n uniform random points, made symmetric by union (what
    ``prepare_data.py --symmetrise union`` builds), row-standardised; "demo" — the demo's
    241-city contiguity map (``n`` is ignored). ``errors="student-t"``: multivariate
    Student-t(:data:`T_DATA_NU`) errors per city instead of normal ones.
    Returns paths ``data`` (CSV), ``weights`` (GAL), ``truth`` (JSON: formulas and the true
    coefficients) and ``folder``."""
    import numpy as np

    from data_prep.synthetic.simulate import lattice_weights, simulate_system
    from data_prep.weights import weights_from_coordinates, write_gal

    folder = Path(folder or tempfile.mkdtemp(prefix=f"scale{n}_"))
    folder.mkdir(parents=True, exist_ok=True)
    if relation == "demo":
        from bench_bayes import paper_sized_weights

        weights = paper_sized_weights(lattice=False)
    elif relation == "knn6":
        cities = [f"c{i:06d}" for i in range(n)]
        points = np.random.default_rng(seed).random((n, 2))
        weights = weights_from_coordinates(points, cities, k=6, symmetrise="union")
    else:
        side = int(round(n ** 0.5))
        weights = lattice_weights(side)
    sim = simulate_system(weights, seed=seed, errors=errors, nu=T_DATA_NU)
    paths = {"folder": folder, "data": folder / "data.csv", "weights": folder / "map.gal",
             "truth": folder / "truth.json"}
    sim.data.to_csv(paths["data"], index=False)
    write_gal(weights, paths["weights"])
    paths["truth"].write_text(json.dumps({"formulas": sim.formulas,
                                          "coefficients": sim.truth.coefficients,
                                          "n": weights.n}))
    return paths


def _child(timing_file: str, argv: list[str]) -> int:
    """Run the script's main with its stages wrapped by wall-clock timers (in this process).

    With the environment variable BENCH_QUADRATURE=1 the spectrum chooser takes its quadrature
    at any n (threshold 0) instead of the exact spectrum below its threshold."""
    import importlib

    sys.path.insert(0, str(ROOT))
    import data_prep.files as files

    if os.environ.get("BENCH_QUADRATURE") == "1":
        import data_prep.spectrum.quadrature as quadrature

        chooser = quadrature.spectrum
        quadrature.spectrum = lambda W, **kw: chooser(W, **{**kw, "threshold": 0})
    import models.bayes.compile_cache as compile_cache
    import models.bayes.effects as effects
    import models.bayes.loo as loo
    import models.bayes.postprocess as post
    import models.bayes.sampling as sampling
    import models.bayes.system as system
    import models.spec.system as spec

    script = importlib.import_module("models.cli.sample_posteriors")
    times: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(module, name, stage):
        inner = getattr(module, name)

        def wrapper(*a, **k):
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return inner(*a, **k)
            finally:
                times[stage] = times.get(stage, 0.0) + time.perf_counter() - t0
                # CPU seconds of all threads: less sensitive than wall time to a busy machine
                cpu[stage] = cpu.get(stage, 0.0) + time.process_time() - c0
        setattr(module, name, wrapper)

    timed(spec, "build_system", "build")
    timed(script, "_spectrum", "spectrum")
    timed(system, "build_system_model", "model")
    timed(sampling, "_compiled", "compile")
    timed(compile_cache, "cached_cfunc", "callbacks")   # part of compile: nutpie's C callbacks
    timed(sampling, "sample", "sample_total")
    timed(effects, "impacts", "impacts")
    timed(post, "add_effects_and_loo", "postprocess_total")
    timed(post, "summary_frame", "summary")
    timed(files, "write_together", "write")
    t0 = time.perf_counter()
    code = script.main(argv)
    times["total"] = time.perf_counter() - t0
    for d in (times, cpu):
        d["sampling"] = d.pop("sample_total", 0.0) - d.get("compile", 0.0)
        d["loo"] = d.pop("postprocess_total", 0.0) - d.get("impacts", 0.0)
    times.update({f"cpu_{k}": v for k, v in cpu.items()})
    Path(timing_file).write_text(json.dumps(times))
    return code


def _truth_in_hdi(summary_csv: Path, truth: dict) -> tuple[int, int]:
    import pandas as pd

    s = pd.read_csv(summary_csv)
    inside = total = 0
    for eq, terms in truth["coefficients"].items():
        for term, value in terms.items():
            row = s[(s["equation"] == eq) & (s["term"] == term)]
            if len(row):
                total += 1
                inside += int(row["hdi_low"].iloc[0] <= value <= row["hdi_high"].iloc[0])
    return inside, total


def run_case(paths: dict, draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int = 1,
             extra_args: tuple[str, ...] = (), timeout: float = 3600,
             quadrature: bool = False, blas_threads: int | None = None,
             env: dict | None = None) -> dict:
    """Fit the case through scripts/sample_posteriors.py; return stage seconds and figures.

    ``quadrature``: use the chooser's quadrature spectrum even below its threshold (to time the
    rest without the dense eigendecomposition). ``blas_threads``: OPENBLAS/OMP/MKL thread count
    of the child (None: inherited); 1 avoids oversubscription when the 2 cores are busy.
    ``env``: further environment variables of the child (e.g. its cache folders).
    Keys: the stage names of ``STAGES`` and ``total`` (seconds inside the script), ``cpu_<stage>``
    (CPU seconds of the stage, all threads), ``wall``
    (seconds of the child process, interpreter start included), ``peak_mb`` (maximum resident
    set), ``file_mb`` (posterior NetCDF), ``max_rhat`` (coef), ``truth_in_hdi`` and
    ``truth_terms``."""
    truth = json.loads(Path(paths["truth"]).read_text())
    out = Path(paths["folder"]) / "post.nc"
    timing = Path(paths["folder"]) / "timings.json"
    argv = [a for f in truth["formulas"] for a in ("--equation", f)]
    argv += ["--data", str(paths["data"]), "--weights", str(paths["weights"]),
             "--draws", str(draws), "--tune", str(tune), "--chains", str(chains),
             "--seed", str(seed), "--out", str(out), "--quiet", *extra_args]
    for f in (out, timing):
        f.unlink(missing_ok=True)
    cmd = ["/usr/bin/time", "-v", sys.executable, str(Path(__file__).resolve()), "--child",
           str(timing), "--", *argv]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{HERE}",
           "BENCH_QUADRATURE": "1" if quadrature else "0", **(env or {})}
    if blas_threads is not None:
        env.update({k: str(blas_threads) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                   "MKL_NUM_THREADS")})
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"sample_posteriors failed ({proc.returncode}): "
                           f"{proc.stderr[-2000:]}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    result = json.loads(timing.read_text())
    from models.bayes.postprocess import HDI_PROB  # noqa: F401  (the summary's interval)

    summary = out.with_name(f"{out.stem}_summary.csv")
    import pandas as pd

    inside, total = _truth_in_hdi(summary, truth)
    result.update(wall=wall, peak_mb=int(peak.group(1)) / 1024 if peak else float("nan"),
                  file_mb=out.stat().st_size / 2**20,
                  max_rhat=float(pd.read_csv(summary)["r_hat"].max()),
                  truth_in_hdi=inside, truth_terms=total, n=truth["n"])
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _child(argv[1], argv[3:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--keep-pointwise", action="store_true")
    p.add_argument("--quadrature", action="store_true",
                   help="quadrature spectrum at any n (skip the exact eigendecomposition)")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="BLAS threads of the fit (default: inherited from the environment)")
    p.add_argument("--folder", default=None, help="where the case is written (default: temp)")
    p.add_argument("--relation", choices=("rook", "knn6"), default="rook",
                   help="neighbour relation of the map (default rook lattice)")
    p.add_argument("--errors", choices=("normal", "student-t"), default="normal",
                   help="error law of the simulated data and of the fit (default normal)")
    args = p.parse_args(argv)
    paths = make_case(args.n, seed=args.seed, folder=args.folder, relation=args.relation,
                      errors=args.errors)
    extra = (("--keep-pointwise",) if args.keep_pointwise else ()) + \
        (("--errors", args.errors) if args.errors != "normal" else ())
    res = run_case(paths, args.draws, args.tune, args.chains, args.seed, extra,
                   quadrature=args.quadrature, blas_threads=args.blas_threads)
    for key in (*STAGES, "total", "wall"):
        print(f"{key:>10}: {res.get(key, float('nan')):8.1f} s   "
              f"(cpu {res.get('cpu_' + key, float('nan')):7.1f} s)")
    print(f"   peak_mb: {res['peak_mb']:8.0f}\n   file_mb: {res['file_mb']:8.1f}\n"
          f"  max_rhat: {res['max_rhat']:8.4f}\n truth_hdi: {res['truth_in_hdi']} of "
          f"{res['truth_terms']}")
    print(json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in res.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
