"""Is the last anytime step the best? (scripts/last_step_study.py; docs/studies/anytime-defaults.md)

Runs scripts/evaluate.py over a grid of tasks and noise levels and counts, per solver, the images
whose final result is worse than an earlier anytime step of the same run (PSNR lower by more than
--psnr-margin dB, or LPIPS higher by more than --lpips-margin). Each (task, sigma_y) cell is one
evaluation in OUT/<task>_s<sigma>/ (resumed when it is there); OUT/counts.json and the printed
table hold the counts. Arguments after `--` go to evaluate.py as they are (e.g. `-- --outer-floor 0`);
--repo runs another checkout's evaluate.py (a before and after on the same grid). --dry prints
the evaluations it would run and counts what is there.
"""


from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def worse_than_earlier(steps: list[dict], psnr_margin: float, lpips_margin: float) -> bool:
    """Whether the last of an image's anytime steps (rows in call order) is worse than an earlier one."""
    *earlier, final = steps
    for row in earlier:
        if float(row["psnr"]) > float(final["psnr"]) + psnr_margin:
            return True
        if row["lpips"] and final["lpips"] and float(row["lpips"]) < float(final["lpips"]) - lpips_margin:
            return True
    return False


def count(csv_path: Path, psnr_margin: float = 0.2, lpips_margin: float = 0.01) -> dict[str, dict]:
    """Per solver of an evaluation's per_image.csv: images, how many end worse than an earlier
    step, and the mean final-minus-best-earlier PSNR."""
    runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            runs[(row["solver"], row["image"])].append(row)
    out: dict[str, dict] = {}
    for (solver, _), rows in sorted(runs.items()):
        rows.sort(key=lambda r: int(r["nfe"]))
        if len(rows) < 2:
            continue
        entry = out.setdefault(solver, {"images": 0, "worse": 0, "final_psnr": 0.0, "best_earlier_gap": 0.0})
        entry["images"] += 1
        entry["worse"] += worse_than_earlier(rows, psnr_margin, lpips_margin)
        entry["final_psnr"] += float(rows[-1]["psnr"])
        entry["best_earlier_gap"] += float(rows[-1]["psnr"]) - max(float(r["psnr"]) for r in rows[:-1])
    for entry in out.values():
        entry["final_psnr"] /= entry["images"]
        entry["best_earlier_gap"] /= entry["images"]
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tasks", default="sr4,inp_box,deblur_gauss,deno")
    p.add_argument("--sigmas", default="0,0.05,0.1")
    p.add_argument("--solvers", default="nested-ddrm,nested-ddnm,nested-diffpir,nested-dps,nested-pigdm")
    p.add_argument("--size", default="64")
    p.add_argument("--model", default=None)
    p.add_argument("--batch-size", default="8")
    p.add_argument("--psnr-margin", type=float, default=0.2)
    p.add_argument("--lpips-margin", type=float, default=0.01)
    p.add_argument("--repo", default=str(REPO), help="the checkout whose scripts/evaluate.py runs (default: this one)")
    p.add_argument("--dry", action="store_true", help="print the evaluations, run none, count what is there")
    args = p.parse_args(argv)
    out = Path(args.out)
    table: dict[str, dict] = {}
    for task in args.tasks.split(","):
        for sigma in args.sigmas.split(","):
            cell = out / f"{task}_s{sigma}"
            cmd = [sys.executable, str(Path(args.repo) / "scripts" / "evaluate.py"), "--data", args.data,
                   "--out", str(cell), "--task", task, "--sigma-y", sigma, "--solvers", args.solvers,
                   "--size", args.size, "--batch-size", args.batch_size, "--quiet", *extra]
            if args.model:
                cmd += ["--model", args.model]
            if args.dry:
                print(" ".join(cmd))
            else:
                env = {**os.environ, "PYTHONPATH": args.repo}
                done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL)
                if done.returncode:
                    print(f"error: {task} sigma_y {sigma}: evaluate.py exited {done.returncode}", file=sys.stderr)
                    return done.returncode
            if (cell / "per_image.csv").is_file():
                table[f"{task} {sigma}"] = count(cell / "per_image.csv", args.psnr_margin, args.lpips_margin)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for cell, solvers in table.items():
        for solver, entry in solvers.items():
            totals[solver][0] += entry["worse"]
            totals[solver][1] += entry["images"]
            print(f"{cell:>20} {solver:>15} worse {entry['worse']}/{entry['images']}  final {entry['final_psnr']:.2f} dB"
                  f"  final - best earlier {entry['best_earlier_gap']:+.2f} dB")
    for solver, (worse, images) in totals.items():
        print(f"{'total':>20} {solver:>15} worse {worse}/{images}")
    if table:
        out.mkdir(parents=True, exist_ok=True)
        (out / "counts.json").write_text(json.dumps({"cells": table, "totals": dict(totals),
                                                     "extra": extra}, indent=1))
    return 0
