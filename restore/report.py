"""The output folder of a restoration (scripts/restore.py, `RestoreResult.save`): the images,
the progress strip, the metrics plot and metrics.json, written atomically."""

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
    from restore.api import RestoreResult

#: files written by save_result (besides step_<k>_nfe<n>.png); --overwrite replaces only
#: folders holding nothing else
OUTPUT_FILES = ("observation.png", "final.png", "progress.png", "metrics.png", "metrics.json")
_STEP_FILE = re.compile(r"step_\d+_nfe\d+\.png")
#: most outputs shown in progress.png (DDRM has one per call; they are then subsampled evenly)
STRIP_MAX_STEPS = 10


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
        foreign = [e for e in entries if e not in OUTPUT_FILES and not _STEP_FILE.fullmatch(e)]
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


def save_result(result: RestoreResult, out: str | Path, overwrite: bool = False) -> Path:
    """Write the output folder (observation.png, step_<k>_nfe<n>.png, final.png,
    progress.png, metrics.png when scored, metrics.json) and return its path.

    The files are written into a temporary folder beside `out` and renamed into place at the
    end, so a failed or interrupted save leaves no half-written folder. An existing
    non-empty `out` raises UsageError unless `overwrite`; even then only a folder holding
    nothing but this tool's outputs is replaced (and only after the new one is complete)."""
    out = check_output_dir(out, overwrite)
    parent = out.absolute().parent
    created = []
    p = parent
    while not p.exists():
        created.append(p)
        p = p.parent
    old = None
    tmp = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = parent / f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
        _write(result, tmp)
        if out.exists():
            check_output_dir(out, overwrite)  # again: it may have changed meanwhile
            old = parent / f".{out.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            os.rename(out, old)
        os.rename(tmp, out)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.rename(old, out)
            old = None
        for p in created:  # deepest first
            with contextlib.suppress(OSError):
                p.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


def _write(result: RestoreResult, folder: Path) -> None:
    save_image(result.observation, folder / "observation.png")
    for step in result.steps:
        save_image(step.image, folder / result.step_file(step))
    save_image(result.final, folder / "final.png")
    progress_strip(result).save(folder / "progress.png", format="PNG")
    if result.reference is not None:
        metrics_figure(result, folder / "metrics.png")
    (folder / "metrics.json").write_text(json.dumps(result.metrics, indent=2) + "\n")


def _pil(image: torch.Tensor, side: int):
    """(1, C, h, w) on [-1, 1] -> an RGB PIL image of side x side (nearest when enlarging)."""
    from PIL import Image

    a = to_uint8(image[0]).permute(1, 2, 0).cpu().numpy()
    im = Image.fromarray(np.ascontiguousarray(a[..., 0] if a.shape[2] == 1 else a)).convert("RGB")
    if im.size != (side, side):
        enlarge = im.size[0] < side
        im = im.resize((side, side), Image.Resampling.NEAREST if enlarge else Image.Resampling.LANCZOS)
    return im


def _font(px: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def progress_strip(result: RestoreResult):
    """One row: observation, the anytime outputs (at most STRIP_MAX_STEPS, evenly chosen),
    final, reference; captions with NFE and PSNR under each."""
    from PIL import Image, ImageDraw

    steps = result.steps
    if len(steps) > STRIP_MAX_STEPS:
        idx = sorted(set(np.linspace(0, len(steps) - 1, STRIP_MAX_STEPS).round().astype(int).tolist()))
        steps = [steps[i] for i in idx]

    def db(v):
        return f"{v:.2f} dB" if v is not None else ""

    tiles = [(result.observation, "observation")]
    tiles += [(s.image, f"nfe {s.nfe}\n{db(s.psnr)}") for s in steps]
    final_psnr = result.metrics["final"]["psnr"]
    tiles.append((result.final, f"final, nfe {result.metrics['nfe_total']}\n{db(final_psnr)}"))
    if result.reference is not None:
        tiles.append((result.reference, "reference"))

    side = int(min(max(result.final.shape[-1], 128), 256))
    if side * len(tiles) > 3072:
        side = max(96, 3072 // len(tiles))
    font = _font(max(10, min(14, side // 11)))
    pad, line = 4, max(10, min(14, side // 11)) + 4
    strip = Image.new("RGB", (len(tiles) * (side + pad) + pad, side + 2 * pad + 2 * line), "white")
    draw = ImageDraw.Draw(strip)
    for i, (image, caption) in enumerate(tiles):
        x = pad + i * (side + pad)
        strip.paste(_pil(image, side), (x, pad))
        for j, text in enumerate(caption.split("\n")):
            if not text:
                continue
            width = draw.textlength(text, font=font)
            draw.text((x + (side - width) / 2, pad + side + 2 + j * line), text, fill="black", font=font)
    return strip


def metrics_figure(result: RestoreResult, path: Path) -> None:
    from restore.plots import plot_anytime

    def curve(rows, style):
        return {"nfe": [r["nfe"] for r in rows], "psnr": [_nan(r["psnr"]) for r in rows],
                "lpips": [_nan(r["lpips"]) for r in rows], "style": style}

    s = result.settings
    if s.solver == "nested":
        curves = {"per-call x0 predictions": curve(result.per_call, "line"),
                  "outer results (anytime outputs)": curve(result.metrics["steps"], "points")}
        title = f"{s.task}, Nested DDRM {s.outer} x {s.inner}, {s.model}"
    else:
        curves = {"DDRM x0 predictions": curve(result.per_call, "line")}
        title = f"{s.task}, DDRM {s.steps} steps, {s.model}"
    for name, scores in result.metrics["baselines"].items():
        label = "pseudo-inverse" if name == "pinv" else name
        curves[f"{label} (0 calls)"] = curve([{"nfe": 0, **scores}], "points")
    plot_anytime(curves, path, title=title)


def _nan(v):
    return math.nan if v is None else v
