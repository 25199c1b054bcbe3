"""Identification of a system: order and rank conditions, and the spatial-lags-only note.

docs/method.md §2 (identification warning): with the same exogenous variables in every equation the
system is identified only through the spatial lags of X, which gave a multi-modal posterior on a
paper-like lattice; these checks say so in plain words before anything is estimated.
"""

from __future__ import annotations

import numpy as np

from data_prep.errors import InputError
from data_prep.terms import is_lag, lag_name
from models.spec.formula import unique
from models.spec.instruments import unit_columns


def check_identification(system, spatial: bool = True) -> None:
    """Order and rank conditions per equation with the instruments of ``system.instruments``.

    Order: the excluded instruments (columns of H beyond the equation's own exogenous columns)
    must be at least as many as its endogenous regressors, lags of dependents included.
    Rank: the projection of Z_j on H must have full column rank, decided on unit-length
    columns so that the units of a variable cannot change the answer. Raises InputError naming
    the equation.
    """
    H, hnames = system.instruments(spatial)
    # rank(P Z) = rank(Q'Z) with H = QR (thin QR, n × k; never the n × n projection). Columns of
    # H and Z are scaled to unit length first: rank is invariant to column scaling, but a
    # tolerance is not, and a column in units of 10^12 would otherwise hide the others.
    Q = np.linalg.qr(unit_columns(H), mode="reduced")[0] if H.shape[1] else None
    for j, eq in enumerate(system.spec.equations):
        endo = eq.endogenous + tuple(lag_name(v) for v in eq.spatial_lags)
        k_j = system.X[j].shape[1]
        excluded = H.shape[1] - k_j
        if len(endo) > excluded:
            raise InputError(
                f"equation {eq.dependent}: {len(endo)} endogenous regressor"
                f"{'s' if len(endo) > 1 else ''} ({', '.join(endo)}) "
                f"but only {max(excluded, 0)} excluded instruments; add exogenous variables "
                f"excluded from this equation, their spatial lags, or --instruments")
        Z = system.Z(j)
        rank = np.linalg.matrix_rank(Q.T @ unit_columns(Z)) if Q is not None else 0
        if rank < Z.shape[1]:
            raise InputError(
                f"equation {eq.dependent}: the instruments cannot tell its {Z.shape[1]} "
                f"regressors apart (rank {rank}); add exogenous variables excluded from this "
                f"equation, their spatial lags, or --instruments")


def identification_note(system) -> str | None:
    """Plain-words note when an equation leans on spatial lags of X for identification.

    An equation's excluded instruments that are not spatial lags are the system's exogenous
    variables it leaves out plus the extra instruments. If it has none while having endogenous
    regressors, every excluded instrument is a spatial lag (W x, W² x): identification rests on
    the spatial structure alone (docs/method.md §2, identification warning: identical X sets made the
    paper-like system multi-modal). If it has fewer than its contemporaneous endogenous
    regressors, some of those are identified only through the spatial lags. Returns None when no
    equation is in either case; one line per equation otherwise.
    """
    spec = getattr(system, "spec", system)  # a SystemData or a SystemSpec
    union = unique(nm for eq in spec.equations for nm in eq.exogenous)
    lines = []
    for eq in spec.equations:
        endo = eq.endogenous + tuple(lag_name(v) for v in eq.spatial_lags)
        plain = len(spec.instruments) + sum(
            1 for nm in union if nm not in eq.exogenous and not is_lag(nm))
        hint = ("An exogenous variable left out of this equation, or --instruments, would "
                "strengthen identification.")
        if endo and plain == 0:
            lines.append(
                f"equation {eq.dependent}: every excluded instrument is a spatial lag (W x, W² x) "
                f"of an exogenous variable, so its endogenous regressor{'s' * (len(endo) > 1)} "
                f"({', '.join(endo)}) {'are' if len(endo) > 1 else 'is'} identified only through "
                f"the spatial structure; estimates may be weak or unstable. {hint}")
        elif plain < len(eq.endogenous):
            lines.append(
                f"equation {eq.dependent}: only {plain} excluded instrument"
                f"{'s' * (plain > 1)} besides spatial lags for {len(eq.endogenous)} endogenous "
                f"regressors ({', '.join(eq.endogenous)}), so part of the identification rests "
                f"on the spatial structure alone; estimates may be weak or unstable. {hint}")
    return "\n".join(lines) or None
