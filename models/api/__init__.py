"""The public Python API: model objects in the style of linearmodels and bambi.

* :class:`~models.api.system.SpatialSystem` — the spatial simultaneous equation system;
  ``.fit()`` → :class:`~models.api.system.SpatialSystemResults` (GS3SLS and relatives),
  ``.sample()`` → :class:`~models.api.posterior.Posterior` (the full-information posterior);
* :class:`~models.api.quadratic.QuadraticModel` — the quadratic (inverted-U) model;
  ``.fit()`` → :class:`~models.api.quadratic.QuadraticResults`, ``.sample()`` →
  :class:`~models.api.posterior.QuadraticPosteriorResults`;
* :class:`~models.api.censored.CensoredFactorModel` — the censored factor model;
  ``.fit()`` → :class:`~models.api.censored.TobitResults`, ``.sample()`` →
  :class:`~models.api.posterior.CensoredPosterior`;
* :func:`~models.api.study.run_study` — the whole study pipeline into a results folder.

Every name is imported on first use (PEP 562), so ``import models`` stays light and the
Bayesian side (PyMC) is loaded only when something is sampled.
"""

from __future__ import annotations

import importlib
from typing import Any

EXPORTS: dict[str, str] = {
    "SpatialSystem": "models.api.system",
    "SpatialSystemResults": "models.api.system",
    "Posterior": "models.api.posterior",
    "QuadraticModel": "models.api.quadratic",
    "QuadraticResults": "models.api.quadratic",
    "QuadraticPosteriorResults": "models.api.posterior",
    "CensoredFactorModel": "models.api.censored",
    "TobitResults": "models.api.censored",
    "CensoredPosterior": "models.api.posterior",
    "run_study": "models.api.study",
    "plan_study": "models.api.study",
}

__all__ = sorted(EXPORTS)


def export(name: str) -> Any:
    """The public object ``name``, importing its module on first use."""
    if name not in EXPORTS:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)


def __getattr__(name: str) -> Any:
    value = export(name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(EXPORTS))
