"""Mutation testing of the reporting layer with cosmic-ray (``make mutation``; not part of CI).

Each target module is mutated in a scratch copy of the tracked files (the working tree is never
touched), one cosmic-ray session per module, and each mutant runs only the fast test files that
cover that module (``pytest -x``: the first failure kills the mutant). Operators that only
produce crashes or unreadable noise are filtered (bitwise/shift/floor-division/modulo
replacements, variable inserter/replacer, decorator removal), and the Bayesian system model is
mutated only in its prior block (a line filter).

Usage: ``python tests/mutation/run.py [--sample N [--seed S]] [name ...]`` — names from ``TARGETS``
(default: all). ``--sample N`` tests a seeded random sample of N mutants per module (the rest
are marked skipped; seed S, reports suffixed "-seedS" when S ≠ 0), for a run that must fit in a
time budget; the default tests every mutant.
``python tests/mutation/run.py --summarise NAME SESSION`` writes the report of a finished
session file.
Writes ``tests/mutation/reports/<name>.txt`` (cosmic-ray's report with every surviving mutant's
diff) and prints a one-line count per module: generated, killed (of which by timeout),
survived, incompetent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
REPORTS = Path(__file__).resolve().parent / "reports"
BIN = Path(sys.executable).parent

EXCLUDE_OPERATORS = [
    r"core/ReplaceBinaryOperator_.*_(RShift|LShift|BitOr|BitAnd|BitXor|FloorDiv|Mod)$",
    r"core/ReplaceBinaryOperator_(RShift|LShift|BitOr|BitAnd|BitXor|FloorDiv|Mod)_.*",
    r"core/VariableInserter", r"core/VariableReplacer", r"core/RemoveDecorator",
]

FREQ_TESTS = ["tests/models/frequentist/test_gs3sls_references.py", "tests/models/frequentist/test_frequentist.py"]
BAYES_POST = ["tests/models/bayes/test_system_references.py", "-k",
              "summary or dagger or add_effects or quadrature or excluded or binary "
              "or predictive_mean or seeded_and_thinning or thinning_cap"]
TARGETS: dict[str, dict] = {
    "frequentist_results": {"module": "models/frequentist/results.py",
                            "tests": FREQ_TESTS + ["tests/models/frequentist/test_summary.py",
                                                   "tests/models/spec/test_coefficient_tables.py"], "timeout": 120},
    "frequentist_diagnostics": {"module": "models/frequentist/diagnostics.py",
                                "tests": FREQ_TESTS, "timeout": 120},
    "simulate": {"module": "data_prep/synthetic/simulate.py",
                 "tests": ["tests/data_prep/synthetic/test_simulate_references.py", "tests/data_prep/synthetic/test_simulate.py"],
                 "timeout": 120},
    "results": {"module": "models/spec/coefficient_tables.py",
                "tests": ["tests/models/spec/test_coefficient_tables.py", "tests/models/spec/test_coefficient_tables_references.py",
                          "tests/models/frequentist/test_gs3sls_references.py"],
                "timeout": 120},
    # the streamed LOO and the lean-file rule are checked by test_lean_outputs (its two script
    # tests are deselected by -k: they add a sampling run and test the command line)
    "bayes_postprocess": {"module": "models/bayes/postprocess.py",
                          "tests": BAYES_POST[:1] + ["tests/models/bayes/test_predictive_group.py",
                                                     "tests/models/cli/test_lean_outputs.py"]
                          + BAYES_POST[1:2] + [BAYES_POST[2] + " or streamed or stored_loo "
                                               "or lean_rule or comparison_same or lean_files"],
                          "timeout": 300},
    # the prior block: DEFAULT_PRIORS, build_system_model from the settings to the rho prior, and
    # the reported prior sds (line numbers of the current file: update them when it changes)
    "bayes_priors": {"module": "models/bayes/system.py",
                     "lines": ["51-57", "323-329", "345-375", "394-395"],
                     "tests": ["tests/models/bayes/test_system_references.py", "tests/models/bayes/test_bayes_logp.py", "-k",
                               "prior or lkj or contraction or another_map or structural_terms "
                               "or complex_spectrum"], "timeout": 600},
    # the model families added with Tables 9 and 10
    "frequentist_quadratic": {"module": "models/frequentist/quadratic.py",
                              "tests": ["tests/models/frequentist/test_quadratic_references.py",
                                        "tests/models/frequentist/test_quadratic_frequentist.py"],
                              "timeout": 120},
    "tobit": {"module": "models/frequentist/tobit.py",
              "tests": ["tests/models/frequentist/test_tobit.py", "tests/models/frequentist/test_tobit_references.py"], "timeout": 120},
    # the shape quantities users read: the prior values, the deterministics of the model and
    # the posterior summaries (line numbers of the current file: update them when it changes)
    "bayes_quadratic": {"module": "models/bayes/quadratic.py",
                        "lines": ["80-88", "108-129", "177-232"],
                        "tests": ["tests/models/bayes/test_quadratic_references.py",
                                  "tests/models/bayes/test_quadratic_bayes.py"], "timeout": 400},
    # the fast tests only (no NUTS): survivors are then rechecked with the sampling tests too
    "bayes_censored": {"module": "models/bayes/censored.py",
                       "tests": ["tests/models/bayes/test_censored_references.py", "tests/models/bayes/test_censored_bayes.py",
                                 "-k", "strength or loglik"], "timeout": 300},
}


def _config(target: dict) -> str:
    cmd = [str(BIN / "python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           *target["tests"]]
    test_command = " ".join(f"'{c}'" if " " in c else c for c in cmd)
    lines = [
        "[cosmic-ray]",
        f'module-path = "{target["module"]}"',
        f"timeout = {float(target['timeout'])}",
        "excluded-modules = []",
        f"test-command = {json.dumps(test_command)}",
        "",
        "[cosmic-ray.distributor]",
        'name = "local"',
        "",
        "[cosmic-ray.filters.operators-filter]",
        f"exclude-operators = {json.dumps(EXCLUDE_OPERATORS)}",
    ]
    if target.get("lines"):
        lines += ["", "[cosmic-ray.filters.line-filter.lines]",
                  f'"{target["module"]}" = {json.dumps(target["lines"])}']
    return "\n".join(lines) + "\n"


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def _sample(session: Path, size: int, seed: int = 0) -> None:
    """Mark all but a seeded random sample of ``size`` pending mutants as skipped."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = sorted(item.job_id for item in db.pending_work_items)
        if len(pending) <= size:
            return
        keep = set(np.random.default_rng(seed).choice(pending, size, replace=False))
        db.set_multiple_results([j for j in pending if j not in keep],
                                WorkResult(output="Filtered sample",
                                           worker_outcome=WorkerOutcome.SKIPPED))


