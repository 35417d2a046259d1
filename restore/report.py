"""What a restoration's output folder holds, drawn from a `RestoreResult` (reads results only):
the step and final images, the progress strip, the candidates' contact sheets, the metrics plot
and metrics.json; every file written atomically (a temporary file, then a rename). `save_result`
writes a whole folder at once; `restore.live` fills one as the run goes."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from restore.imageio import save_image, to_uint8
from restore.settings import UsageError

if TYPE_CHECKING:
    from restore.result import RestoreResult, Step

#: files a restoration writes (besides the numbered ones below); --overwrite replaces only folders
#: holding nothing else
OUTPUT_FILES = ("observation.png", "final.png", "latest.png", "progress.png", "metrics.png", "metrics.json",
                "state.pt")
_NUMBERED = re.compile(r"(step_\d+_nfe\d+|final_\d+|candidates_step\d+)\.png")
#: most outputs shown in progress.png (DDRM has one per call; they are then subsampled evenly)
STRIP_MAX_STEPS = 10


def is_output_file(name: str) -> bool:
    return name in OUTPUT_FILES or bool(_NUMBERED.fullmatch(name))


def check_output_dir(out: str | Path, overwrite: bool = False) -> Path:
    """Raise UsageError when `out` cannot take a new output folder; returns it as a Path.

    Refused: a path that exists and is not a folder; a non-empty folder without `overwrite`;
    with `overwrite`, a folder holding files this tool does not write (it is not replaced, so
    that --overwrite can never delete unrelated data); a location that cannot be created."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        raise UsageError(f"--out {out} must name a new folder (e.g. outputs/run1), not {str(out)!r}")
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise UsageError(f"output path {out} exists and is not a folder; choose another --out")
        entries = sorted(e.name for e in out.iterdir())
        if entries and not overwrite:
            raise UsageError(f"output folder {out} exists and is not empty; pass --overwrite to replace it "
                             "or choose another --out")
        foreign = [e for e in entries if not is_output_file(e)]
        if foreign:
            raise UsageError(f"output folder {out} holds files restore.py did not write ({foreign[0]}, ...); "
                             "--overwrite only replaces earlier outputs, choose another --out")
    ancestor = out.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"cannot create output folder {out}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"cannot create output folder {out}: {ancestor} is not writable; choose another --out")
    return out


class FolderClaim:
    """A new output folder taken for writing. An existing folder of earlier outputs (allowed by
    `overwrite`) is moved aside: put back by `rollback`, deleted by `commit`; the parents created
    for the folder are removed by `rollback` too."""

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
            self.old = parent / f".{self.out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(self.out, self.old)
        self.out.mkdir()

    def commit(self) -> None:
        if self.old is not None:
            shutil.rmtree(self.old, ignore_errors=True)
            self.old = None

    def rollback(self) -> None:
        shutil.rmtree(self.out, ignore_errors=True)
        if self.old is not None:
            os.rename(self.old, self.out)
            self.old = None
        for p in self.created:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()


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
    return claim.out


