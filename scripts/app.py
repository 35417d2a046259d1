#!/usr/bin/env python
"""The local web page: `python scripts/app.py [--host H] [--port P]` (the same command as
`anytime-app`; see restore/cli/app.py)."""

import sys

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.cli.app import console

if __name__ == "__main__":
    sys.exit(console())