def run(name: str, sample: int | None = None, seed: int = 0) -> dict:
    target = TARGETS[name]
    with tempfile.TemporaryDirectory(prefix=f"mut-{name}-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        (work / "cr.toml").write_text(_config(target))
        env = {**os.environ, "PYTHONPATH": str(work)}

        def call(*args):
            return subprocess.run([str(BIN / args[0]), *args[1:]], cwd=work, env=env,
                                  capture_output=True, text=True)

        call("cosmic-ray", "init", "cr.toml", "s.sqlite")
        call("cr-filter-operators", "s.sqlite", "cr.toml")
        if target.get("lines"):
            call("cr-filter-lines", "--config", "cr.toml", "s.sqlite")
        if sample:
            _sample(work / "s.sqlite", sample, seed)
        call("cosmic-ray", "exec", "cr.toml", "s.sqlite")
        return summarise(name, work / "s.sqlite", report_name=f"{name}-seed{seed}" if seed
                         else name)


def summarise(name: str, session: Path, report_name: str | None = None) -> dict:
    """Count the outcomes of a session and write its reports."""
    def call(*args):
        return subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True,
                              text=True).stdout

    report = call("cr-report", "--show-diff", "--surviving-only", str(session))
    dump = call("cosmic-ray", "dump", str(session))
    slim = []
    counts = {"generated": 0, "skipped": 0, "sampled_out": 0, "killed": 0, "survived": 0,
              "incompetent": 0, "timeout": 0, "pending": 0}
    for line in dump.splitlines():
        item, result = json.loads(line)
        if result is not None and result.get("output"):
            result["output"] = result["output"][-300:]      # the test log's tail only
        if result is None or result["worker_outcome"] != "skipped":
            slim.append(json.dumps([item, result]))      # filtered mutants: counted only
        counts["generated"] += 1
        if result is None:
            counts["pending"] += 1
            continue
        if result["worker_outcome"] == "skipped":
            counts["skipped"] += 1
            counts["sampled_out"] += result.get("output") == "Filtered sample"
        elif result["test_outcome"] == "killed":
            counts["killed"] += 1
            counts["timeout"] += result.get("output") == "timeout"
        elif result["test_outcome"] == "survived":
            counts["survived"] += 1
        else:
            counts["incompetent"] += 1
    REPORTS.mkdir(exist_ok=True)
    report_name = report_name or name
    (REPORTS / f"{report_name}.txt").write_text(report)
    (REPORTS / f"{report_name}.jsonl").write_text("\n".join(slim) + "\n")
    tested = counts["generated"] - counts["skipped"] - counts["pending"]
    eligible = counts["generated"] - counts["skipped"] + counts["sampled_out"]
    print(f"{report_name}: {tested} mutants tested (of {eligible} after the operator/line filters; "
          f"{counts['generated']} generated; {counts['pending']} not run), "
          f"{counts['killed']} killed ({counts['timeout']} by timeout), "
          f"{counts['survived']} survived, {counts['incompetent']} incompetent", flush=True)
    return counts


def main(argv: list[str]) -> int:
    if argv[:1] == ["--summarise"]:
        summarise(argv[1], Path(argv[2]))
        return 0
    sample, seed = None, 0
    if argv[:1] == ["--sample"]:
        sample, argv = int(argv[1]), argv[2:]
    if argv[:1] == ["--seed"]:
        seed, argv = int(argv[1]), argv[2:]
    names = argv or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        print(f"error: unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}",
              file=sys.stderr)
        return 2
    for name in names:
        run(name, sample, seed)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
