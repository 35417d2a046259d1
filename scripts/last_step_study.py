#!/usr/bin/env python
"""Is the last anytime step the best? Counts, per solver, the images whose final result is worse
than an earlier anytime step, over a grid of tasks and noise levels:

    python scripts/last_step_study.py --data heldout/ --out results/last_step --size 64 \
        --tasks sr4,inp_box,deblur_gauss,deno --sigmas 0,0.05,0.1 \
        --solvers nested-ddrm,nested-ddnm,nested-diffpir,nested-dps,nested-pigdm

See restore/studies/last_step.py (options: --help); docs/studies/anytime-defaults.md."""

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.studies.last_step import main

if __name__ == "__main__":
    raise SystemExit(main())
