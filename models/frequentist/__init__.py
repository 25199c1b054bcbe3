"""Frequentist estimators of the spatial simultaneous system: 2SLS, 3SLS, GS2SLS, GS3SLS."""

from models.frequentist.gs3sls import METHODS, estimate
from models.frequentist.results import SystemResults

__all__ = ["METHODS", "SystemResults", "estimate"]
