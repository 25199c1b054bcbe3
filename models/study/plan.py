"""The study plan: every table, its systems and their identification, before any estimation.

From the validated config and the loaded data (indices, weights and spectrum built; nothing
estimated), :func:`build_plan` decides for each of Tables 1–10 whether it runs and, if not, the
one input that would enable it; lists the systems each fits (the formulas come from the
functions the stages use: ``models.study.headline.joint_formulas`` / ``system_formulas``,
``models.study.tables.robustness.pair_formulas`` and ``alternative_systems``,
``models.study.tables.regimes.regime_formulas``); and checks every system's order and rank conditions
with the instruments its estimators use (spatial lags of X counted; ``models.spec.system.build_system``
→ ``models.spec.identification.check_identification``, docs/method.md §2). Every problem is collected,
each naming the config key to change, so that one run lists them all.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from models.spec.system import build_system, parse_system
from models.study.config import StudyConfig
from models.study.headline import joint_formulas, plain_formulas, system_formulas
from models.study.tables.regimes import regime_formulas, regime_names
from models.study.tables.robustness import alternative_systems, pair_formulas

TITLES = {1: "descriptive statistics and Moran's I", 4: "alternative measures",
          5: "without capitals; year × region effects", 6: "historical instruments",
          7: "regimes of the first index", 8: "regimes of the second index",
          9: "quadratic model", 10: "censored factor model"}


@dataclass
class SystemPlan:
    """One system a table fits: its GS3SLS/posterior formulas and, if fitted, its 3SLS ones."""

    label: str
    formulas: list[str]
    plain: list[str] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class TablePlan:
    """A table: runs, or is skipped with the reason naming the input that would enable it."""

    number: int
    title: str
    variables: list[str] = field(default_factory=list)
    systems: list[SystemPlan] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def runs(self) -> bool:
        return self.skipped is None

    def skip_line(self) -> str:
        return f"Table {self.number} skipped: {self.skipped}"


@dataclass
class StudyPlan:
    """Tables 1–10 (Tables 2 and 3 share the headline system), the paper-specification
    diagnostics by index, and every problem found."""

    source: str
    tables: dict[int, TablePlan]
    paper: dict[str, SystemPlan | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def runs(self, number: int) -> bool:
        return number in self.tables and self.tables[number].runs

    def check(self) -> None:
        """One InputError listing every problem, one a line."""
        if self.problems:
            raise InputError("\n".join(self.problems))

    def text(self) -> str:
        """The plan in words: which tables, which fits, which are skipped and why."""
        lines = [f"Study plan ({self.source}):"]
        for number, table in sorted(self.tables.items()):
            if not table.runs:
                lines.append(f"  {table.skip_line()}")
                continue
            lines.append(f"  Table {number}: {table.title}; variables "
                         f"{', '.join(table.variables)}")
            for system in table.systems:
                how = "GS3SLS, 3SLS and posterior" if system.plain else "GS3SLS and posterior"
                lines.append(f"    {system.label} ({how}): " + "; ".join(system.formulas))
                lines += [f"      note: {n}" for n in system.notes]
            lines += [f"    note: {n}" for n in table.notes]
        lines.append("Problems:" if self.problems else "Problems: none")
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- checks

def headline_formulas(cfg: StudyConfig) -> dict[str, list[str]]:
    """The identified headline system(s): one joint system, or one per index."""
    if cfg.joint:
        return {"headline": joint_formulas(cfg.agglomeration, cfg.controls,
                                           exclude=cfg.exclude)}
    return {f"headline_{a.lower()}": joint_formulas([a], cfg.controls, exclude=cfg.exclude)
            for a in cfg.agglomeration}


def identification_error(formulas: Sequence[str], frame: pd.DataFrame, weights=None,
                         instruments: Sequence[str] = ()) -> str | None:
    """Why ``formulas`` cannot be estimated on ``frame`` (order or rank condition, with the
    spatial lags of X as instruments when ``weights`` are given), or None."""
    try:
        build_system(parse_system(list(formulas), instruments=list(instruments)), frame,
                     weights)
    except InputError as err:
        # the estimators' advice names command-line flags; the plan names config keys
        return str(err).split("; add ")[0]
    return None


def _dependent_key(reason: str, indices: Sequence[str]) -> str:
    """The exclude key of the equation an identification error names (A_H, A_L → A)."""
    dep = reason.removeprefix("equation ").split(":")[0] if reason.startswith("equation ") else ""
    for index in indices:
        if dep in (f"{index}_H", f"{index}_L"):
            return index
    return dep or "ER"


def _unidentified(cfg: StudyConfig, what: str, reason: str, plain: bool) -> str:
    key = f"[study] exclude.{_dependent_key(reason, cfg.agglomeration)}"
    hint = ("leave out of this equation more controls that another equation keeps"
            + (", or set [study] instruments" if plain else ""))
    return f"{cfg.source}: {key}: {what}: {reason}; {hint}"


def _missing(cfg: StudyConfig, key: str, names: Sequence[str], columns: Sequence[str]
             ) -> list[str]:
    """A config key's names that are not variables of the data, with close spellings."""
    problems = []
    for name in names:
        if name in columns:
            continue
        close = difflib.get_close_matches(name, list(columns), n=1)
        problems.append(f"{cfg.source}: [study] {key}: {name} is not in the data"
                        + (f" (did you mean {close[0]}?)" if close else ""))
    return problems


