#!/usr/bin/env python
"""Restore one image: `python scripts/restore.py --task sr4 --input face.png` (the same command as
`anytime-restore`; options: --help, or restore/cli/restore.py)."""

import sys

import _paths  # noqa: F401  (must come first: this file's name would shadow the restore package)
from restore.cli.restore import console

if __name__ == "__main__":
    sys.exit(console())
