"""Run the whole study (docs/contracts.md contract 4): stages in the paper's order, one report.

Stages: data (indices, regimes, weights, spectrum → ``data.nc``); Table 1 and Moran's I
(Figures 1–3) with maps; Tables 2–3 — the headline specification beside the paper's, by GS3SLS,
3SLS and the posterior, compared with each other and with the truth when the data are
simulated, and LOO comparisons; Tables 4–10 (robustness, regimes, quadratic, censored factor
model). Every stage prints a progress line with its elapsed time. Results are written into a
staging folder that replaces the output folder only when the whole study has succeeded, with a
manifest of what belongs to the run, so ``results/`` is never a mix of two runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from data_prep.dataset import cross_section, panel_table, save_dataset
from data_prep.errors import InputError
from data_prep.exploratory import moran_scatter, morans_i
from data_prep.files import (atomic_write, check_output_paths, file_sha256, staged_folder,
                             write_manifest)
from data_prep.regimes import add_regimes
from data_prep.spectrum.stored import spectrum_from_dataset
from data_prep.weights import weights_from_dataset
from models.bayes.city_effects import city_effects
from models.bayes.model_comparison import compare_models, comparison_plot
from models.bayes.postprocess import summary_frame
from models.spec.coefficient_tables import to_markdown, write_csv_atomic, write_text_atomic
from models.spec.quadratic import build_quadratic
from models.study import headline
from models.study.compare import CRITERION_NOTE, compare_estimates, comparison_sentence
from models.study.config import StudyConfig
from models.study.headline import (IMPACT_NOTE, gs3sls_impacts, impact_sentence, impact_table,
                                   joint_formulas, plain_formulas, recovery)
from models.study.plan import StudyPlan, build_plan, headline_formulas
from models.study.report import Report, versions
from models.study.system_fit import TABLE_NOTE, fit_system, paper_system_table, warning_lines
from models.study.tables.factor import NOTE as FACTOR_NOTE, factor_tables
from models.study.tables.quadratic import NOTE as QUADRATIC_NOTE
from models.study.tables.quadratic import quadratic_fits, quadratic_table_from_fits
from models.study.tables.regimes import point_mass_note, regime_names, regime_table
from models.study.tables.robustness import (FIXED_EFFECTS_NOTE, NATIONAL_BENCHMARK_NOTE,
                                            alternative_measures_table, instruments_table,
                                            sample_and_effects_table)


def say(message: str) -> None:
    print(f"[run_all] {message}", flush=True)


@dataclass
class Study:
    """What the stages share: settings, data, where files go and what was written."""

    cfg: StudyConfig
    folder: Path                      # the staging folder (renamed to the output at the end)
    progress: bool = True
    report: Report = field(default_factory=Report)
    written: list[Path] = field(default_factory=list)
    ds: object = None
    frame: pd.DataFrame | None = None
    weights: object = None
    eigenvalues: np.ndarray | None = None
    truth: pd.DataFrame | None = None
    controls: list[str] = field(default_factory=list)
    fits: dict = field(default_factory=dict)
    plan: StudyPlan | None = None
    gs3sls_impacts: dict = field(default_factory=dict)  # system name -> impacts frame or None

    @property
    def synthetic(self) -> bool:
        return self.ds is not None and self.ds.attrs.get("synthetic") == "true"

    def bayes_settings(self) -> dict:
        """The sampler settings every posterior of the study uses; ``target_accept``,
        ``max_treedepth`` and ``priors`` (the ``[bayes]`` and ``[priors]`` keys) too."""
        c = self.cfg
        # None / {} mean the sampler's and the model's defaults
        return dict(draws=c.draws, tune=c.tune, chains=c.chains, seed=c.seed,
                    sampler=c.sampler, progress=self.progress, target_accept=c.target_accept,
                    max_treedepth=c.max_treedepth, priors=dict(c.priors))

    def sampler_settings(self) -> dict:
        """:meth:`bayes_settings` plus the convergence checks of a study (advice names config
        keys; preview thresholds in quick mode, ``models.bayes.sampling.Checks``)."""
        # lazy: PyMC and matplotlib load when a stage runs, not when planning (--dry-run)
        from models.bayes.sampling import study_checks

        return {**self.bayes_settings(), "checks": study_checks(self.cfg.quick)}

    def path(self, kind: str, name: str) -> Path:
        folder = self.folder / kind
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def table(self, frame: pd.DataFrame, name: str, title: str, sentence: str,
              note: str | None = None) -> None:
        """Write ``tables/<name>.csv`` and ``.md`` and add the table to the report."""
        self.written.append(write_csv_atomic(frame, self.path("tables", f"{name}.csv")))
        self.written.append(write_text_atomic(to_markdown(frame, note),
                                              self.path("tables", f"{name}.md")))
        self.report.table(frame, title, sentence, note, file=f"tables/{name}.csv")

    def figure(self, path: Path, caption: str) -> None:
        self.written.append(Path(path))
        self.report.figure(f"figures/{Path(path).name}", caption)

    def posterior(self, idata, name: str) -> None:
        path = self.path("posteriors", f"{name}.nc")
        self.written.append(atomic_write(path, lambda tmp: idata.to_netcdf(tmp,
                                                                            engine="h5netcdf")))
        self.written.append(write_csv_atomic(summary_frame(idata),
                                             self.path("posteriors", f"{name}_summary.csv")))


class Stage:
    """A progress line before and after a stage, with its elapsed time, kept for the report."""

    def __init__(self, study: Study, label: str):
        self.study, self.label = study, label

    def __enter__(self):
        self.start = time.perf_counter()
        say(f"{self.label} ...")
        return self

    def __exit__(self, *exc):
        elapsed = time.perf_counter() - self.start
        if exc[0] is None:
            say(f"{self.label}: done in {elapsed:.1f} s")
            self.study.report.timings.append((self.label, elapsed))


# ----------------------------------------------------------------------------- stages

def load_data(study: Study) -> None:
    """The Dataset, its cross-section, weights, spectrum and truth (nothing written)."""
    cfg = study.cfg
    ds = headline.study_dataset(cfg.data)
    if "weights_row" not in ds and "link" not in ds.dims:
        raise InputError("the study data have no spatial weights")
    ds = _with_regimes(ds, cfg.agglomeration)
    study.ds, study.controls = ds, list(cfg.controls)
    study.frame = cross_section(ds)
    study.weights = weights_from_dataset(ds)
    study.eigenvalues = spectrum_from_dataset(ds)
    study.truth = headline.truth_frame(ds)


def prepare_study(cfg: StudyConfig, progress: bool = True) -> Study:
    """Load the data and plan the whole study, before any estimation and without writing.

    Raises one InputError listing every problem of the plan (``models.study.plan``).
    """
    study = Study(cfg, Path(), progress=progress)
    with Stage(study, "data: indices, regimes, weights, spectrum"):
        load_data(study)
    with Stage(study, "study plan: tables, systems, identification"):
        study.plan = build_plan(cfg, study.ds, study.frame, study.weights)
        study.plan.check()
    return study


def _skipped(study: Study, number: int) -> bool:
    """True when the plan skips Table ``number``: said on the console and in the report."""
    if study.plan.runs(number):
        return False
    _announce(study, study.plan.tables[number].skip_line())
    return True


def _announce(study: Study, line: str) -> None:
    """A line for the user on the console and in the report (work the run does not do)."""
    say(line)
    study.report.lines([line + "."])


def stage_data(study: Study) -> None:
    """``data.nc`` and the report's description of the data and the config."""
    cfg, ds = study.cfg, study.ds
    study.written.append(save_dataset(ds, study.folder / "data.nc"))
    r = study.report
    if cfg.quick:
        r.title = "Study report — PREVIEW (quick mode)"
    what = ("the embedded synthetic demo, generated from a known structural system (the truth "
            "is stored with the data and shown beside every estimate)" if study.truth is not None
            else "the embedded synthetic demo" if study.synthetic
            else f"the user's data ({', '.join(Path(p).name for p in cfg.data.values() if isinstance(p, str) and Path(p).suffix)})")
    r.preamble += [
        f"**Data**: {what}: {ds.sizes['city']} cities, {ds.sizes['year']} years, "
        f"{ds.sizes['industry']} industries. Cross-section models use each city's period mean.",
        "",
        f"**Config**: `{Path(cfg.source).name}`"
        + (" in quick mode: a PREVIEW (fewer draws; Tables 4–10 frequentist only; posteriors "
           "judged by preview thresholds, R-hat ≤ 1.05 and bulk-ESS ≥ 100, so \"converged "
           "(preview)\" is not a final result: run without --quick)" if cfg.quick else "")
        + f"; sampler {cfg.sampler}, {cfg.chains} chains × {cfg.draws} draws after {cfg.tune} "
          f"tuning steps, seed {cfg.seed}.",
        "",
        f"Choices: `{ds.attrs.get('choices', '{}')}`",
    ]


