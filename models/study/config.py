"""The study configuration (docs/contracts.md contract 4): one TOML file, validated before any work.

Without a ``[data]`` table the embedded demo runs with the demo's defaults (the paper's controls,
its historical instruments, factors and groups, the paper-specification diagnostic;
``models/study/configs/demo.toml``). With a ``[data]`` table nothing of the demo leaks in: ``controls`` is
required and every optional input (instruments, factors, groups, the paper-specification
diagnostic) is off unless configured. Validation (pydantic, one model per TOML table) is
complete before anything is read or written and reports every problem at once, one a line, as
``<file>: [table] key: what is wrong``: an unknown section or key, a value of the wrong type, out
of range or not among the allowed values, a data file that does not exist. Variables named in
``[study]`` and the identification of every system are checked against the data by the study
plan (``models.study.plan``), still before any result is written.

    [data]                            # absent: the embedded synthetic demo
    employment = "employment.csv"     # city, year, industry, employment
    weights = "map.geojson"           # or a .gal file
    covariates = "covariates.csv"     # city, year, ...  (a GDP column enables ER_GDP)
    cities = "cities.csv"             # city, ...        (tier, coastal, capital, region, ...)
    output = "output.csv"             # city, year, industry, output (enables PSS_output)
    island_policy = "refuse"          # refuse | nearest | keep
    winsorize = 0.01                  # share clipped at each tail, or [lower, upper]
    fill_policy = "refuse"            # refuse | zero | drop
    er_threshold = 0.001              # flag |counterfactual change| <= threshold x employment
    er_benchmark = "industry_mix"     # ER's counterfactual: industry_mix | national

    [study]
    controls = ["Gov", "PGDP", ...]   # the paper's Table 1 controls
    agglomeration = ["PSS", "PSD"]
    joint = true                      # headline: one system of ER with every agglomeration index
    exclude = { ER = ["Fdi"], PSS = ["Gov"] }   # controls left out of an equation (identification)
    paper_specification = true         # also fit the paper's identical-controls systems (diagnostic)
    instruments = ["rail_1930s", "popden_1984"]   # enables Table 6 (and the 3SLS instruments)
    factors = ["LnHsh", ...]          # Table 10 regressors (enables Table 10)
    groups = ["tier", "coastal"]      # Table 10 groups
    mundlak = false                   # Table 10 Bayes: add the factors' city means (Mundlak)
    tables = [4, 5, 6, 7, 8, 9, 10]   # which of the paper's Tables 4-10 to run (default: all
                                      # that the data support)

    [bayes]
    draws = 1000
    tune = 1000
    chains = 4
    seed = 1
    sampler = "nutpie"                # or "pymc"
    target_accept = 0.9               # NUTS target acceptance, 0 < x < 1 (sampler default)
    max_treedepth = 10                # NUTS tree depth, at least 1 (sampler default)

    [priors]                          # prior scales: the names of models.bayes.system's
    beta_sigma = 1.0                  # DEFAULT_PRIORS, each a positive number
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from importlib import resources
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StringConstraints,
                      ValidationError, ValidationInfo, create_model, field_validator)

from data_prep.errors import InputError

PAPER_CONTROLS = ("Gov", "PGDP", "Fdi", "Fix_cap", "RnD", "HumCap", "Rd", "Popden", "Market")
HISTORICAL_INSTRUMENTS = ("rail_1930s", "popden_1984")
FACTORS = ("LnHsh", "LnFdi", "LnMar", "Tra", "Den", "LnCin", "LnTec", "LnPro")
GROUPS = ("tier", "coastal")
EXTRA_TABLES = (4, 5, 6, 7, 8, 9, 10)
DATA_FILES = ("employment", "weights", "covariates", "cities", "output")
# Package data (pyproject.toml), so the demo config is found outside a checkout too.
DEFAULT_CONFIG = Path(str(resources.files("models.study") / "configs" / "demo.toml"))
QUICK = {"draws": 200, "tune": 200, "chains": 2}


@dataclass
class StudyConfig:
    """What to run: the data source, the systems' variables and the sampler settings.

    The field defaults are the embedded demo's; :func:`load_config` switches every optional
    input off for a config with a ``[data]`` table.
    """

    data: dict = field(default_factory=dict)
    controls: list[str] = field(default_factory=lambda: list(PAPER_CONTROLS))
    agglomeration: list[str] = field(default_factory=lambda: ["PSS", "PSD"])
    joint: bool = True
    exclude: dict[str, list[str]] = field(default_factory=dict)
    paper_specification: bool = True
    instruments: list[str] = field(default_factory=lambda: list(HISTORICAL_INSTRUMENTS))
    factors: list[str] = field(default_factory=lambda: list(FACTORS))
    groups: list[str] = field(default_factory=lambda: list(GROUPS))
    mundlak: bool = False
    tables: list[int] = field(default_factory=lambda: list(EXTRA_TABLES))
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 1
    sampler: str = "nutpie"
    target_accept: float | None = None
    max_treedepth: int | None = None
    priors: dict[str, float] = field(default_factory=dict)
    quick: bool = False
    source: str = "defaults"

    def excluded(self, dependent: str) -> list[str]:
        """Controls left out of the equation of ``dependent``."""
        return list(self.exclude.get(dependent, []))

    def digest(self) -> str:
        """SHA-256 of the settings (not of where they came from): the manifest's config hash."""
        settings = {k: v for k, v in asdict(self).items() if k != "source"}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- the TOML tables

