#!/usr/bin/env python
"""The tables of docs/studies/recent-solvers.md, and configs/notes/suited.yaml, from evaluate.py's rows:

    python scripts/recent_solvers_table.py data/results/recent_solvers/sr4_64_20.csv
    python scripts/recent_solvers_table.py --suited configs/notes/suited.yaml data/results/recent_solvers/*.csv

See restore/studies/recent_solvers.py."""

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.studies.recent_solvers import main

if __name__ == "__main__":
    raise SystemExit(main())
