"""The images of a folder evaluation: finding them, checking that each reads, loading a batch at its
restoration size (their seeds: restore.restoration.seeds.image_seeds)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from restore.errors import ImageReadError, UsageError, one_line
from restore.io.images import check_image, crop_resize, load_image

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")


@dataclass
class Walk:
    """What a walk of a data folder found: the images (relative POSIX paths, sorted, each real file
    once), the subfolders it could not list ([{"image": "sub/", "error": why}], reported like
    unreadable images), and the links to folders it did not follow because they lead back to a
    folder above them (relative paths: the loops)."""

    images: list[str] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    loops: list[str] = field(default_factory=list)


def walk_images(root: str | Path, exclude: str | Path | None = None) -> Walk:
    """The images under `root`, recursively, skipping hidden entries and anything under `exclude`
    (the output folder).

    Links are followed, but each real folder is listed once and each real file counted once (by
    its resolved path; of several names for one file the first without a link in it, else the
    first in sorted order, is kept). A link to a folder that holds `root` or the folder the link
    sits in (`ln -s .. up`, `ln -s / root`, `ln -s . self`) is a loop: it is not followed and is
    listed in `loops`. A folder that cannot be listed is recorded in `unreadable`."""
    root = Path(root)
    walk = Walk()
    skip = _real(exclude) if exclude is not None else None
    top = _real(root)
    seen_dirs: set[tuple[int, int]] = set()
    best: dict[str, tuple[bool, str]] = {}  # resolved file -> (reached through a link?, relative path)
    plain, linked = [(root, "", False)], []  # folders reached without a link are listed first
    while plain or linked:
        folder, rel, via = plain.pop() if plain else linked.pop()
        try:
            key = _key(folder)
            if key in seen_dirs:  # another name of a folder already listed
                continue
            seen_dirs.add(key)
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as error:
            walk.unreadable.append({"image": rel + "/" if rel else ".", "error": _why(error)})
            continue
        below: list[tuple[Path, str, bool]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path, name = Path(entry.path), f"{rel}/{entry.name}" if rel else entry.name
            via_link = via or entry.is_symlink()
            try:
                is_dir = entry.is_dir()  # follows a link
            except OSError:
                is_dir = False
            if is_dir:
                real = _real(path)
                if skip is not None and real == skip:
                    continue
                if entry.is_symlink() and (_holds(real, top) or _holds(real, _real(folder))):
                    walk.loops.append(name)
                    continue
                below.append((path, name, via_link))
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                real_file = str(_real(path))  # a dangling link stays: reading it reports it unreadable
                mark = (via_link, name)
                if real_file not in best or mark < best[real_file]:
                    best[real_file] = mark
        for item in reversed(below):
            (linked if item[2] else plain).append(item)
    walk.images = sorted(name for _, name in best.values())
    walk.loops.sort()
    walk.unreadable.sort(key=lambda u: u["image"])
    return walk


def find_images(root: str | Path, exclude: str | Path | None = None) -> list[str]:
    """Relative POSIX paths of the images under `root` (recursive, sorted, each real file once;
    `walk_images` says how links and unreadable folders are handled), skipping hidden entries and
    anything under `exclude` (the output folder)."""
    return walk_images(root, exclude).images


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _key(path: Path) -> tuple[int, int]:
    """A folder's identity (device, inode): two names of one folder share it."""
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _holds(outer: Path, inner: Path) -> bool:
    """Whether folder `outer` is `inner` or one of its ancestors."""
    return outer == inner or outer in inner.parents


def _why(error: OSError) -> str:
    return f"folder cannot be read: {error.strerror or one_line(error)}"


def check_images(data: Path, rels: list[str], skip: bool, max_pixels: int | None = None,
                 folders: list[dict[str, str]] = ()) -> tuple[dict[str, tuple[int, int]], list[dict[str, str]]]:
    """Decode every image once, before any restoration: ({rel: (height, width)} of the readable
    ones, [{"image": rel, "error": why}] of the others, after the unreadable `folders` of the
    walk). Unless `skip`, any unreadable image or folder is a UsageError listing them in one line."""
    sizes, bad = {}, list(folders)
    for rel in rels:
        try:
            sizes[rel] = check_image(data / rel, max_pixels)
        except ImageReadError as error:
            why, prefix = str(error), f"cannot read image {data / rel}: "
            bad.append({"image": rel, "error": why[len(prefix):] if why.startswith(prefix) else why})
    if bad and not skip:
        listed = "; ".join(f"{b['image']} ({b['error']})" for b in bad[:5])
        more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
        what = f"{len(bad) - len(folders)} of {len(rels)} images"
        if folders:
            what = f"{what} and {len(folders)} folder{'s' if len(folders) > 1 else ''}"
        raise UsageError(f"{what} under {data} cannot be read: {listed}{more}; "
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