def _with_regimes(ds, indices):
    """High/low regime variables A_H, A_L (docs/method.md §4) of the indices present."""
    return add_regimes(ds, tuple(i for i in indices if i in ds))


def stage_descriptive(study: Study) -> None:
    """Table 1, Moran's I and the Moran scatter plots (paper's Figures 1–3)."""
    cfg, ds = study.cfg, study.ds
    variables = ["ER", *cfg.agglomeration, *study.controls]
    study.report.section("Descriptive statistics and spatial autocorrelation")
    table1 = headline.descriptive_table(ds, variables).round(3)
    study.table(table1, "table1_descriptive", "Table 1. Descriptive statistics",
                "Mean, standard deviation and range of every variable over the city-year panel.")
    moran = morans_i(ds, ("ER", *cfg.agglomeration), seed=cfg.seed)
    study.table(moran.round(4), "moran_i", "Global Moran's I (999 permutations)",
                "Moran's I per year and for the period mean. The permutation p-value counts "
                "the permutations in the tail the observed I falls in, so a small one means "
                "either clustering "
                "(I above its expectation E[I]: neighbouring cities resemble each other) or "
                "dispersion (I below E[I]: neighbours differ, as on a checkerboard).")
    study.report.verdict(moran_verdict(moran))
    for k, var in enumerate(("ER", *cfg.agglomeration), start=1):
        path = study.path("figures", f"figure{k}_moran_{var}.png")
        moran_scatter(ds, var, path)
        study.figure(path, f"Figure {k}. Moran scatter plot of {var}: each city's standardised "
                           f"value against its neighbours' average (period means).")
    _maps(study)


