"""Run the whole study and write results/ (DESIGN.md contract 4).

    python scripts/run_all.py [--config FILE.toml] [--quick] [--out results]

Without a config the embedded synthetic demo is used. Stages, in the seed's order:

* data: indices, weights and spectrum → ``data.nc``;
* Table 1: descriptive statistics; Moran's I (table and scatter plots, seed Figures 1–3);
* Tables 2–3: the spatial simultaneous systems ER ↔ PSS and ER ↔ PSD by GS3SLS and 3SLS,
  beside the Bayesian full-information posterior (``posteriors/``);
* ``report.md`` tying them together.

A config file (TOML) points at a user's data; every key is optional::

    [data]
    employment = "employment.csv"     # city, year, industry, employment
    weights = "map.geojson"           # or a .gal file
    covariates = "covariates.csv"     # city, year, ...
    cities = "cities.csv"             # city, ...
    island_policy = "refuse"          # refuse | nearest | keep

    [study]
    controls = ["Gov", "PGDP", "Fdi", "Fix_cap", "RnD", "HumCap", "Rd", "Popden", "Market"]
    agglomeration = ["PSS", "PSD"]
    instruments = ["rail_1930s", "popden_1984"]   # excluded instruments of the 3SLS columns
    exclude_er = []                   # controls left out of the ER equation
    exclude_agglomeration = []        # controls left out of the PSS / PSD equation

    [bayes]
    draws = 1000
    tune = 1000
    chains = 4
    seed = 1
    sampler = "nutpie"                # or "pymc"
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from data_prep.errors import InputError  # noqa: E402
from models.study import HISTORICAL_INSTRUMENTS, SEED_CONTROLS  # noqa: E402



@dataclass
class StudyConfig:
    """What to run: the data source, the systems' variables and the sampler settings."""

    data: dict = field(default_factory=dict)
    controls: list[str] = field(default_factory=lambda: list(SEED_CONTROLS))
    agglomeration: list[str] = field(default_factory=lambda: ["PSS", "PSD"])
    instruments: list[str] = field(default_factory=lambda: list(HISTORICAL_INSTRUMENTS))
    exclude_er: list[str] = field(default_factory=list)
    exclude_agglomeration: list[str] = field(default_factory=list)
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    seed: int = 1
    sampler: str = "nutpie"

    @classmethod
    def from_toml(cls, path: Path | None, quick: bool) -> "StudyConfig":
        raw: dict = {}
        if path is not None:
            try:
                raw = tomllib.loads(Path(path).read_text())
            except FileNotFoundError:
                raise InputError(f"{path}: config file not found") from None
            except tomllib.TOMLDecodeError as err:
                raise InputError(f"{path}: not valid TOML ({err})") from None
        sections = {"data": ("employment", "weights", "covariates", "cities", "island_policy",
                             "winsorize", "fill_policy", "er_threshold"),
                    "study": ("controls", "agglomeration", "instruments", "exclude_er",
                              "exclude_agglomeration"),
                    "bayes": ("draws", "tune", "chains", "seed", "sampler")}
        for name, table in raw.items():
            if name not in sections:
                raise InputError(f"{path}: unknown section [{name}]; expected data, study, bayes")
            unknown = sorted(set(table) - set(sections[name]))
            if unknown:
                raise InputError(f"{path}: unknown key(s) {', '.join(unknown)} in [{name}]; "
                                 f"known: {', '.join(sections[name])}")
        cfg = cls(data=dict(raw.get("data", {})), **raw.get("study", {}), **raw.get("bayes", {}))
        base = Path(path).parent if path else Path.cwd()
        for key in ("employment", "weights", "covariates", "cities"):
            if key in cfg.data:
                cfg.data[key] = str((base / cfg.data[key]).resolve())
        if quick:
            cfg.draws, cfg.tune, cfg.chains = min(cfg.draws, 300), min(cfg.tune, 300), min(cfg.chains, 2)
        return cfg


class Stage:
    """Prints what each stage does and how long it took (progress for a long run)."""

    def __init__(self, label: str):
        self.label = label

    def __enter__(self):
        self.start = time.perf_counter()
        print(f"[run_all] {self.label} ...", flush=True)
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            print(f"[run_all] {self.label}: done in {time.perf_counter() - self.start:.1f} s", flush=True)


