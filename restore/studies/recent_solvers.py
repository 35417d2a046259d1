"""The tables of docs/studies/recent-solvers.md and the measured table of where a solver at its
defaults does not suit a task (configs/notes/suited.yaml), from the per-call rows scripts/evaluate.py
writes (OUT/rows.rank0.csv, kept as data/results/recent_solvers/<task>_<size>_<calls>.csv).

Per solver: the final PSNR, SSIM, LPIPS and seconds (means over images) and the anytime PSNR:
the mean PSNR a person keeps who stops at a uniformly random moment of the N calls, the curve
held at the latest result (before the first, the pseudo-inverse's PSNR): restore.studies.anytime's
anytime_area, as in the other anytime studies.

    python scripts/recent_solvers_table.py data/results/recent_solvers/sr4_64_20.csv
    python scripts/recent_solvers_table.py --suited configs/notes/suited.yaml data/results/recent_solvers/*.csv
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import defaultdict
from pathlib import Path

from restore.studies.anytime import anytime_area

#: a solver more than this many dB of mean final PSNR under the best one at the same calls is "not suited"
GAP_DB = 1.0
#: why, per solver (plain or nested-<name>), where the studies say; else the measured gap speaks alone
WHY = {
    "dps": "its gradient steps need hundreds of calls, its paper 1000",
    "nested-dps": "DPS's gradient steps need hundreds of calls, its paper 1000",
    "reddiff": "its optimisation is made for about 1000 steps, as its paper runs it",
    "nested-reddiff": "each inner run restarts RED-diff's optimisation, made for about 1000 steps",
    "diffpir": "no lambda of 1, 7 or 30 closed the gap with noise, docs/studies/anytime-defaults.md",
    "nested-diffpir": "DiffPIR's data step does not hold the noise at these budgets, docs/studies/anytime-defaults.md",
    "daps": "its annealing gets only steps / 2 levels at this budget, where its paper has 200",
    "nested-daps": "each inner run restarts DAPS's annealing with 2 or 3 levels",
}


def table_stats(path: str | Path) -> dict[str, dict[str, float]]:
    """Per solver, the means over images of psnr, ssim, lpips, seconds (at the last call) and anytime."""
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    pinv = {r["image"]: float(r["psnr"]) for r in rows if r["solver"] == "pinv"}
    runs = defaultdict(list)
    for r in rows:
        if int(r["nfe"]) > 0:  # the baselines (pinv, bicubic, wiener) are rows at 0 calls
            runs[(r["solver"], r["image"])].append(r)
    stats: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for (solver, image), rs in runs.items():
        rs.sort(key=lambda r: int(r["nfe"]))
        nfes, psnrs = [int(r["nfe"]) for r in rs], [float(r["psnr"]) for r in rs]
        s = stats[solver]
        for key in ("psnr", "ssim", "lpips", "seconds"):
            s[key].append(float(rs[-1][key]))
        s["anytime"].append(anytime_area(nfes, psnrs, pinv[image], nfes[-1]))
    return {solver: {k: sum(v) / len(v) for k, v in s.items()} for solver, s in stats.items()}


def table(path: str | Path) -> str:
    """The markdown table of one task's rows, best final PSNR first."""
    lines = ["| solver | PSNR | SSIM | LPIPS | anytime PSNR | seconds |", "|---|---|---|---|---|---|"]
    for solver, m in sorted(table_stats(path).items(), key=lambda kv: -kv[1]["psnr"]):
        lines.append(f"| {solver} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['lpips']:.3f} | {m['anytime']:.2f} | "
                     f"{m['seconds']:.1f} |")
    return "\n".join(lines)


NAME = re.compile(r"(?P<task>.+)_(?P<size>\d+)_(?P<calls>\d+)\.csv$")


def suited(paths: list[str | Path]) -> dict:
    """configs/notes/suited.yaml's content: every (solver, task, calls) whose mean final PSNR is more than
    GAP_DB under the best solver's in the rows of `paths` (files named <task>_<size>_<calls>.csv)."""
    gaps, sizes, measured = [], set(), defaultdict(list)
    for path in sorted(map(Path, paths)):
        match = NAME.match(path.name)
        if match is None:
            raise ValueError(f"{path.name}: expected <task>_<size>_<calls>.csv")
        sizes.add(int(match["size"]))
        measured[match["task"]].append(int(match["calls"]))
        stats = table_stats(path)
        best = max(stats, key=lambda s: stats[s]["psnr"])
        for solver, m in sorted(stats.items()):
            gap = stats[best]["psnr"] - m["psnr"]
            if gap > GAP_DB:
                gaps.append({"solver": solver, "task": match["task"], "calls": int(match["calls"]),
                             "gap_db": round(gap, 2), "best": best})
    return {"gap_db": GAP_DB, "sizes": sorted(sizes), "measured": {t: sorted(c) for t, c in sorted(measured.items())},
            "why": dict(WHY), "gaps": gaps}


def write_suited(out: Path, paths: list[str | Path]) -> None:
    import yaml

    header = ("# Where a solver at its defaults is measured more than gap_db of final PSNR under the best\n"
              "# solver (bundled prior, the 8 held-out images, sigma_y 0.05; docs/studies/recent-solvers.md).\n"
              "# Written by scripts/recent_solvers_table.py --suited from data/results/recent_solvers/: do not\n"
              "# edit by hand. anytime-restore reads it (restore/settings/suited.py) for its one-line note.\n")
    out.write_text(header + yaml.safe_dump(suited(paths), sort_keys=False, width=120), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", nargs="+", help="rows.rank0.csv files (one task each)")
    parser.add_argument("--suited", type=Path, help="write the not-suited table (configs/notes/suited.yaml) here")
    args = parser.parse_args(argv)
    if args.suited is not None:
        write_suited(args.suited, args.rows)
        return 0
    for path in args.rows:
        print(table(path))
    return 0
