"""The one chooser of the spectrum of W: exact eigenvalues up to a threshold, quadrature above.

:class:`Spectrum` is the value every spectral computation takes (the log-Jacobian, the impacts,
the admissible region): ``nodes`` with ``weights`` None for exact eigenvalues, or quadrature
nodes with weights summing to n (docs/method.md §2b).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from data_prep.errors import InputError
from data_prep.spectrum import exact  # exact.MAX_DENSE_N read per call: a changed limit applies
from data_prep.spectrum.exact import eigenvalues, symmetriser
from data_prep.spectrum.extremes import as_csr, symmetric_form
from data_prep.spectrum.quadrature import (CHEBYSHEV_DEGREE, DEFAULT_THRESHOLD, LANCZOS_PROBES,
                                           LANCZOS_STEPS, METHODS, chebyshev_quadrature,
                                           lanczos_quadrature)


@dataclass(frozen=True)
class Spectrum:
    """The spectrum of W as the models use it.

    ``nodes``: the eigenvalues (``method == "exact"``; complex for a W not similar to a symmetric
    matrix) or quadrature nodes; ``weights``: None for exact eigenvalues (each counts once) or
    the quadrature weights summing to n. ``details``: what was done (method, threshold, route,
    degree/steps, probes, seed, exact moment order, extremes), stored in dataset attrs.
    """

    nodes: np.ndarray
    weights: np.ndarray | None
    method: str
    details: dict = field(default_factory=dict)

    @classmethod
    def exact(cls, eigenvalues, details: dict | None = None) -> "Spectrum":
        """Exact eigenvalues, each counted once."""
        return cls(np.asarray(eigenvalues), None, "exact", dict(details or {}))

    @property
    def n(self) -> float:
        return float(self.nodes.size if self.weights is None else self.weights.sum())

    @property
    def normalised_weights(self) -> np.ndarray | None:
        """Weights summing to 1 (``spectrum_weights`` of the impacts), None when exact."""
        return None if self.weights is None else self.weights / self.weights.sum()


def as_spectrum(value) -> Spectrum | None:
    """``value`` as a :class:`Spectrum`: a Spectrum as it is, an array of eigenvalues as the
    exact spectrum, None as None."""
    if value is None or isinstance(value, Spectrum):
        return value
    return Spectrum.exact(value)


def spectrum(W, *, threshold: int = DEFAULT_THRESHOLD, method: str = "auto", seed: int = 0,
             degree: int = CHEBYSHEV_DEGREE, probes: int | None = None,
             steps: int = LANCZOS_STEPS, deflate: int = 1) -> Spectrum:
    """THE choice of spectrum: exact eigenvalues up to ``threshold`` cities, quadrature above.

    ``method``: "auto" (exact if n ≤ threshold, else Chebyshev), or "exact", "chebyshev",
    "lanczos" regardless of n. A W not similar to a symmetric matrix (complex spectrum) has no
    quadrature: "auto" then takes the exact dense route up to ``exact.MAX_DENSE_N`` cities
    (recorded in ``details['reason']``) and refuses above; "chebyshev"/"lanczos" refuse it.
    ``probes`` defaults to :func:`chebyshev_probes` (Chebyshev) or 100 (Lanczos).
    """
    if method not in METHODS:
        raise InputError(f"spectrum method must be one of {', '.join(METHODS)}, not {method!r}")
    if threshold < 0:
        raise InputError(f"the spectrum threshold must be a non-negative number of cities, "
                         f"not {threshold}")
    Wc = as_csr(W)
    n = Wc.shape[0]
    symmetric = symmetriser(Wc) is not None
    details = {"n": int(n), "threshold": int(threshold), "requested": method,
               "route": "symmetric" if symmetric else "general"}
    chosen = method
    if method == "auto":
        chosen = "exact" if n <= threshold else "chebyshev"
        if chosen != "exact" and not symmetric:
            if n > exact.MAX_DENSE_N:
                symmetric_form(Wc)  # raises the one-line reason
            chosen = "exact"
            details["reason"] = ("W is not similar to a symmetric matrix: no quadrature "
                                 "applies, so the exact (complex) spectrum is used above the "
                                 "threshold")
    details["method"] = chosen
    if chosen == "exact":
        eigs = eigenvalues(Wc)
        return Spectrum(np.asarray(eigs), None, "exact", details)
    if chosen == "chebyshev":
        nodes, weights = chebyshev_quadrature(
            Wc, degree, probes, seed, deflate=deflate,
            details=details)
    else:
        nodes, weights = lanczos_quadrature(
            Wc, steps, LANCZOS_PROBES if probes is None else probes, seed, deflate=deflate,
            details=details)
    return Spectrum(nodes, weights, chosen, details)