def moran_verdict(moran: pd.DataFrame, alpha: float = 0.05) -> str:
    """The Table 1 verdict on the period means (rows with year "mean" of ``morans_i``).

    esda's permutation p-value ``p_sim`` is folded — (1 + #permuted I at least as extreme in the
    observed tail) / (1 + permutations) — so it is small for a significantly negative I too;
    the side of E[I] = −1/(n − 1) tells clustering (I > E[I]) from dispersion (I < E[I])
    (Cliff & Ord 1981, *Spatial Processes*, ch. 1).
    """
    rows = moran[moran["year"].astype(str) == "mean"] if "year" in moran else moran
    groups: dict[str, list[str]] = {"clustered": [], "dispersed": [], "not significant": []}
    for row in rows.itertuples(index=False):
        key = ("not significant" if row.p_value >= alpha
               else "clustered" if row.I > row.expected_I else "dispersed")
        groups[key].append(str(row.variable))
    words = {"clustered": "spatially clustered (I > E[I])",
             "dispersed": "spatially dispersed (I < E[I])",
             "not significant": "neither clustered nor dispersed"}
    parts = [f"{', '.join(names)} {'are' if len(names) > 1 else 'is'} {words[key]}"
             for key, names in groups.items() if names]
    return (f"Table 1 / Moran's I of the period means (permutation p < {alpha:g}): "
            + ("; ".join(parts) if parts else "no variable tested") + ".")


def _maps(study: Study) -> None:
    """Choropleths of the indices and the LISA cluster map of ER (when the data hold a map)."""
    # lazy: PyMC and matplotlib load when a stage runs, not when planning (--dry-run)
    from models.study.maps import index_maps, lisa_map

    ds, cfg = study.ds, study.cfg
    if "geometry_wkt" not in ds:
        study.report.lines(["Maps skipped: the weights did not come from a polygon file, so the "
                            "data hold no map."])
        return
    variables = ("ER", *cfg.agglomeration)
    path = index_maps(ds, study.path("figures", "map_indices.png"), variables)
    study.figure(path, f"Map of the period means of {', '.join(variables)}.")
    path, table = lisa_map(ds, study.path("figures", "map_lisa_ER.png"), "ER",
                           permutations=999, seed=cfg.seed)
    counts = table["label"].value_counts()
    study.figure(path, "LISA cluster map of ER (local Moran, 999 permutations, p < 0.05): "
                       + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".")


def headline_specs(study: Study) -> dict[str, list[str]]:
    """The identified headline system(s): one joint system, or one per index."""
    return headline_formulas(study.cfg)


def _fitter(study: Study) -> Callable:
    """fit_system on the study's cross-section, weights, spectrum and sampler settings."""
    def fit(formulas, **options):
        if options.get("frequentist", True):
            options.setdefault("plain_formulas", plain_formulas(formulas))
        return fit_system(formulas, study.frame, study.weights, study.eigenvalues,
                          instruments=study.cfg.instruments,
                          **{**study.sampler_settings(), **options})
    return fit


def stage_systems(study: Study) -> None:
    """Tables 2–3: headline and paper specifications, frequentist beside posterior, truth."""
    cfg = study.cfg
    fit = _fitter(study)
    for name, formulas in headline_specs(study).items():
        with Stage(study, f"headline system {name} ({len(formulas)} equations)"):
            study.fits[name] = fit(formulas)
            study.posterior(study.fits[name].idata, f"system_{name}")
    for a, system in study.plan.paper.items():
        _paper_fit(study, fit, a, system)
    study.report.section(
        "Tables 2–3: the spatial simultaneous systems",
        "Headline: " + "; ".join(f"`{f}`" for fs in headline_specs(study).values() for f in fs)
        + ". Paper specification (diagnostic): the same controls in both equations of each "
          "pair, identified only through spatial lags of the controls.")
    if study.truth is not None:
        for name in headline_specs(study):
            head = study.fits[name]
            rec = _recovery_rates(head, study.truth, head.dependents)
            study.report.verdict(
                f"Recovery ({name} system, every equation): the truth lies inside the 94 % HDI "
                f"for {rec['hdi']} and inside the GS3SLS 95 % interval for {rec['ci']} of the "
                f"coefficients.")
    for k, a in enumerate(cfg.agglomeration, start=2):
        _system_tables(study, k, a)
    if cfg.quick:
        # each LOO comparison fits further structures (non-spatial, seed controls): a compile
        # apiece, which a preview does not need
        _announce(study, "LOO model comparisons: not run in quick mode (a preview); run "
                         "without --quick to rank the specifications")
    else:
        with Stage(study, "LOO model comparison"):
            _loo_comparisons(study, fit)


