import numpy as np
import pandas as pd

from models.study.compare import compare_estimates


def test_gap_is_measured_in_gs3sls_standard_errors_and_posterior_sds():
    freq = pd.DataFrame({"equation": ["ER", "ER", "ER"], "term": ["PSS", "Gov", "Intercept"],
                         "estimate": [1.0, 0.5, 0.0], "std_error": [0.3, 0.2, 0.1],
                         "statistic": [3.3, 2.5, 0.0], "p_value": [0.001, 0.01, 1.0]})
    post = pd.DataFrame({"equation": ["ER", "ER", "ER"], "term": ["PSS", "Gov", "W(ER)"],
                         "mean": [1.5, 0.46, 0.2], "sd": [0.4, 0.2, 0.1],
                         "hdi_low": [0.8, 0.1, 0.0], "hdi_high": [2.2, 0.8, 0.4],
                         "r_hat": [1.0, 1.0, 1.0], "ess_bulk": [900, 900, 800]})
    out = compare_estimates(freq, post).set_index("term")
    assert "z" not in out.columns and "agree" not in out.columns
    # PSS: 0.5 apart is 1.67 GS3SLS se (flagged) and 1.25 posterior sd; the former
    # z = 0.5 / sqrt(0.3² + 0.4²) = 1 called this "agreement"
    assert np.isclose(out.loc["PSS", "gap_se"], 0.5 / 0.3)
    assert np.isclose(out.loc["PSS", "gap_sd"], 0.5 / 0.4)
    assert not bool(out.loc["PSS", "within_1se"])
    assert np.isclose(out.loc["Gov", "gap_se"], -0.2) and bool(out.loc["Gov", "within_1se"])
    assert out.loc["Intercept", "in"] == "frequentist only"
    assert out.loc["W(ER)", "in"] == "posterior only"
    assert not bool(out.loc["W(ER)", "within_1se"])


def _conjugate_comparison(prior_sd: float) -> pd.DataFrame:
    """A mean of 100 N(1, 1) draws: its ML estimate against the exact posterior under a
    N(0, prior_sd²) prior (normal-normal conjugacy, sigma known)."""
    y = np.random.default_rng(7).normal(1.0, 1.0, size=100)
    se = 1.0 / np.sqrt(y.size)
    post_var = 1.0 / (1.0 / prior_sd ** 2 + 1.0 / se ** 2)
    post_mean = post_var * y.mean() / se ** 2
    freq = pd.DataFrame({"equation": ["y"], "term": ["Intercept"], "estimate": [y.mean()],
                         "std_error": [se], "statistic": [y.mean() / se], "p_value": [0.0]})
    post = pd.DataFrame({"equation": ["y"], "term": ["Intercept"], "mean": [post_mean],
                         "sd": [np.sqrt(post_var)], "hdi_low": [0.0], "hdi_high": [2.0],
                         "r_hat": [1.0], "ess_bulk": [1000]})
    return compare_estimates(freq, post).iloc[0]


def test_criterion_passes_under_a_weak_prior_and_fails_under_a_strong_one():
    weak = _conjugate_comparison(prior_sd=10.0)
    assert bool(weak["within_1se"]) and abs(weak["gap_se"]) < 0.01
    # a prior sd of 0.24 (2.4 standard errors) shrinks the mean by se²/(se² + 0.24²) = 15 %
    # toward 0: 1.2 GS3SLS standard errors for this sample mean of 0.83
    strong = _conjugate_comparison(prior_sd=0.24)
    assert not bool(strong["within_1se"]) and -1.3 < strong["gap_se"] < -1.1
    # the former criterion |d| / sqrt(sd² + se²) <= 2 let this posterior pass
    assert abs(strong["difference"]) / np.hypot(strong["sd"], strong["std_error"]) < 2


def test_compare_script(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    freq = pd.DataFrame({"equation": ["ER"], "term": ["PSS"], "estimate": [1.0], "std_error": [0.3],
                         "statistic": [3.3], "p_value": [0.001]})
    post = pd.DataFrame({"equation": ["ER"], "term": ["PSS"], "mean": [2.5], "sd": [0.4],
                         "hdi_low": [1.8], "hdi_high": [3.2], "r_hat": [1.0], "ess_bulk": [900]})
    freq.to_csv(tmp_path / "coef.csv", index=False)
    post.to_csv(tmp_path / "summary.csv", index=False)
    cmd = [sys.executable, str(root / "scripts" / "compare_estimates.py"), "--frequentist",
           str(tmp_path / "coef.csv"), "--posterior", str(tmp_path / "summary.csv"),
           "--out", str(tmp_path / "cmp.csv")]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1 differ by more than one GS3SLS standard error" in done.stdout
    assert "ER:PSS" in done.stdout
    written = pd.read_csv(tmp_path / "cmp.csv")
    assert np.isclose(written["gap_se"].iloc[0], 5.0) and not written["within_1se"].iloc[0]
    post.assign(term="W(ER)").to_csv(tmp_path / "other.csv", index=False)
    cmd[cmd.index(str(tmp_path / "summary.csv"))] = str(tmp_path / "other.csv")
    cmd[-1] = str(tmp_path / "bad.csv")
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: ")
    assert not (tmp_path / "bad.csv").exists()
