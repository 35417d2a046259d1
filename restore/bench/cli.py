"""Benchmarks: the network is the cost of sampling; everything else must be close to free.

    python scripts/bench.py overhead     # per task: network s/call, solver overhead s/call, ratio
    python scripts/bench.py throughput   # images per minute at batch 1 and 4, peak memory
    python scripts/bench.py engine       # what a person's run costs beyond the network
    python scripts/bench.py peers --data heldout/   # DDRM, DiffPIR, DPS against deepinv's (pip install -e ".[bench]")
    python scripts/bench.py gpu          # CUDA: CelebA-HQ U-Net, fp32/bf16/fp16 x compile x batch (restore.bench.gpu)
    python scripts/bench.py sizes        # large images: s/call and peak memory at 256 .. 2048 px (restore.bench.sizes)
    python scripts/bench.py operators    # building every operator and applying its transforms (restore.bench.operators)
    python scripts/bench.py cpu          # FLOPs per call, GFLOP/s and the share of this CPU's peak (restore.bench.cpu_flops)
    python scripts/bench.py kernels      # operators launched per network call by each solver, outside the network
    python scripts/bench.py models       # every model family at 256x256: s/call; ADM's eps against deepinv's (restore.bench.models)
    python scripts/bench.py precision --data heldout/   # bf16 / fp16 restorations against fp32 (restore.bench.precision)

overhead: every task at 256x256, DDRM (20 steps) and NestedDDRM (4 x 5), run with the bundled
prior wrapped in a timer; overhead = wall time outside the network calls, per call. The CelebA-HQ
UNet (random weights: timing only) is timed on its own and the same overhead is set against it.
throughput: a whole restoration (sr4, 20 network calls by default) per batch; each configuration
runs in a fresh subprocess so that its peak memory (CUDA: max allocated; CPU: max RSS) is its own.
engine: sr4 at 256x256 with the bundled prior, Nested 4 x 5, K = 1 and 4 candidates, three ways:
the bare solvers.Run (the solver and the stepping: per network call, against the network and a
CelebA-HQ call), the Restoration a person drives (adds the scoring of every call and step:
LPIPS, SSIM, PSNR), and restore_image filling its output folder (adds the files of every step:
PNGs, metrics.json, state.pt; and the figures at the end). The measurements: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from restore.bench.cpu import engine, overhead, throughput, throughput_one
from restore.models.memory import keep_freed_memory
from restore.settings.model_spec import BUNDLED

OWN_OPTIONS = {"peers": "restore.bench.peers", "gpu": "restore.bench.gpu", "sizes": "restore.bench.sizes",
               "cpu": "restore.bench.cpu_flops", "kernels": "restore.bench.kernels",
               "operators": "restore.bench.operators", "models": "restore.bench.models",
               "precision": "restore.bench.precision"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    keep_freed_memory()  # as the commands do (restore.cli.options.run_cli): the benchmarks time what users run
    if argv[:1] and argv[0] in OWN_OPTIONS:  # the commands with options of their own
        return importlib.import_module(OWN_OPTIONS[argv[0]]).main(argv[1:]) or 0
    parser = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    o = sub.add_parser("overhead")
    o.add_argument("--model", default=BUNDLED, help="prior run inside the solver (default: the bundled one)")
    o.add_argument("--tasks", default="all")
    o.add_argument("--repeats", type=int, default=2)
    o.add_argument("--celebahq-calls", type=int, default=3)
    o.add_argument("--device", default="auto")
    t = sub.add_parser("throughput")
    t.add_argument("--models", default=f"{BUNDLED},celebahq-arch")
    t.add_argument("--batches", default="1,4")
    t.add_argument("--nfe", type=int, default=20)
    t.add_argument("--device", default="auto")
    e = sub.add_parser("engine")
    e.add_argument("--model", default=BUNDLED)
    e.add_argument("--candidates", default="1,4")
    e.add_argument("--celebahq-calls", type=int, default=3)
    e.add_argument("--device", default="auto")
    one = sub.add_parser("_throughput_one")
    one.add_argument("--model", required=True)
    one.add_argument("--batch", type=int, required=True)
    one.add_argument("--nfe", type=int, required=True)
    one.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    {"overhead": overhead, "throughput": throughput, "engine": engine,
     "_throughput_one": throughput_one}[args.command](args)
    return 0
