"""Command-line arguments that describe a system (DESIGN.md contract 2), shared by the scripts."""

from __future__ import annotations

import argparse

FORMULA_HELP = ("Formulas: W(v) is the spatial lag of v; a regressor that is another "
                "equation's dependent is endogenous; an intercept is included unless '- 1'.")


def add_system_arguments(p: argparse.ArgumentParser,
                         instruments_help: str = "extra excluded instruments "
                                                 "(comma-separated column names)") -> None:
    """--equation (repeated), --data, --weights, --instruments, --spatial-errors,
    --island-policy, --id-column."""
    p.add_argument("--equation", action="append", required=True, metavar="FORMULA",
                   help='one equation, e.g. "ER ~ PSS + W(ER) + W(PSS) + Gov"; repeat per equation')
    p.add_argument("--data", required=True, metavar="D.csv|D.nc",
                   help="one row per city (id column 'city') or a prepared dataset .nc")
    p.add_argument("--weights", metavar="W.gal",
                   help="spatial weights: .gal/.gwt neighbour list or a polygon file "
                        "(default: the weights stored in the .nc, if any)")
    p.add_argument("--instruments", default="", metavar="z1,z2", help=instruments_help)
    p.add_argument("--spatial-errors", default="none", metavar="none|all|y1,y2",
                   help="equations with spatially autoregressive disturbances (default none)")
    p.add_argument("--island-policy", default="refuse", choices=("refuse", "nearest", "keep"),
                   help="cities without neighbours in a --weights file: refuse (default), link "
                        "to the nearest city (polygon files), or keep a zero row")
    p.add_argument("--id-column", default="city", help="id column of the data (default city)")


def weights_argument(args):
    """The --weights path, read with the --island-policy when that is not the default."""
    if args.weights and args.island_policy != "refuse":
        from data_prep.weights import weights_from_file

        return weights_from_file(args.weights, island_policy=args.island_policy)
    return args.weights


def run_reporting_errors(run, args) -> int:
    """``run(args)``; bad input, numerical failure or file trouble → one ``error:`` line, status 2.

    Nothing has been written when these are raised: the scripts compute everything first and
    write atomically.
    """
    import sys

    import numpy as np

    from data_prep.errors import InputError

    try:
        return run(args)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
    except (np.linalg.LinAlgError, FloatingPointError, ZeroDivisionError) as err:
        print(f"error: numerical failure while estimating ({err}); check for collinear "
              f"variables or a weakly identified system", file=sys.stderr)
    except OSError as err:
        print(f"error: cannot read or write a file ({err})", file=sys.stderr)
    return 2
