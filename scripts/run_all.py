"""Run the whole study and write results/ (docs/contracts.md contract 4).

The program is models/cli/run_all.py (installed as `resilience-run-all`);
`--help` lists its options.
"""

from models.cli.run_all import main

if __name__ == "__main__":
    raise SystemExit(main())
