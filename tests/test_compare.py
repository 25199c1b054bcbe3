import numpy as np
import pandas as pd

from models.compare import compare_estimates


def test_gap_is_standardised_by_combined_uncertainty():
    freq = pd.DataFrame({"equation": ["ER", "ER"], "term": ["PSS", "Intercept"],
                         "estimate": [1.0, 0.0], "std_error": [0.3, 0.1],
                         "statistic": [3.3, 0.0], "p_value": [0.001, 1.0]})
    post = pd.DataFrame({"equation": ["ER", "ER"], "term": ["PSS", "W(ER)"], "mean": [1.5, 0.2],
                         "sd": [0.4, 0.1], "hdi_low": [0.8, 0.0], "hdi_high": [2.2, 0.4],
                         "r_hat": [1.0, 1.0], "ess_bulk": [900, 800]})
    out = compare_estimates(freq, post).set_index("term")
    assert np.isclose(out.loc["PSS", "z"], 0.5 / 0.5)
    assert bool(out.loc["PSS", "agree"])
    assert out.loc["Intercept", "in"] == "frequentist only"
    assert out.loc["W(ER)", "in"] == "posterior only"
