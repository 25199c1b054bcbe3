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


def test_compare_script(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
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
    assert "1 differ by more than 2" in done.stdout and "ER:PSS" in done.stdout
    assert np.isclose(pd.read_csv(tmp_path / "cmp.csv")["z"].iloc[0], 3.0)
    post.assign(term="W(ER)").to_csv(tmp_path / "other.csv", index=False)
    cmd[cmd.index(str(tmp_path / "summary.csv"))] = str(tmp_path / "other.csv")
    cmd[-1] = str(tmp_path / "bad.csv")
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: ")
    assert not (tmp_path / "bad.csv").exists()
