"""The figures of a restoration's folder, drawn from a `RestoreResult` (reads results only): the
progress strip, the candidates' contact sheets and the metrics plot (PSNR and LPIPS against
network calls). Display only: the result's image files keep their full size."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from restore.io.images import to_uint8
from restore.quality.plots import plot_anytime

if TYPE_CHECKING:
    from restore.restoration.result import RestoreResult, Step

#: most outputs shown in progress.png (DDRM has one per call; they are then subsampled evenly)
STRIP_MAX_STEPS = 10


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


def spread_map(spread: torch.Tensor, top: float | None = None):
    """The candidates' spread (H, W) on [0, 1] (restore.quality.spread) as a heat map with its
    scale beside it: black (0) through red to yellow (`top`, default the map's 99.5th percentile,
    at least 0.01); the map keeps the image's pixels, the bar is labelled in pixel units."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    values = spread.float()
    if top is None:
        top = max(0.01, float(torch.quantile(values.flatten()[:: max(1, values.numel() // 65536)], 0.995)))
    cmap = colormaps["inferno"]
    rgb = (cmap((values / top).clamp(0, 1).numpy())[..., :3] * 255).round().astype(np.uint8)
    heat = Image.fromarray(rgb)
    h = heat.height
    px = max(10, min(14, h // 12))
    font, bar_w, pad = _font(px), max(8, h // 24), 4
    label_w = int(ImageDraw.Draw(heat).textlength(f"{top:.3f}", font=font)) + 2
    sheet = Image.new("RGB", (heat.width + 2 * pad + bar_w + label_w + pad, max(h, 3 * px)), "white")
    sheet.paste(heat, (0, 0))
    ramp = (cmap(np.linspace(1, 0, h))[:, :3] * 255).round().astype(np.uint8)
    bar = Image.fromarray(np.repeat(ramp[:, None], bar_w, axis=1))
    x = heat.width + pad
    sheet.paste(bar, (x, 0))
    draw = ImageDraw.Draw(sheet)
    draw.text((x + bar_w + 2, 0), f"{top:.3f}", fill="black", font=font)
    draw.text((x + bar_w + 2, h - px - 2), "0", fill="black", font=font)
    return sheet
