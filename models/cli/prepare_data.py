"""Prepare the study dataset: indices, weights and spectrum in one NetCDF file.

    python scripts/prepare_data.py --demo --out FILE.nc
    python scripts/prepare_data.py --employment E.csv --weights W.gal --out FILE.nc \\
        [--covariates C.csv] [--cities K.csv] [--output O.csv]

E.csv: city,year,industry,employment (CSV or Parquet); C.csv: city,year,<covariates...>;
K.csv: city,<attributes...>; O.csv: city,year,industry,output (industry output on the same
cities, years and industries as E.csv). Weights: a GAL/GWT file whose ids are city names, or a
polygon file (GeoJSON/Shapefile with a `city` column, queen contiguity). ER's counterfactual:
--er-benchmark industry_mix (default; each industry at its national rate) or national (the
aggregate national rate). Robustness measures: PSD_gini and ER_national (ER against the
aggregate national rate) always, ER_GDP when C.csv has a GDP column, PSS_output with --output.
Spectrum of W: exact eigenvalues up to --spectrum-threshold cities (default 3000), Chebyshev
quadrature nodes and weights above (--spectrum-method to force one). A non-symmetric relation (e.g. a k-nearest-
neighbour GAL file) has no quadrature: its exact complex spectrum is stored up to 20,000 cities
and none above (with a warning); --symmetrise union makes the relation symmetric. Bad input (an
--out that cannot be written included, checked before any work) prints `error: ...` and exits
with status 2, writing nothing; Ctrl-C prints `interrupted: ...` and exits with status 130.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from data_prep.errors import InputError
from data_prep.files import check_output_paths
from models.cli.arguments import run_reporting_errors

ROBUSTNESS = ("ER_GDP", "ER_national", "PSS_output", "PSD_gini")


def _parser() -> argparse.ArgumentParser:
    # lazy: fast --help, and a one-line Ctrl-C while numpy and xarray load
    from data_prep.indices import ER_BENCHMARKS, ER_THRESHOLD
    from data_prep.spectrum.quadrature import DEFAULT_THRESHOLD, METHODS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demo", action="store_true", help="use the embedded synthetic demo study")
    p.add_argument("--employment", type=Path, help="long employment table (CSV or Parquet)")
    p.add_argument("--weights", type=Path, help="GAL/GWT neighbour file or polygon file")
    p.add_argument("--covariates", type=Path, help="covariates table city,year,...")
    p.add_argument("--cities", type=Path, help="city attributes table city,...")
    p.add_argument("--output", type=Path,
                   help="industry output table city,year,industry,output (CSV or Parquet): "
                        "adds the output-based specialisation PSS_output")
    p.add_argument("--out", type=Path, required=True, help="output NetCDF file (.nc)")
    p.add_argument("--fill-policy", choices=("refuse", "zero", "drop"), default="refuse",
                   help="missing (city, year, industry) cells: refuse (default), fill with 0, "
                        "or drop the cities")
    p.add_argument("--island-policy", choices=("refuse", "nearest", "keep"), default=None,
                   help="cities without neighbours: refuse (default for files), link to the "
                        "nearest city (default for the demo), or keep a zero row")
    p.add_argument("--er-threshold", type=float, default=ER_THRESHOLD,
                   help="flag ER where |counterfactual change| <= this x city employment "
                        f"(default {ER_THRESHOLD:g})")
    p.add_argument("--er-benchmark", choices=ER_BENCHMARKS, default="industry_mix",
                   help="ER's counterfactual change: industry_mix (default: each industry "
                        "grows at its national rate) or national (the aggregate national "
                        "rate)")
    p.add_argument("--winsorize", type=float, default=None, metavar="P",
                   help="winsorise ER, PSS and PSD at the P and 1-P quantiles (e.g. 0.01)")
    p.add_argument("--seed", type=int, default=20240601, help="seed of the demo data")
    p.add_argument("--spectrum-threshold", type=int, default=DEFAULT_THRESHOLD, metavar="N",
                   help="exact eigenvalues of W up to N cities, a quadrature above "
                        f"(default {DEFAULT_THRESHOLD})")
    p.add_argument("--spectrum-method", choices=METHODS, default="auto",
                   help="auto (default: by --spectrum-threshold), exact, chebyshev or lanczos")
    p.add_argument("--symmetrise", choices=("union",), default=None,
                   help="make the --weights file's neighbour relation symmetric: r and s are "
                        "neighbours when either lists the other (for k-nearest neighbours)")
    return p


def _build(args):
    # lazy: fast --help, and a one-line Ctrl-C while numpy and xarray load
    from data_prep.dataset import build_dataset, demo_dataset

    common = dict(er_threshold=args.er_threshold, er_benchmark=args.er_benchmark,
                  winsorize=args.winsorize,
                  fill_policy=args.fill_policy, spectrum_threshold=args.spectrum_threshold,
                  spectrum_method=args.spectrum_method)
    if args.demo:
        if args.symmetrise:
            raise InputError("--symmetrise applies to a --weights file, not to --demo")
        if args.employment or args.weights or args.covariates or args.cities or args.output:
            raise InputError("--demo uses the embedded data; do not combine it with "
                             "--employment, --weights, --covariates, --cities or --output")
        return demo_dataset(args.seed, island_policy=args.island_policy, **common)
    if args.employment is None or args.weights is None:
        raise InputError("give --employment and --weights (or --demo)")
    sources = [args.employment, args.weights, args.covariates, args.cities, args.output]
    return build_dataset(args.employment, weights=args.weights, covariates=args.covariates,
                         cities=args.cities, output=args.output, synthetic=False,
                         symmetrise=args.symmetrise,
                         source_files=tuple(Path(s).name for s in sources if s is not None),
                         island_policy=args.island_policy or "refuse", **common)


def _summary(ds) -> str:
    flagged = int(ds["ER_flag"].sum())
    defined = int(ds["ER"].notnull().sum())
    n, T, K = ds.sizes["city"], ds.sizes["year"], ds.sizes["industry"]
    years = ds["year"].values
    extra = [v for v, da in ds.data_vars.items() if da.dims in (("city", "year"), ("city",))
             and v not in ("ER", "ER_flag", "PSS", "PSD", "Interact_PSS", "Interact_PSD",
                           "geometry_wkt")
             and v not in ROBUSTNESS]
    robust = [v for v in ROBUSTNESS if v in ds]
    weights = (f" Weights: {ds.attrs['weights_source']} ({ds.sizes['link']} links, island "
               f"policy {ds.attrs['island_policy']})." if "link" in ds.sizes else "")
    if "W_eigenvalues" in ds:
        kind = ("exact eigenvalues" if "W_spectrum_weights" not in ds else
                f"{ds.attrs['spectrum_method']} quadrature, {ds.sizes['eigen']} nodes")
        weights += f" Spectrum of W: {kind}."
    return (f"{n} cities, {T} years ({years.min()}-{years.max()}), {K} industries. "
            f"ER defined for {defined} city-years, {flagged} flagged for a near-zero "
            f"counterfactual change; mean ER {float(ds['ER'].mean()):.3f}, "
            f"PSS {float(ds['PSS'].mean()):.3f}, PSD {float(ds['PSD'].mean()):.3f}. "
            f"{len(extra)} covariates/attributes. Robustness measures: "
            f"{', '.join(robust) or 'none'}.{weights} "
            f"Synthetic: {ds.attrs['synthetic']}.")


def run(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() != ".nc":
        raise InputError(f"--out {args.out}: the output must be a .nc file")
    check_output_paths(files=[("--out", args.out)], create_folders=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = _build(args)
    # lazy: fast --help, and a one-line Ctrl-C while numpy and xarray load
    from data_prep.dataset import save_dataset

    save_dataset(ds, args.out)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    print(f"wrote {args.out}")
    print(_summary(ds))
    return 0


def main(argv: list[str] | None = None) -> int:
    # the parser is built inside the reporter: its defaults import numpy (Ctrl-C-safe)
    return run_reporting_errors(lambda a: run(_parser().parse_args(a)), argv)


if __name__ == "__main__":
    sys.exit(main())
