"""What every model of the Python API accepts: data, weights, seeds, and its printed summaries.

* data: a pandas DataFrame (an id column, ``city`` by default; a panel also a ``year`` column),
  a prepared ``xarray.Dataset`` (``data_prep.dataset``, possibly with its weights and the
  spectrum of W), or the path of a .csv or a prepared .nc;
* weights: a libpysal ``W`` (ids matched to the cities as text, its transform kept:
  :func:`data_prep.weights.weights_from_libpysal`), a .gal/.gwt/GeoJSON path, the project's
  :class:`data_prep.weights.SpatialWeights`, or a scipy sparse matrix already in the data's row
  order; islands follow the same ``island_policy`` as the command-line tools ("refuse",
  "nearest", "keep"); the city matching is ``models.spec.inputs.align_weights``, the one
  the scripts use, and no dense n × n matrix is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import xarray as xr

from data_prep.dataset import load_dataset
from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum
from data_prep.spectrum.stored import stored_spectrum
from data_prep.weights import (ISLAND_POLICIES, SpatialWeights, is_libpysal_weights,
                               weights_from_file, weights_from_libpysal)


class Summary(str):
    """Text that shows as itself in a notebook or a REPL (no quotes, real line breaks)."""

    def __repr__(self) -> str:
        return str(self)


def prepared_data(data: Any) -> Any:
    """``data`` with the path of a prepared .nc read into its ``xarray.Dataset`` (once: the
    table, its weights and its spectrum all come from it); anything else as it is."""
    if isinstance(data, (str, Path)) and str(data).lower().endswith(".nc"):
        return load_dataset(data)
    return data


def resolve_weights(weights: Any, island_policy: str = "refuse", coordinates=None) -> Any:
    """The weights as ``models.spec.system.build_system`` takes them (None stays None: the
    dataset's own weights, if any, are used).

    A libpysal W becomes a :class:`SpatialWeights` with its ids and transform; a path is read
    with ``island_policy`` (``coordinates`` serve 'nearest' for a W without a map); a
    SpatialWeights or a sparse matrix passes as it is. Anything else is refused in one line.
    """
    if island_policy not in ISLAND_POLICIES:
        raise InputError(f"island_policy must be one of {', '.join(ISLAND_POLICIES)}, "
                         f"not {island_policy!r}")
    if weights is None or isinstance(weights, SpatialWeights) or sp.issparse(weights):
        return weights
    if is_libpysal_weights(weights):
        return weights_from_libpysal(weights, island_policy=island_policy,
                                     coordinates=coordinates)
    if isinstance(weights, (str, Path)):
        options = {} if island_policy == "refuse" else {"island_policy": island_policy}
        return weights_from_file(weights, **options)
    raise InputError(f"weights must be a libpysal W, a .gal/.gwt/GeoJSON path, a "
                     f"SpatialWeights or a scipy sparse matrix, not {type(weights).__name__}")


def dataset_spectrum(data: Any, weights: Any, n: int) -> Spectrum | None:
    """The spectrum stored in a prepared dataset, when its own weights are used (``weights``
    None) and it describes the same ``n`` cities; else None."""
    if not isinstance(data, xr.Dataset) or weights is not None:
        return None
    if "W_eigenvalues" in data and data.sizes.get("city") == n:
        return stored_spectrum(data)
    return None


def sampler_seed(seed: int | None) -> int:
    """``seed`` itself, or for None a fresh random seed (recorded in the InferenceData's
    attributes, so the run can be repeated)."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0])
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer or None, not {seed!r}")
    return int(seed)
