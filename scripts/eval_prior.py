#!/usr/bin/env python
"""Evaluate the bundled prior on held-out images (the model card's table):

    python scripts/eval_prior.py
    python scripts/eval_prior.py --splits 1x20,2x10,4x5,5x4,10x2 --tasks sr4,inp_box,deno

See restore/training/held_out.py (options: --help)."""

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.training.held_out import main

if __name__ == "__main__":
    main()
