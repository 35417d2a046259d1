"""The prior's training photographs: where they come from (`data/train_sources.csv`) and
`build-data`, which packs them into one file (the random crops drawn from them:
restore.training.crops).

Every photo ships inside a package from a registry the project can use (Debian, PyPI); none is
downloaded and none is committed. The manifest has one row per photo: package, registry (debian or
pypi), the package version it was checked against, the path inside the package (Debian: the
installed absolute path; PyPI: the path inside the wheel, e.g. `skimage/data/chelsea.png`), the
licence (per file where the package's copyright file says so), the credit, and width x height.

Kept: photographs only. Left out, after looking at every image of each package:
- faces and people (the held-out evaluation domain): scikit-image astronaut, camera; OpenCV
  messi5, basketball1/2, left*/right*; lomiri-wallpapers-20.04 Kleiber (a person in the background);
- illustrations, renders, gradients, logos, paintings: all of gnome-backgrounds, ukui-wallpapers,
  xfdesktop4-data, sway-backgrounds, desktop-base, debian-edu-artwork-emerald, fvwm-crystal,
  lomiri-wallpapers (warty); lomiri umang, Fossa, Infinite-Sea, Painting-Colors; 13 of lxqt's 24
  (origami, logos, triangles, waves); MATE abstract/ and desktop/ (Elephants is a painting);
  19 of plasma's 30 wallpapers;
- photos whose colours are not natural (colour statistics matter for colourization): the
  monochrome plasma ColdRipple and Grey, the blue-tinted DarkestHour, the cross-processed
  BytheWater, lomiri analogpattern (a texture under coloured light);
- the project's evaluation photos, `HELD_OUT` (build-data skips them even if a manifest names them).
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import os
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from restore.paths import TRAIN_SOURCES

MANIFEST = TRAIN_SOURCES
FIELDS = ["package", "registry", "version", "path", "licence", "credit", "width", "height"]
# Non-face photos held out of training, used for evaluation next to the face crops (eval_prior.py).
HELD_OUT = {
    "opencv-doc": ["butterfly.jpg", "squirrel_cls.jpg"],
    "scikit-image": ["coffee.png"],
}
OPENCV = "/usr/share/doc/opencv-doc/examples/data"
PYPI_DIRS = {"scikit-image": "skimage/data", "scikit-learn": "sklearn/datasets/images"}


@contextlib.contextmanager
def _large_images():
    """PIL's decompression-bomb limit lifted while the listed wallpapers (up to 5120x2880) are read."""
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def read_manifest(path: Path = MANIFEST) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows, start=2):
        missing = [k for k in ("package", "registry", "path", "licence") if not (row.get(k) or "").strip()]
        if missing or row["registry"] not in ("debian", "pypi"):
            raise SystemExit(f"error: {path}:{i}: bad row (missing {missing or 'a valid registry'})")
    return rows


def site_root(top: str) -> Path | None:
    """The folder that holds the installed module `top` (e.g. site-packages for skimage)."""
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).parent


def resolve(row: dict[str, str], root: Path | None = None) -> Path:
    """Where the photo of a manifest row is on this machine (under `root` if given: a test tree,
    or a folder where the packages were unpacked with `dpkg-deb -x`)."""
    rel = row["path"].lstrip("/")
    if root is not None:
        return Path(root) / rel
    if row["registry"] == "debian":
        return Path("/") / rel
    base = site_root(rel.split("/")[0])
    return (base or Path("/nonexistent")) / rel


def source_dir(source: str, root: Path | None = None) -> str:
    """The folder of a source's photos (eval_prior.py reads the held-out and face photos there);
    under `root` if given, as in `resolve`."""
    if source == "opencv-doc":
        return str(Path(root) / OPENCV.lstrip("/")) if root is not None else OPENCV
    if source in PYPI_DIRS:
        top, _, sub = PYPI_DIRS[source].partition("/")
        base = Path(root) if root is not None else site_root(top)
        return str((base or Path("/nonexistent")) / top / sub)
    raise KeyError(source)


def install_hint(row: dict[str, str]) -> str:
    if row["registry"] == "debian":
        return f"apt-get install {row['package']}"
    return f"pip install {row['package']}"


def installed_version(row: dict[str, str]) -> str | None:
    try:
        if row["registry"] == "pypi":
            from importlib.metadata import version

            return version(row["package"])
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", row["package"]],
                             capture_output=True, text=True, check=False)
        return out.stdout.strip() or None
    except Exception:  # no dpkg-query here, or the package is not installed
        return None


def is_held_out(row: dict[str, str]) -> bool:
    return os.path.basename(row["path"]) in HELD_OUT.get(row["package"], [])


def fit(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale (Lanczos, antialiased) so that the long side is at most max_side."""
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.LANCZOS, reducing_gap=3.0)


def encode(array: np.ndarray, quality: int) -> np.ndarray:
    """A uint8 HxWx3 image as the bytes of a JPEG (no chroma subsampling), as a 1-D uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=quality, subsampling=0)
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def load_photos(path: Path) -> dict[str, np.ndarray]:
    """The photos of a build-data npz as uint8 HxWx3 arrays (JPEG-stored ones decoded)."""
    photos = {}
    with np.load(path) as data:
        for key in data.files:
            a = data[key]
            if a.ndim == 1:
                a = np.asarray(Image.open(io.BytesIO(a.tobytes())).convert("RGB"))
            photos[key] = np.array(a, dtype=np.uint8)  # a writable copy
    return photos


def build_data(out: Path, manifest: Path = MANIFEST, root: Path | None = None, max_side: int = 1024,
               quality: int = 95, skip_missing: bool = False) -> dict[str, np.ndarray]:
    """Pack every manifest photo, downscaled to at most `max_side` pixels on the long side, into
    one npz. quality > 0 stores each as JPEG bytes (quality 95, 4:4:4; about 15 MB for the 66
    photos at 1024 px, against 72 MB for the raw arrays compressed), quality 0 as a raw uint8
    HxWx3 array. A missing package stops the build with the command that installs it, unless
    skip_missing."""
    rows = read_manifest(manifest)
    arrays, skipped, warned = {}, {}, set()
    for row in rows:
        if is_held_out(row):
            print(f"note: {row['package']} {row['path']} is a held-out evaluation photo: not used")
            continue
        path = resolve(row, root)
        if not path.exists():
            if not skip_missing:
                raise SystemExit(f"error: {path} not found: package '{row['package']}' is missing; "
                                 f"run `{install_hint(row)}` (or pass --skip-missing)")
            skipped.setdefault(install_hint(row), []).append(row["path"])
            continue
        if root is None and row["package"] not in warned:
            have = installed_version(row)
            if have and row.get("version") and have != row["version"]:
                print(f"warning: {row['package']} {have} installed, the manifest was checked against "
                      f"{row['version']}: look at its photos again")
            warned.add(row["package"])
        with _large_images():
            image = np.asarray(fit(Image.open(path).convert("RGB"), max_side), dtype=np.uint8)
        key = f"{len(arrays):03d}_{row['package']}_{Path(row['path']).stem}"
        arrays[key] = encode(image, quality) if quality > 0 else image
    for hint, paths in skipped.items():
        print(f"skipped {len(paths)} photos of a missing package (`{hint}` installs it)")
    if not arrays:
        raise SystemExit("error: no training photo found")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    (np.savez if quality > 0 else np.savez_compressed)(out, **arrays)
    print(f"wrote {len(arrays)} photos (long side <= {max_side} px, "
          f"{'JPEG q%d' % quality if quality > 0 else 'raw'}) to {out}: {out.stat().st_size / 1e6:.1f} MB")
    return arrays