def _paper_fit(study: Study, fit: Callable, index: str, system) -> None:
    """The paper's specification of ER ↔ ``index`` as the plan allows (a diagnostic): the parts
    that cannot be identified, and a fit that fails on a singular system, are notes."""
    notes = [f"Paper specification (diagnostic): {n}." for n in system.notes]
    if not any(n.endswith("not fitted") for n in system.notes):
        with Stage(study, f"paper specification ER <-> {index} (same controls in both "
                          f"equations)"):
            try:
                paper = fit(system.formulas, plain_formulas=system.plain)
            except InputError as err:
                notes.append(f"Paper specification ER ↔ {index} (diagnostic) not fitted: {err}.")
            else:
                study.fits[f"paper_{index.lower()}"] = paper
                study.posterior(paper.idata, f"system_paper_{index.lower()}")
    study.report.lines(notes)


def _headline_name(study: Study, index: str) -> str:
    return "headline" if study.cfg.joint else f"headline_{index.lower()}"


def _headline_for(study: Study, index: str):
    return study.fits[_headline_name(study, index)]


def _gs3sls_impacts(study: Study, index: str) -> pd.DataFrame | None:
    """The headline system's GS3SLS impacts (``models.study.headline.gs3sls_impacts``), computed once per
    system; None, said in the report, when the estimate is outside the admissible region."""
    name = _headline_name(study, index)
    if name not in study.gs3sls_impacts:
        gs3sls = study.fits[name].frequentist.get("GS3SLS")
        try:
            study.gs3sls_impacts[name] = (
                gs3sls_impacts(gs3sls, study.eigenvalues, seed=study.cfg.seed,
                               W=study.weights.matrix) if gs3sls is not None else None)
        except InputError as err:
            study.gs3sls_impacts[name] = None
            study.report.lines([f"GS3SLS impacts of the {name} system not computed: {err}"])
    return study.gs3sls_impacts[name]


def _system_tables(study: Study, k: int, index: str) -> None:
    head = _headline_for(study, index)
    paper = study.fits.get(f"paper_{index.lower()}")
    eqs = ["ER", index]
    fits = {"": head, **({"Paper": paper} if paper is not None else {})}
    stem = f"table{k}_{index.lower()}"
    study.table(paper_system_table(fits, equations=eqs), f"{stem}_system",
                f"Table {k}. ER and {index}: GS3SLS, 3SLS and posterior",
                "The headline specification by GS3SLS (spatial), 3SLS (non-spatial) and its "
                "posterior, then the paper's specification (\"Paper\" columns) the same ways. "
                "These are structural coefficients; the impacts table below gives the effects.",
                TABLE_NOTE)
    cmp = compare_estimates(head.frequentist["GS3SLS"].to_frame(), head.summary)
    cmp = cmp[cmp["equation"].isin(eqs)]
    if study.truth is not None:
        cmp = cmp.merge(study.truth, on=["equation", "term"], how="left")
    study.table(cmp.round(4), f"{stem}_compare",
                f"Table {k} (comparison). Posterior vs GS3SLS"
                + (" vs truth" if study.truth is not None else ""),
                "Each coefficient's posterior mean beside the GS3SLS estimate and their gap in "
                "GS3SLS standard errors (gap_se) and in posterior sds (gap_sd)"
                + (" and the true value" if study.truth is not None else "") + ".",
                CRITERION_NOTE)
    impacts = impact_table(head, _gs3sls_impacts(study, index), eqs)
    study.table(impacts.round(4), f"{stem}_impacts",
                f"Table {k} (impacts). Direct, indirect and total impacts on ER and {index}",
                f"What the headline system implies for ER and {index}: the LeSage–Pace impacts "
                f"of every exogenous variable and of a unit shock to the ER and the {index} "
                f"equation, posterior beside GS3SLS.", IMPACT_NOTE)
    verdict = [f"Table {k} (ER ↔ {index}): headline posterior {head.verdict}"
               + f" ({head.convergence[0] if head.convergence else 'no report'})",
               impact_sentence(impacts, "ER", index), impact_sentence(impacts, index, "ER"),
               comparison_sentence(cmp)]
    if study.truth is not None:
        rec = _recovery_rates(head, study.truth, eqs)
        verdict.append(f"truth inside the 94 % HDI for {rec['hdi']} and inside the GS3SLS 95 % "
                       f"interval for {rec['ci']} of the headline coefficients")
    if paper is not None:
        verdict.append("the paper's specification: " + _paper_diagnosis(paper))
    study.report.verdict("; ".join(verdict) + ".")
    study.report.lines(warning_lines({"headline": head,
                                      **({"paper specification": paper} if paper is not None else {})}))
    _system_figures(study, head, index, eqs)


