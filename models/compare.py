"""Bayesian posterior versus frequentist estimates, coefficient by coefficient.

For each (equation, term) present in both a contract-2 coefficient frame (estimate, std_error)
and a posterior summary (mean, sd) the comparison reports the difference and the standardised
gap z = (mean − estimate) / sqrt(sd² + std_error²). Under a correct model with a posterior close
to normal the two estimators agree to within their combined uncertainty, so |z| > 2 flags a
coefficient worth a look (METHOD.md §8: skewed posteriors make small gaps expected, not errors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.results import coefficient_frame, posterior_frame


def compare_estimates(frequentist: pd.DataFrame, posterior: pd.DataFrame) -> pd.DataFrame:
    """Join the two long tables on (equation, term) and add difference, z and agreement."""
    freq = coefficient_frame(frequentist)[["equation", "term", "estimate", "std_error"]]
    post = posterior_frame(posterior)[["equation", "term", "mean", "sd", "hdi_low", "hdi_high", "r_hat"]]
    both = freq.merge(post, on=["equation", "term"], how="outer", indicator=True)
    both["difference"] = both["mean"] - both["estimate"]
    both["z"] = both["difference"] / np.sqrt(both["sd"] ** 2 + both["std_error"] ** 2)
    both["agree"] = both["z"].abs() <= 2.0
    both["in"] = both.pop("_merge").map({"both": "both", "left_only": "frequentist only",
                                         "right_only": "posterior only"})
    return both.reset_index(drop=True)


def match_report(frequentist: pd.DataFrame, posterior: pd.DataFrame, frequentist_name: str,
                 posterior_name: str) -> str | None:
    """Check that two tables describe the same system before they are compared.

    Different sets of equations (dependent variables) mean different systems: InputError naming
    both files. The same equations with terms found in one table only (a term added or dropped
    between the fits) return a warning listing them; None when every term matches.
    """
    from common.errors import InputError

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
