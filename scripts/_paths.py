"""Imported first by every script: `python scripts/X.py` puts scripts/ first on sys.path, where
scripts/restore.py would shadow the `restore` package. Drop that entry; put the repository root
(ROOT) on, so that a clone runs without installing."""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(_HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
