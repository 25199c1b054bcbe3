"""The data of the censored factor model (docs/method.md §5), read and checked once for both sides.

``Interact_rt`` (the coupling-coordination degree, bounded in [0, 1]) is observed at its bounds
for some (city, year) cells and regressed on the factors Z_rt with city and year effects and,
optionally, slopes that differ by a city group (tier, coastal). :func:`factor_data` turns a
(city, year) table and a formula ``"y ~ x1 + x2"`` into a :class:`FactorData` holding integer
codes for cities, years and groups, used by the Tobit (:mod:`models.frequentist.tobit`) and the
Bayesian model (:mod:`models.bayes.censored`). Every bad input is an InputError in one line.

The id column is needed only by what uses it: city effects, groups (a city attribute) and the
Mundlak device. Without them a table without the id column is a plain cross-section whose rows
are the units (docs/contracts.md contract 9: ``fit_factor_model.py`` needs an id column only with
``--effects`` or ``--group``).

**Mundlak device** (Mundlak 1978, Econometrica 46, 69–85; Wooldridge, Econometric Analysis of
Cross Section and Panel Data, 2nd ed., §15.8.2 and §17.8 for the Tobit): random city effects
a_r ~ Normal(0, s²) assume a_r independent of the factors. Mundlak lets them correlate through
the city means, a_r = x̄_r'ξ + u_r with u_r independent of the factors, which adds the regressors
x̄_rk = (1/T_r) Σ_t x_rtk (terms ``mean(x)``, :data:`MUNDLAK_TERM`) for every factor that varies
within cities. The slopes of x then rest on the within-city variation, as with city fixed
effects, without the fixed-effects Tobit's incidental-parameter bias (the correlated random
effects model).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from models.spec.formula import NAME, read_formula
from models.spec.inputs import cities_text

EFFECTS = ("city", "year")
MUNDLAK_TERM = "mean({})"


@dataclass(frozen=True)
class FactorData:
    """y (n,), factors Z (n, K) and codes; ``lower``/``upper`` are None for an open side."""

    outcome: str
    factors: tuple[str, ...]
    y: np.ndarray
    Z: np.ndarray
    city: np.ndarray                 # (n,) codes into ``cities``
    cities: np.ndarray
    year: np.ndarray                 # (n,) codes into ``years``
    years: np.ndarray
    lower: float | None
    upper: float | None
    effects: tuple[str, ...] = ()
    group_column: str | None = None
    groups: tuple[str, ...] = ()     # group labels (strings)
    group_of_city: np.ndarray | None = None   # (n_cities,) codes into ``groups``
    notes: tuple[str, ...] = field(default=())
    mundlak: tuple[str, ...] = ()    # factors whose city means are regressors (module doc)

    @property
    def n(self) -> int:
        return self.y.size

    @property
    def at_lower(self) -> np.ndarray:
        return (self.y <= self.lower) if self.lower is not None else np.zeros(self.n, bool)

    @property
    def at_upper(self) -> np.ndarray:
        return (self.y >= self.upper) if self.upper is not None else np.zeros(self.n, bool)

    @property
    def mundlak_terms(self) -> tuple[str, ...]:
        """The names of the city-mean regressors, ``mean(x)`` for x in ``mundlak``."""
        return tuple(MUNDLAK_TERM.format(f) for f in self.mundlak)

    @property
    def M(self) -> np.ndarray:
        """(n, len(mundlak)) city means x̄_r of the Mundlak factors, on every row of city r."""
        columns = [self.factors.index(f) for f in self.mundlak]
        return city_means(self.Z[:, columns], self.city)

    @property
    def group(self) -> np.ndarray | None:
        """(n,) group code of each observation, or None without groups."""
        return None if self.group_of_city is None else self.group_of_city[self.city]

    def subset(self, mask: np.ndarray) -> "FactorData":
        """The rows in ``mask``, cities and years re-coded, without groups (a separate fit)."""
        mask = np.asarray(mask, bool)
        city_codes, city = np.unique(self.city[mask], return_inverse=True)
        year_codes, year = np.unique(self.year[mask], return_inverse=True)
        return FactorData(self.outcome, self.factors, self.y[mask], self.Z[mask], city,
                          self.cities[city_codes], year, self.years[year_codes], self.lower,
                          self.upper, self.effects, notes=self.notes, mundlak=self.mundlak)


def city_means(values: np.ndarray, city: np.ndarray) -> np.ndarray:
    """(n, K) the mean of each column of ``values`` over the rows of the same city, per row."""
    values = np.asarray(values, float).reshape(city.size, -1)
    sums = np.zeros((city.max() + 1, values.shape[1]))
    np.add.at(sums, city, values)
    return (sums / np.bincount(city)[:, None])[city]


def parse_effects(effects) -> tuple[str, ...]:
    """``"city,year"`` / a sequence → a tuple in canonical order; unknown names refused."""
    if effects is None:
        return ()
    names = ([s.strip() for s in effects.split(",") if s.strip()] if isinstance(effects, str)
             else [str(s).strip() for s in effects])
    unknown = [s for s in names if s not in EFFECTS and s.lower() != "none"]
    if unknown:
        raise InputError(f"--effects: unknown effect {', '.join(unknown)} (use city, year or "
                         f"city,year)")
    return tuple(e for e in EFFECTS if e in names)


def _formula_terms(formula: str) -> tuple[str, list[str]]:
    outcome, pieces = read_formula(formula)
    factors = []
    for sign, text in pieces:
        if text in ("0", "1"):
            if (text == "1") != (sign == "+"):
                raise InputError(f"formula {formula!r}: the censored model always has an "
                                 "intercept; remove '- 1'")
            continue
        if sign == "-" or not NAME.match(text):
            raise InputError(f"formula {formula!r}: term {sign if sign == '-' else ''}{text!r} "
                             "is not a plain column name (write transforms into the data)")
        factors.append(text)
    if not factors:
        raise InputError(f"formula {formula!r}: no regressors")
    if len(set(factors)) < len(factors):
        raise InputError(f"formula {formula!r}: a regressor is repeated")
    if outcome in factors:
        raise InputError(f"formula {formula!r}: the outcome {outcome} is also a regressor")
    return outcome, factors


def factor_data(frame: pd.DataFrame, formula: str, lower: float | None,
                upper: float | None = None, *, group: str | None = None, effects=(),
                id_column: str = "city", year_column: str = "year",
                source: str = "data", mundlak: bool = False) -> FactorData:
    """Validate a (city, year) table for the censored factor model and code it.

    The id column is read only with city effects, ``group`` or ``mundlak``; otherwise a table
    without it has one unit per row (labelled ``row 1``, ``row 2``, ...). ``mundlak`` adds the
    city means of the factors that vary within cities (module docstring).
    Refused with an InputError naming the column, city or bound: unknown columns (a missing id
    column with the flag that needs it), missing values, a regressor without variation (overall,
    or within cities/years when their effects are in), a group that varies within a city, an
    outcome outside its bounds, a bound that no observation reaches (a Tobit there is an OLS
    with a wasted parameter), and ``mundlak`` when no factor varies within cities.
    """
    if lower is None and upper is None:
        raise InputError("give --lower and/or --upper: a censored model needs a bound")
    if lower is not None and upper is not None and not lower < upper:
        raise InputError(f"the lower bound {lower} is not below the upper bound {upper}")
    effects = parse_effects(effects)
    outcome, factors = _formula_terms(formula)
    _check_id_column(frame, id_column, effects, group, mundlak, source)
    needed = [outcome, *factors]
    if "year" in effects or year_column in frame.columns:
        needed.append(year_column)
    if group:
        needed.append(group)
    missing = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if missing:
        raise InputError(f"{source}: unknown column {', '.join(missing)} (available: "
                         f"{', '.join(map(str, frame.columns[:12]))}"
                         f"{' ...' if len(frame.columns) > 12 else ''})")
    if year_column not in frame.columns:
        frame = frame.assign(**{year_column: 0})
    if id_column not in frame.columns:
        frame = frame.assign(**{id_column: [f"row {i + 1}" for i in range(len(frame))]})
    for c in [outcome, *factors]:
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise InputError(f"{source}: column {c} is not numeric (e.g. {frame[c].iloc[0]!r})")
        bad = ~np.isfinite(frame[c].to_numpy(float))
        if bad.any():
            raise InputError(f"{source}: column {c} has {bad.sum()} missing or non-finite values "
                             f"(cities {cities_text(frame[id_column].astype(str), bad)})")
    if frame.duplicated([id_column, year_column]).any():
        raise InputError(f"{source}: a ({id_column}, {year_column}) pair appears twice")
    cities, city = np.unique(frame[id_column].astype(str).to_numpy(), return_inverse=True)
    years, year = np.unique(frame[year_column].to_numpy(), return_inverse=True)
    y = frame[outcome].to_numpy(float)
    Z = frame[factors].to_numpy(float)
    names = frame[id_column].astype(str).to_numpy()
    _check_bounds(y, outcome, lower, upper, names, source)
    _check_variation(Z, factors, city, year, effects, source)
    groups, group_of_city = (), None
    if group:
        groups, group_of_city = _group_codes(frame[group], city, cities, group, source)
    return FactorData(outcome, tuple(factors), y, Z, city, cities, year, years,
                      None if lower is None else float(lower),
                      None if upper is None else float(upper), effects, group, groups,
                      group_of_city,
                      mundlak=_varying_within(Z, factors, city, source) if mundlak else ())


def _check_id_column(frame, id_column, effects, group, mundlak, source) -> None:
    """The id column must be there when city effects, groups or the Mundlak means use it."""
    if id_column in frame.columns:
        return
    users = ([f"--effects {','.join(effects)}"] if "city" in effects else []) + (
        [f"--group {group}"] if group else []) + (["--mundlak"] if mundlak else [])
    if users:
        raise InputError(f"{source}: no id column {id_column}, which {' and '.join(users)} "
                         f"need{'s' if len(users) == 1 else ''} (name it with --id-column)")


def _varying_within(Z, factors, city, source) -> tuple[str, ...]:
    """The factors that vary within cities (a city-constant factor is its own city mean)."""
    within = Z - city_means(Z, city)
    scale = np.maximum(1.0, np.abs(Z).max(axis=0))
    varying = tuple(f for k, f in enumerate(factors) if np.ptp(within[:, k]) > 1e-12 * scale[k])
    if not varying:
        raise InputError(f"{source}: --mundlak: no factor varies within cities (one row per "
                         "city?), so the city means are the factors themselves")
    return varying


def _check_bounds(y, outcome, lower, upper, names, source) -> None:
    for bound, below, word in ((lower, True, "below the lower"), (upper, False, "above the upper")):
        if bound is None:
            continue
        out = y < bound if below else y > bound
        if out.any():
            raise InputError(f"{source}: outcome {outcome} has {out.sum()} values {word} bound "
                             f"{bound} (cities {cities_text(names, out)}); a censored outcome "
                             "cannot pass its bound")
    hits = {b: int(((y <= b) if b is lower else (y >= b)).sum())
            for b in (lower, upper) if b is not None}
    if not any(hits.values()):
        raise InputError(f"{source}: no observation is censored; use OLS (outcome {outcome} "
                         f"lies in [{y.min():.4g}, {y.max():.4g}], strictly inside the bounds)")
    for bound, word in ((lower, "lower"), (upper, "upper")):
        if bound is not None and hits[bound] == 0:
            raise InputError(f"{source}: no observation reaches the {word} bound {bound} of "
                             f"{outcome}; drop --{word}")


def _check_variation(Z, factors, city, year, effects, source) -> None:
    for k, name in enumerate(factors):
        z = Z[:, k]
        if np.ptp(z) <= 1e-12 * max(1.0, np.abs(z).max()):
            raise InputError(f"{source}: regressor {name} has no variation (every value is "
                             f"{z[0]:.6g})")
        for effect, codes in (("city", city), ("year", year)):
            if effect not in effects:
                continue
            means = np.bincount(codes, z) / np.bincount(codes)
            if np.ptp(z - means[codes]) <= 1e-12 * max(1.0, np.abs(z).max()):
                raise InputError(f"{source}: regressor {name} does not vary within {effect}s, "
                                 f"so {effect} effects absorb it; drop it or the {effect} effects")


def _group_codes(values: pd.Series, city, cities, column, source):
    missing = values.isna().to_numpy()
    if missing.any():
        bad = cities[np.unique(city[missing])]
        raise InputError(f"{source}: group column {column} is missing for cities "
                         f"{cities_text(bad, slice(None))}")
    labels = values.astype(str).to_numpy()
    per_city = pd.Series(labels).groupby(city).nunique()
    varying = per_city.index[per_city.to_numpy() > 1]
    if len(varying):
        raise InputError(f"{source}: group column {column} changes within city "
                         f"{cities_text(cities[varying], slice(None))}; a group is a city "
                         "attribute")
    groups, code = np.unique(labels, return_inverse=True)
    of_city = np.zeros(cities.size, int)
    of_city[city] = code
    if groups.size < 2:
        raise InputError(f"{source}: group column {column} has a single value ({groups[0]})")
    return tuple(str(g) for g in groups), of_city
