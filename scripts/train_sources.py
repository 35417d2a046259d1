"""The prior's training photographs: where they come from (`data/train_sources.csv`), `build-data`,
and the random crops `train` draws from them (`CropSampler`, `colour_jitter`).

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

import csv
import importlib.util
import io
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

Image.MAX_IMAGE_PIXELS = None  # the wallpapers are up to 5120x2880
MANIFEST = Path(__file__).resolve().parent.parent / "data" / "train_sources.csv"
FIELDS = ["package", "registry", "version", "path", "licence", "credit", "width", "height"]
# Non-face photos held out of training, used for evaluation next to the face crops (eval_prior.py).
HELD_OUT = {
    "opencv-doc": ["butterfly.jpg", "squirrel_cls.jpg"],
    "scikit-image": ["coffee.png"],
}
OPENCV = "/usr/share/doc/opencv-doc/examples/data"
PYPI_DIRS = {"scikit-image": "skimage/data", "scikit-learn": "sklearn/datasets/images"}


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


def source_dir(source: str) -> str:
    """The folder of a source's photos (eval_prior.py reads the held-out and face photos there)."""
    if source == "opencv-doc":
        return OPENCV
    if source in PYPI_DIRS:
        top, _, sub = PYPI_DIRS[source].partition("/")
        base = site_root(top)
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


# BT.601 RGB -> (luma, Cb, Cr): the colour jitter rotates and scales the (Cb, Cr) plane.
YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


class CropSampler:
    """Random crops for a whole batch at once. Photo i is drawn with probability ~ sqrt(area); the
    scale s (source pixels per output pixel) is log-uniform in [1, min(max_zoom, short side / size)];
    then a random position and a horizontal flip. Downscaling is antialiased: the photos sit in a
    pyramid of 2x2-box-filtered levels, each a (1, 3, N, H, W) volume, and a crop at scale s reads
    level floor(log2 s) by bilinear sampling (zoom left in [1, 2)) with a 3-D `grid_sample` whose
    depth coordinate hits the centre of slice i."""

    def __init__(self, arrays: list, device: torch.device, levels: int = 3):
        h_max, w_max = max(a.shape[0] for a in arrays), max(a.shape[1] for a in arrays)
        volume = torch.zeros(1, 3, len(arrays), h_max, w_max)
        for i, a in enumerate(arrays):
            volume[0, :, i, : a.shape[0], : a.shape[1]] = torch.from_numpy(a).permute(2, 0, 1) / 127.5 - 1
        volume = volume.to(device)
        self.levels = [volume]
        for _ in range(1, levels):
            self.levels.append(F.avg_pool3d(self.levels[-1], (1, 2, 2)))
        self.sizes = torch.tensor([[a.shape[0], a.shape[1]] for a in arrays], dtype=torch.float32, device=device)
        self.weights = self.sizes.prod(1).sqrt()  # favour large photos, but not in proportion to area
        self.device = device

    def sample(self, batch: int, size: int, gen: torch.Generator, max_zoom: float = 4.0) -> torch.Tensor:
        dev, n = self.device, self.sizes.shape[0]
        rand = lambda: torch.rand(batch, device=dev, generator=gen)  # noqa: E731
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=gen)
        h, w = self.sizes[idx, 0], self.sizes[idx, 1]
        short = torch.minimum(h, w)
        top = (short / size).clamp(max=max_zoom)  # < 1 only for a photo smaller than the crop
        scale = torch.where(top > 1, top.clamp(min=1) ** rand(), top)
        level = scale.log2().floor().clamp(0, len(self.levels) - 1).long()
        f = (2.0 ** level).float()  # level-0 pixels per level pixel
        h, w = (h / f).floor() * f, (w / f).floor() * f  # the part of the photo that level covers fully
        win = scale * size  # window side in level-0 pixels
        y0, x0 = rand() * (h - win).clamp(min=0), rand() * (w - win).clamp(min=0)
        flip = rand() < 0.5
        u = (torch.arange(size, device=dev) + 0.5) / size  # output pixel centres in [0, 1]
        out = torch.empty(batch, 3, size, size, device=dev)
        for lv in level.unique().tolist():
            m = (level == lv).nonzero().squeeze(1)
            vol, fl = self.levels[lv], float(2**lv)
            H, W = vol.shape[-2:]
            # sample positions in this level's pixels, kept between the photo's first and last pixel centres
            xs = (x0[m, None] + win[m, None] * torch.where(flip[m, None], 1 - u, u)) / fl
            ys = (y0[m, None] + win[m, None] * u) / fl
            xs = torch.minimum(xs.clamp(min=0.5), w[m, None] / fl - 0.5)
            ys = torch.minimum(ys.clamp(min=0.5), h[m, None] / fl - 0.5)
            k, s = len(m), size
            gx = (2 * xs / W - 1)[:, None, :].expand(k, s, s)
            gy = (2 * ys / H - 1)[:, :, None].expand(k, s, s)
            gz = ((2 * idx[m].float() + 1) / n - 1)[:, None, None].expand(k, s, s)
            grid = torch.stack([gx, gy, gz], dim=-1)[None]  # (1, k, S, S, 3): x, y, depth
            crops = F.grid_sample(vol, grid, mode="bilinear", padding_mode="border", align_corners=False)
            out[m] = crops[0].permute(1, 0, 2, 3)
        return out


def colour_jitter(x: torch.Tensor, gen: torch.Generator, hue_deg: float, saturation: float) -> torch.Tensor:
    """Rotate each image's chroma plane (BT.601 Cb, Cr) by a random angle of at most hue_deg degrees
    and scale it by a random factor in [1 - saturation, 1 + saturation]; luma and greys unchanged.
    Small on purpose: hues stay where they are in nature (skin, foliage, sky), unlike channel
    permutations, which would teach the prior that blue skin or purple grass is as likely."""
    if hue_deg <= 0 and saturation <= 0:
        return x
    b, dev = x.shape[0], x.device
    theta = (torch.rand(b, device=dev, generator=gen) * 2 - 1) * math.radians(hue_deg)
    gain = 1 + (torch.rand(b, device=dev, generator=gen) * 2 - 1) * saturation
    a = torch.zeros(b, 3, 3, device=dev)
    a[:, 0, 0] = 1
    a[:, 1, 1], a[:, 1, 2] = gain * theta.cos(), -gain * theta.sin()
    a[:, 2, 1], a[:, 2, 2] = gain * theta.sin(), gain * theta.cos()
    ycc = YCC.to(dev)
    m = torch.linalg.inv(ycc) @ a @ ycc  # (B, 3, 3), linear: maps grey (c, c, c) to itself
    return torch.einsum("bij,bjhw->bihw", m, x).clamp(-1, 1)
