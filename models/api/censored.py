"""``CensoredFactorModel``: the censored factor model of paper's §5 (Table 10).

    y*_it = α + x_it'φ (+ group slopes, city and year effects) + ε_it,   ε_it ~ N(0, σ²),
    y_it = min(max(y*_it, L), U)

(docs/method.md §5). ``fit`` is the Tobit by maximum likelihood (``models.frequentist.tobit``;
with a group column one separate Tobit per group), ``sample`` the hierarchical Bayesian model
with group slopes partially pooled toward the overall ones (``models.bayes.censored``). Both
are what ``scripts/fit_factor_model.py`` writes for ``--method tobit`` and ``--method bayes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import pandas as pd

from data_prep.dataset import panel_table
from models.api.inputs import Summary, prepared_data, sampler_seed
from models.frequentist.tobit import GroupTobit, TobitFit, fit_tobit, fit_tobit_groups
from models.spec.coefficient_tables import coefficient_frame
from models.spec.factor import FactorData, factor_data
from models.spec.inputs import read_data

if TYPE_CHECKING:
    from models.api.posterior import CensoredPosterior

DEFAULT_TARGET_ACCEPT = 0.9  # hierarchical scales near zero need small steps


class CensoredFactorModel:
    """The censored factor model of ``formula`` (``"y ~ x1 + x2"``, plain column names; an
    intercept always) on a (city, year) table, censored at ``lower`` and/or ``upper``.

    ``data``: a DataFrame (one row per (city, year), or one row per unit without
    ``effects``/``group``/``mundlak``), a prepared ``xarray.Dataset`` (its panel table) or a
    .csv/.nc path. ``group``: a city attribute whose groups get their own slopes; ``effects``:
    "city", "year" or both (a comma string or a sequence); ``mundlak``: add the city means of
    the factors that vary within cities (correlated random effects). Bad input raises
    ``InputError`` in one line naming the column, city or bound.
    """

    def __init__(self, formula: str, data: Any, *, lower: float | None = None,
                 upper: float | None = None, group: str | None = None,
                 effects: str | Sequence[str] = "", mundlak: bool = False,
                 id_column: str = "city", year_column: str = "year") -> None:
        self.formula = formula
        source = str(data) if isinstance(data, (str, Path)) else "data"
        frame, _ = read_data(prepared_data(data), id_column, table=panel_table)
        self.data: FactorData = factor_data(frame, formula, lower, upper, group=group,
                                            effects=effects, id_column=id_column,
                                            year_column=year_column, source=source,
                                            mundlak=mundlak)

    def fit(self) -> "TobitResults":
        """Tobit ML: log L = Σ_censored log Φ(·) + Σ_interior log φ((y − x'β)/σ) − log σ
        (fixed effects as dummies; with ``group`` the full sample and one Tobit per group)."""
        data = self.data
        return TobitResults(fit_tobit_groups(data) if data.groups else fit_tobit(data), self)

    def sample(self, draws: int = 1000, tune: int = 1000, chains: int = 4,
               seed: int | None = None, *, target_accept: float = DEFAULT_TARGET_ACCEPT,
               max_treedepth: int | None = None, priors: dict[str, float] | None = None,
               city_parametrisation: str = "auto",
               group_parametrisation: str = "non-centred", group_scale: str = "shared",
               sampler: str = "nutpie", progress: bool = True,
               checks=None) -> "CensoredPosterior":
        """The hierarchical posterior (``models.bayes.censored.fit_censored``; priors
        ``models.bayes.censored.DEFAULT_PRIORS`` on the standardised scale, updated by
        ``priors``); ``target_accept`` 0.9 by default. ``seed`` None draws a fresh seed."""
        from models.api.posterior import sample_censored_model  # lazy: pymc only to sample

        return sample_censored_model(
            self, draws=draws, tune=tune, chains=chains, seed=sampler_seed(seed),
            target_accept=target_accept, max_treedepth=max_treedepth, priors=priors,
            city_parametrisation=city_parametrisation,
            group_parametrisation=group_parametrisation, group_scale=group_scale,
            sampler=sampler, progress=progress, checks=checks)

    def __repr__(self) -> str:
        d = self.data
        bounds = ", ".join(f"{k} {v:g}" for k, v in (("lower", d.lower), ("upper", d.upper))
                           if v is not None)
        return (f"CensoredFactorModel: {d.outcome} ~ {' + '.join(d.factors)} ({bounds}), "
                f"{d.n} rows, {d.cities.size} cities"
                + (f", groups by {d.group_column}" if d.group_column else ""))


@dataclass(eq=False)
class TobitResults:
    """The Tobit fit: ``params`` is the contract-2 table ``fit_factor_model.py`` writes (the
    scale as term ``sigma``; fixed-effect dummies not listed; with groups the terms ``x1[g]``);
    ``fit`` the ``models.frequentist.tobit`` TobitFit or GroupTobit."""

    fit: TobitFit | GroupTobit
    model: CensoredFactorModel

    @property
    def params(self) -> pd.DataFrame:
        return coefficient_frame(self.fit.to_frame())

    def summary(self) -> Summary:
        return Summary(self.fit.summary())

    def __repr__(self) -> str:
        return self.fit.summary()
