"""``run_study``: the whole study (docs/contracts.md contract 4) from Python, as ``scripts/run_all.py``.

Stages in the paper's order — data (indices, regimes, weights, spectrum), Table 1 and Moran's I,
the systems of Tables 2–3 by GS3SLS, 3SLS and the posterior with their impacts and LOO
comparisons, Tables 4–10 — into a folder replaced only when every stage succeeded, with
``report.md`` and ``manifest.json`` (``models.study.run``). :func:`plan_study` loads the data
and plans the study without estimating or writing anything (``run_all.py --dry-run``).
"""

from __future__ import annotations

from pathlib import Path

from models.study.config import load_config
from models.study.plan import StudyPlan
from models.study.run import prepare_study, run_study as run_stages


def plan_study(config: str | Path | None = None, quick: bool = False) -> StudyPlan:
    """The plan of the study ``config`` (None: the packaged demo, the embedded synthetic data):
    every table with its systems and which are skipped and why (``.text()``). Every problem
    of the config or the plan is one line of the ``InputError`` raised."""
    return prepare_study(load_config(config, quick), progress=False).plan


def run_study(config: str | Path | None = None, out: str | Path = "results",
              quick: bool = False, *, progress: bool | None = None) -> list[Path]:
    """Run the study of ``config`` (a TOML file; None: the packaged demo) into ``out``;
    returns the files written.

    ``quick``: 2 chains × 200 draws for Tables 2–3 and Tables 4–10 frequentist only.
    ``progress`` (default: not ``quick``) shows the samplers' progress bars. Problems found
    while planning (every config key to change, one a line) raise ``InputError`` before any
    folder is made; ``out`` is replaced only when the whole study has succeeded.
    """
    cfg = load_config(config, quick)
    show = not quick if progress is None else bool(progress)
    study = prepare_study(cfg, progress=show)
    return run_stages(cfg, Path(out), progress=show, study=study)
