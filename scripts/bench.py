#!/usr/bin/env python
"""Benchmarks: `python scripts/bench.py overhead|throughput|engine|peers|gpu|sizes|operators ...`
(see restore/bench/cli.py, and docs/benchmarks.md for the numbers)."""

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.bench.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
