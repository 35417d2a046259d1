"""Time building every degradation task and applying its transforms (images 3 x SIZE x SIZE).

Usage: python scripts/bench.py operators [--size 256] [--device cpu|cuda] [--repeats 5] [--tasks deblur_gauss,deblur_motion]
Prints one line per task: build time, and per-call times of H, Ht, H_pinv, V(Vt(x)) for a batch
of one image; inp_random's build is expected well under 50 ms at 256 x 256.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from degradations import TASKS, box_mask, make_operator
from degradations.kernels import disk_kernel


def _median_ms(fn, repeats: int, device: str) -> float:
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.py operators", description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks (default: all)")
    args = parser.parse_args(argv)
    size, device = args.size, args.device
    x = torch.rand(1, 3, size, size, device=device) * 2 - 1
    print(f"{'task':16s} {'build ms':>9s} {'H ms':>7s} {'Ht ms':>7s} {'pinv ms':>8s} {'VVt ms':>7s}  max|V(Vt x)-x|")
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        options = {"inp_mask": {"mask": box_mask(size, size)}, "deblur": {"kernel": disk_kernel(3.0)}}.get(task, {})
        build = _median_ms(lambda: make_operator(task, size, 3, **options), args.repeats, "cpu")
        op = make_operator(task, size, 3, **options).to(device)
        y = op.H(x)
        t_h = _median_ms(lambda: op.H(x), args.repeats, device)
        t_ht = _median_ms(lambda: op.Ht(y), args.repeats, device)
        t_pinv = _median_ms(lambda: op.H_pinv(y), args.repeats, device)
        t_vvt = _median_ms(lambda: op.V(op.Vt(x)), args.repeats, device)
        err = (op.V(op.Vt(x)) - x).abs().max().item()
        note = "  (over 50 ms!)" if task == "inp_random" and build > 50 else ""
        print(f"{task:16s} {build:9.1f} {t_h:7.2f} {t_ht:7.2f} {t_pinv:8.2f} {t_vvt:7.2f}  {err:.1e}{note}")
