"""Plain-words verdict and coverage figure of a recovery or SBC study (models.simulation.recovery)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from models.simulation.recovery import LEVEL, coverage_check

LABELS = {"bayes": "Bayes", "gs3sls": "GS3SLS"}


def study_verdict(estimates: pd.DataFrame, table: pd.DataFrame, notes: Sequence[dict],
                  methods: Sequence[str], sbc_sentence: str | None = None,
                  sbc_draws: int | None = None) -> list[str]:
    """Sentences: per method the pooled 90 % coverage against its band (see
    :func:`models.simulation.recovery.coverage_check`) and the largest bias in RMSE units; failed fits;
    the Bayesian convergence and compilation counts; the SBC verdict when given."""
    lines = []
    R = len(notes)
    for method in methods:
        check = coverage_check(estimates, method)
        name = LABELS.get(method, method)
        if check.replications == 0:
            lines.append(f"{name}: no replication gave estimates.")
            continue
        band = (LEVEL - check.z * check.se, LEVEL + check.z * check.se)
        state = ("consistent with" if check.consistent else "NOT consistent with")
        rows = table[(table["method"] == method) & (table["rmse"] > 0)]
        worst = rows.loc[(rows["bias"].abs() / rows["rmse"]).idxmax()] if len(rows) else None
        bias = (f" The largest bias relative to RMSE is {worst['bias']:+.3g} (RMSE "
                f"{worst['rmse']:.3g}) for {worst['equation']}: {worst['term']}."
                if worst is not None else "")
        lines.append(f"{name}: pooled coverage of the 90 % intervals is {check.coverage:.3f} over "
                     f"{check.replications} replications x {check.terms} coefficients, {state} "
                     f"the nominal 0.90 (99.9 % band {band[0]:.3f}-{band[1]:.3f}, standard error "
                     f"{check.se:.3f} from the spread between replications).{bias}")
    failures = [f for n in notes for f in n.get("failures", [])]
    if failures:
        lines.append(f"{len(failures)} fit(s) failed and are left out of the table: "
                     + "; ".join(failures[:5]) + (" ..." if len(failures) > 5 else ""))
    if "bayes" in methods:
        fitted = [n for n in notes if "converged" in n]
        bad = [n for n in fitted if not n["converged"]]
        divergent = sum(n.get("divergences", 0) for n in fitted)
        compiles = sum(bool(n.get("compiled")) for n in fitted)
        processes = len({n["pid"] for n in fitted})
        lines.append(f"Bayesian fits: {len(bad)} of {len(fitted)} failed the convergence checks "
                     f"(R-hat <= 1.01, bulk ESS >= 400, no divergences; short runs fail R-hat "
                     f"by chance more often), {divergent} divergent transitions in all; the model "
                     f"was compiled {compiles} time(s) in {processes} process(es).")
        if fitted and "min_ess" in fitted[0]:
            low = min(n["min_ess"] for n in fitted)
            line = f"Smallest bulk ESS of a coefficient over the {len(fitted)} fits: {low:.0f}."
            if sbc_draws:
                short = sum(n["min_ess"] < sbc_draws for n in fitted)
                line += (f" {short} fit(s) have a bulk ESS below the {sbc_draws} thinned draws, "
                         f"so their thinned draws are autocorrelated (see diagnostics.csv).")
            lines.append(line)
    if sbc_sentence:
        lines.append(sbc_sentence)
    lines.insert(0, f"Study of {R} simulated replications.")
    return lines


def coverage_figure(estimates: pd.DataFrame, table: pd.DataFrame, methods: Sequence[str]):
    """Coverage of the 90 % interval per coefficient and method, with the 99 % binomial band of
    one coefficient's coverage over R independent replications (Binomial(R, 0.9) quantiles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    labels = list(dict.fromkeys(f"{e}: {t}" for e, t in zip(table["equation"], table["term"])))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(labels)), 3.6))
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(methods))
    R = int(table["replications"].max()) if len(table) else 0
    if R:
        lo, hi = stats.binom.ppf([0.005, 0.995], R, LEVEL) / R
        ax.axhspan(lo, hi, color="0.88", zorder=0, label=f"99 % band, R = {R}")
    ax.axhline(LEVEL, color="0.4", lw=0.8)
    for i, method in enumerate(methods):
        rows = table[table["method"] == method]
        pos = {f"{e}: {t}": c for e, t, c in zip(rows["equation"], rows["term"],
                                                 rows["coverage90"])}
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, [pos.get(lab, np.nan) for lab in labels],
               width=width, label=LABELS.get(method, method))
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("coverage of 90 % interval")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    fig.tight_layout()
    return fig
