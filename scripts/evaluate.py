"""Evaluate solvers at equal network calls over a folder of images.

Usage:
    python scripts/evaluate.py --data DIR --task sr4 --out results/ [--solvers nested,ddrm]
        [--model M] [--sigma-y S] [--outer 4 --inner 5] [--steps K] [--seed 0] [--size N]
        [--batch-size 4] [--save-images] [--overwrite] [--limit N] [--quiet]
    torchrun --nproc_per_node=N scripts/evaluate.py ...   (gloo on CPU, nccl on GPU)

Writes OUT/per_image.csv, OUT/summary.json, OUT/anytime.png (and OUT/images/ with
--save-images). Killing it and starting it again with the same arguments resumes. Nested DDRM
runs outer x inner network calls and DDRM the same number unless --steps is given. See
restore/evaluation/run.py for the details (seeds, rows, timing, resuming, multi-node) and
restore/evaluation/solve.py for --candidates K and --choose oracle-lpips. The same command:
`anytime-evaluate`.
"""

from __future__ import annotations

import sys

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from restore.cli.evaluate import console

if __name__ == "__main__":
    sys.exit(console())
