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

from models.cli.prepare_data import main

if __name__ == "__main__":
    raise SystemExit(main())
