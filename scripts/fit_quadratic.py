"""Fit the quadratic model y = c0 + c1·A + c2·A² + X·β (+ ρ·W·y) + ε (paper's Table 9).

The program is models/cli/fit_quadratic.py (installed as `resilience-fit-quadratic`);
`--help` lists its options.
"""

from models.cli.fit_quadratic import main

if __name__ == "__main__":
    raise SystemExit(main())
