"""One system, fitted both ways, laid out as in the paper: the shared helper of Tables 2–8.

:func:`fit_system` takes the formulas of a spatial simultaneous system (any number G of
equations, ``models.spec.system`` syntax) and returns a :class:`SystemFit` holding

* ``frequentist["GS3SLS"]``: the Kelejian–Prucha (2004) GS3SLS fit of the spatial formulas
  (docs/method.md §2a), with optional extra excluded instruments ``spatial_instruments`` in H;
* ``frequentist["3SLS"]``: the 3SLS fit of ``plain_formulas`` (the paper's non-spatial columns),
  H = X plus ``instruments``, when ``plain_formulas`` are given;
* ``idata``: the posterior of the full-information model of the *spatial* formulas
  (``models.bayes.system.build_system_model``, docs/method.md §2b), its contract-2 summary and the
  sampler's plain-words convergence report.

:func:`paper_system_table` lays one or more fits side by side: frequentist columns (coefficient with
stars over its z statistic) beside posterior columns (mean, † when the 94 % HDI excludes 0,
over the posterior sd), one shared row order (``models.spec.coefficient_tables.combined_table``); a posterior
that failed its convergence checks carries no †, and a row "Posterior" (present only then) gives
every posterior column's verdict.
:func:`warning_lines` gathers every warning of several fits for the report. With
``show_controls=False`` (the paper's Tables 4–8) only the structural rows (spatial lags and
endogenous regressors) and the constant are shown and a row "Controls: Yes" stands for the rest.

No estimator is implemented here: everything is ``models.frequentist.estimate``,
``models.bayes`` and ``models.spec.coefficient_tables``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from data_prep.spectrum.chooser import Spectrum, as_spectrum
from models.bayes.postprocess import add_effects_and_loo, summary_frame
from models.frequentist import estimate
from models.frequentist.iv import SingularSystemError
from models.spec.coefficient_tables import combined_table
from models.spec.formula import read_formula
from models.spec.system import build_system, parse_system

FREQUENTIST_METHODS = ("GS3SLS", "3SLS")
BAYES_LABEL = "Bayes"
MISSING_ROW = "Missing input"
NOT_ESTIMABLE_ROW = "Not estimable"
POSTERIOR_ROW = "Posterior"
TABLE_NOTE = ("Frequentist columns: estimate over z statistic, *** p<0.01, ** p<0.05, * p<0.1. "
              "Bayes columns: posterior mean over posterior sd, † the 94 % highest-density "
              "interval excludes 0 (never on a posterior that did not converge: the row "
              "\"Posterior\" then names it).")


@dataclass
class SystemFit:
    """A system fitted by GS3SLS / 3SLS and by the Bayesian full-information model."""

    formulas: list[str]
    plain_formulas: list[str] | None
    nobs: int
    frequentist: dict = field(default_factory=dict)      # label -> SystemResults
    idata: object | None = None                          # arviz.InferenceData
    summary: pd.DataFrame | None = None                  # contract-2 posterior summary
    convergence: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failed: dict = field(default_factory=dict)           # label -> why it is not estimable
    bayes_formulas: list[str] | None = None              # when they differ from ``formulas``

    @property
    def converged(self) -> bool:
        """True when the sampler's convergence report passed (R-hat, ESS, no divergences)."""
        return bool(self.convergence) and self.convergence[0].startswith(
            "Convergence checks passed")

    @property
    def posterior_failed(self) -> bool:
        """True when a posterior was sampled and its convergence report failed."""
        return bool(self.convergence) and not self.converged

    @property
    def verdict(self) -> str:
        """"converged", "did NOT converge" (with " (preview)" in quick mode) or "not sampled"."""
        # lazy: PyMC only to sample; planning the study (--dry-run) goes without it
        from models.bayes.sampling import convergence_word

        return convergence_word(self.convergence) if self.summary is not None \
            or self.convergence else "not sampled"

    @property
    def dependents(self) -> list[str]:
        return [read_formula(f)[0] for f in self.formulas]

    @property
    def warnings(self) -> list[str]:
        """Every plain-words message: estimator warnings, convergence report, post-processing."""
        lines = [f"{label}: {w}" for label, res in self.frequentist.items() for w in res.warnings]
        lines += [f"{label}: not estimable: {why}" for label, why in self.failed.items()]
        return lines + [f"{BAYES_LABEL}: {w}" for w in self.convergence + self.notes]

    def table(self, methods: Sequence[str] = FREQUENTIST_METHODS, *, show_controls: bool = True,
              digits: int = 3) -> pd.DataFrame:
        """This fit alone in the paper's layout (see :func:`paper_system_table`)."""
        return paper_system_table({"": self}, methods=methods, show_controls=show_controls,
                          digits=digits)


