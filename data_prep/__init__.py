"""Raw tables → validated xarray Datasets: indices, weights, the spectrum of W, synthetic data.

The names a notebook needs are exported here (loaded on first use, so ``import data_prep``
stays light)::

    from data_prep import build_dataset, demo_dataset, weights_from_file

:func:`build_dataset` assembles a study's Dataset from the employment table, covariates and a
map (docs/contracts.md, data model); :func:`demo_dataset` is the embedded synthetic demo.
The spectrum of W is chosen by :func:`data_prep.spectrum.chooser.spectrum`.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "InputError": "data_prep.errors",
    "build_dataset": "data_prep.dataset",
    "demo_dataset": "data_prep.dataset",
    "load_dataset": "data_prep.dataset",
    "save_dataset": "data_prep.dataset",
    "cross_section": "data_prep.dataset",
    "panel_table": "data_prep.dataset",
    "SpatialWeights": "data_prep.weights",
    "weights_from_file": "data_prep.weights",
    "weights_from_polygons": "data_prep.weights",
    "weights_from_coordinates": "data_prep.weights",
    "Spectrum": "data_prep.spectrum.chooser",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'data_prep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
