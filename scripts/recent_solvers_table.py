"""The table of docs/studies/recent-solvers.md from the per-call rows scripts/evaluate.py writes
(OUT/rows.rank0.csv): per solver, the final PSNR, SSIM, LPIPS and seconds (means over images), and
the anytime PSNR: the mean over a uniformly random stop k = 1..N calls of the PSNR of the latest
result at k (before a solver's first result, the pseudo-inverse's PSNR: what the user has).

    python scripts/recent_solvers_table.py data/results/recent_solvers_sr4_64.csv
"""

import csv
import sys
from collections import defaultdict


def table(path: str) -> str:
    rows = list(csv.DictReader(open(path)))
    pinv = {r["image"]: float(r["psnr"]) for r in rows if r["solver"] == "pinv"}
    runs = defaultdict(list)
    for r in rows:
        if int(r["nfe"]) > 0:  # the baselines (pinv, bicubic, wiener) are rows at 0 calls
            runs[(r["solver"], r["image"])].append(r)
    stats = defaultdict(lambda: defaultdict(list))
    for (solver, image), rs in runs.items():
        rs.sort(key=lambda r: int(r["nfe"]))
        total = int(rs[-1]["nfe"])
        latest, curve = pinv[image], []
        by_nfe = {int(r["nfe"]): float(r["psnr"]) for r in rs}
        for k in range(1, total + 1):
            latest = by_nfe.get(k, latest)
            curve.append(latest)
        s = stats[solver]
        for key in ("psnr", "ssim", "lpips", "seconds"):
            s[key].append(float(rs[-1][key]))
        s["anytime"].append(sum(curve) / total)
    lines = ["| solver | PSNR | SSIM | LPIPS | anytime PSNR | seconds |", "|---|---|---|---|---|---|"]
    for solver, s in sorted(stats.items(), key=lambda kv: -sum(kv[1]["psnr"])):
        m = {k: sum(v) / len(v) for k, v in s.items()}
        lines.append(f"| {solver} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['lpips']:.3f} | {m['anytime']:.2f} | "
                     f"{m['seconds']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(sys.argv[1]))
