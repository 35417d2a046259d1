#!/usr/bin/env python
"""The Fourier blurs' periodic boundary on a photo blurred by a real lens, and two ways around it
(reflection padding; the exact crop-of-a-larger-blur through H and H^T with DiffPIR's CG step):

    python scripts/boundary_study.py --data heldout/ --size 128 --sigma-y 0.01 --out boundary.json

See restore/studies/boundary.py (options: --help); docs/studies/any-blur.md has the results."""

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.studies.boundary import main

if __name__ == "__main__":
    raise SystemExit(main())