def _recovery_rates(fit, truth: pd.DataFrame, equations) -> dict[str, str]:
    rec = recovery(fit, truth[truth["equation"].isin(equations)])
    rec = rec.dropna(subset=["truth"])
    share = lambda col: (f"{int(rec[col].sum())}/{len(rec)} ({100 * rec[col].mean():.0f} %)"  # noqa: E731
                         if col in rec and len(rec) else "n/a")
    return {"hdi": share("in_hdi"), "ci": share("in_ci")}


def _paper_diagnosis(fit) -> str:
    """One sentence on the paper's specification: convergence, weak-identification warnings and,
    as its own reason (the check is exact), an estimate outside the admissible region."""
    text = [w.lower() for w in fit.warnings]
    unstable = sum("outside the admissible region" in w for w in text)
    weak = sum(("weak" in w or "spatial lag" in w) and "outside the admissible region" not in w
               for w in text)
    parts = []
    if not fit.converged:
        parts.append(f"its posterior {fit.verdict} (" + (fit.convergence[0] if fit.convergence
                                                         else "no report") + ")")
    if weak:
        parts.append(f"{weak} weak-identification warning(s)")
    if unstable:
        parts.append("its GS3SLS estimate lies outside the admissible region (no stable "
                     "equilibrium)")
    if not parts:
        return "no warning"
    verdict = " — it is weakly identified" if weak or not fit.converged else ""
    return ", ".join(parts) + verdict


def _system_figures(study: Study, fit, index: str, equations) -> None:
    """Forests (posterior beside GS3SLS and truth, standardised), impact maps, diagnostics."""
    # lazy: PyMC and matplotlib load when a stage runs, not when planning (--dry-run)
    from models.bayes.diagnostics_plots import diagnostic_figures
    from models.study.figures import comparison_figures

    if study.cfg.joint and index != study.cfg.agglomeration[0]:
        return  # one joint system: its figures are drawn once
    name = _headline_name(study, index)
    gs3sls = fit.frequentist.get("GS3SLS")
    paths = comparison_figures(fit.idata, study.frame, study.folder / "figures",
                               frequentist=gs3sls.to_frame() if gs3sls is not None else None,
                               frequentist_effects=_gs3sls_impacts(study, index),
                               truth=study.truth,
                               weights=study.weights, prefix=f"{name}_")
    truth = " and the truth" if study.truth is not None else ""
    captions = [f"Coefficients of the {name} system: posterior mean and 94 % HDI beside the "
                f"GS3SLS estimate and 95 % interval{truth}, standardised (b·sd(x)/sd(y)) so "
                f"every slope reads on one axis; intercepts in their own panel.",
                f"Direct, indirect and total impacts of the {name} system (a shock: a unit "
                f"innovation in that equation): posterior beside GS3SLS{truth}, standardised."]
    for path, caption in zip(paths, captions):
        study.figure(path, caption)
    _effect_maps(study, fit, name)
    prefix = f"diagnostics_{name}_"
    for path in diagnostic_figures(fit.idata, study.folder / "figures", prefix=prefix):
        study.figure(path, f"Sampler diagnostics ({path.stem.removeprefix(prefix)}) of the "
                           f"{name} system.")


def _effect_maps(study: Study, fit, name: str) -> None:
    """Per-city posterior direct and total response of ER to each agglomeration index."""
    # lazy: PyMC and matplotlib load when a stage runs, not when planning (--dry-run)
    from models.study.maps import (UNIFORM_SCALE, effect_map_panels, effect_map_title, effect_maps,
                                uniform_panels)

    if "geometry_wkt" not in study.ds:
        return
    try:
        effects = city_effects(fit.idata, study.weights, max_draws=200)
    except InputError as err:
        study.report.lines([f"Per-city impact maps skipped: {err}"])
        return
    for index in study.cfg.agglomeration:
        if index not in set(str(v) for v in effects["variable"].values):
            continue
        path = effect_maps(study.ds, effects, "ER", index,
                           study.path("figures", f"{name}_map_effect_{index}_on_ER.png"))
        panels, kind = effect_map_panels(effects, "ER", index)
        flat = uniform_panels(panels)
        remark = "".join(f" The {panel} panel is uniform across cities (it spans "
                         f"{100 * span:.2g} % of its mean) and is drawn on a colour scale of its "
                         f"mean ± {100 * UNIFORM_SCALE:g} %: read it as one number."
                         for panel, span in flat.items())
        study.figure(path, f"{effect_map_title('ER', index, kind)} ({name} system): posterior "
                           f"mean and sd of the direct response (the city's own) and of the "
                           f"total (a {'shock' if kind == 'shock' else 'change'} in the city, "
                           f"summed over all cities)." + remark)


