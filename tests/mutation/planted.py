"""Re-plant the review's hand-made mutants one at a time and list the default tests that kill them.

Usage: python tests/mutation/planted.py [pytest files...]  (from the repository root; restores
every file afterwards). Prints one line per mutant: its name and the failing test ids.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# name -> (file, old text, new text)
PLANTED = {
    "one-sided p-values": (
        "models/frequentist/results.py",
        "p = 2.0 * stats.norm.sf(np.abs(z))", "p = stats.norm.sf(np.abs(z))"),
    "weak_identification_warnings returns nothing": (
        "models/frequentist/diagnostics.py",
        "    return out\n\n\ndef lag_only_identification", "    return []\n\n\ndef lag_only_identification"),
    "Sanderson-Windmeijer F = partial F": (
        "models/frequentist/diagnostics.py",
        "sw[k] = (ex[0, 0] / (q - n_endog + 1)) / (re[0, 0] / df_den)", "sw[k] = F[k]"),
    "HDI = mean +- 0.01": (
        "models/bayes/postprocess.py",
        '"hdi_low": hdi.sel(hdi="lower").values,\n                         "hdi_high": hdi.sel(hdi="higher").values,',
        '"hdi_low": mean - 0.01,\n                         "hdi_high": mean + 0.01,'),
    "intercept and slope prior sds swapped": (
        "models/bayes/system.py",
        'np.where(layout.is_intercept(), hp["intercept_sigma"], hp["beta_sigma"])',
        'np.where(layout.is_intercept(), hp["beta_sigma"], hp["intercept_sigma"])'),
    "LKJ eta ignored (G = 2)": (
        "models/bayes/system.py",
        'pm.Beta("corr_u", hp["lkj_eta"], hp["lkj_eta"])', 'pm.Beta("corr_u", 2.0, 2.0)'),
    "LKJ eta ignored (G >= 3)": (
        "models/bayes/system.py",
        'pm.LKJCholeskyCov("chol_std", n=G, eta=hp["lkj_eta"],', 'pm.LKJCholeskyCov("chol_std", n=G, eta=2.0,'),
    "structural prior sd doubled": (
        "models/bayes/system.py",
        'pm.Normal("structural_std", 0.0, hp["structural_sigma"]',
        'pm.Normal("structural_std", 0.0, 2 * hp["structural_sigma"]'),
    "simulator spatial lags 20 % low": (
        "data_prep/synthetic/simulate.py",
        "B1[g, index[target]] = value", "B1[g, index[target]] = 0.8 * value"),
    "2SLS/GS2SLS cross-equation covariance blocks zeroed": (
        "models/frequentist/iv.py",
        "blocks = [[Sigma[i, j] * fi.ztpz_inv @ (fi.A.T @ fj.A) @ fj.ztpz_inv\n",
        "blocks = [[(i == j) * Sigma[i, j] * fi.ztpz_inv @ (fi.A.T @ fj.A) @ fj.ztpz_inv\n"),
}


def main(argv: list[str]) -> int:
    tests = argv or [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").glob("test_strength_*.py"))]
    survivors = 0
    for name, (rel, old, new) in PLANTED.items():
        path = ROOT / rel
        original = path.read_text()
        if original.count(old) != 1:
            print(f"{name}: pattern not found once in {rel}; skipped")
            survivors += 1
            continue
        path.write_text(original.replace(old, new))
        try:
            proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                   "-rf", *tests], cwd=ROOT, capture_output=True, text=True)
        finally:
            path.write_text(original)
        failed = sorted(set(re.findall(r"^FAILED (\S+)", proc.stdout, re.M)))
        if not failed:
            survivors += 1
        print(f"{name}: {'KILLED by ' + ', '.join(failed) if failed else 'SURVIVED'}", flush=True)
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
