"""Load and validate the study's input tables (docs/contracts.md contract 1).

* employment, long: ``city, year, industry, employment`` → ``employment(city, year, industry)``;
* covariates: ``city, year, <covariates…>`` → variables on ``(city, year)``;
* city attributes: ``city, <attributes…>`` → variables on ``(city)``;
* industry output (optional, robustness), long: ``city, year, industry, output`` →
  ``output(city, year, industry)`` on exactly the employment table's cities, years, industries.

Each reader takes a CSV or Parquet path or a DataFrame. Every problem is an :class:`InputError`
with one line naming the file, the column and the offending rows (line numbers of a file, the
header being line 1; index labels of a DataFrame) or cities. An unbalanced
employment panel (a (city, year, industry) cell with no row) follows an explicit fill policy:
``"refuse"`` (default: error listing the missing cells), ``"zero"`` (missing employment is 0) or
``"drop"`` (drop the cities with missing cells, warning with their names).

Validation is written by hand on top of pandas because the checks are few, must name rows and
cities in the message, and must run vectorised on tens of millions of rows; a schema library would
add a dependency without shortening that.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from data_prep.errors import InputError

FILL_POLICIES = ("refuse", "zero", "drop")


def overflow_limit(n: int) -> float:
    """Largest magnitude a value of an n-row column may have before the estimators overflow.

    Moment matrices sum n products of two values (X'X, H'Z), and the spatial lags and GM moments
    multiply a few more factors of order one; so |x| must stay well below sqrt(max float / n).
    A margin of 10^6 leaves room for those (about 1e148 for 241 cities).
    """
    return float(np.sqrt(np.finfo(float).max / max(int(n), 1)) / 1e6)
EMPLOYMENT_COLUMNS = ("city", "year", "industry", "employment")
OUTPUT_COLUMNS = ("city", "year", "industry", "output")


def name_list(items: Sequence, limit: int = 6) -> str:
    """'a, b, c ... (N in all)' -- a short rendering of a possibly long list for messages."""
    items = list(items)
    shown = ", ".join(str(x) for x in items[:limit])
    return shown + (f" ... ({len(items)} in all)" if len(items) > limit else "")


def _rows(mask: np.ndarray, frame: pd.DataFrame, limit: int = 6) -> str:
    """Where the True entries are: line numbers of a file (header = line 1), or the index
    labels of a DataFrame the caller passed in."""
    where = frame.index[np.asarray(mask, dtype=bool)].tolist()
    word = "lines" if frame.attrs.get("from_file") else "rows with index"
    return f"{word} {name_list(where, limit)}"


def read_table(source, label: str | None = None) -> tuple[pd.DataFrame, str]:
    """(DataFrame, label for messages) from a CSV/Parquet path or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        frame = source.copy(deep=False)
        frame.attrs = {}
        return frame, label or "table"
    path = Path(str(source))
    label = label or str(path)
    if not path.exists():
        raise InputError(f"{label}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".gz"):
            # only an empty cell is missing: "n/a", "NA" or "-" stay text, so they are reported
            # as not numeric (with their value) instead of silently becoming NaN, and a city
            # called "NA" stays a city
            frame = pd.read_csv(path, dtype={"city": str, "industry": str},
                                keep_default_na=False, na_values=[""])
        else:
            raise InputError(f"{label}: unknown table format {suffix!r} "
                             f"(expected .csv or .parquet)")
    except InputError:
        raise
    except Exception as err:  # the parser's own first line says what is wrong
        raise InputError(f"{label}: cannot read the table ({str(err).splitlines()[0]})") from None
    frame.index = pd.RangeIndex(2, len(frame) + 2)  # line numbers, the header being line 1
    frame.attrs["from_file"] = True
    return frame, label


def _require(frame: pd.DataFrame, columns: Sequence[str], label: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{label}: missing column(s) {', '.join(missing)} "
                         f"(columns present: {name_list(frame.columns, 10)})")


def _city_column(frame: pd.DataFrame, label: str) -> pd.Series:
    city = frame["city"]
    bad = city.isna().to_numpy()
    if bad.any():
        raise InputError(f"{label}: column city is empty in {_rows(bad, frame)}")
    return city.astype(str).str.strip()


def _year_column(frame: pd.DataFrame, label: str) -> np.ndarray:
    year = pd.to_numeric(frame["year"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(year) | (year != np.round(year))
    if bad.any():
        raise InputError(f"{label}: column year is not a whole number in {_rows(bad, frame)} "
                         f"(values {name_list(frame['year'][bad].unique().tolist(), 4)})")
    return year.astype(np.int64)


def _numeric(frame: pd.DataFrame, column: str, label: str) -> np.ndarray:
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values) & raw.notna().to_numpy()
    if bad.any():
        raise InputError(f"{label}: column {column} is not numeric in {_rows(bad, frame)} "
                         f"(values {name_list(raw[bad].unique().tolist(), 4)})")
    return values


def _duplicates(keys: pd.DataFrame, frame: pd.DataFrame, label: str, what: str) -> None:
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        first = keys[dup].drop_duplicates().head(4)
        cells = "; ".join("(" + ", ".join(str(v) for v in row) + ")"
                          for row in first.itertuples(index=False))
        raise InputError(f"{label}: duplicate ({what}) rows: {_rows(dup, frame)}, e.g. {cells}")


def read_employment(source, *, fill_policy: str = "refuse",
                    label: str | None = None) -> xr.DataArray:
    """Validated ``employment(city, year, industry)`` (float64) from a long table.

    Checks: the four columns exist; city and industry are non-empty; year is a whole number;
    employment is numeric, finite and non-negative; no duplicate (city, year, industry) rows;
    the panel is balanced, else ``fill_policy`` decides (see the module docstring). Cities,
    years and industries come out sorted (cities and industries as strings).
    """
    if fill_policy not in FILL_POLICIES:
        raise InputError(f"fill policy must be one of {', '.join(FILL_POLICIES)}, "
                         f"not {fill_policy!r}")
    frame, label = read_table(source, label or ("employment table" if isinstance(
        source, pd.DataFrame) else None))
    return _long_cube(frame, label, "employment", fill_policy)


def _long_cube(frame: pd.DataFrame, label: str, value: str, fill_policy: str,
               hint: str = " (choose fill policy 'zero' or 'drop')") -> xr.DataArray:
    """The (city, year, industry) cube of column ``value`` of a long table (checks as in
    :func:`read_employment`)."""
    _require(frame, ("city", "year", "industry", value), label)
    if frame.empty:
        raise InputError(f"{label}: the {value} table has no rows")
    city = _city_column(frame, label)
    year = _year_column(frame, label)
    empty_ind = frame["industry"].isna().to_numpy()
    if empty_ind.any():
        raise InputError(f"{label}: column industry is empty in {_rows(empty_ind, frame)}")
    industry = frame["industry"].astype(str).str.strip()
    values = _numeric(frame, value, label)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"{label}: column {value} is missing or not finite in "
                         f"{_rows(bad, frame)}")
    negative = values < 0
    if negative.any():
        raise InputError(f"{label}: column {value} is negative in {_rows(negative, frame)} "
                         f"(cities {name_list(city[negative].unique().tolist(), 4)})")

    c_code, c_names = pd.factorize(city, sort=True)
    y_code, y_values = pd.factorize(year, sort=True)
    i_code, i_names = pd.factorize(industry, sort=True)
    n, T, K = len(c_names), len(y_values), len(i_names)
    flat = (c_code.astype(np.int64) * T + y_code) * K + i_code
    if flat.size > n * T * K or np.bincount(flat, minlength=n * T * K).max() > 1:
        _duplicates(pd.DataFrame({"city": city.to_numpy(), "year": year,
                                  "industry": industry.to_numpy()}), frame, label,
                    "city, year, industry")
    cube = np.full(n * T * K, np.nan)
    cube[flat] = values
    cube = cube.reshape(n, T, K)
    missing = np.isnan(cube)
    cities = np.asarray(c_names, dtype=str)
    if missing.any():
        cube, cities = _apply_fill_policy(cube, missing, cities, np.asarray(y_values),
                                          np.asarray(i_names, dtype=str), fill_policy, label,
                                          value, hint)
    dropped = sorted(set(np.asarray(c_names, dtype=str)) - set(cities))
    return xr.DataArray(
        cube, dims=("city", "year", "industry"), name=value,
        coords={"city": cities, "year": np.asarray(y_values, dtype=np.int64),
                "industry": np.asarray(i_names, dtype=str)},
        attrs={"dropped_cities": ",".join(dropped)} if dropped else {},
    )


def _apply_fill_policy(cube, missing, cities, years, industries, policy, label,
                       value="employment", hint=""):
    where = np.argwhere(missing)
    if policy == "refuse":
        cells = [f"({cities[r]}, {years[t]}, {industries[i]})" for r, t, i in where[:4]]
        raise InputError(f"{label}: unbalanced panel, {len(where)} (city, year, industry) cells "
                         f"have no {value} row: {'; '.join(cells)}"
                         f"{' ...' if len(where) > 4 else ''}{hint}")
    if policy == "zero":
        warnings.warn(f"{label}: {len(where)} missing (city, year, industry) cells filled with "
                      f"{value} 0 (fill policy 'zero')", stacklevel=4)
        cube[missing] = 0.0
        return cube, cities
    bad = missing.any(axis=(1, 2))
    if bad.all():
        raise InputError(f"{label}: every city has missing (city, year, industry) cells; "
                         f"fill policy 'drop' would leave nothing")
    warnings.warn(f"{label}: dropped {int(bad.sum())} cities with missing (city, year, "
                  f"industry) cells (fill policy 'drop'): {name_list(cities[bad].tolist(), 8)}",
                  stacklevel=4)
    return cube[~bad], cities[~bad]


def read_output(source, employment: xr.DataArray, *, label: str | None = None) -> xr.DataArray:
    """Validated industry output ``output(city, year, industry)`` (float64) from a long table
    ``city, year, industry, output``, on exactly the cities, years and industries of
    ``employment`` (in its order).

    Checks as for employment (columns present, whole years, numeric, finite, non-negative, no
    duplicates, balanced: a missing cell is an error, output has no fill policy), and: every
    city, year and industry of the table is in the employment table and every one of the
    employment table is in it. Rows of cities that the employment fill policy 'drop' removed
    are ignored. Output is in any one unit (only shares enter the output location quotient).
    """
    frame, label = read_table(source, label or ("output table" if isinstance(
        source, pd.DataFrame) else None))
    _require(frame, OUTPUT_COLUMNS, label)
    cities = [str(c) for c in employment.city.values]
    years = [int(y) for y in employment.year.values]
    industries = [str(i) for i in employment.industry.values]
    dropped = [c for c in employment.attrs.get("dropped_cities", "").split(",") if c]
    if dropped:
        frame = frame[~frame["city"].astype(str).str.strip().isin(dropped).to_numpy()]
    city = _city_column(frame, label)
    _check_cities(city, cities, label)
    year = _year_column(frame, label)
    unknown_years = sorted(set(year.tolist()) - set(years))
    if unknown_years:
        raise InputError(f"{label}: column year has years not in the employment table: "
                         f"{name_list(unknown_years)}")
    industry = frame["industry"].astype(str).str.strip()
    unknown = sorted(set(industry[frame["industry"].notna().to_numpy()]) - set(industries))
    if unknown:
        raise InputError(f"{label}: column industry has industries not in the employment "
                         f"table: {name_list(unknown, 3)}")
    cube = _long_cube(frame, label, "output", "refuse", hint="")
    for dim, wanted in (("city", cities), ("year", years), ("industry", industries)):
        absent = [x for x in wanted if x not in set(cube[dim].values.tolist())]
        if absent:
            word = {"city": "cities", "year": "years", "industry": "industries"}[dim]
            raise InputError(f"{label}: no output rows for {word} {name_list(absent, 4)} of the "
                             f"employment table (output must cover the same cities, years and "
                             f"industries)")
    out = cube.sel(city=cities, year=years, industry=industries)
    out.attrs = {}
    return out


def _check_cities(found: pd.Series, cities: Sequence[str], label: str) -> None:
    known = set(str(c) for c in cities)
    unknown = sorted(set(found) - known)
    if unknown:
        raise InputError(f"{label}: column city has cities not in the employment table: "
                         f"{name_list(unknown)}")


def read_covariates(source, cities: Sequence[str], years: Sequence[int] | None = None, *,
                    label: str | None = None) -> xr.Dataset:
    """Covariates on ``(city, year)``, aligned with ``cities`` (and ``years`` when given).

    Every column other than city and year must be numeric and finite (text such as "n/a", empty
    cells, inf and NaN are refused with file, column, lines and cities; absent (city, year) rows
    are allowed, see below); values so large that squares overflow are warned about. Unknown
    cities and duplicate
    (city, year) rows are errors; (city, year) cells with no row, and rows for years outside
    ``years``, are warned about (missing cells become NaN).
    """
    frame, label = read_table(source, label or ("covariates table" if isinstance(
        source, pd.DataFrame) else None))
    _require(frame, ("city", "year"), label)
    city = _city_column(frame, label)
    year = _year_column(frame, label)
    _check_cities(city, cities, label)
    _duplicates(pd.DataFrame({"city": city.to_numpy(), "year": year}), frame, label,
                "city, year")
    names = [c for c in frame.columns if c not in ("city", "year")]
    if not names:
        raise InputError(f"{label}: no covariate columns besides city and year")
    data = {c: _finite_covariate(frame, c, label, city) for c in names}
    years = np.unique(year) if years is None else np.asarray(years, dtype=np.int64)
    outside = ~np.isin(year, years)
    if outside.any():
        warnings.warn(f"{label}: {int(outside.sum())} rows for years outside the employment "
                      f"panel ignored (years {name_list(np.unique(year[outside]).tolist())})",
                      stacklevel=2)
    index = pd.MultiIndex.from_arrays([city.to_numpy(), year])
    table = pd.DataFrame(data, index=index)[~outside]
    full = pd.MultiIndex.from_product([list(cities), years.tolist()])
    table = table.reindex(full)
    absent = table.isna().all(axis=1).to_numpy()
    if absent.any():
        pairs = [f"({c}, {y})" for c, y in full[absent][:4]]
        warnings.warn(f"{label}: {int(absent.sum())} (city, year) cells have no covariate row "
                      f"and are NaN: {'; '.join(pairs)}{' ...' if absent.sum() > 4 else ''}",
                      stacklevel=2)
    shape = (len(cities), len(years))
    return xr.Dataset(
        {c: (("city", "year"), table[c].to_numpy(dtype=float).reshape(shape)) for c in names},
        coords={"city": np.asarray(cities, dtype=str), "year": years})


def _finite_covariate(frame: pd.DataFrame, column: str, label: str,
                      city: pd.Series) -> np.ndarray:
    """A covariate column as float: text, empty cells, inf and NaN refused (file, column, lines,
    cities); values so large that downstream squares would overflow warned about."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    text = np.isnan(values) & raw.notna().to_numpy()
    if text.any():
        raise InputError(f"{label}: column {column} is not numeric in {_rows(text, frame)} "
                         f"(cities {name_list(city[text].unique().tolist(), 4)}; values "
                         f"{name_list(raw[text].astype(str).unique().tolist(), 4)})")
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"{label}: column {column} is missing or not finite in "
                         f"{_rows(bad, frame)} (cities {name_list(city[bad].unique().tolist(), 4)}"
                         f"; values {name_list(frame[column][bad].astype(str).unique(), 4)})")
    huge = np.abs(values) > overflow_limit(city.nunique())
    if huge.any():
        first = np.flatnonzero(huge)[0]
        warnings.warn(f"{label}: column {column} has values so large that the estimators' "
                      f"squares will overflow ({values[first]:.3g} in {_rows(huge, frame)}, "
                      f"cities {name_list(city[huge].unique().tolist(), 4)}); rescale it",
                      stacklevel=3)
    return values


def read_city_attributes(source, cities: Sequence[str], *, label: str | None = None) -> xr.Dataset:
    """City attributes on ``(city)``, aligned with ``cities``.

    Numeric-looking columns become float (or int when whole and complete); other columns stay
    strings. Unknown and duplicate cities are errors; cities without a row get NaN (numeric) or
    '' (text), with a warning naming them.
    """
    frame, label = read_table(source, label or ("city attributes table" if isinstance(
        source, pd.DataFrame) else None))
    _require(frame, ("city",), label)
    city = _city_column(frame, label)
    _check_cities(city, cities, label)
    dup = city.duplicated(keep=False).to_numpy()
    if dup.any():
        raise InputError(f"{label}: duplicate city rows: {_rows(dup, frame)} "
                         f"(cities {name_list(city[dup].unique().tolist(), 4)})")
    names = [c for c in frame.columns if c != "city"]
    if not names:
        raise InputError(f"{label}: no attribute columns besides city")
    table = frame[names].set_axis(city.to_numpy()).reindex(list(cities))
    absent = [c for c in cities if c not in set(city)]
    if absent:
        warnings.warn(f"{label}: no attributes for {len(absent)} cities (left missing): "
                      f"{name_list(absent)}", stacklevel=2)
    out = {}
    for name in names:
        col = table[name]
        numeric = pd.to_numeric(col, errors="coerce")
        if numeric.notna().sum() == col.notna().sum():
            values = numeric.to_numpy(dtype=float)
            whole = np.isfinite(values).all() and (values == np.round(values)).all()
            out[name] = ("city", values.astype(np.int64) if whole else values)
        else:
            out[name] = ("city", col.fillna("").astype(str).to_numpy(dtype=str))
    return xr.Dataset(out, coords={"city": np.asarray(cities, dtype=str)})
