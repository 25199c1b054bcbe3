"""The study configuration (DESIGN.md contract 4): one TOML file, validated before any work.

Every key is optional; a missing one takes the default below (the embedded demo's worked
example is ``configs/demo.toml``). Validation is complete before anything is read or written:
an unknown section or key, a value of the wrong type, out of range or not among the allowed
values, or a data file that does not exist stops the run with one line naming the key and the
file. Variables named in ``[study]`` are checked against the data once it is loaded (still before
any result is written).

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
    controls = ["Gov", "PGDP", ...]   # the seed's Table 1 controls
    agglomeration = ["PSS", "PSD"]
    joint = true                      # headline: one system of ER with every agglomeration index
    exclude = { ER = ["Fdi"], PSS = ["Gov"] }   # controls left out of an equation (identification)
    seed_specification = true         # also fit the seed's identical-controls systems (diagnostic)
    instruments = ["rail_1930s", "popden_1984"]
    factors = ["LnHsh", ...]          # Table 10 regressors
    groups = ["tier", "coastal"]      # Table 10 groups
    mundlak = false                   # Table 10 Bayes: add the factors' city means (Mundlak)
    tables = [4, 5, 6, 7, 8, 9, 10]   # which of the seed's Tables 4-10 to run

    [bayes]
    draws = 1000
    tune = 1000
    chains = 4
    seed = 1
    sampler = "nutpie"                # or "pymc"
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from common.errors import InputError

SEED_CONTROLS = ("Gov", "PGDP", "Fdi", "Fix_cap", "RnD", "HumCap", "Rd", "Popden", "Market")
HISTORICAL_INSTRUMENTS = ("rail_1930s", "popden_1984")
FACTORS = ("LnHsh", "LnFdi", "LnMar", "Tra", "Den", "LnCin", "LnTec", "LnPro")
GROUPS = ("tier", "coastal")
EXTRA_TABLES = (4, 5, 6, 7, 8, 9, 10)
DATA_FILES = ("employment", "weights", "covariates", "cities", "output")
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.toml"
QUICK = {"draws": 200, "tune": 200, "chains": 2}


@dataclass
class StudyConfig:
    """What to run: the data source, the systems' variables and the sampler settings."""

    data: dict = field(default_factory=dict)
    controls: list[str] = field(default_factory=lambda: list(SEED_CONTROLS))
    agglomeration: list[str] = field(default_factory=lambda: ["PSS", "PSD"])
    joint: bool = True
    exclude: dict[str, list[str]] = field(default_factory=dict)
    seed_specification: bool = True
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
    quick: bool = False
    source: str = "defaults"

    def excluded(self, dependent: str) -> list[str]:
        """Controls left out of the equation of ``dependent``."""
        return list(self.exclude.get(dependent, []))

    def digest(self) -> str:
        """SHA-256 of the settings (not of where they came from): the manifest's config hash."""
        settings = {k: v for k, v in asdict(self).items() if k != "source"}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------- value checks

def _string_list(value, key: str, where: str, nonempty: bool = False) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"{where}: {key} must be a list of names, e.g. {key} = [\"Gov\", \"Fdi\"]"
                         f" (got {value!r})")
    if nonempty and not value:
        raise InputError(f"{where}: {key} must name at least one variable")
    dupes = sorted({v for v in value if value.count(v) > 1})
    if dupes:
        raise InputError(f"{where}: {key} repeats {', '.join(dupes)}")
    return [v.strip() for v in value]