def _loo_comparisons(study: Study, fit: Callable) -> None:
    """Spatial vs non-spatial headline and headline vs the paper's controls (same outcomes).

    LOO compares models of the same outcomes on the same cities, so the paper's per-index pairs
    are not compared with the joint headline; the paper's choice of controls (no exclusions) is
    compared on the headline's equations instead.
    """
    cfg = study.cfg
    for name, formulas in headline_specs(study).items():
        head = study.fits[name]
        plain = fit(plain_formulas(formulas), frequentist=False)
        models = {"spatial (headline)": head.idata, "non-spatial": plain.idata}
        aggs = cfg.agglomeration if cfg.joint else [name.removeprefix("headline_").upper()]
        if cfg.paper_specification and any(cfg.exclude.values()):
            models["paper controls"] = fit(joint_formulas(aggs, study.controls),
                                          frequentist=False).idata
        try:
            result = compare_models(models)
        except InputError as err:  # fewer than two converged posteriors: nothing to rank
            study.report.lines([f"LOO comparison ({name} system): {err}"])
            study.report.verdict(f"LOO ({name}): {err}")
            continue
        study.table(result.table.round(3), f"loo_{name}", f"LOO comparison ({name} system)",
                    result.sentence)
        study.report.verdict(f"LOO ({name}): {result.sentence}")
        path = comparison_plot(result, study.path("figures", f"loo_{name}.png"))
        study.figure(path, f"Leave-one-city-out comparison of the {name} system with its "
                           f"non-spatial version" + (" and with the paper's controls"
                                                     if "paper controls" in models else "") + ".")


def _fit_options(study: Study) -> dict:
    """Sampler settings for Tables 4–8; quick mode fits them by GS3SLS/3SLS only."""
    return {**study.sampler_settings(), "bayes": not study.cfg.quick}


def _signs_verdict(study: Study, title: str, fits: dict) -> None:
    """How many fits keep the headline's sign of each index's coefficient in the ER equation
    (a structural coefficient, not an impact), and how many posteriors converged."""
    head = {a: _headline_for(study, a) for a in study.cfg.agglomeration}
    kept, total, converged, sampled = 0, 0, 0, 0
    failed = [f"{label} ({fit.convergence[0] if fit.convergence else 'no report'})"
              for label, fit in fits.items() if fit.idata is not None and not fit.converged]
    for fit in fits.values():
        for a, h in head.items():
            gs = fit.frequentist.get("GS3SLS")
            ref = h.frequentist.get("GS3SLS")
            if gs is None or ref is None or ("ER", a) not in gs.params.index:
                continue
            total += 1
            kept += int(np.sign(gs.params[("ER", a)]) == np.sign(ref.params[("ER", a)]))
        if fit.idata is not None:
            sampled += 1
            converged += int(fit.converged)
    text = (f"{title}: the GS3SLS coefficient of the index in the ER equation (structural, not "
            f"an impact) keeps the headline's sign in {kept} of {total} fits")
    if sampled:
        text += (f"; {converged} of {sampled} posteriors converged"
                 + (" (preview)" if study.cfg.quick else ""))
    if failed:
        text += "; did NOT converge (no † in their columns): " + "; ".join(failed)
    study.report.verdict(text + ".")


def _er_benchmark(study: Study) -> str:
    """The headline ER's counterfactual as recorded in the dataset's choices."""
    choice = json.loads(study.ds.attrs.get("choices", "{}")).get("er_benchmark", "industry_mix")
    return choice.replace("_", "-")


def stage_robustness(study: Study) -> None:
    """Tables 4–6: alternative measures, subsample and year × region effects, instruments."""
    cfg = study.cfg
    options = {**_fit_options(study), "exclude": cfg.exclude}
    study.report.section("Tables 4–6: robustness",
                         "Each system is an ER ↔ index pair with the headline's exclusions.")
    runs = {
        4: ("table4_alternative_measures", "Table 4. Alternative measures of ER, PSS and PSD",
            "ER by the change in GDP growth and by Martin's index against the national "
            f"growth rate (headline ER: {_er_benchmark(study)} benchmark), PSS by output, PSD "
            "by 1 − Gini.",
            lambda: alternative_measures_table(study.frame, study.weights, study.eigenvalues,
                                               study.controls, **options)),
        5: ("table5_subsample_fixed_effects",
            "Table 5. Without provincial capitals; year × region effects",
            "The pairs on the cities that are not provincial capitals or sub-provincial "
            "cities (W restricted), and on the stacked city-year panel with year × region "
            "effects.",
            lambda: sample_and_effects_table(study.frame, panel_table(study.ds), study.weights,
                                             study.eigenvalues, study.controls,
                                             agglomeration=cfg.agglomeration, **options)),
        6: ("table6_instruments", "Table 6. Historical instruments",
            "Each historical instrument added to GS3SLS's instruments and, in the posterior, "
            "to the index's equation only.",
            lambda: instruments_table(study.frame, study.weights, study.eigenvalues,
                                      study.controls, instrument_sets={
                                          c: [c] for c in cfg.instruments},
                                      agglomeration=cfg.agglomeration, **options)),
    }
    notes = {4: NATIONAL_BENCHMARK_NOTE, 5: FIXED_EFFECTS_NOTE}
    for k, (name, title, sentence, run) in runs.items():
        if _skipped(study, k):
            continue
        with Stage(study, title):
            table, fits = run()
            study.table(table, name, title, sentence,
                        f"{TABLE_NOTE} {notes[k]}" if k in notes else TABLE_NOTE)
            _signs_verdict(study, title.split(".")[0], fits)
            study.report.lines(warning_lines(fits))


