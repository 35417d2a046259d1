#!/usr/bin/env python
"""Train the project's bundled natural-image DDPM prior:

    python scripts/train_prior.py build-data --out .train/photos.npz
    python scripts/train_prior.py train --data .train/photos.npz --out .train/run --minutes 120 --attention

See restore/training/train.py (options: --help)."""

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.training.train import main

if __name__ == "__main__":
    main()
