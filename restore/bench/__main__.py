"""`python -m restore.bench ...`: the same as scripts/bench.py."""

from restore.bench.cli import main

raise SystemExit(main())
