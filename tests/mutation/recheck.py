"""Re-run the surviving mutants of a finished session against the current tests.

Usage: ``python tests/mutation/recheck.py NAME [COMMIT] [-- PYTEST ARGS]`` — reads ``tests/mutation/reports/NAME.jsonl``
(written by run.py), applies each survivor in a scratch copy of the tracked files with
``cosmic-ray apply``, runs the module's test command, and prints which survivors the current tests
now kill; writes ``tests/mutation/reports/NAME.recheck.txt``. With COMMIT, the mutated module is
taken from that commit (the one the session ran on, when the module has changed since: cosmic-ray
locates a mutant by its operator's occurrence in the file), the tests from the working tree;
arguments after ``--`` are added to the test command (e.g. ``--deselect`` a test written for a
later version of the module). The unmutated copy must pass the tests first, or nothing is
rechecked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import BIN, REPORTS, TARGETS, _copy_tree  # noqa: E402


def main(name: str, commit: str | None = None, extra: list[str] | None = None) -> int:
    target = TARGETS[name.split("-seed")[0]]
    survivors = []
    for line in (REPORTS / f"{name}.jsonl").read_text().splitlines():
        item, result = json.loads(line)
        if result and result["worker_outcome"] != "skipped" and \
                result["test_outcome"] == "survived":
            survivors.append(item["mutations"][0])
    lines = []
    with tempfile.TemporaryDirectory(prefix=f"recheck-{name}-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        env = {**os.environ, "PYTHONPATH": str(work)}
        module = work / target["module"]
        if commit:
            module.write_text(subprocess.run(["git", "show", f"{commit}:{target['module']}"],
                                             cwd=Path(__file__).resolve().parents[2], check=True,
                                             capture_output=True, text=True).stdout)
        original = module.read_text()
        command = [str(BIN / "python"), "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                   *target["tests"], *(extra or [])]
        baseline = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        if baseline.returncode != 0:
            print("the unmutated module fails the tests; nothing rechecked:\n"
                  + baseline.stdout[-1500:], file=sys.stderr)
            return 1
        for m in survivors:
            subprocess.run([str(BIN / "cosmic-ray"), "apply", target["module"],
                            m["operator_name"], str(m["occurrence"])], cwd=work, env=env,
                           capture_output=True, text=True, check=True)
            try:
                proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True,
                                      timeout=target["timeout"])
                killed = proc.returncode != 0
            except subprocess.TimeoutExpired:
                killed = True
            finally:
                module.write_text(original)
            where = f"{target['module']}:{m['start_pos'][0]} {m['operator_name']} #{m['occurrence']}"
            lines.append(f"{'KILLED  ' if killed else 'SURVIVED'} {where}")
            print(lines[-1], flush=True)
    (REPORTS / f"{name}.recheck.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    extra = args[args.index("--") + 1:] if "--" in args else []
    args = args[: args.index("--")] if "--" in args else args
    sys.exit(main(*args[:2], extra=extra))