def _distinct(names: list[str]) -> list[str]:
    dupes = sorted({v for v in names if names.count(v) > 1})
    if dupes:
        raise ValueError(f"repeats {', '.join(dupes)}")
    return names


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Names = Annotated[list[Name], AfterValidator(_distinct)]
NAMES = "a list of names, e.g. [\"Gov\", \"Fdi\"]"


def _names(required: bool = False, default: Any = None) -> Any:
    return Field(default, description=NAMES, min_length=1 if required else None)


class _Table(BaseModel):
    # strict: TOML already types its values, so 1 is not true and "3" is not a number
    model_config = ConfigDict(extra="forbid", strict=True)


class DataTable(_Table):
    employment: str | None = Field(None, description="a file name")
    weights: str | None = Field(None, description="a file name")
    covariates: str | None = Field(None, description="a file name")
    cities: str | None = Field(None, description="a file name")
    output: str | None = Field(None, description="a file name")
    island_policy: Literal["refuse", "nearest", "keep"] = "refuse"
    winsorize: Any = Field(0.01, description="a number")
    fill_policy: Literal["refuse", "zero", "drop"] = "refuse"
    er_threshold: float = Field(0.001, ge=0.0, description="a number")
    er_benchmark: Literal["industry_mix", "national"] = "industry_mix"

    @field_validator(*DATA_FILES)
    @classmethod
    def _exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A data file, relative to the config's folder, must exist."""
        if value is None:
            return None
        if not value.strip():
            raise ValueError("must be a file name (got '')")
        path = (info.context["base"] / value).resolve()
        if not path.is_file():
            raise ValueError(f"{info.field_name} = {value!r}: file {path} not found")
        return str(path)

    @field_validator("winsorize")
    @classmethod
    def _shares(cls, value: Any) -> float | list[float]:
        """One share clipped at each tail in [0, 0.5], or [lower, upper] quantiles."""
        def share(v: Any, lo: float, hi: float) -> float:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"must be a number (got {v!r})")
            if not lo <= v <= hi:
                raise ValueError(f"must be between {lo} and {hi} (got {v})")
            return float(v)
        if isinstance(value, list):
            if len(value) != 2:
                raise ValueError("as a list needs two shares [lower, upper]")
            return [share(value[0], 0.0, 0.5), share(value[1], 0.5, 1.0)]
        return share(value, 0.0, 0.5)