def fit_system(formulas: Sequence[str], frame: pd.DataFrame, weights, spectrum, *,
               plain_formulas: Sequence[str] | None = None, instruments: Sequence[str] = (),
               spatial_instruments: Sequence[str] = (),
               bayes_formulas: Sequence[str] | None = None,
               draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int = 0,
               sampler: str = "nutpie", progress: bool = False, bayes: bool = True,
               frequentist: bool = True, priors: Mapping | None = None, effects: bool = True,
               id_column: str = "city", cluster_column: str | None = None,
               target_accept: float | None = None, max_treedepth: int | None = None,
               checks=None) -> SystemFit:
    """Fit a spatial system by GS3SLS (and its non-spatial form by 3SLS) and by Bayes.

    ``formulas``: one per equation (any G); ``frame``: one row per observation with the
    ``id_column``; ``weights``: SpatialWeights or a sparse matrix aligned with the rows;
    ``spectrum``: the spectrum of W for the Bayesian Jacobian, a
    :class:`~data_prep.spectrum.chooser.Spectrum` (e.g. each eigenvalue of weight T for a
    stacked panel whose W is I_T ⊗ W) or an array of exact eigenvalues. ``plain_formulas`` / ``instruments``: the 3SLS
    system and its excluded instruments; ``spatial_instruments``: extra instruments appended to
    the GS3SLS H. ``bayes_formulas``: the posterior's formulas when they differ from the
    GS3SLS ones (Table 6 puts instruments into an equation); default ``formulas``.
    ``bayes=False`` skips sampling, ``frequentist=False`` the estimators (and their order and
    rank checks, which the full-information likelihood does not need: a LOO variant);
    ``effects`` attaches impacts and LOO densities (``models.bayes.postprocess.add_effects_and_loo``).
    ``cluster_column``: the frequentist standard errors are clustered by this column of
    ``frame`` (``models.frequentist.iv.clustered_cov``), e.g. the city of a stacked panel row.
    """
    spatial = build_system(parse_system(list(formulas), instruments=list(spatial_instruments)),
                           frame, weights, id_column=id_column, check=frequentist)
    fit = SystemFit(list(formulas), list(plain_formulas) if plain_formulas else None,
                    nobs=spatial.n)
    clusters = _clusters(frame, cluster_column)
    spectrum = as_spectrum(spectrum)
    # quadrature nodes or weighted eigenvalues are not W's own spectrum: the checks then use
    # W's extreme eigenvalues
    exact = spectrum.nodes if spectrum is not None and spectrum.weights is None else None
    if frequentist:
        _estimate(fit, "GS3SLS", spatial, "gs3sls", clusters, exact)
    if plain_formulas and frequentist:
        plain = build_system(parse_system(list(plain_formulas), instruments=list(instruments)),
                             frame, id_column=id_column)
        _estimate(fit, "3SLS", plain, "3sls", clusters)
    if bayes:
        if bayes_formulas is not None:
            fit.bayes_formulas = list(bayes_formulas)
            spatial = build_system(list(bayes_formulas), frame, weights, id_column=id_column)
        _fit_bayes(fit, spatial, spectrum, priors, effects,
                   dict(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                        progress=progress, target_accept=target_accept,
                        max_treedepth=max_treedepth, checks=checks))
    return fit


def _clusters(frame: pd.DataFrame, column: str | None) -> np.ndarray | None:
    """The cluster id of every row (the system keeps the frame's rows in order), or None."""
    if column is None:
        return None
    if column not in frame.columns:
        raise InputError(f"clustered standard errors: the data have no column {column}")
    return frame[column].to_numpy()


def _estimate(fit: SystemFit, label: str, system, method: str,
              clusters: np.ndarray | None = None, eigenvalues=None) -> None:
    """Estimate (cluster-robust standard errors when ``clusters`` are given), or record in
    plain words why the normal matrix could not be inverted. ``eigenvalues``: the spectrum of
    W, when known (the exact stability check and the GM range of ρ use it).

    A singular (not identified, or numerically so) system is a result of the data, not a bug:
    the table shows the column as "not estimable" and the reason is in ``fit.failed``.
    """
    cov = {} if clusters is None else {"cov_type": "clustered", "clusters": clusters}
    try:
        fit.frequentist[label] = estimate(system, method, eigenvalues=eigenvalues, **cov)
    except SingularSystemError as err:
        fit.failed[label] = str(err)