def _integer(lo: int) -> Callable:
    def check(value, key: str, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: {key} must be a whole number (got {value!r})")
        if value < lo:
            raise InputError(f"{where}: {key} must be at least {lo} (got {value})")
        return value
    return check


def _choice(*allowed: str) -> Callable:
    def check(value, key: str, where: str) -> str:
        if value not in allowed:
            raise InputError(f"{where}: {key} must be one of {', '.join(allowed)} (got {value!r})")
        return value
    return check


def _boolean(value, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{where}: {key} must be true or false (got {value!r})")
    return value


def _number(lo: float, hi: float | None = None) -> Callable:
    def check(value, key: str, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: {key} must be a number (got {value!r})")
        if value < lo or (hi is not None and value > hi):
            rng = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
            raise InputError(f"{where}: {key} must be {rng} (got {value})")
        return float(value)
    return check


def _winsorize(value, key: str, where: str):
    if isinstance(value, list):
        if len(value) != 2:
            raise InputError(f"{where}: {key} as a list needs two shares [lower, upper]")
        lo = _number(0.0, 0.5)(value[0], key, where)
        hi = _number(0.5, 1.0)(value[1], key, where)
        return [lo, hi]
    return _number(0.0, 0.5)(value, key, where)


def _file(base: Path) -> Callable:
    def check(value, key: str, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: {key} must be a file name (got {value!r})")
        path = (base / value).resolve()
        if not path.is_file():
            raise InputError(f"{where}: {key} = {value!r}: file {path} not found")
        return str(path)
    return check


def _exclude(value, key: str, where: str) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise InputError(f"{where}: {key} must be a table of dependent = [controls], "
                         f"e.g. {key} = {{ ER = [\"Fdi\"] }} (got {value!r})")
    return {str(dep): _string_list(v, f"{key}.{dep}", where) for dep, v in value.items()}


def _tables(value, key: str, where: str) -> list[int]:
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int)
                                          for v in value):
        raise InputError(f"{where}: {key} must be a list of table numbers (got {value!r})")
    bad = sorted(set(value) - set(EXTRA_TABLES))
    if bad:
        raise InputError(f"{where}: {key} may name tables 4 to 10 only (got {bad})")
    return sorted(set(value))


def _schema(base: Path) -> dict[str, dict[str, Callable]]:
    files = _file(base)
    return {
        "data": {**{k: files for k in DATA_FILES},
                 "island_policy": _choice("refuse", "nearest", "keep"),
                 "winsorize": _winsorize, "fill_policy": _choice("refuse", "zero", "drop"),
                 "er_threshold": _number(0.0),
                 "er_benchmark": _choice("industry_mix", "national")},
        "study": {"controls": lambda v, k, w: _string_list(v, k, w, nonempty=True),
                  "agglomeration": lambda v, k, w: _string_list(v, k, w, nonempty=True),
                  "joint": _boolean, "exclude": _exclude, "seed_specification": _boolean,
                  "instruments": _string_list, "factors": _string_list,
                  "groups": _string_list, "mundlak": _boolean, "tables": _tables,
                  # the first config format, kept so older files still run
                  "exclude_er": _string_list, "exclude_agglomeration": _string_list},
        "bayes": {"draws": _integer(1), "tune": _integer(0), "chains": _integer(1),
                  "seed": _integer(0), "sampler": _choice("nutpie", "pymc")},
    }


def load_config(path: Path | str | None = None, quick: bool = False) -> StudyConfig:
    """Read and validate a study config; ``None`` reads the demo's ``configs/demo.toml``.

    ``quick`` caps the sampler at 2 chains × 200 draws (200 tuning steps) and makes the
    robustness Tables 4–10 frequentist only (the posterior columns say so), for a fast look.
    Raises :class:`InputError` naming the key and the file.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    where = str(path)
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{where}: config file not found") from None
    except IsADirectoryError:
        raise InputError(f"{where}: is a folder, not a config file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{where}: not valid TOML ({err})") from None
    schema = _schema(path.resolve().parent)
    values: dict[str, Any] = {}
    for section, table in raw.items():
        if section not in schema:
            raise InputError(f"{where}: unknown section [{section}]; expected "
                             f"{', '.join(schema)}")
        if not isinstance(table, dict):
            raise InputError(f"{where}: {section} must be a [{section}] table")
        unknown = sorted(set(table) - set(schema[section]))
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(unknown)} in [{section}]; "
                             f"known: {', '.join(schema[section])}")
        for key, value in table.items():
            values[(section, key)] = schema[section][key](value, key, f"{where} [{section}]")
    data = {k: v for (s, k), v in values.items() if s == "data"}
    if data and "employment" not in data:
        raise InputError(f"{where} [data]: gives {', '.join(sorted(data))} but no employment "
                         f"table (leave [data] out to run the embedded demo)")
    if "employment" in data and "weights" not in data:
        raise InputError(f"{where} [data]: gives employment but no weights")
    settings = {k: v for (s, k), v in values.items() if s != "data"}
    exclude = dict(settings.pop("exclude", {}))
    legacy_er = settings.pop("exclude_er", None)
    legacy_agg = settings.pop("exclude_agglomeration", None)
    if legacy_er is not None:
        exclude.setdefault("ER", legacy_er)
    cfg = StudyConfig(data=data, exclude=exclude, source=where, quick=quick, **settings)
    if legacy_agg is not None:
        for agg in cfg.agglomeration:
            cfg.exclude.setdefault(agg, list(legacy_agg))
    if "ER" in cfg.agglomeration:
        raise InputError(f"{where} [study]: agglomeration names ER, the resilience outcome")
    unknown_deps = sorted(set(cfg.exclude) - {"ER", *cfg.agglomeration})
    if unknown_deps:
        raise InputError(f"{where} [study]: exclude names {', '.join(unknown_deps)}, which is "
                         f"not ER nor an agglomeration index ({', '.join(cfg.agglomeration)})")
    for dep, dropped in cfg.exclude.items():
        stray = sorted(set(dropped) - set(cfg.controls))
        if stray:
            raise InputError(f"{where} [study]: exclude.{dep} names {', '.join(stray)}, which "
                             f"is not among the controls")
    if quick:
        cfg.draws, cfg.tune = min(cfg.draws, QUICK["draws"]), min(cfg.tune, QUICK["tune"])
        cfg.chains = min(cfg.chains, QUICK["chains"])
    return cfg
