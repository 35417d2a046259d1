#!/usr/bin/env python
"""Anytime curves of several solver configurations on one task, paired image by image:

    python scripts/anytime_study.py --data heldout/ --task inp_box --size 128 --tiles 2 \
        --configs ddrm nested:5,5,5,5 nested:2,3,5,10 --out study_inp_box.json

See restore/studies/anytime.py (the configuration grammar, the scores; options: --help)."""

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.studies.anytime import main

if __name__ == "__main__":
    raise SystemExit(main())