def run_study(cfg: StudyConfig, out: Path, progress: bool = True) -> list[Path]:
    """Every stage of the study; returns the files written (each written atomically)."""
    import json

    from data_prep.dataset import cross_section, save_dataset
    from data_prep.exploratory import moran_scatter, morans_i
    from data_prep.files import atomic_write
    from data_prep.spectrum import spectrum_from_dataset
    from data_prep.weights import weights_from_dataset
    from models import study
    from models.bayes.diagnostics_plots import diagnostic_figures
    from models.bayes.postprocess import summary_frame
    from models.compare import compare_estimates
    from models.results import posterior_table, to_markdown, write_csv_atomic, write_text_atomic

    tables, figures, posteriors = out / "tables", out / "figures", out / "posteriors"
    written: list[Path] = []
    report: list[str] = [
        "# Study report", "",
        "Identification: as in the seed, both equations of each system carry the same controls "
        "unless the config excludes some (`exclude_er`, `exclude_agglomeration`), so the "
        "endogenous terms are identified only through spatial lags of the controls. Weak-instrument "
        "warnings, an estimate outside the admissible region or chains that disagree (R-hat > 1.01) "
        "below are the symptoms; an exogenous variable left out of one equation is the remedy.", ""]

    def table(df: pd.DataFrame, name: str, title: str, note: str | None = None) -> None:
        written.append(write_csv_atomic(df, tables / f"{name}.csv"))
        written.append(write_text_atomic(to_markdown(df, note), tables / f"{name}.md"))
        report.extend([f"## {title}", "", to_markdown(df, note), ""])

    with Stage("data: indices, weights, spectrum"):
        ds = study.study_dataset(cfg.data)
        synthetic = ds.attrs.get("synthetic") == "true"
        report += [f"Data: {ds.sizes['city']} cities, {ds.sizes['year']} years, "
                   f"{ds.sizes['industry']} industries"
                   + (" (embedded synthetic demo)." if synthetic else "."), "",
                   f"Choices: `{ds.attrs.get('choices', '{}')}`", ""]
        controls = [c for c in cfg.controls if c in ds]
        if len(controls) < len(cfg.controls):
            missing = sorted(set(cfg.controls) - set(controls))
            raise InputError(f"controls not found in the data: {', '.join(missing)}")
        for folder in (tables, figures, posteriors):
            folder.mkdir(parents=True, exist_ok=True)
        written.append(save_dataset(ds, out / "data.nc"))

    with Stage("Table 1 and Moran's I (Figures 1-3)"):
        table(study.descriptive_table(ds, ["ER", *cfg.agglomeration, *controls]).round(3),
              "table1_descriptive", "Table 1. Descriptive statistics (city-year panel)")
        moran = morans_i(ds, ("ER", *cfg.agglomeration), seed=cfg.seed)
        table(moran.round(4), "moran_i", "Global Moran's I (999 permutations)")
        for k, var in enumerate(("ER", *cfg.agglomeration), start=1):
            path = figures / f"figure{k}_moran_{var}.png"
            moran_scatter(ds, var, path)
            written.append(path)
            report += [f"![Moran scatter plot of {var}](figures/{path.name})", ""]

    frame = cross_section(ds)
    exclude = (cfg.exclude_er, cfg.exclude_agglomeration)
    weights = weights_from_dataset(ds)
    eigenvalues = spectrum_from_dataset(ds)
    for k, agg in enumerate(cfg.agglomeration, start=2):
        with Stage(f"Table {k}: ER <-> {agg} by GS3SLS and 3SLS"):
            fits = study.fit_frequentist(frame, weights, agg, controls, cfg.instruments, exclude)
            table(study.frequentist_table(fits), f"table{k}_{agg.lower()}_system",
                  f"Table {k}. ER and {agg}: GS3SLS (spatial) and 3SLS (non-spatial)",
                  note="*** p<0.01, ** p<0.05, * p<0.1; z statistics in parentheses")
            for res in fits.values():
                report += [f"* {res.method}: {w}" for w in res.warnings]
            report.append("")
        with Stage(f"Table {k}: ER <-> {agg} posterior ({cfg.chains} chains x {cfg.draws} draws)"):
            idata, notes = study.fit_bayesian(frame, weights, eigenvalues, agg, controls,
                                              draws=cfg.draws, tune=cfg.tune, chains=cfg.chains,
                                              seed=cfg.seed, sampler=cfg.sampler,
                                              progress=progress, exclude=exclude)
            path = posteriors / f"system_{agg.lower()}.nc"
            written.append(atomic_write(path, lambda tmp: idata.to_netcdf(tmp, engine="h5netcdf")))
            summary = summary_frame(idata)
            written.append(write_csv_atomic(summary, posteriors / f"system_{agg.lower()}_summary.csv"))
            table(posterior_table({"Bayes": summary}, nobs=ds.sizes["city"]),
                  f"table{k}_{agg.lower()}_system_posterior",
                  f"Table {k} (Bayesian). ER and {agg}: posterior mean (sd)",
                  note="† the 94 % highest-density interval excludes 0")
            table(compare_estimates(fits["GS3SLS"].to_frame(), summary).round(4),
                  f"table{k}_{agg.lower()}_compare",
                  f"Table {k} (comparison). Posterior vs GS3SLS, z = gap / combined sd")
            for fig in diagnostic_figures(idata, figures, prefix=f"diagnostics_{agg.lower()}_"):
                written.append(fig)
                report += [f"![{fig.stem}](figures/{fig.name})", ""]
            convergence = json.loads(idata.attrs.get("convergence_report", "[]"))
            report += [f"* sampler: {line}" for line in convergence + notes] + [""]

    report_path = write_text_atomic("\n".join(report) + "\n", out / "report.md")
    return [*written, report_path]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, help="TOML file pointing at your data (default: embedded demo)")
    parser.add_argument("--quick", action="store_true", help="fewer posterior draws (2 chains x 300)")
    parser.add_argument("--out", type=Path, default=ROOT / "results", help="output folder (default: results/)")
    args = parser.parse_args(argv)
    try:
        cfg = StudyConfig.from_toml(args.config, args.quick)
        written = run_study(cfg, args.out, progress=not args.quick)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the study stopped before its end", file=sys.stderr)
        return 130
    print("[run_all] wrote:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
