"""The spectrum of W kept on the dataset: eigenvalues or quadrature nodes on dim ``eigen``.

``W_eigenvalues`` (real parts), ``W_eigenvalues_imag`` (only when some are complex) and, for a
quadrature, ``W_spectrum_weights`` (Σ = n); the method in ``attrs['spectrum_method']`` and the
chooser's details as JSON in ``attrs['spectrum_details']`` (docs/contracts.md, data model).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum
from data_prep.spectrum.exact import check_spectrum
from data_prep.weights import weights_from_dataset

QUADRATURES = ("chebyshev", "lanczos")
_SPECTRUM_VARS = ("W_eigenvalues", "W_eigenvalues_imag", "W_spectrum_weights")


def spectrum_to_dataset(ds: xr.Dataset, eigs: np.ndarray, method: str | None = None, *,
                        weights: np.ndarray | None = None,
                        details: dict | None = None) -> xr.Dataset:
    """Store eigenvalues on dim ``eigen``: real parts, imaginary parts only if any are non-zero.

    ``method``: "symmetric"/"general" for exact eigenvalues, or "chebyshev"/"lanczos" for
    quadrature nodes, whose ``weights`` (Σ = n) go to ``W_spectrum_weights`` on the same dim.
    ``details`` (e.g. ``Spectrum.details``: threshold, degree, probes, seed) are kept
    as JSON in ``attrs['spectrum_details']``.
    """
    eigs = np.asarray(eigs)
    if method is None:
        method = "general" if np.iscomplexobj(eigs) else "symmetric"
    if method not in ("symmetric", "general") + QUADRATURES:
        raise InputError(f"spectrum method must be 'symmetric', 'general', 'chebyshev' or "
                         f"'lanczos', not {method!r}")
    if (weights is None) != (method not in QUADRATURES):
        raise InputError(f"spectrum method {method!r}: quadrature weights go with 'chebyshev' "
                         f"or 'lanczos' and only with them")
    if weights is None and "city" in ds.coords and eigs.size != ds.sizes["city"]:
        raise InputError(f"{eigs.size} eigenvalues for {ds.sizes['city']} cities")
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        if weights.shape != eigs.shape:
            raise InputError(f"{weights.size} quadrature weights for {eigs.size} nodes")
        if "city" in ds.coords and not np.isclose(weights.sum(), ds.sizes["city"], rtol=1e-8):
            raise InputError(f"quadrature weights sum to {weights.sum():.6g}, not the "
                             f"{ds.sizes['city']} cities")
    out = ds.drop_vars([v for v in _SPECTRUM_VARS if v in ds.variables])
    out = out.assign(W_eigenvalues=("eigen", np.real(eigs).astype(float)))
    if np.iscomplexobj(eigs) and np.any(np.imag(eigs) != 0):
        out = out.assign(W_eigenvalues_imag=("eigen", np.imag(eigs).astype(float)))
    if weights is not None:
        out = out.assign(W_spectrum_weights=("eigen", weights))
    out.attrs["spectrum_method"] = method
    out.attrs.pop("spectrum_details", None)
    if details is not None:
        out.attrs["spectrum_details"] = json.dumps(details, default=float)
    return out


def stored_spectrum(ds: xr.Dataset, *, check: bool = True):
    """The stored spectrum as :class:`~data_prep.spectrum.chooser.Spectrum` (nodes, weights or None,
    method, details), checked against the dataset's weights when ``check`` and weights are
    present."""
    if "W_eigenvalues" not in ds.variables:
        raise InputError("the dataset holds no spectrum of W (variable W_eigenvalues)")
    eigs = np.asarray(ds["W_eigenvalues"].values, dtype=float)
    if "W_eigenvalues_imag" in ds.variables:
        eigs = eigs + 1j * np.asarray(ds["W_eigenvalues_imag"].values, dtype=float)
    weights = (np.asarray(ds["W_spectrum_weights"].values, dtype=float)
               if "W_spectrum_weights" in ds.variables else None)
    if check and "weight_origin" in ds.variables:
        check_spectrum(eigs, weights_from_dataset(ds).matrix, weights=weights)
    details = json.loads(ds.attrs.get("spectrum_details", "{}"))
    method = ds.attrs.get("spectrum_method", "symmetric")
    return Spectrum(eigs, weights, method if weights is not None else "exact", details)


def spectrum_from_dataset(ds: xr.Dataset, *, check: bool = True) -> np.ndarray:
    """Eigenvalues stored by :func:`spectrum_to_dataset` (complex if an imaginary part is stored),
    checked against the dataset's weights when ``check`` and weights are present. A stored
    quadrature is refused (its nodes are not eigenvalues): use :func:`stored_spectrum`."""
    result = stored_spectrum(ds, check=check)
    if result.weights is not None:
        raise InputError(f"the dataset stores a {result.method} quadrature of the spectrum of W "
                         f"(nodes with weights), not its eigenvalues, which this step needs: "
                         f"prepare the data with --spectrum-method exact or a larger "
                         f"--spectrum-threshold")
    return result.nodes
