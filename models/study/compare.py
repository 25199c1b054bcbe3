"""Bayesian posterior versus frequentist estimates, coefficient by coefficient.

For each (equation, term) present in both a contract-2 coefficient frame (estimate, std_error)
and a posterior summary (mean, sd) the comparison reports the difference d = mean − estimate in
two units: ``gap_se`` = d / std_error (GS3SLS standard errors) and ``gap_sd`` = d / sd
(posterior sds), and flags ``within_1se`` = |gap_se| ≤ 1.

Why this scale. The two estimates come from the same data, so they are not independent and
their difference varies far less than either: when the posterior is at least as efficient as
GS3SLS (full rather than limited information), Var(d) ≈ se² − sd² (Hausman 1978,
"Specification tests in econometrics", Econometrica 46), not se² + sd². The former
z = d / √(sd² + se²) ≤ 2 therefore let gaps of up to 2√2 ≈ 2.8 GS3SLS standard errors pass and
could practically not fail. Measured against the GS3SLS standard error — the frequentist's own
uncertainty — a correct model on a sample large enough for the posterior to be near normal gives
gaps of a small fraction of one se (docs/method.md §8: skewed posteriors make gaps of 0.1–0.2
posterior sd expected), while a posterior pulled away by its prior, a misspecified likelihood or
an unconverged sampler moves by a sizable share of it. Under the approximation above,
P(|gap_se| > 1) = 2Φ(−1/√(1 − (sd/se)²)): 2 % for sd = 0.9 se, 10 % for sd = 0.8 se — so the
flag is a scale to read, not a test at a fixed level, and a flagged coefficient is worth a look.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_prep.errors import InputError
from models.spec.coefficient_tables import coefficient_frame, posterior_frame

WITHIN = "within_1se"
CRITERION_NOTE = ("gap_se = (posterior mean − GS3SLS estimate) / GS3SLS standard error, gap_sd "
                  "= the same difference / posterior sd; within_1se: |gap_se| ≤ 1. Both "
                  "estimates use the same data, so their difference varies far less than "
                  "either (roughly se² − sd², not se² + sd²): under a correct model the gap is "
                  "a small fraction of one GS3SLS standard error, and a coefficient outside "
                  "one se is worth a look.")


def compare_estimates(frequentist: pd.DataFrame, posterior: pd.DataFrame) -> pd.DataFrame:
    """Join the two long tables on (equation, term); add difference, gap_se, gap_sd, within_1se.

    difference = mean − estimate, gap_se = difference / std_error, gap_sd = difference / sd
    (module docstring); within_1se is False where either side is missing.
    """
    freq = coefficient_frame(frequentist)[["equation", "term", "estimate", "std_error"]]
    post = posterior_frame(posterior)[["equation", "term", "mean", "sd", "hdi_low", "hdi_high",
                                       "r_hat"]]
    both = freq.merge(post, on=["equation", "term"], how="outer", indicator=True)
    both["difference"] = both["mean"] - both["estimate"]
    with np.errstate(divide="ignore", invalid="ignore"):
        both["gap_se"] = both["difference"] / both["std_error"]
        both["gap_sd"] = both["difference"] / both["sd"]
    both[WITHIN] = both["gap_se"].abs() <= 1.0
    both["in"] = both.pop("_merge").map({"both": "both", "left_only": "frequentist only",
                                         "right_only": "posterior only"})
    return both.reset_index(drop=True)


def outside_one_se(table: pd.DataFrame) -> pd.DataFrame:
    """The compared rows (in both tables) whose posterior mean is beyond one GS3SLS se."""
    return table[(table["in"] == "both") & ~table[WITHIN].astype(bool)]


def comparison_sentence(table: pd.DataFrame) -> str:
    """How many compared coefficients lie within one GS3SLS se, and the largest gap."""
    shared = table[table["in"] == "both"]
    if shared.empty:
        return "no coefficient is in both tables"
    worst = shared.loc[shared["gap_se"].abs().idxmax()]
    return (f"the posterior mean lies within one GS3SLS standard error of the estimate for "
            f"{int(shared[WITHIN].sum())} of {len(shared)} coefficients (largest gap "
            f"{worst['gap_se']:+.2f} se, {worst['gap_sd']:+.2f} posterior sd, at "
            f"{worst['equation']}:{worst['term']})")


def match_report(frequentist: pd.DataFrame, posterior: pd.DataFrame, frequentist_name: str,
                 posterior_name: str) -> str | None:
    """Check that two tables describe the same system before they are compared.

    Different sets of equations (dependent variables) mean different systems: InputError naming
    both files. The same equations with terms found in one table only (a term added or dropped
    between the fits) return a warning listing them; None when every term matches.
    """
    f_eqs = list(dict.fromkeys(frequentist["equation"].astype(str)))
    p_eqs = list(dict.fromkeys(posterior["equation"].astype(str)))
    if set(f_eqs) != set(p_eqs):
        raise InputError(f"{frequentist_name} has equations {', '.join(f_eqs)} but "
                         f"{posterior_name} has {', '.join(p_eqs)}: they are fits of different "
                         f"systems")
    f_pairs = set(zip(frequentist["equation"].astype(str), frequentist["term"].astype(str)))
    p_pairs = set(zip(posterior["equation"].astype(str), posterior["term"].astype(str)))
    if not f_pairs & p_pairs:
        raise InputError(f"{frequentist_name} and {posterior_name} share no (equation, term)")
    parts = []
    for pairs, name in ((f_pairs - p_pairs, frequentist_name), (p_pairs - f_pairs, posterior_name)):
        if pairs:
            parts.append(f"only in {name}: " + ", ".join(f"{e}:{t}" for e, t in sorted(pairs)))
    if not parts:
        return None
    return (f"the terms only partly match ({len(f_pairs & p_pairs)} shared; "
            + "; ".join(parts) + "); were both fitted with the same formulas?")