def _fit_bayes(fit: SystemFit, system, spectrum: Spectrum | None, priors, effects,
               options: dict) -> None:
    # lazy: PyMC only to sample; planning the study (--dry-run) goes without it
    from models.bayes.sampling import sample
    from models.bayes.system import build_system_model

    if spectrum is None:
        raise InputError("the Bayesian fit needs the spectrum of W (eigenvalues)")
    model = build_system_model(system, spectrum, priors)
    idata = sample(model, **options)
    if effects:
        fit.notes += add_effects_and_loo(idata, system, spectrum)
    fit.idata = idata
    fit.summary = summary_frame(idata)
    fit.convergence = json.loads(idata.attrs.get("convergence_report", "[]"))


# ----------------------------------------------------------------------------- layout

def structural_terms(fit: SystemFit) -> set[str]:
    """Spatial lags W(y) and contemporaneous regressors y of the system's dependents."""
    deps = fit.dependents
    return set(deps) | {f"W({d})" for d in deps}


def _shown(frame: pd.DataFrame, keep: set[str] | None,
           equations: Sequence[str] | None = None) -> pd.DataFrame:
    if equations is not None:
        frame = frame[frame["equation"].isin(equations)]
    return frame if keep is None else frame[frame["term"].isin(keep)]


def _prefix(label: str, name: str) -> str:
    return f"{label} {name}".strip()


def paper_system_table(fits: Mapping[str, SystemFit],
                       methods: Sequence[str] = FREQUENTIST_METHODS, *, bayes: bool = True,
                       show_controls: bool = True, show_terms: Sequence[str] = (),
                       indicators: Mapping[str, str | Mapping[str, str]] | None = None,
                       missing: Mapping[str, Sequence[str]] | None = None,
                       order: Sequence[str] | None = None,
                       equations: Sequence[str] | None = None,
                       digits: int = 3) -> pd.DataFrame:
    """Several fits side by side in the paper's layout, columns "<label> <method>: <equation>".

    ``methods``: the frequentist fits shown (those a fit lacks are skipped); ``bayes``: add the
    posterior columns where a posterior exists. ``show_controls=False`` keeps only the
    structural rows, the constant and ``show_terms`` and adds "Controls: Yes".
    ``indicators``: extra rows such as {"Year x region effects": "Yes"} (one text for all
    columns, or a text per fit label). ``missing``: fits that could not be run,
    {label: [missing inputs]}; each appears as a column whose "Missing input" row names the
    inputs. A frequentist fit whose normal matrix was singular appears as a column whose
    "Not estimable" row says so. ``order``: labels (of ``fits`` and ``missing``) in display
    order, default fits then missing. ``equations``: only these equations' columns (a joint
    system shown one index at a time, Tables 2–3).
    """
    missing = dict(missing or {})
    labels = list(order) if order is not None else [*fits, *missing]
    freq, post, nobs, rsq, owner, extra_cols = {}, {}, {}, {}, {}, {}
    failed: set[str] = set()
    prefixes: list[str] = []
    extra: dict[str, dict[str, str]] = {}

    def register(key: str, equations: Sequence[str], label: str, n: int, r2=None) -> None:
        for eq in equations:
            for col in (f"{key}: {eq}",) + ((key,) if len(equations) == 1 else ()):
                nobs[col], owner[col] = n, label
                if r2 is not None:
                    rsq[col] = r2[eq]

    for label in labels:
        if label in missing:
            prefixes.append(label)
            extra_cols[label] = (MISSING_ROW, ", ".join(missing[label]))
            continue
        fit = fits[label]
        keep = (None if show_controls
                else structural_terms(fit) | {"Intercept"} | set(show_terms))
        for method in methods:
            key = _prefix(label, method)
            prefixes.append(key)
            if method in fit.failed:
                extra_cols[key] = (NOT_ESTIMABLE_ROW,
                                   "singular normal matrix (see the fit's warnings)")
            res = fit.frequentist.get(method)
            if res is not None:
                freq[key] = _shown(res.to_frame(), keep, equations)
                register(key, [eq for eq in res.rsquared if equations is None or eq in equations],
                         label, res.nobs, res.rsquared)
        if bayes and fit.summary is not None:
            key = _prefix(label, BAYES_LABEL)
            prefixes.append(key)
            post[key] = _shown(fit.summary, keep, equations)
            register(key, [eq for eq in fit.dependents if equations is None or eq in equations],
                     label, fit.nobs)
            if fit.posterior_failed:
                failed.add(key)

    if freq or post:
        table = combined_table(freq, post, nobs=nobs, rsquared=rsq, digits=digits,
                               unmarked=failed)
        table = _single_equation_labels(table, {**freq, **post})
    else:
        table = pd.DataFrame({"term": pd.Series([], dtype=object)})
    if not show_controls and fits:
        extra["Controls"] = {col: "Yes" for col in table.columns[1:]}
    if failed:  # the row appears only when it has a failure to show
        extra[POSTERIOR_ROW] = {col: fits[owner[col]].verdict for col in table.columns[1:]
                                if owner.get(col) in fits and _is_posterior(col, post)}
    for name, value in (indicators or {}).items():
        extra[name] = {col: (value if isinstance(value, str) else value.get(owner.get(col), ""))
                       for col in table.columns[1:]}
    for col, (row, text) in extra_cols.items():
        table[col] = ""
        extra.setdefault(row, {})[col] = text
    table = _insert_rows(table, extra)
    return table[["term", *_ordered(list(table.columns[1:]), prefixes)]]


