"""Command-line arguments that describe a system (docs/contracts.md contract 2), shared by the scripts."""

from __future__ import annotations

import argparse

from data_prep.errors import InputError
from data_prep.files import figure_writer, write_together

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


def add_sampler_arguments(p: argparse.ArgumentParser) -> None:
    """--draws, --tune, --chains, --seed, --sampler: the NUTS settings every Bayesian script takes."""
    p.add_argument("--draws", type=int, default=1000, help="draws per chain (default 1000)")
    p.add_argument("--tune", type=int, default=1000, help="tuning steps per chain (default 1000)")
    p.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--sampler", default="nutpie", choices=("nutpie", "pymc"),
                   help="NUTS implementation (default nutpie; pymc is the fallback)")


def add_tuning_arguments(p: argparse.ArgumentParser, prior_names, *,
                         target_accept: float | None = None) -> None:
    """--target-accept, --max-treedepth and --prior NAME=SCALE (repeatable) of a Bayesian
    script; ``prior_names``: the model's prior settings (listed in the help and checked by
    :func:`priors_argument`); ``target_accept``: the script's default (None: the sampler's)."""
    default = "the sampler's, 0.8" if target_accept is None else f"{target_accept}"
    p.add_argument("--target-accept", type=float, default=target_accept, metavar="P",
                   help=f"NUTS target acceptance in (0, 1) (default {default}); raise it toward "
                        "1 (e.g. 0.95) when the fit reports divergences")
    p.add_argument("--max-treedepth", type=int, default=None, metavar="D",
                   help="NUTS maximum tree depth (default 10); raise it when many transitions "
                        "reach the maximum depth")
    p.add_argument("--prior", action="append", default=[], metavar="NAME=SCALE",
                   help="override a prior scale (repeatable); names: " + ", ".join(prior_names))


def priors_argument(items, prior_names) -> dict[str, float]:
    """{name: scale} from the --prior NAME=SCALE items; a malformed item or an unknown name is
    a one-line InputError listing the allowed names."""
    out: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in prior_names:
            raise InputError(f"--prior {item!r}: unknown prior {name!r}; allowed: "
                             f"{', '.join(prior_names)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise InputError(f"--prior {item!r}: expected NAME=number") from None
    return out


def write_outputs(outputs, figures=()) -> None:
    """Write a command's files together (all or none), figures included, then say where.

    ``outputs``: (path, write(tmp)) pairs; ``figures``: (path, matplotlib figure, dpi) triples,
    closed afterwards. Printing follows the writing, so a closed stdout loses no file.
    """
    import matplotlib.pyplot as plt

    try:
        written = write_together([*outputs, *((path, figure_writer(fig, dpi=dpi))
                                              for path, fig, dpi in figures)])
    finally:
        for _, fig, _ in figures:
            plt.close(fig)
    for path in written:
        print(f"wrote {path}")


def weights_argument(args):
    """The --weights path, read with the --island-policy when that is not the default."""
    if args.weights and args.island_policy != "refuse":
        # lazy: every script imports this module; its --help must not load numpy and scipy
        from data_prep.weights import weights_from_file

        return weights_from_file(args.weights, island_policy=args.island_policy)
    return args.weights


EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, the shell's convention for a Ctrl-C


class _PipeSafeStdout:
    """sys.stdout that turns into /dev/null once its reader has gone (``script | head``).

    Without it the first print after the reader closed the pipe raises BrokenPipeError, which
    would abort a run before (or while) it writes its files, or print a traceback at exit.
    """

    def __init__(self, stream):
        self._stream = stream
        self.reader_gone = False

    def _drop(self) -> None:
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)
        self.reader_gone = True

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._drop()
            return len(text)

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def run_reporting_errors(run, args, *, interrupted: str | None = None) -> int:
    """``run(args)`` with the scripts' exit conventions.

    Bad input, numerical failure or file trouble → one ``error:`` line per problem (a study
    plan reports all its problems at once, one a line), status 2; Ctrl-C (during
    imports, compilation, sampling or writing) → one ``interrupted:`` line, status 130, no
    traceback (SIGTERM is treated alike); a closed stdout pipe → the run goes on quietly (its files are still written).
    Nothing has been written when an error or interrupt surfaces here: the scripts check their
    output paths first, compute everything, then write all files together
    (:func:`data_prep.files.write_together`).
    """
    import sys

    import signal
    import threading

    stdout = sys.stdout
    if stdout is not None and not isinstance(stdout, _PipeSafeStdout):
        sys.stdout = _PipeSafeStdout(stdout)
    # `kill` (SIGTERM) stops a run like Ctrl-C: temporaries removed, earlier outputs kept
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main else None
    try:
        return _run(run, args, interrupted)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        if isinstance(sys.stdout, _PipeSafeStdout) and sys.stdout is not stdout:
            sys.stdout.flush()
            sys.stdout = stdout


def _terminate(signum, frame):
    raise KeyboardInterrupt("terminated (SIGTERM); nothing written, earlier outputs left as "
                            "they were")


def _run(run, args, interrupted: str | None) -> int:
    import sys

    try:
        try:
            return run(args)
        except InputError as err:
            for problem in str(err).splitlines() or [""]:
                print(f"error: {problem}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except (ArithmeticError, ValueError) as err:
            import numpy as np

            if not isinstance(err, (np.linalg.LinAlgError, FloatingPointError,
                                    ZeroDivisionError)):
                raise
            print(f"error: numerical failure while estimating ({err}); check for collinear "
                  f"variables or a weakly identified system", file=sys.stderr)
            return EXIT_BAD_INPUT
        except BrokenPipeError:
            return 0
        except OSError as err:
            print(f"error: cannot read or write a file ({err})", file=sys.stderr)
            return EXIT_BAD_INPUT
    except KeyboardInterrupt as err:
        detail = str(err) or interrupted or "nothing written; earlier outputs left as they were"
        print(f"interrupted: {detail}", file=sys.stderr)
        return EXIT_INTERRUPTED
