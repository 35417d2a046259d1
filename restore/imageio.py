"""Reading and writing images as tensors on the [-1, 1] scale.

`load_image` returns a (1, C, H, W) float32 tensor in [-1, 1], v -> 2 v / max - 1 with max the
format's full scale (255 for 8-bit data, 65535 for 16-bit data), for any image PIL can open:

- RGB, palette (P), grey (L), 1-bit (1), CMYK / YCbCr / LAB (through PIL's conversion to RGB,
  no colour management: ICC profiles are ignored);
- alpha (RGBA, LA, PA, P with transparency) is dropped, not composited: the colour values are
  kept as stored;
- 16-bit grey (PIL modes I;16*, and I as used for 16-bit PNGs): scaled by 65535 (values outside
  [0, 65535] in a 32-bit "I" image are clipped); 32-bit float grey (F) is taken as [0, 1] and
  clipped;
- 16-bit colour PNGs (RGB / RGBA / grey+alpha at 16 bits per sample), which PIL truncates to
  8 bits, are decoded at full precision by pypng. Other 16-bit colour formats (TIFF) get PIL's
  8-bit reading.
- multi-frame files (GIF, TIFF): the first frame; EXIF orientation is not applied (the pixels
  as stored, as torchvision / PIL loaders in reference pipelines read them).

`mode="RGB"` gives C = 3 (grey repeated), `mode="L"` gives C = 1: grey images as stored, colour
images as ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B computed in float (PIL's "L" weights,
without its rounding to 8 bits).

Failures (missing file, directory, not an image, truncated / corrupt data) raise
`ImageReadError`, a `ValueError` with a one-line message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["ImageReadError", "load_image", "save_image", "center_crop_resize", "to_uint8"]

PathLike = Union[str, Path]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LUMA = (0.299, 0.587, 0.114)


class ImageReadError(ValueError):
    """An image file could not be read (missing, not an image, corrupt)."""


# --------------------------------------------------------------------------- 16-bit PNG
def _png_header(path: Path) -> tuple[int, int] | None:
    """(bit depth, colour type) of a PNG, or None if the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _read_png16(path: Path) -> np.ndarray:
    """A 16-bit colour PNG (PIL would cut it to 8 bits) -> (h, w, channels) float64 in [0, 1],
    decoded by pypng."""
    import png

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    data = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, planes)
    return data.astype(np.float64) / 65535.0


# --------------------------------------------------------------------------- loading
def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _pil_to_unit(im) -> np.ndarray:
    """A loaded PIL image -> (H, W, C) float64 in [0, 1], C = 1 (grey) or 3; alpha dropped."""
    mode = im.mode
    if mode.startswith("I;16"):
        a = np.asarray(im).astype(np.float64) / 65535.0
        return a[..., None]
    if mode == "I":
        a = np.clip(np.asarray(im).astype(np.float64), 0, 65535) / 65535.0
        return a[..., None]
    if mode == "F":
        return np.clip(np.asarray(im).astype(np.float64), 0.0, 1.0)[..., None]
    if mode in ("1", "L", "LA", "La"):
        return (np.asarray(im.convert("L")).astype(np.float64) / 255.0)[..., None]
    if mode == "RGB":
        return np.asarray(im).astype(np.float64) / 255.0
    if mode in ("P", "PA"):  # palette images are colour (a grey palette gives R = G = B)
        return np.asarray(im.convert("RGB")).astype(np.float64) / 255.0
    # RGBA (alpha dropped, not composited), RGBX, RGBa, CMYK, YCbCr, LAB, HSV, ...
    return np.asarray(im.convert("RGB")).astype(np.float64) / 255.0


def _read_unit(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    header = _png_header(path)
    if header is not None and header[0] == 16 and header[1] in (2, 4, 6):  # colour or grey+alpha
        try:
            a = _read_png16(path)
        except Exception as error:  # noqa: BLE001 - pypng's errors: a corrupt file
            raise ImageReadError(f"cannot read image {path}: {_one_line(error)}") from None
        return a[..., :3] if header[1] in (2, 6) else a[..., :1]  # drop alpha
    try:
        with Image.open(path) as im:
            im.seek(0)
            im.load()
            return _pil_to_unit(im)
    except UnidentifiedImageError:
        raise ImageReadError(f"cannot read image {path}: not an image file PIL recognises") from None


def load_image(path: PathLike, mode: str = "RGB") -> torch.Tensor:
    """Read an image file -> (1, C, H, W) float32 tensor in [-1, 1]; C = 3 for mode "RGB",
    1 for mode "L" (see the module docstring for the formats and conventions).

    Raises ImageReadError (a ValueError) for a missing file, a non-image or a corrupt image."""
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"cannot read image {p}: no such file")
    if not p.is_file():
        raise ImageReadError(f"cannot read image {p}: not a regular file")
    try:
        a = _read_unit(p)
    except ImageReadError:
        raise
    except Exception as exc:  # truncated data, decompression bombs, bad chunks, ...
        raise ImageReadError(f"cannot read image {p}: {_one_line(exc)}") from exc
    if a.ndim != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageReadError(f"cannot read image {p}: empty image")
    if mode == "RGB" and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif mode == "L" and a.shape[2] == 3:
        a = a @ np.asarray(_LUMA)
        a = a[..., None]
    a = np.clip(a * 2.0 - 1.0, -1.0, 1.0)  # in float64, then one rounding to float32
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float().unsqueeze(0)


# --------------------------------------------------------------------------- saving / helpers
def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] tensor -> uint8 tensor of the same shape and device, round((x + 1) * 127.5)
    after clamping (round half to even; exact inverse of load_image on 8-bit data)."""
    return ((x.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round_().to(torch.uint8)


def save_image(tensor: torch.Tensor, path: PathLike) -> None:
    """Write a (1, C, H, W) or (C, H, W) tensor in [-1, 1] as an 8-bit PNG (grey for C = 1,
    RGB for C = 3); values are clamped and rounded as in `to_uint8`. The suffix must be .png;
    parent directories are created."""
    from PIL import Image

    p = Path(path)
    if p.suffix.lower() != ".png":
        raise ValueError(f"save_image writes PNG files; got {p.name!r}")
    t = tensor
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"save_image takes one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"save_image expects (1, C, H, W) or (C, H, W) with C in (1, 3), got {tuple(tensor.shape)}")
    a = to_uint8(t).cpu().numpy().transpose(1, 2, 0)
    im = Image.fromarray(np.ascontiguousarray(a[..., 0] if a.shape[2] == 1 else a))
    p.parent.mkdir(parents=True, exist_ok=True)
    im.save(p, format="PNG")


def center_crop_resize(x: torch.Tensor, size: int) -> tuple[torch.Tensor, bool]:
    """Centre-crop (B, C, H, W) to a square of the short side, then resize to (size, size) with
    antialiased bicubic interpolation, clamped to [-1, 1]. Returns (image, changed); when the
    input is already size x size it is returned as is with changed False."""
    if x.dim() != 4:
        raise ValueError(f"center_crop_resize expects (B, C, H, W), got {tuple(x.shape)}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    h, w = x.shape[-2:]
    if h == size and w == size:
        return x, False
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    y = x[..., top:top + s, left:left + s].contiguous()
    if s != size:
        dtype = y.dtype if y.is_floating_point() else torch.float32
        y = F.interpolate(y.to(dtype), size=(size, size), mode="bicubic", align_corners=False, antialias=True)
        y = y.clamp(-1.0, 1.0)
    return y, True
