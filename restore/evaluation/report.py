"""What a batch evaluation shows: a progress bar while it runs, the final table, the anytime plot
(reads summaries only)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from restore.evaluation.distributed import Dist
from restore.evaluation.solve import base_solver
from restore.quality.plots import plot_anytime
from restore.settings.schema import SOLVER_TITLES

NAMES = {**{n: t for n, t in SOLVER_TITLES.items()}, "nested": "Nested DDRM",
         **{f"nested-{n}": f"Nested {t}" for n, t in SOLVER_TITLES.items()}}


class Progress:
    """One tqdm bar per rank (images), postfix: running mean final PSNR per solver."""

    def __init__(self, total: int, done_before: int, mine: int, dist: Dist, quiet: bool, solvers):
        self.solvers, self.sums = solvers, {s: [0.0, 0] for s in solvers}
        self.bar = None
        if quiet:
            return
        from tqdm.auto import tqdm

        if dist.rank == 0:
            print(f"{total} images: {done_before} done before, {total - done_before} to do "
                  f"on {dist.world} process{'es' if dist.world > 1 else ''}", file=sys.stderr)
        desc = f"rank {dist.rank}" if dist.world > 1 else "images"
        self.bar = tqdm(total=mine, desc=desc, unit="img", position=dist.rank, dynamic_ncols=True,
                        leave=True, file=sys.stderr)

    def group_done(self, group: str, psnr: float) -> None:
        if group in self.sums:
            self.sums[group][0] += psnr
            self.sums[group][1] += 1

    def images_done(self, n: int) -> None:
        if self.bar is None:
            return
        self.bar.set_postfix_str(" ".join(f"{s} {t / c:.2f}dB" for s, (t, c) in self.sums.items() if c),
                                 refresh=False)
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def print_table(summary: dict, out: Path, file=None) -> None:
    """The final results as a table on `file` (default: sys.stdout as it is at the call, not at import)."""
    file = sys.stdout if file is None else file

    def fmt(stat, spec):
        return "-" if stat["mean"] is None else format(stat["mean"], spec)

    width = max(8, *(len(s) for s in summary["solvers"]))
    print(f"{summary['images']} images; final results (mean over images):", file=file)
    print(f"  {'solver':<{width}} {'nfe':>4} {'PSNR':>7} {'SSIM':>6} {'LPIPS':>6} {'seconds':>8}", file=file)
    for solver, entry in summary["solvers"].items():
        f = entry["final"]
        print(f"  {solver:<{width}} {f['nfe']:>4} {fmt(f['psnr'], '7.2f')} {fmt(f['ssim'], '6.3f')} "
              f"{fmt(f['lpips'], '6.3f')} {fmt(f['seconds'], '8.2f')}", file=file)
    print(f"wrote {out / 'per_image.csv'}, summary.json, anytime.png", file=file)


def label(group: str) -> str:
    """The plot's name for a group: "Nested DDRM (outer results)", "DDRM, oracle choice of 4"..."""
    solver, _, variant = group.partition("/")
    name = NAMES.get(solver, solver)
    if not variant:
        return f"{name} ({'outer results' if solver.startswith('nested') else 'per-call estimates'})"
    kind, k = variant.rstrip("0123456789"), variant[len(variant.rstrip("0123456789")):]
    what = {"mean": f"mean of {k} runs", "best": f"best of {k} runs (LPIPS)", "oracle": f"oracle choice among {k}",
            "regions": f"oracle choice by region among {k}"}
    return f"{name}, {what.get(kind, variant)}"


def plot(summary: dict[str, Any], path: Path, title: str) -> None:
    curves = {}
    for group, entry in summary["solvers"].items():
        if base_solver(group) not in NAMES:
            continue
        nfes = sorted(int(n) for n in entry["nfe"])
        curve: dict[str, Any] = {"nfe": nfes, "style": "points" if base_solver(group).startswith("nested") else "line"}
        for metric in ("psnr", "lpips"):
            for part, key in (("mean", metric), ("std", f"{metric}_std")):
                curve[key] = [math.nan if (v := entry["nfe"][str(n)][metric][part]) is None else v for n in nfes]
        curves[label(group)] = curve
    plot_anytime(curves, path, title)