def stage_regimes(study: Study) -> None:
    """Tables 7–8: high/low regimes of each index in a three-equation system."""
    cfg = study.cfg
    study.report.section("Tables 7–8: high and low agglomeration regimes",
                         "A_H = A·1[A > yearly mean], A_L = A·1[A ≤ yearly mean] after 1 %/99 % "
                         "winsorising; ER on both, each regime on ER.")
    for k in (7, 8):
        if _skipped(study, k):
            continue
        index = cfg.agglomeration[k - 7]
        high, low = regime_names(index)
        exclude = {"ER": cfg.excluded("ER"), high: cfg.excluded(index),
                   low: cfg.excluded(index)}
        with Stage(study, f"Table {k}: {index} regimes"):
            table, fit = regime_table(study.frame, study.weights, study.eigenvalues, index,
                                      study.controls, exclude, instruments=cfg.instruments,
                                      **_fit_options(study))
            study.table(table, f"table{k}_{index.lower()}_regimes",
                        f"Table {k}. ER and the high/low regimes of {index}",
                        "GS3SLS and 3SLS beside the posterior of the three-equation regime "
                        "system.", f"{TABLE_NOTE} {point_mass_note(study.frame, index)}")
            if fit.idata is not None:
                study.posterior(fit.idata, f"regimes_{index.lower()}")
            gs = fit.frequentist.get("GS3SLS")
            text = f"Table {k} ({index} regimes)"
            if gs is not None:
                text += (f": GS3SLS coefficient of {high} in the ER equation "
                         f"{gs.params[('ER', high)]:.3f}, of {low} {gs.params[('ER', low)]:.3f} "
                         f"(structural coefficients, not impacts)")
            if fit.idata is not None:
                text += f"; posterior {fit.verdict}" + (
                    f" ({fit.convergence[0]})" if fit.posterior_failed else "")
            study.report.verdict(text + ".")
            study.report.lines(warning_lines({"": fit}))


def stage_quadratic(study: Study) -> None:
    """Table 9: ER on A and A² (inverted U?) for each index, OLS beside the posterior."""
    if _skipped(study, 9):
        return
    # lazy: PyMC and matplotlib load when a stage runs, not when planning (--dry-run)
    from models.bayes.sampling import convergence_word
    from models.study.quadratic_plot import plot_quadratic

    cfg = study.cfg
    fits = quadratic_fits(study.frame, "ER", cfg.agglomeration, study.controls,
                          **study.sampler_settings(), bayes=not cfg.quick)
    study.report.section("Table 9: the quadratic model")
    table = quadratic_table_from_fits(fits)
    study.table(table, "table9_quadratic", "Table 9. ER on A and A²",
                "Is the effect of agglomeration on resilience an inverted U? Turning point "
                "−c1/(2c2) with its Fieller interval, the Lind–Mehlum test and, from the "
                "posterior, P(inverted U on the observed range) (slope positive at min A, "
                "negative at max A) and P(turning point inside the observed range).",
                QUADRATIC_NOTE if not cfg.quick else QUADRATIC_NOTE.split(" Posterior:")[0])
    verdicts = []
    for index, (fit, idata, post) in fits.items():
        lm = fit.lind_mehlum
        text = (f"{index} (observed range [{lm.x_low:.3g}, {lm.x_high:.3g}]): Lind–Mehlum "
                f"p = {lm.p_value:.3f}")
        if post is not None:
            p = post.probabilities
            text += (f", P(inverted U on the observed range) = {p['inverted_u_range']:.2f}, "
                     f"P(turning point inside the range) = {p['inside_range']:.2f}")
            study.posterior(idata, f"quadratic_{index.lower()}")
            report = json.loads(idata.attrs.get("convergence_report", "[]"))
            study.report.lines([f"* {index}: {line}" for line in report])
            word = convergence_word(report)
            text += f"; posterior {word}" + ("" if word.startswith("converged") or not report
                                             else f" ({report[0]})")
        verdicts.append(text)
        data = build_quadratic(study.frame, f"ER ~ {' + '.join([index, *study.controls])}",
                               index)
        path = plot_quadratic(data, study.path("figures", f"table9_curve_{index.lower()}.png"),
                              fit=fit, idata=idata)
        band = "94 % posterior band" if idata is not None else "95 % OLS confidence band"
        marked = ("the posterior median turning point with its 94 % HDI and the OLS turning "
                  "point" if idata is not None else "the OLS turning point")
        study.figure(path, f"Fitted effect of {index} on ER (other regressors at their means) "
                           f"with its {band}; the observed range of {index} shaded, {marked} "
                           f"marked where they fall in the plotted range (else named above it).")
    study.report.verdict("Table 9 (quadratic): " + "; ".join(verdicts) + ".")


