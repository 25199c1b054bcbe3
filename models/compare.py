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
