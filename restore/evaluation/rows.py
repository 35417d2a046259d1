"""The rows of a batch evaluation: one CSV line per (image, solver, anytime step), appended per
rank, kept only in complete (image, solver) groups, and summarised per solver and NFE."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from restore.io.atomic import write_text

COLUMNS = ("image", "solver", "nfe", "psnr", "ssim", "lpips", "seconds")
METRICS = ("psnr", "ssim", "lpips", "seconds")
ROW_PREFIX = "rows.rank"

@dataclass
class Row:
    image: str
    solver: str
    nfe: int
    psnr: float
    ssim: float
    lpips: float  # NaN when unavailable
    seconds: float

    def cells(self) -> list[str]:
        return [self.image, self.solver, str(self.nfe), f"{self.psnr:.6f}", f"{self.ssim:.6f}",
                "" if math.isnan(self.lpips) else f"{self.lpips:.6f}", f"{self.seconds:.4f}"]

    @classmethod
    def parse(cls, cells: Sequence[str]) -> "Row | None":
        if len(cells) != len(COLUMNS) or not cells[0] or not cells[1]:
            return None
        try:
            return cls(cells[0], cells[1], int(cells[2]), float(cells[3]), float(cells[4]),
                       float(cells[5]) if cells[5] else math.nan, float(cells[6]))
        except ValueError:
            return None


def csv_text(rows: Iterable[Row], header: bool = False) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.cells())
    return buf.getvalue()


def read_rows(path: str | Path) -> list[Row]:
    """The rows of a row file; a last line without its newline (cut by a kill) and malformed
    lines are dropped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    rows = []
    for cells in csv.reader(io.StringIO(text)):
        if tuple(cells) == COLUMNS:
            continue
        row = Row.parse(cells)
        if row is not None:
            rows.append(row)
    return rows


def complete_groups(rows: Iterable[Row], expected: dict[str, list[int]]) -> dict[tuple[str, str], list[Row]]:
    """(image, solver) -> its rows, for the groups holding exactly the expected nfes; of two
    complete copies of a group the first is kept."""
    groups: dict[tuple[str, str], list[Row]] = {}
    order: list[tuple[str, str]] = []
    for row in rows:
        key = (row.image, row.solver)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(row)
    out = {}
    for key in order:
        want = expected.get(key[1])
        group = groups[key]
        if want is None:
            continue
        # a group written twice (two complete copies) keeps its first copy
        first = group[: len(want)]
        if sorted(r.nfe for r in first) == sorted(want):
            out[key] = sorted(first, key=lambda r: r.nfe)
    return out


def row_files(out: Path) -> list[Path]:
    return sorted(out.glob(f"{ROW_PREFIX}*.csv"))


def load_all(out: Path, expected: dict[str, list[int]]) -> dict[tuple[str, str], list[Row]]:
    done: dict[tuple[str, str], list[Row]] = {}
    for path in row_files(out):
        for key, group in complete_groups(read_rows(path), expected).items():
            done.setdefault(key, group)
    return done


def compact(out: Path, expected: dict[str, list[int]]) -> dict[tuple[str, str], list[Row]]:
    """Rewrite every row file with only its complete groups not already in an earlier file;
    returns all complete groups."""
    done: dict[tuple[str, str], list[Row]] = {}
    for path in row_files(out):
        rows = read_rows(path)
        keep = {k: g for k, g in complete_groups(rows, expected).items() if k not in done}
        done.update(keep)
        if sum(map(len, keep.values())) != len(rows) or not path.read_text(encoding="utf-8").endswith("\n"):
            write_text(path, csv_text((r for g in keep.values() for r in g), header=True))
    return done


# --------------------------------------------------------------------------- summary
def _stats(values: list[float]) -> dict[str, float | None]:
    vals = [v for v in values if not math.isnan(v)]
    if not vals:
        return {"mean": None, "std": None}
    mean = sum(vals) / len(vals)
    return {"mean": mean, "std": math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))}


def summarize(rows: Sequence[Row], settings: dict[str, Any] | None = None,
              solver_order: Sequence[str] = ()) -> dict[str, Any]:
    """summary.json's content from the rows: per solver, per nfe (string keys, ascending) the mean
    and population std of each metric and the image count; "final" is the last nfe's entry with
    its "nfe"."""
    by_solver: dict[str, dict[int, list[Row]]] = {}
    for row in rows:
        by_solver.setdefault(row.solver, {}).setdefault(row.nfe, []).append(row)
    order = [s for s in solver_order if s in by_solver] + sorted(set(by_solver) - set(solver_order))
    solvers = {}
    for solver in order:
        per_nfe = {}
        for nfe in sorted(by_solver[solver]):
            group = by_solver[solver][nfe]
            entry: dict[str, Any] = {m: _stats([getattr(r, m) for r in group]) for m in METRICS}
            entry["count"] = len(group)
            per_nfe[str(nfe)] = entry
        last = max(by_solver[solver])
        solvers[solver] = {"nfe": per_nfe, "final": {"nfe": last, **per_nfe[str(last)]}}
    return {"settings": settings or {}, "images": len({r.image for r in rows}), "solvers": solvers}


