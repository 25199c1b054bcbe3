"""Shared test inputs: a simulated system on a rook lattice, written as the files a user brings.

The command-line tests all need the same thing — a city CSV (``d.csv``, one row per city) and a
GAL neighbour file (``w.gal``) of a small rook lattice with data drawn from the structural
simulator — so it is written here once. ``conftest.py`` offers it as the ``lattice_files``
fixture; module-scoped fixtures call :func:`write_lattice_case` with their own folder.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass
from pathlib import Path

from data_prep.synthetic.simulate import SimulatedSystem, lattice_weights, simulate_system
from data_prep.weights import SpatialWeights, write_gal

DATA_NAME, GAL_NAME = "d.csv", "w.gal"


@dataclass(frozen=True)
class LatticeCase:
    """The written files, the simulated system they hold and its weights."""

    folder: Path
    sim: SimulatedSystem
    weights: SpatialWeights

    @property
    def data(self) -> Path:
        return self.folder / DATA_NAME

    @property
    def gal(self) -> Path:
        return self.folder / GAL_NAME

    @property
    def formulas(self) -> list[str]:
        return self.sim.formulas

    def arguments(self, formulas=None) -> list[str]:
        """``--equation`` per formula (the simulated system's by default), ``--data``, ``--weights``."""
        equations = self.formulas if formulas is None else formulas
        return [a for f in equations for a in ("--equation", f)] + [
            "--data", str(self.data), "--weights", str(self.gal)]


def write_city_files(folder: Path, data, weights, name: str = DATA_NAME) -> tuple[Path, Path]:
    """``data`` (a frame with a ``city`` column) as ``folder/<name>`` (``d.csv``) and ``weights``
    as ``folder/w.gal``; returns both paths."""
    csv, gal = Path(folder) / name, Path(folder) / GAL_NAME
    data.to_csv(csv, index=False)
    write_gal(weights, gal)
    return csv, gal


def write_lattice_case(folder: Path, side: int, seed: int, **simulate_options) -> LatticeCase:
    """A ``side`` × ``side`` rook lattice, :func:`simulate_system` on it with ``seed`` (and
    ``simulate_options``), written to ``folder`` as ``d.csv`` and ``w.gal``."""
    weights = lattice_weights(side)
    sim = simulate_system(weights, seed=seed, **simulate_options)
    write_city_files(folder, sim.data, weights)
    return LatticeCase(Path(folder), sim, weights)


def write_demo_files(folder: Path, demo, output=None) -> Path:
    """The embedded demo's tables as a user's files in ``folder``: ``E.csv`` (employment),
    ``C.csv`` (covariates), ``K.csv`` (city attributes), ``W.gal`` (its island-linked queen
    weights) and, with ``output`` (an industry output table), ``O.csv``."""
    folder = Path(folder)
    demo.employment.to_csv(folder / "E.csv", index=False)
    demo.covariates.to_csv(folder / "C.csv", index=False)
    demo.cities.to_csv(folder / "K.csv", index=False)
    if output is not None:
        output.to_csv(folder / "O.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the demo's island links are announced; known here
        write_gal(demo.weights(), folder / "W.gal")
    return folder


def run_main(capsys, program: str, *args) -> tuple[int, str, str]:
    """``models.cli.<program>.main(args)`` in this process (the command's code path without a
    fresh interpreter): its exit status, stdout and stderr."""
    code = importlib.import_module(f"models.cli.{program}").main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err
