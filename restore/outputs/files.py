"""What a restoration's output folder holds, drawn from a `RestoreResult` (reads results only):
the step and final images, the candidates' contact sheets and the figures (restore.outputs.figures),
metrics.json; every file written atomically (restore.io.atomic). The folder is claimed first
(`FolderClaim`: never over files this tool did not write). `save_result` writes a whole folder at
once; restore.outputs.live fills one as the run goes."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from pathlib import Path

import torch

from restore.errors import UsageError
from restore.io.atomic import atomic_write, write_json
from restore.io.images import save_image
from restore.io.locks import LOCK_FILE, FolderLock
from restore.outputs.figures import contact_sheet, metrics_figure, progress_strip, spread_map
from restore.restoration.result import RestoreResult, Step
from restore.restoration.regions import region_file

#: files a restoration writes (besides the numbered ones below); --overwrite replaces only folders
#: holding nothing else
OUTPUT_FILES = ("observation.png", "final.png", "latest.png", "progress.png", "metrics.png", "metrics.json",
                "state.pt")
_NUMBERED = re.compile(r"(step_\d+_nfe\d+|final_\d+|candidates_step\d+|spread_step\d+|region_step\d+_\d+)\.png")


def is_output_file(name: str) -> bool:
    return name in OUTPUT_FILES or name == LOCK_FILE or bool(_NUMBERED.fullmatch(name))


def check_output_dir(out: str | Path, overwrite: bool = False, where: str | None = None) -> Path:
    """Raise UsageError when `out` cannot take a new output folder; returns it as a Path.

    Refused: a path that exists and is not a folder; a non-empty folder without `overwrite`;
    with `overwrite`, a folder holding files this tool does not write (it is not replaced, so
    that --overwrite can never delete unrelated data); a location that cannot be created. The
    messages name the flags (--out, --overwrite), or with where="keyword" the keywords."""
    out = Path(out)
    flag_out, flag_over = ("--out", "--overwrite") if where is None else ("out=", "overwrite=True")
    if out.name in ("", ".", ".."):
        raise UsageError(f"{flag_out} {out} must name a new folder (e.g. outputs/run1), not {str(out)!r}")
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise UsageError(f"output path {out} exists and is not a folder; choose another {flag_out}")
        entries = sorted(e.name for e in out.iterdir())
        if entries and not overwrite:
            raise UsageError(f"output folder {out} exists and is not empty; pass {flag_over} to replace it "
                             f"or choose another {flag_out}")
        foreign = [e for e in entries if not is_output_file(e)]
        if foreign:
            raise UsageError(f"output folder {out} holds files restore.py did not write ({foreign[0]}, ...); "
                             f"{flag_over} only replaces earlier outputs, choose another {flag_out}")
    ancestor = out.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"cannot create output folder {out}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create output folder {out}: {ancestor} is not writable; choose another {flag_out}")
    return out


class FolderClaim:
    """A new output folder taken for writing, and held (restore.io.locks) until `release`. An
    existing folder of earlier outputs (allowed by `overwrite`, refused while another run holds
    it) is moved aside: put back by `rollback`, deleted by `commit`; the parents created for the
    folder are removed by `rollback` too."""

    def __init__(self, out: str | Path, overwrite: bool = False):
        self.out = check_output_dir(out, overwrite)
        parent = self.out.absolute().parent
        self.created: list[Path] = []
        p = parent
        while not p.exists():
            self.created.append(p)
            p = p.parent
        parent.mkdir(parents=True, exist_ok=True)
        self.old = None
        if self.out.exists():
            with FolderLock(self.out, "output folder"):  # not while another run writes into it
                self.old = parent / f".{self.out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
                os.rename(self.out, self.old)
                (self.old / LOCK_FILE).unlink(missing_ok=True)  # the claim's own file, moved with the folder
        try:
            self.out.mkdir()
        except FileExistsError:
            raise UsageError(f"output folder {self.out} was just made by another run; choose another --out") from None
        self.lock = FolderLock(self.out, "output folder")

    def commit(self) -> None:
        if self.old is not None:
            shutil.rmtree(self.old, ignore_errors=True)
            self.old = None

    def rollback(self) -> None:
        self.lock.release()
        shutil.rmtree(self.out, ignore_errors=True)
        if self.old is not None:
            os.rename(self.old, self.out)
            self.old = None
        for p in self.created:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()

    def release(self) -> None:
        self.lock.release()


def save_result(result: RestoreResult, out: str | Path, overwrite: bool = False) -> Path:
    """Write a whole output folder (observation.png, step_<k>_nfe<n>.png, candidates sheets,
    final.png, final_<i>.png, progress.png, metrics.png when scored, metrics.json) and return
    its path. A failed or interrupted save leaves no folder behind (and an earlier one, replaced
    with `overwrite`, back in place); foreign files are never replaced (see check_output_dir)."""
    claim = FolderClaim(out, overwrite)
    try:
        write_observation(result.observation, claim.out)
        for step in result.steps:
            write_step(result, step, claim.out)
        write_final(result, claim.out)
    except BaseException:
        claim.rollback()
        raise
    claim.commit()
    claim.release()
    return claim.out


# --------------------------------------------------------------------------- the files
def step_file(result: RestoreResult, step: Step) -> str:
    """step_<k>_nfe<n>.png, k zero-padded to the width of the planned number of steps."""
    width = len(str(result.metrics["steps_planned"]))
    return f"step_{step.index:0{width}d}_nfe{step.nfe}.png"


def _save(image: torch.Tensor, path: Path) -> None:
    atomic_write(path, lambda tmp: save_image(image, tmp))


def write_observation(observation: torch.Tensor, folder: Path) -> None:
    _save(observation, folder / "observation.png")


def write_metrics(metrics: dict, folder: Path) -> None:
    write_json(folder / "metrics.json", metrics)


def write_step(result: RestoreResult, step: Step, folder: Path) -> None:
    """A step's files: step_<k>_nfe<n>.png (the lead candidate) and, with several candidates,
    candidates_step<k>.png (every candidate, numbered, with its scores) and spread_step<k>.png
    (where they disagree: a heat map with its scale)."""
    _save(step.image, folder / step_file(result, step))
    if result.settings.candidates > 1:
        atomic_write(folder / f"candidates_step{step.index}.png",
               lambda tmp: contact_sheet(step).save(tmp, format="PNG"))
    if step.spread is not None:
        atomic_write(folder / f"spread_step{step.index}.png", lambda tmp: spread_map(step.spread).save(tmp, format="PNG"))


def write_final(result: RestoreResult, folder: Path) -> None:
    """The end of a run (complete or stopped): final.png, final_<i>.png for every candidate left
    (several candidates), progress.png, metrics.png (with a reference) and metrics.json."""
    _save(result.final, folder / "final.png")
    if result.settings.candidates > 1:
        for number, image in result.finals.items():
            _save(image, folder / f"final_{number}.png")
    atomic_write(folder / "progress.png", lambda tmp: progress_strip(result).save(tmp, format="PNG"))
    if result.reference is not None:
        atomic_write(folder / "metrics.png", lambda tmp: metrics_figure(result, tmp))
    write_metrics(result.metrics, folder)


def write_region_masks(events: list[dict], shown: tuple[int, int], folder: Path) -> None:
    """The masks of a run's region choices, as metrics.json names them (white = the region, at
    the result's size); those already written stay."""
    from PIL import Image

    for event in events:
        for j, (_, mask) in enumerate(event.get("regions", ()), 1):
            path = folder / region_file(event["after_step"], j)
            if not path.exists():
                a = (mask[: shown[0], : shown[1]].numpy().astype("uint8") * 255)
                atomic_write(path, lambda tmp, a=a: Image.fromarray(a).save(tmp, format="PNG"))
