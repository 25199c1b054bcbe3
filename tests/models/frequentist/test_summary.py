"""The plain-text summary of the frequentist estimators states what the tables hold.

Reference: each coefficient line is rebuilt here from the contract-2 frame with the stars of
``models.spec.coefficient_tables.stars`` (the shared 1 % / 5 % / 10 % rule), and the star thresholds of
``models.frequentist.results.stars`` are checked on both sides of every level.
"""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.synthetic.simulate import default_truth, lattice_weights, simulate_system
from models.frequentist import estimate
from models.frequentist.results import stars
from models.spec.coefficient_tables import stars as shared_stars
from models.spec.system import build_system, parse_system


@pytest.mark.parametrize("p, mark", [(0.0, "***"), (0.0099, "***"), (0.01, "**"),
                                     (0.0499, "**"), (0.05, "*"), (0.0999, "*"), (0.1, ""),
                                     (0.5, ""), (1.0, "")])
def test_star_thresholds(p, mark):
    assert stars(p) == mark == shared_stars(p)


def test_summary_lists_every_coefficient_with_its_stars_and_the_warnings():
    truth = default_truth()
    truth.coefficients["ER"]["z1"] = 0.0     # ER identified through spatial lags only
    sim = simulate_system(lattice_weights(8), truth, seed=1)
    system = build_system(parse_system(sim.formulas, spatial_errors="ER"), sim.data,
                          weights=sim.W)
    res = estimate(system, "gs3sls")
    text = res.summary()
    lines = text.splitlines()
    assert lines[0] == f"GS3SLS (Kelejian-Prucha 2004) estimates, n = {len(sim.data)}"
    frame = res.to_frame()
    marks = set()
    for row in frame.itertuples():
        expected = (f"  {row.term:<20}{row.estimate:>12.4f}{row.std_error:>12.4f}"
                    f"{row.statistic:>9.3f}{row.p_value:>9.4f} {shared_stars(row.p_value)}")
        assert expected in lines, expected
        marks.add(shared_stars(row.p_value))
    assert {"***", ""} <= marks and len(marks) >= 3       # several star levels are exercised
    assert f"Equation ER  (R² = {res.rsquared['ER']:.4f}, rho = {res.rho['ER']:.4f})" in lines
    assert f"Equation PSS  (R² = {res.rsquared['PSS']:.4f})" in lines
    assert "Error covariance Sigma:" in lines
    assert "First-stage diagnostics:" in lines
    assert lines.count("Warnings:") == 1 and res.warnings
    for w in res.warnings:
        assert f"  - {w}" in lines
    assert text.index("First-stage diagnostics:") < text.index("Warnings:")
    table = res.first_stage.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    assert table in text


def test_summary_without_warnings_or_first_stage():
    sim = simulate_system(lattice_weights(6), seed=2)
    data = sim.data
    # equations listed in the system's order, not alphabetically
    system = build_system(parse_system(["PSS ~ x1 + x2 + z2", "ER ~ x1 + x2 + z1"]), data)
    res = estimate(system, "3sls")
    text = res.summary()
    assert text.index("Equation PSS") < text.index("Equation ER")
    assert res.first_stage.empty and res.warnings == []
    assert "First-stage diagnostics:" not in text and "Warnings:" not in text
    assert text.splitlines()[0].startswith("3SLS estimates")
    assert np.isfinite(res.pvalues).all()
