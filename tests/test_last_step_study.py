"""scripts/last_step_study.py (restore/studies/last_step.py): the count of images whose last anytime step is worse than an earlier one."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from restore.studies import last_step as last_step_study

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, rows: list[tuple]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "solver", "nfe", "psnr", "ssim", "lpips", "seconds"])
        w.writerows(rows)
    return path


def test_count_applies_both_margins(tmp_path):
    rows = [("a", "nested-ddrm", 5, 20.0, 0, 0.30, 1), ("a", "nested-ddrm", 10, 25.0, 0, 0.20, 2),
            ("a", "nested-ddrm", 15, 24.9, 0, 0.205, 3),    # within both margins of the best earlier: not worse
            ("b", "nested-ddrm", 10, 24.0, 0, 0.20, 2), ("b", "nested-ddrm", 5, 25.0, 0, 0.30, 1),  # rows out of order
            ("c", "nested-ddrm", 5, 20.0, 0, 0.10, 1), ("c", "nested-ddrm", 10, 21.0, 0, 0.12, 2),  # LPIPS worse
            ("a", "pinv", 0, 15.0, 0, 0.5, 0)]               # one row: no anytime steps, not counted
    counts = last_step_study.count(write(tmp_path / "p.csv", rows))
    assert list(counts) == ["nested-ddrm"]
    entry = counts["nested-ddrm"]
    assert (entry["images"], entry["worse"]) == (3, 2)  # b (PSNR -1 dB) and c (LPIPS +0.02)
    assert abs(entry["final_psnr"] - (24.9 + 24.0 + 21.0) / 3) < 1e-9
    assert abs(entry["best_earlier_gap"] - (-0.1 - 1.0 + 1.0) / 3) < 1e-9
    assert last_step_study.count(tmp_path / "p.csv", psnr_margin=2.0, lpips_margin=0.05)["nested-ddrm"]["worse"] == 0


def test_dry_prints_the_grid_and_counts_what_is_there(tmp_path):
    cell = tmp_path / "out" / "deno_s0.1"
    cell.mkdir(parents=True)
    write(cell / "per_image.csv", [("a", "nested-dps", 5, 20.0, 0, 0.1, 1), ("a", "nested-dps", 10, 19.0, 0, 0.1, 2)])
    done = subprocess.run([sys.executable, str(REPO / "scripts" / "last_step_study.py"), "--data", "d", "--out",
                           str(tmp_path / "out"), "--tasks", "sr4,deno", "--sigmas", "0,0.1", "--dry", "--",
                           "--outer-floor", "0"], capture_output=True, text=True, check=True)
    commands = [line for line in done.stdout.splitlines() if "evaluate.py" in line]
    assert len(commands) == 4 and all(c.endswith("--quiet --outer-floor 0") for c in commands)
    assert "--task deno --sigma-y 0.1" in commands[3]
    counts = json.loads((tmp_path / "out" / "counts.json").read_text())
    assert counts["totals"] == {"nested-dps": [1, 1]} and counts["extra"] == ["--outer-floor", "0"]