# --------------------------------------------------------------------------- the files
def atomic(path: Path, write) -> None:
    """write(tmp) into a temporary file beside `path` (same suffix), then rename it to `path`:
    a file that exists is whole."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}-{secrets.token_hex(3)}{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save(image: torch.Tensor, path: Path) -> None:
    atomic(path, lambda tmp: save_image(image, tmp))


def write_observation(observation: torch.Tensor, folder: Path) -> None:
    _save(observation, folder / "observation.png")


def write_metrics(metrics: dict, folder: Path) -> None:
    atomic(folder / "metrics.json", lambda tmp: tmp.write_text(json.dumps(metrics, indent=2) + "\n"))


def write_step(result: RestoreResult, step: Step, folder: Path) -> None:
    """A step's files: step_<k>_nfe<n>.png (the lead candidate) and, with several candidates,
    candidates_step<k>.png (every candidate, numbered, with its scores)."""
    _save(step.image, folder / result.step_file(step))
    if result.settings.candidates > 1:
        atomic(folder / f"candidates_step{step.index}.png",
               lambda tmp: contact_sheet(step).save(tmp, format="PNG"))


def write_final(result: RestoreResult, folder: Path) -> None:
    """The end of a run (complete or stopped): final.png, final_<i>.png for every candidate left
    (several candidates), progress.png, metrics.png (with a reference) and metrics.json."""
    _save(result.final, folder / "final.png")
    if result.settings.candidates > 1:
        for number, image in result.finals.items():
            _save(image, folder / f"final_{number}.png")
    atomic(folder / "progress.png", lambda tmp: progress_strip(result).save(tmp, format="PNG"))
    if result.reference is not None:
        atomic(folder / "metrics.png", lambda tmp: metrics_figure(result, tmp))
    write_metrics(result.metrics, folder)


# --------------------------------------------------------------------------- figures
def _pil(image: torch.Tensor, box: tuple[int, int]):
    """(1, C, h, w) on [-1, 1] -> an RGB PIL image that fits in box = (width, height) with its
    aspect ratio kept (nearest when enlarging: a low-resolution measurement shows its pixels).
    For display only: the files of the results keep their full size."""
    from PIL import Image

    a = to_uint8(image[0]).permute(1, 2, 0).cpu().numpy()
    im = Image.fromarray(np.ascontiguousarray(a[..., 0] if a.shape[2] == 1 else a)).convert("RGB")
    scale = min(box[0] / im.width, box[1] / im.height)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    if im.size != size:
        im = im.resize(size, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS)
    return im


def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def _sheet(tiles: list[tuple[torch.Tensor, str]], side: int, lines: int = 2, like: torch.Tensor | None = None):
    """Images in one row, each scaled to fit a box whose longer side is `side` (with the aspect
    ratio of `like`, default the first image), with a caption of up to `lines` lines under it."""
    from PIL import Image, ImageDraw

    h, w = (tiles[0][0] if like is None else like).shape[-2:]
    bw, bh = (side, max(1, round(side * h / w))) if w >= h else (max(1, round(side * w / h)), side)
    px = max(10, min(14, min(bw, bh) // 11))
    font, pad, line = _font(px), 4, px + 4
    sheet = Image.new("RGB", (len(tiles) * (bw + pad) + pad, bh + 2 * pad + lines * line), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (image, caption) in enumerate(tiles):
        x = pad + i * (bw + pad)
        im = _pil(image, (bw, bh))
        sheet.paste(im, (x + (bw - im.width) // 2, pad + (bh - im.height) // 2))
        for j, text in enumerate(caption.split("\n")[:lines]):
            width = draw.textlength(text, font=font)
            draw.text((x + (bw - width) / 2, pad + bh + 2 + j * line), text, fill="black", font=font)
    return sheet


def _side(image: torch.Tensor, count: int) -> int:
    """The display size of a tile: the image's longer side within [128, 256], smaller when a row of
    `count` would pass 3072 pixels."""
    side = int(min(max(max(image.shape[-2:]), 128), 256))
    return max(96, 3072 // count) if side * count > 3072 else side


def _db(v) -> str:
    return f"{v:.2f} dB" if v is not None else ""


def progress_strip(result: RestoreResult):
    """One row: observation, the anytime outputs of the lead candidate (at most STRIP_MAX_STEPS,
    evenly chosen), final, reference; captions with NFE and PSNR under each."""
    steps = [s for s in result.steps if s.image is not None]
    if len(steps) > STRIP_MAX_STEPS:
        idx = sorted(set(np.linspace(0, len(steps) - 1, STRIP_MAX_STEPS).round().astype(int).tolist()))
        steps = [steps[i] for i in idx]
    tiles = [(result.observation, "observation")]
    tiles += [(s.image, f"nfe {s.nfe}\n{_db(s.psnr)}") for s in steps]
    final = "final" if len(result.finals) == 1 else f"final (candidate {result.chosen})"
    tiles.append((result.final, f"{final}, nfe {result.metrics['nfe_total']}\n{_db(result.metrics['final']['psnr'])}"))
    if result.reference is not None:
        tiles.append((result.reference, "reference"))
    return _sheet(tiles, _side(result.final, len(tiles)), like=result.final)


def contact_sheet(step: Step):
    """Every candidate of a step, labelled with its number and, when scored, PSNR and LPIPS."""
    def caption(c):
        scores = ", ".join(p for p in (_db(c.psnr), "" if c.lpips is None else f"LPIPS {c.lpips:.3f}") if p)
        return f"candidate {c.number}\n{scores}"

    tiles = [(c.image, caption(c)) for c in step.candidates]
    return _sheet(tiles, _side(tiles[0][0], len(tiles)))


def metrics_figure(result: RestoreResult, path: Path) -> None:
    """PSNR and LPIPS against network calls: the anytime outputs as points, one candidate's
    per-call predictions as a line (one candidate), or every candidate's outputs (several)."""
    from restore.plots import plot_anytime

    def curve(rows, style):
        return {"nfe": [r["nfe"] for r in rows], "psnr": [_nan(r["psnr"]) for r in rows],
                "lpips": [_nan(r["lpips"]) for r in rows], "style": style}

    s = result.settings
    nested = s.nested
    title = f"{s.task}, {s.label}, {s.model}"
    if s.candidates == 1:
        calls = [c for c in result.per_call if c["candidate"] == 1]
        curves = {"per-call x0 estimates" if nested else f"{s.label.split()[0]} x0 estimates": curve(calls, "line")}
        if nested:
            curves["outer results (anytime outputs)"] = curve(result.metrics["steps"], "points")
    else:
        curves = {}
        for number in range(1, s.candidates + 1):
            rows = [{"nfe": st["nfe"], **c} for st in result.metrics["steps"] for c in st["candidates"]
                    if c["candidate"] == number]
            curves[f"candidate {number}"] = curve(rows, "points" if nested else "line")
        title += f", {s.candidates} candidates"
    for name, scores in result.metrics["baselines"].items():
        label = "pseudo-inverse" if name == "pinv" else name
        curves[f"{label} (0 calls)"] = curve([{"nfe": 0, **scores}], "points")
    plot_anytime(curves, path, title=title)


def _nan(v):
    return math.nan if v is None else v
