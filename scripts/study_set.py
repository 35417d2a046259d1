#!/usr/bin/env python
"""Write the study set (default) or the fresh test set (`--set fresh`), each photo a 256 x 256 PNG:

    python scripts/study_set.py --out study/
    python scripts/study_set.py --set fresh --out fresh/

See restore/training/study_sets.py (what each set holds, and the packages they are read from)."""

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.training.study_sets import main

if __name__ == "__main__":
    raise SystemExit(main())