class StudyTable(_Table):
    controls: Names | None = _names(required=True)
    agglomeration: Names = _names(required=True, default=["PSS", "PSD"])
    joint: bool = Field(True, description="true or false")
    exclude: dict[str, Names] = Field(
        {}, description="a table of dependent = [controls], e.g. exclude = { ER = [\"Fdi\"] }")
    paper_specification: bool | None = Field(None, description="true or false")
    instruments: Names | None = _names()
    factors: Names | None = _names()
    groups: Names | None = _names()
    mundlak: bool = Field(False, description="true or false")
    tables: list[int] | None = Field(None, description="a list of table numbers")
    # the first config format, kept so older files still run
    exclude_er: Names | None = _names()
    exclude_agglomeration: Names | None = _names()

    @field_validator("tables")
    @classmethod
    def _paper_tables(cls, value: list[int] | None) -> list[int] | None:
        if value is None:
            return None
        bad = sorted(set(value) - set(EXTRA_TABLES))
        if bad:
            raise ValueError(f"may name tables 4 to 10 only (got {bad})")
        return sorted(set(value))


class BayesTable(_Table):
    draws: int = Field(1000, ge=1, description="a whole number")
    tune: int = Field(1000, ge=0, description="a whole number")
    chains: int = Field(4, ge=1, description="a whole number")
    seed: int = Field(1, ge=0, description="a whole number")
    sampler: Literal["nutpie", "pymc"] = "nutpie"
    target_accept: float | None = Field(None, gt=0.0, lt=1.0, description="a number")
    max_treedepth: int | None = Field(None, ge=1, description="a whole number")


def _priors_table() -> type[_Table]:
    """One optional positive number per prior scale of the Bayesian system (DEFAULT_PRIORS)."""
    from models.bayes.system import DEFAULT_PRIORS  # lazy: PyMC only when [priors] is given

    fields = {name: (float | None, Field(None, gt=0.0, description="a number"))
              for name in DEFAULT_PRIORS}
    return create_model("PriorsTable", __base__=_Table, **fields)


TABLES = {"data": DataTable, "study": StudyTable, "bayes": BayesTable, "priors": _priors_table}


# ----------------------------------------------------------------------------- error lines

def _what(err: dict, table: str, model: type[_Table]) -> str:
    """pydantic's error as the config's words: what the value must be, with what it got."""
    kind, ctx, got = err["type"], err.get("ctx", {}), err.get("input")
    bound = {"greater_than_equal": "at least {ge}", "greater_than": "more than {gt}",
             "less_than": "less than {lt}", "less_than_equal": "at most {le}"}
    if kind in bound:
        return f"must be {bound[kind].format(**ctx)} (got {got!r})"
    if kind == "extra_forbidden":
        return (f"unknown key(s) {err['loc'][0]} in [{table}]; known: "
                f"{', '.join(model.model_fields)}")
    if kind == "literal_error":
        allowed = ctx["expected"].replace("'", "").replace(" or ", ", ")
        return f"must be one of {allowed} (got {got!r})"
    if kind == "too_short":
        return "must name at least one variable"
    if kind == "value_error":
        return str(ctx["error"])
    described = model.model_fields[str(err["loc"][0])].description or "of another type"
    return f"must be {described} (got {got!r})"


def _key(err: dict) -> str:
    # list positions are dropped: the key is what the user edits (exclude.ER, not exclude.ER.0)
    return ".".join(str(p) for p in err["loc"] if not isinstance(p, int))


def _validate(raw: dict, where: str, base: Path) -> tuple[dict[str, _Table], list[str]]:
    """Every table through its model; every problem as ``<file>: [table] key: what``."""
    models, problems = {}, []
    for name, table in raw.items():
        if name not in TABLES:
            problems.append(f"{where}: [{name}]: unknown section [{name}]; expected "
                            f"{', '.join(TABLES)}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{where}: [{name}]: must be a [{name}] table")
            continue
        model = TABLES[name] if isinstance(TABLES[name], type) else TABLES[name]()
        try:
            models[name] = model.model_validate(table, context={"base": base})
        except ValidationError as err:
            problems += [f"{where}: [{name}] {_key(e)}: {_what(e, name, model)}"
                         for e in err.errors(include_url=False)]
    return models, problems


