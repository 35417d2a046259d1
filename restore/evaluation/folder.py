"""The output folder of a batch evaluation: claiming it, resuming it (only complete groups are
kept), appending rows durably, and rebuilding per_image.csv, summary.json and anytime.png from the
rows. See restore.evaluation.run for what the files hold."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from restore.errors import UsageError
from restore.evaluation.report import plot
from restore.evaluation.rows import (
    Row,
    compact,
    csv_text,
    load_all,
    row_files,
    summarize,
)
from restore.io.atomic import atomic_write, write_json, write_text
from restore.settings.schema import SOLVER_NAMES

RUN_FILE, SUMMARY_FILE, PER_IMAGE_FILE, PLOT_FILE, IMAGES_DIR = (
    "run.json", "summary.json", "per_image.csv", "anytime.png", "images")


def clear(out: Path) -> None:
    for name in (RUN_FILE, SUMMARY_FILE, PER_IMAGE_FILE, PLOT_FILE):
        (out / name).unlink(missing_ok=True)
    for path in row_files(out):
        path.unlink()
    images = out / IMAGES_DIR
    if images.is_dir():
        for folder in images.iterdir():
            if folder.is_dir() and folder.name.split("-")[0] in SOLVER_NAMES:
                shutil.rmtree(folder, ignore_errors=True)
        if not any(images.iterdir()):
            images.rmdir()


def describe_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    if not old:
        return f"its {RUN_FILE} is missing or unreadable"
    flat_old = {**{k: v for k, v in old.items() if k != "settings"}, **old.get("settings", {})}
    flat_new = {**{k: v for k, v in new.items() if k != "settings"}, **new.get("settings", {})}
    diffs = [f"{k} {flat_old.get(k)!r} -> {flat_new.get(k)!r}"
             for k in sorted(set(flat_old) | set(flat_new)) if flat_old.get(k) != flat_new.get(k)]
    return ", ".join(diffs) or "unreadable run.json"


def prepare(out: Path, identity: dict[str, Any], overwrite: bool, expected: dict[str, list[int]]) -> dict:
    """Rank 0: check or claim the output folder, drop cut groups; returns the done groups."""
    out.mkdir(parents=True, exist_ok=True)
    run_file = out / RUN_FILE
    if run_file.exists() or row_files(out):
        try:
            old = json.loads(run_file.read_text(encoding="utf-8"))["identity"]
        except (OSError, ValueError, KeyError, TypeError):
            old = {}
        if old != identity:
            if not overwrite:
                raise UsageError(f"{out} holds an evaluation with other arguments ({describe_changes(old, identity)}); "
                                 "rerun with the same arguments to resume, pass --overwrite to start again, "
                                 "or choose another --out")
            clear(out)
    write_json(run_file, {"identity": identity, "command": sys.argv})
    return compact(out, expected)


class Writer:
    """Appends whole (image, group) rows to this rank's row file, flushed and fsynced."""

    def __init__(self, path: Path):
        fresh = not path.exists() or path.stat().st_size == 0
        self.file = open(path, "a", encoding="utf-8", newline="")
        if fresh:
            self.file.write(csv_text([], header=True))
            self.file.flush()

    def write(self, rows: list[Row]) -> None:
        self.file.write(csv_text(rows))
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def merge(out: Path, images: list[str], order: list[str], expected, settings_out: dict, title: str) -> dict:
    done = load_all(out, expected)
    wanted = set(images)
    rank = {s: i for i, s in enumerate(order)}
    groups = sorted((k for k in done if k[0] in wanted and k[1] in rank), key=lambda k: (k[0], rank[k[1]]))
    rows = [r for k in groups for r in done[k]]
    missing = len(images) * len(order) - len(groups)
    write_text(out / PER_IMAGE_FILE, csv_text(rows, header=True))
    summary = summarize(rows, settings_out, order)
    if missing:
        summary["missing_groups"] = missing
    write_json(out / SUMMARY_FILE, summary)
    atomic_write(out / PLOT_FILE, lambda tmp: plot(summary, tmp, title))
    return summary