def _variable_problems(cfg: StudyConfig, ds) -> list[str]:
    columns = [str(v) for v in ds.data_vars]
    problems = (_missing(cfg, "agglomeration", cfg.agglomeration, columns)
                + _missing(cfg, "controls", cfg.controls, columns)
                + _missing(cfg, "instruments", cfg.instruments, columns))
    if 10 in cfg.tables:
        problems += (_missing(cfg, "factors", cfg.factors, columns)
                     + _missing(cfg, "groups", cfg.groups, columns))
        for group in (g for g in cfg.groups if g in ds):
            values = np.unique(np.asarray(ds[group].values).astype(str))
            if values.size < 2:
                problems.append(f"{cfg.source}: [study] groups: {group} has a single value "
                                f"({values[0]}) in the data; drop it from groups")
    return problems


def _present(cfg: StudyConfig, ds) -> StudyConfig:
    """The config without the names the data do not hold (each already a problem)."""
    def kept(names: Sequence[str]) -> list[str]:
        return [v for v in names if v in ds]
    return replace(cfg, controls=kept(cfg.controls), agglomeration=kept(cfg.agglomeration),
                   instruments=kept(cfg.instruments),
                   exclude={dep: kept(v) for dep, v in cfg.exclude.items()})


# ----------------------------------------------------------------------------- the tables

def _systems_tables(cfg: StudyConfig, frame, weights, plan: StudyPlan) -> None:
    """Tables 2–3 (one per index): the headline system(s) and the paper's diagnostic pairs."""
    headline = []
    for name, formulas in headline_formulas(cfg).items():
        system = SystemPlan(name, formulas, plain_formulas(formulas))
        for spatial in (True, False):
            reason = identification_error(formulas if spatial else system.plain, frame,
                                          weights if spatial else None,
                                          () if spatial else cfg.instruments)
            if reason:
                plan.problems.append(_unidentified(
                    cfg, f"Tables 2–3 {name} system ({'GS3SLS' if spatial else '3SLS'})",
                    reason, plain=not spatial))
        headline.append(system)
    for k, index in enumerate(cfg.agglomeration, start=2):
        systems = [h for h in headline if h.label == "headline" or h.label.endswith(
            index.lower())]
        if cfg.paper_specification:
            plan.paper[index] = _paper_system(cfg, index, frame, weights, system_formulas)
            systems.append(plan.paper[index])
        plan.tables[k] = TablePlan(k, f"ER and {index}: the spatial simultaneous system",
                                   ["ER", *cfg.agglomeration, *cfg.controls,
                                    *cfg.instruments], systems)


def _paper_system(cfg: StudyConfig, index: str, frame, weights, system_formulas) -> SystemPlan:
    """The paper's same-controls pair, a diagnostic: what cannot be identified is a note."""
    formulas = system_formulas(index, cfg.controls)
    system = SystemPlan(f"paper specification ER <-> {index}", formulas,
                        plain_formulas(formulas))
    reason = identification_error(formulas, frame, weights)
    if reason:
        system.notes.append(f"the paper specification ER ↔ {index} cannot be identified "
                            f"({reason}): not fitted")
        return system
    reason = identification_error(system.plain, frame, instruments=cfg.instruments)
    if reason:
        system.plain = None
        system.notes.append(f"the paper specification ER ↔ {index} has no 3SLS ({reason}: its "
                            f"identical controls leave the non-spatial system without excluded "
                            f"instruments; set [study] instruments to add one): GS3SLS and "
                            f"posterior only")
    return system


def _pair_systems(cfg: StudyConfig, frame, weights, indices, what: str, plan: StudyPlan
                  ) -> list[SystemPlan]:
    """The ER ↔ index pairs of Tables 4–6 with the headline's exclusions (GS3SLS only)."""
    systems = []
    for index in indices:
        formulas = pair_formulas(index, cfg.controls, cfg.exclude)
        reason = identification_error(formulas, frame, weights)
        if reason:
            plan.problems.append(_unidentified(cfg, f"{what}, ER ↔ {index}", reason, False))
        systems.append(SystemPlan(f"ER <-> {index}", formulas))
    return systems


