"""The images of a folder evaluation: finding them, checking that each reads, loading a batch at its
restoration size (their seeds: restore.restoration.seeds.image_seeds)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from restore.errors import ImageReadError, UsageError
from restore.io.images import check_image, crop_resize, load_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")


def find_images(root: str | Path, exclude: str | Path | None = None) -> list[str]:
    """Relative POSIX paths of the images under `root` (recursive, sorted), skipping hidden
    entries and anything under `exclude` (the output folder)."""
    root = Path(root)
    skip = Path(exclude).resolve() if exclude is not None else None
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")
                       and (skip is None or (here / d).resolve() != skip)]
        for name in filenames:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append((here / name).relative_to(root).as_posix())
    return sorted(found)


def check_images(data: Path, rels: list[str], skip: bool,
                 max_pixels: int | None = None) -> tuple[dict[str, tuple[int, int]], list[dict[str, str]]]:
    """Decode every image once, before any restoration: ({rel: (height, width)} of the readable
    ones, [{"image": rel, "error": why}] of the others). Unless `skip`, any unreadable image is a
    UsageError listing them in one line."""
    sizes, bad = {}, []
    for rel in rels:
        try:
            sizes[rel] = check_image(data / rel, max_pixels)
        except ImageReadError as error:
            why, prefix = str(error), f"cannot read image {data / rel}: "
            bad.append({"image": rel, "error": why[len(prefix):] if why.startswith(prefix) else why})
    if bad and not skip:
        listed = "; ".join(f"{b['image']} ({b['error']})" for b in bad[:5])
        more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise UsageError(f"{len(bad)} of {len(rels)} images under {data} cannot be read: {listed}{more}; "
                         "fix or remove them, or pass --skip-unreadable to go on without them")
    return sizes, bad


def load_batch(data: Path, rels: list[str], size, device: torch.device, max_pixels: int | None = None) -> torch.Tensor:
    """The images, RGB on [-1, 1], as one batch at `size`: S (S x S) or (H, W), centre-cropped to
    that aspect ratio and resized where they differ."""
    shown = (size, size) if isinstance(size, int) else tuple(size)
    images = [crop_resize(load_image(data / rel, mode="RGB", max_pixels=max_pixels), *shown) for rel in rels]
    return torch.cat(images).to(device)


def png_name(rel: str) -> str:
    """Where --save-images puts image rel: rel itself for a PNG, else rel + ".png" (so that
    a.jpg and a.png do not collide)."""
    return rel if rel.lower().endswith(".png") else rel + ".png"