def _is_posterior(column: str, posterior: Mapping[str, pd.DataFrame]) -> bool:
    return any(column == key or column.startswith(f"{key}: ") for key in posterior)


def warning_lines(fits: Mapping[str, SystemFit]) -> list[str]:
    """Every warning of ``fits`` ({label: fit}) as report lines, none dropped: frequentist
    (estimators and not-estimable columns) and Bayesian (convergence report and post-processing
    notes) under their own headings; a message shared by several fits appears once, counted,
    with the fits it concerns."""
    groups: dict[str, dict[str, list[str]]] = {"Frequentist": {}, "Bayesian": {}}
    for label, fit in fits.items():
        for line in fit.warnings:
            kind = "Bayesian" if line.startswith(f"{BAYES_LABEL}: ") else "Frequentist"
            text = line.removeprefix(f"{BAYES_LABEL}: ")
            groups[kind].setdefault(text, []).append(label)
    lines: list[str] = []
    for kind, messages in groups.items():
        if not messages:
            continue
        lines += [f"{kind} warnings:", ""]
        for text, labels in messages.items():
            named = [lab for lab in labels if lab]
            where = (f" (×{len(labels)}: {', '.join(named)})" if len(labels) > 1
                     else f" ({named[0]})" if named else "")
            lines.append(f"* {text}{where}")
        lines.append("")
    return lines


def _ordered(columns: list[str], prefixes: list[str]) -> list[str]:
    """Columns grouped by fit and method in the order they were asked for (stable)."""
    def rank(col: str) -> int:
        hits = [i for i, p in enumerate(prefixes) if col == p or col.startswith(f"{p}: ")]
        return hits[-1] if hits else len(prefixes)
    return sorted(columns, key=rank)


def _single_equation_labels(table: pd.DataFrame, frames: Mapping[str, pd.DataFrame]):
    """``_columns`` names a one-equation frame by its label only; name it "label: equation"."""
    rename = {}
    for key, frame in frames.items():
        eqs = list(dict.fromkeys(frame["equation"]))
        if len(eqs) == 1 and key in table.columns:
            rename[key] = f"{key}: {eqs[0]}"
    return table.rename(columns=rename)


def _insert_rows(table: pd.DataFrame, extra: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """Indicator rows go just above "Observations" (the paper's "控制变量 Yes" rows)."""
    if not extra:
        return table
    rows = pd.DataFrame([{"term": name, **{c: values.get(c, "") for c in table.columns[1:]}}
                         for name, values in extra.items()], columns=table.columns)
    at = table.index[table["term"] == "Observations"]
    cut = int(at[0]) if len(at) else len(table)
    out = pd.concat([table.iloc[:cut], rows, table.iloc[cut:]], ignore_index=True)
    return out.fillna("")


def missing_columns(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The ``columns`` (duplicates once) that ``frame`` lacks, in the order given."""
    return [c for c in dict.fromkeys(columns) if c not in frame.columns]
