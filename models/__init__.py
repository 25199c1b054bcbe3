"""Models of the study: the system specification, the frequentist and Bayesian estimators,
the study pipeline, simulations and the command-line tools.

The public Python API (``models.api``) is exported here lazily (PEP 562), so ``import models``
stays light and each class is imported on first use::

    from models import SpatialSystem, QuadraticModel, CensoredFactorModel, run_study
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from models import api

__all__ = list(api.__all__)

if TYPE_CHECKING:
    from models.api.censored import CensoredFactorModel, TobitResults
    from models.api.posterior import CensoredPosterior, Posterior, QuadraticPosteriorResults
    from models.api.quadratic import QuadraticModel, QuadraticResults
    from models.api.study import plan_study, run_study
    from models.api.system import SpatialSystem, SpatialSystemResults


def __getattr__(name: str) -> Any:
    value = api.export(name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