def stage_factor(study: Study) -> None:
    """Table 10: the censored (Tobit) factor model of the coupling-coordination degree."""
    if _skipped(study, 10):
        return

    cfg = study.cfg
    outcome = f"Interact_{cfg.agglomeration[0]}"
    panel = panel_table(study.ds)
    study.report.section("Table 10: what drives the agglomeration–resilience interaction",
                         f"Outcome: {outcome}, the coupling-coordination degree of "
                         f"{cfg.agglomeration[0]} and ER (in [0, 1], hence censored), on the "
                         f"factors with city and year effects; groups: "
                         f"{', '.join(cfg.groups) or 'none'}.")
    # [priors] holds the system model's prior names; the censored model has its own
    options = {k: v for k, v in study.sampler_settings().items() if k != "priors"}
    result = factor_tables(panel, outcome, cfg.factors, cfg.groups, bayes=not cfg.quick,
                           mundlak=cfg.mundlak, **options)
    study.table(result["table10"], "table10_factor_model",
                f"Table 10. Drivers of {outcome}: Tobit beside the hierarchical posterior",
                "Full sample and each group: the Tobit (separate regressions per group) beside "
                "one hierarchical censored model per grouping whose group slopes are partially "
                "pooled toward the overall slopes"
                + (", with the city means of the factors (Mundlak)" if cfg.mundlak else "")
                + "; the notes say what each column assumes about the city effects.", FACTOR_NOTE)
    if len(result["table10_contrasts"]):
        study.table(result["table10_contrasts"].round(4), "table10_contrasts",
                    "Table 10 (contrasts). Differences between groups",
                    "Posterior of each group's slope minus the reference group's, with its 94 % "
                    "HDI and the probability that it is positive.")
    study.written.append(write_csv_atomic(result["notes"],
                                          study.path("tables", "table10_notes.csv")))
    study.report.lines([f"* {n}" for n in result["notes"]["note"]])
    failed = [n for n in result["notes"]["note"] if "FAILED" in n]
    study.report.verdict("Table 10 (censored factor model): "
                         + ("Tobit only (quick mode: a preview)" if cfg.quick else
                            "every posterior converged" if not failed else
                            f"{len(failed)} posterior(s) did NOT converge: " + "; ".join(failed))
                         + ".")


# ----------------------------------------------------------------------------- the whole run

STAGES: list[tuple[str, Callable[[Study], None]]] = [
    ("data: the study Dataset (data.nc)", stage_data),
    ("Table 1 and Moran's I (Figures 1-3)", stage_descriptive),
    ("Tables 2-3: the spatial simultaneous systems", stage_systems),
    ("Tables 4-6: robustness", stage_robustness),
    ("Tables 7-8: regimes", stage_regimes),
    ("Table 9: quadratic model", stage_quadratic),
    ("Table 10: censored factor model", stage_factor),
]


def run_study(cfg: StudyConfig, out: Path, progress: bool = True,
              study: Study | None = None) -> list[Path]:
    """Run every stage into a staging folder, then swap it in for ``out``; returns the files.

    ``study``: the data and plan from :func:`prepare_study` (prepared here when None), so a
    study whose plan has a problem stops before any folder is made.

    ``out`` is replaced only when the whole study succeeded (a ``README.md`` kept in it is
    carried over); ``manifest.json`` lists the run's files with their hashes, the config and
    data hashes, the seed and the package versions.
    """
    out = Path(out)
    check_output_paths(folders=[("--out", out)])
    study = study if study is not None else prepare_study(cfg, progress)
    with staged_folder(out, keep=("README.md",)) as staging:
        study.folder = staging
        for label, stage in STAGES:
            with Stage(study, label):
                stage(study)
        data_hash = file_sha256(staging / "data.nc")
        text = study.report.render({"sampler": cfg.seed},
                                   {"config": cfg.source, "config hash": cfg.digest()[:16],
                                    "data hash": data_hash[:16]})
        study.written.append(write_text_atomic(text, staging / "report.md"))
        study.written.append(write_manifest(staging, config_hash=cfg.digest(),
                                            data_hash=data_hash, seed=cfg.seed,
                                            versions=versions(), files=study.written))
    return [out / p.relative_to(staging) for p in study.written]
