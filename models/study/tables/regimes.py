"""The paper's Tables 7–8: high and low agglomeration regimes in a three-equation system (docs/method.md §4).

With A_H and A_L from ``data_prep.regimes.add_regimes`` the system (G = 3) is

    ER  = α1 W·ER + a_H W·A_H + a_L W·A_L + b_H A_H + b_L A_L + X_ER β_ER + ε_ER
    A_H = γ_H W·A_H + c_H W·ER + d_H ER + X_H β_H + ε_H
    A_L = γ_L W·A_L + c_L W·ER + d_L ER + X_L β_L + ε_L,

the layout of the paper's G3SLS columns (its A_H equation carries ER, W·ER and W·A_H). The 3SLS
columns drop every W term; with the same controls in all equations they need outside
instruments, by default the historical ones (``models.study.headline.HISTORICAL_INSTRUMENTS``).
The paper reports a different N per column (it appears to fit each regime on its own subsample);
here every equation uses all cities **(choice)**: A_H is 0 where a city is in the low regime,
which is what makes the two slopes b_H and b_L differ.

Identification: with identical controls the endogenous regressors are identified only through
the spatial lags of X (docs/method.md §2 warning; the estimators say so). ``exclude`` removes controls
from chosen equations, {dependent: [controls]}, which identifies the system beyond the lags.
The Bayesian fit is the one model of ``models.bayes.system`` (G = 3 uses its LKJ branch).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from data_prep.errors import InputError
from models.study.headline import HISTORICAL_INSTRUMENTS
from models.study.system_fit import SystemFit, fit_system, paper_system_table

RESILIENCE = "ER"


def regime_names(index: str) -> tuple[str, str]:
    return f"{index}_H", f"{index}_L"


def regime_formulas(index: str, controls: Sequence[str],
                    exclude: Mapping[str, Sequence[str]] | None = None,
                    spatial: bool = True, resilience: str = RESILIENCE) -> list[str]:
    """The three formulas (module docstring); ``exclude`` {dependent: controls left out}."""
    high, low = regime_names(index)
    exclude = {k: set(v) for k, v in (exclude or {}).items()}
    unknown = sorted(set(exclude) - {resilience, high, low})
    if unknown:
        raise InputError(f"regime system: exclude names {', '.join(unknown)}, not one of the "
                         f"dependents {resilience}, {high}, {low}")

    def x(dep: str) -> str:
        return " + ".join(c for c in controls if c not in exclude.get(dep, ())) or "1"

    er, lag = resilience, (lambda v: f"W({v})")
    if spatial:
        return [f"{er} ~ {lag(er)} + {lag(high)} + {lag(low)} + {high} + {low} + {x(er)}",
                f"{high} ~ {lag(high)} + {lag(er)} + {er} + {x(high)}",
                f"{low} ~ {lag(low)} + {lag(er)} + {er} + {x(low)}"]
    return [f"{er} ~ {high} + {low} + {x(er)}", f"{high} ~ {er} + {x(high)}",
            f"{low} ~ {er} + {x(low)}"]


def regime_table(frame: pd.DataFrame, weights, eigenvalues, index: str,
                 controls: Sequence[str], exclude: Mapping[str, Sequence[str]] | None = None,
                 *, instruments: Sequence[str] | None = None, show_controls: bool = False,
                 **fit_options) -> tuple[pd.DataFrame, SystemFit]:
    """The paper's Table 7 (``index="PSS"``) or 8 (``"PSD"``): GS3SLS, 3SLS and posterior columns.

    ``frame``: one row per city with ``<index>_H`` and ``<index>_L`` (``add_regimes`` then
    ``cross_section``); ``instruments`` of the 3SLS columns (default the historical ones);
    ``fit_options`` go to :func:`models.study.system_fit.fit_system` (draws, tune, chains, seed,
    sampler, bayes, ...). InputError (one line) names a missing column.
    """
    high, low = regime_names(index)
    instruments = list(HISTORICAL_INSTRUMENTS if instruments is None else instruments)
    needed = [RESILIENCE, high, low, *controls, *instruments]
    absent = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if absent:
        hint = (" (add them with data_prep.regimes.add_regimes)"
                if {high, low} & set(absent) else "")
        raise InputError(f"regime table {index}: the data have no column "
                         f"{', '.join(absent)}{hint}")
    fit = fit_system(regime_formulas(index, controls, exclude), frame, weights, eigenvalues,
                     plain_formulas=regime_formulas(index, controls, exclude, spatial=False),
                     instruments=instruments, **fit_options)
    return paper_system_table({"": fit}, show_controls=show_controls), fit


def point_mass_note(frame: pd.DataFrame, index: str) -> str:
    """The regimes' point mass at zero, stated for the table note with the counts in ``frame``.

    A_H = A·1[A > yearly mean] is exactly 0 for every low-regime city-year and A_L for every
    high-regime one, so neither regressor is continuous: in the period means a city that was in
    the other regime every year has exactly 0, and each slope rests on the cities that were in
    its regime at least once.
    """
    high, low = regime_names(index)
    missing = [c for c in (high, low) if c not in frame.columns]
    if missing:
        raise InputError(f"regime note {index}: the data have no column {', '.join(missing)}")
    n = len(frame)
    zeros = {name: int((frame[name].to_numpy(dtype=float) == 0).sum()) for name in (high, low)}
    return (f"{high} = {index}·1[{index} > yearly mean] is exactly 0 for every low-regime "
            f"city-year and {low} for every high-regime one (a point mass at zero): in these "
            f"period means {zeros[high]} of {n} cities have {high} = 0 and {zeros[low]} have "
            f"{low} = 0, so each regime's slope rests on the cities that were in that regime "
            f"at least once.")


__all__ = ["point_mass_note", "regime_formulas", "regime_names", "regime_table"]