def _cross_checks(data: dict, study: StudyTable, where: str) -> list[str]:
    """Problems between keys, once every key is valid on its own."""
    problems = []
    if data and "employment" not in data:
        problems.append(f"{where}: [data] employment: missing; [data] gives "
                        f"{', '.join(sorted(data))} but no employment table (leave [data] out "
                        f"to run the embedded demo)")
    if "employment" in data and "weights" not in data:
        problems.append(f"{where}: [data] weights: missing; [data] gives employment but no "
                        f"weights (a .gal neighbour list or a polygon file)")
    if data and study.controls is None:
        problems.append(f"{where}: [study] controls: missing; a study of your own data names "
                        f"its controls, e.g. controls = [\"Gov\", \"Fdi\"]")
    if "ER" in study.agglomeration:
        problems.append(f"{where}: [study] agglomeration: names ER, the resilience outcome")
    exclude = _exclusions(study)
    unknown = sorted(set(exclude) - {"ER", *study.agglomeration})
    if unknown:
        problems.append(f"{where}: [study] exclude: exclude names {', '.join(unknown)}, which "
                        f"is not ER nor an agglomeration index "
                        f"({', '.join(study.agglomeration)})")
    controls = study.controls if study.controls is not None else PAPER_CONTROLS
    for dep, dropped in exclude.items():
        stray = sorted(set(dropped) - set(controls))
        if stray:
            problems.append(f"{where}: [study] exclude.{dep}: exclude.{dep} names "
                            f"{', '.join(stray)}, which is not among the controls")
    return problems


def _exclusions(study: StudyTable) -> dict[str, list[str]]:
    """``exclude``, with the first format's exclude_er / exclude_agglomeration folded in."""
    exclude = {dep: list(v) for dep, v in study.exclude.items()}
    if study.exclude_er is not None:
        exclude.setdefault("ER", list(study.exclude_er))
    if study.exclude_agglomeration is not None:
        for agg in study.agglomeration:
            exclude.setdefault(agg, list(study.exclude_agglomeration))
    return exclude


def _settings(study: StudyTable, demo: bool) -> dict[str, Any]:
    """The [study] settings; an unset optional input is the demo's for the demo, else off."""
    def chosen(value, demo_value):
        return list(value) if value is not None else list(demo_value) if demo else []
    paper_spec = study.paper_specification
    return dict(controls=chosen(study.controls, PAPER_CONTROLS),
                agglomeration=list(study.agglomeration), joint=study.joint,
                exclude=_exclusions(study),
                paper_specification=demo if paper_spec is None else paper_spec,
                instruments=chosen(study.instruments, HISTORICAL_INSTRUMENTS),
                factors=chosen(study.factors, FACTORS), groups=chosen(study.groups, GROUPS),
                mundlak=study.mundlak, tables=list(study.tables or EXTRA_TABLES))


def _read(path: Path) -> dict[str, Any]:
    where = str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{where}: config file not found") from None
    except IsADirectoryError:
        raise InputError(f"{where}: is a folder, not a config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{where}: not valid TOML ({err})") from None


def load_config(path: Path | str | None = None, quick: bool = False) -> StudyConfig:
    """Read and validate a study config; ``None`` reads the demo's ``models/study/configs/demo.toml``.

    ``quick`` caps the sampler at 2 chains × 200 draws (200 tuning steps) and makes the
    robustness Tables 4–10 frequentist only (the posterior columns say so), for a fast look.
    Raises one :class:`InputError` listing every problem, one a line, each naming the file,
    the table and the key.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    where = str(path)
    models, problems = _validate(_read(path), where, path.resolve().parent)
    if problems:
        raise InputError("\n".join(problems))
    data = models["data"].model_dump(exclude_unset=True) if "data" in models else {}
    study = models.get("study", StudyTable())
    problems = _cross_checks(data, study, where)
    if problems:
        raise InputError("\n".join(problems))
    bayes = models.get("bayes", BayesTable())
    priors = models["priors"].model_dump(exclude_none=True) if "priors" in models else {}
    cfg = StudyConfig(data=data, **_settings(study, demo=not data), **bayes.model_dump(),
                      priors=priors, source=where, quick=quick)
    if quick:
        cfg.draws, cfg.tune = min(cfg.draws, QUICK["draws"]), min(cfg.tune, QUICK["tune"])
        cfg.chains = min(cfg.chains, QUICK["chains"])
    return cfg
