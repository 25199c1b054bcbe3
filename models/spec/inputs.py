"""Reading a system's data and weights, and the finiteness/type checks with plain messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from data_prep.dataset import cross_section, load_dataset
from data_prep.errors import InputError
from data_prep.readers import overflow_limit
from data_prep.weights import (is_libpysal_weights, weights_from_dataset, weights_from_file,
                               weights_from_libpysal)


def cities_text(cities, mask, limit: int = 5) -> str:
    bad = [str(c) for c in np.asarray(cities)[mask]]
    more = f" and {len(bad) - limit} more" if len(bad) > limit else ""
    return ", ".join(bad[:limit]) + more


def check_finite(values: np.ndarray, column: str, cities, where: str) -> None:
    """Missing/non-finite values, then values so large that the estimators' squares and
    cross-products would overflow (:func:`data_prep.readers.overflow_limit`), each refused with
    a message naming the column and the cities."""
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputError(f"{where}column {column} has missing or non-finite values for "
                         f"{bad.sum()} cities: {cities_text(cities, bad)}")
    huge = np.abs(values) > overflow_limit(values.size)
    if huge.any():
        first = np.flatnonzero(huge)[0]
        raise InputError(f"{where}column {column} has values too large for the estimators "
                         f"({values[first]:.3g} for city {np.asarray(cities)[first]}; cities "
                         f"{cities_text(cities, huge)}): their squares overflow; rescale the "
                         f"column (other units, or its logarithm)")


def read_data(data, id_column: str, table=None):
    """Return (DataFrame, weights found alongside the data or None).

    ``data``: a DataFrame, a .csv, or a prepared dataset (an ``xarray.Dataset`` or its .nc)
    turned into a table by ``table`` (default :func:`data_prep.dataset.cross_section`, one row
    per city); the weights found alongside are those the dataset stores.
    """
    if isinstance(data, pd.DataFrame):
        return data, None
    if isinstance(data, xr.Dataset):
        return _dataset_table(data, table)
    path = Path(str(data))
    if not path.exists():
        raise InputError(f"data file {path} not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            # ids stay text: "0000" must not become 0 (and then fail to match the weights)
            return pd.read_csv(path, dtype={id_column: str}), None
        except Exception as err:
            raise InputError(f"{path}: cannot read as CSV ({err})") from None
    if suffix == ".nc":
        return _dataset_table(load_dataset(path), table)
    raise InputError(f"data file {path}: unknown format {suffix!r} (expected .csv or .nc)")


def _dataset_table(ds: xr.Dataset, table=None):
    """(table of a prepared dataset, its stored weights or None)."""
    frame = (table or cross_section)(ds)
    weights = weights_from_dataset(ds) if "weight_origin" in ds else None
    return frame, weights


def align_weights(weights, cities: np.ndarray) -> sp.csr_matrix:
    """Weights as a CSR matrix whose rows/columns follow the data's city order.

    ``weights``: a :class:`data_prep.weights.SpatialWeights` or a libpysal ``W`` (ids matched
    to the cities as text, :func:`data_prep.weights.weights_from_libpysal`), a path
    (.gal/.gwt/polygon file), or a sparse matrix already in the data's row order.
    """
    n = cities.size
    if isinstance(weights, (str, Path)):
        weights = weights_from_file(weights)
    elif is_libpysal_weights(weights):
        weights = weights_from_libpysal(weights)
    if sp.issparse(weights):
        W = sp.csr_matrix(weights, dtype=float)
        if W.shape != (n, n):
            raise InputError(f"weights matrix has shape {W.shape} but the data have {n} cities")
    elif hasattr(weights, "matrix") and hasattr(weights, "cities"):
        wc = np.asarray(weights.cities, dtype=str)
        pos = {c: i for i, c in enumerate(wc)}
        missing = [c for c in cities if c not in pos]
        extra = sorted(set(wc) - set(cities))
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"{len(missing)} data cities have no weights "
                             f"({cities_text(np.array(missing), slice(None))})")
            if extra:
                parts.append(f"{len(extra)} weights cities are not in the data "
                             f"({cities_text(np.array(extra), slice(None))})")
            raise InputError(f"weights ({getattr(weights, 'source', 'given')}) do not match the "
                             f"data: {'; '.join(parts)}")
        idx = np.array([pos[c] for c in cities])
        W = sp.csr_matrix(weights.matrix, dtype=float)[idx][:, idx]
    else:
        raise InputError(f"weights must be a libpysal W, a SpatialWeights, a sparse matrix or a "
                         f"file path, not {type(weights).__name__}")
    if not np.all(np.isfinite(W.data)):
        raise InputError("weights contain missing or non-finite values")
    return sp.csr_matrix(W)


def numeric_check(frame: pd.DataFrame, column: str, where: str, cities=None) -> None:
    """A column that is not numeric is refused, showing one offending value and its city."""
    s = frame[column]
    if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return
    bad = (pd.to_numeric(s, errors="coerce").isna() & s.notna()).to_numpy()
    first = int(np.flatnonzero(bad)[0]) if bad.any() else 0
    city = f" for city {np.asarray(cities)[first]}" if cities is not None else ""
    count = f", {int(bad.sum())} value(s) in all" if bad.sum() > 1 else ""
    raise InputError(f"{where}column {column} is not numeric ({s.iloc[first]!r}{city}{count}); "
                     f"write C({column}) to use it as a categorical variable")