def _table4(cfg: StudyConfig, frame, weights, plan: StudyPlan) -> TablePlan:
    table = TablePlan(4, TITLES[4])
    enable = {"ER_GDP": "a GDP column in [data] covariates",
              "PSS_output": "an output table ([data] output)"}
    fitted = []
    for label, er, index, column in alternative_systems():
        absent = [c for c in (er, column) if c not in frame.columns]
        if absent:
            table.notes.append(f"{label} not fitted: no {', '.join(absent)} ("
                               + "; ".join(enable.get(c, "not in the data") for c in absent)
                               + " would enable it)")
        else:
            fitted.append(index)
            table.variables += [v for v in (er, column) if v not in table.variables]
    if not fitted:
        table.skipped = ("no alternative measure in the data; a GDP column in [data] "
                         "covariates or [data] output would enable it")
        return table
    table.systems = _pair_systems(cfg, frame, weights, sorted(set(fitted)), "Table 4", plan)
    return table


def _table5(cfg: StudyConfig, ds, frame, weights, plan: StudyPlan) -> TablePlan:
    table = TablePlan(5, TITLES[5])
    parts = {"capital": "without provincial capitals", "region": "year × region effects"}
    present = [c for c in parts if c in frame.columns or c in ds]
    for column in sorted(set(parts) - set(present)):
        table.notes.append(f"{parts[column]} not fitted: no {column} column; add it to "
                           f"[data] cities")
    if not present:
        table.skipped = "no capital or region column; add them to [data] cities"
        return table
    table.variables = present
    table.systems = _pair_systems(cfg, frame, weights, cfg.agglomeration, "Table 5", plan)
    return table


def _table6(cfg: StudyConfig, frame, weights, plan: StudyPlan) -> TablePlan:
    table = TablePlan(6, TITLES[6], list(cfg.instruments))
    if not cfg.instruments:
        table.skipped = "no instruments; set [study] instruments"
        return table
    table.systems = _pair_systems(cfg, frame, weights, cfg.agglomeration, "Table 6", plan)
    return table


def _regime_table(cfg: StudyConfig, k: int, frame, weights, plan: StudyPlan) -> TablePlan:
    table = TablePlan(k, TITLES[k])
    position = k - 7
    if position >= len(cfg.agglomeration):
        table.skipped = "one agglomeration index; name a second in [study] agglomeration"
        return table
    index = cfg.agglomeration[position]
    high, low = regime_names(index)
    if high not in frame.columns or low not in frame.columns:
        table.skipped = f"the data have no regimes {high}, {low} of {index}"
        return table
    exclude = {"ER": cfg.excluded("ER"), high: cfg.excluded(index), low: cfg.excluded(index)}
    system = SystemPlan(f"ER <-> {high}, {low}", regime_formulas(index, cfg.controls, exclude),
                        regime_formulas(index, cfg.controls, exclude, spatial=False))
    for spatial in (True, False):
        reason = identification_error(system.formulas if spatial else system.plain, frame,
                                      weights if spatial else None,
                                      () if spatial else cfg.instruments)
        if reason:
            plan.problems.append(_unidentified(
                cfg, f"Table {k} {index} regimes ({'GS3SLS' if spatial else '3SLS'})", reason,
                plain=not spatial))
    table.title, table.variables, table.systems = (f"ER and the high/low regimes of {index}",
                                                   [high, low], [system])
    return table


def _table10(cfg: StudyConfig, ds) -> TablePlan:
    outcome = f"Interact_{cfg.agglomeration[0]}"
    table = TablePlan(10, TITLES[10], [outcome, *cfg.factors, *cfg.groups])
    if not cfg.factors:
        table.skipped = "no factors; set [study] factors"
    elif outcome not in ds:
        table.skipped = f"the data have no {outcome}"
    return table


def build_plan(cfg: StudyConfig, ds, frame: pd.DataFrame, weights) -> StudyPlan:
    """The plan of the whole study on the loaded data; ``plan.problems`` lists every problem.

    ``ds``: the study Dataset; ``frame``: its cross-section (``data_prep.dataset.cross_section``);
    ``weights``: the SpatialWeights. A name that is not in the data is a problem, and the
    systems are then planned without it, so that one run also lists the problems it hides.
    """
    plan = StudyPlan(cfg.source, {1: TablePlan(1, TITLES[1],
                                               ["ER", *cfg.agglomeration, *cfg.controls])})
    plan.problems = _variable_problems(cfg, ds)
    cfg = _present(cfg, ds)
    if not cfg.agglomeration:
        return plan
    _systems_tables(cfg, frame, weights, plan)
    tables = {4: lambda: _table4(cfg, frame, weights, plan),
              5: lambda: _table5(cfg, ds, frame, weights, plan),
              6: lambda: _table6(cfg, frame, weights, plan),
              7: lambda: _regime_table(cfg, 7, frame, weights, plan),
              8: lambda: _regime_table(cfg, 8, frame, weights, plan),
              9: lambda: TablePlan(9, TITLES[9], ["ER", *cfg.agglomeration, *cfg.controls]),
              10: lambda: _table10(cfg, ds)}
    for k, make in tables.items():
        if k in cfg.tables:
            plan.tables[k] = make()
        else:
            plan.tables[k] = TablePlan(k, TITLES[k], skipped="not in [study] tables")
    return plan
