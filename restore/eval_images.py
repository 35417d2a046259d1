"""The images of a folder evaluation: finding them, their per-image seeds, loading a batch."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

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


def _hash_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") & (2**63 - 1)


def image_seeds(seed: int, rel: str) -> tuple[int, int]:
    """(observation seed, sampler seed) of image `rel` under run seed `seed`: 63-bit integers
    from SHA-256 of "seed/rel/observation" and "seed/rel/sampler"."""
    return _hash_seed(f"{seed}/{rel}/observation"), _hash_seed(f"{seed}/{rel}/sampler")


def load_batch(data: Path, rels: list[str], size: int, device: torch.device) -> torch.Tensor:
    """The images, RGB on [-1, 1], centre-cropped and resized to size x size, as one batch."""
    from restore.imageio import center_crop_resize, load_image

    images = [center_crop_resize(load_image(data / rel, mode="RGB"), size)[0] for rel in rels]
    return torch.cat(images).to(device)


def png_name(rel: str) -> str:
    """Where --save-images puts image rel: rel itself for a PNG, else rel + ".png" (so that
    a.jpg and a.png do not collide)."""
    return rel if rel.lower().endswith(".png") else rel + ".png"
