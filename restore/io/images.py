"""Reading and writing images as tensors on the [-1, 1] scale.

`load_image` returns a (1, C, H, W) float32 tensor in [-1, 1], v -> 2 v / max - 1 with max the
format's full scale (255 for 8-bit data, 65535 for 16-bit data), for any image PIL can open. The
tensor is the image as a viewer displays it:

- EXIF orientation (phone photos; JPEG, TIFF, PNG, WebP, ... whatever PIL reads EXIF from) is
  applied with `PIL.ImageOps.exif_transpose`, so H, W are the upright size;
- an embedded ICC profile on a colour image (RGB, palette, CMYK) is converted to sRGB by
  littlecms (`PIL.ImageCms`, perceptual intent, 8-bit result). A profile that changes no value
  by more than one 8-bit step (an sRGB profile) leaves the stored values as they are; a profile
  that cannot be read or does not fit the image leaves them too, with a note. Grey images keep
  their stored values whatever their profile (a grey profile only changes the tone curve);
  CMYK without a profile gets PIL's naive conversion to RGB;
- alpha (RGBA, LA, PA, P / L / RGB with a transparent colour, 16-bit PNGs with alpha) is
  composited over white: c alpha + (1 - alpha) on the stored values. A fully opaque alpha
  channel gives exactly the stored colour values;
- 16-bit grey (PIL modes I;16*, and I as used for 16-bit PNGs): scaled by 65535 (values outside
  [0, 65535] in a 32-bit "I" image are clipped); 32-bit float grey (F) is taken as [0, 1] and
  clipped;
- 16-bit colour PNGs (RGB / RGBA / grey+alpha at 16 bits per sample), which PIL truncates to
  8 bits, are decoded at full precision by pypng; their ICC profile (iCCP) is NOT applied (a
  note says so) and an eXIf orientation is ignored. Other 16-bit colour formats (TIFF) get
  PIL's 8-bit reading;
- multi-frame files (GIF, TIFF): the first frame.

`mode="RGB"` gives C = 3 (grey repeated), `mode="L"` gives C = 1: grey images as stored, colour
images as ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B computed in float (PIL's "L" weights,
without its rounding to 8 bits).

`load_image(path, notes=[])` appends one-line notes on what it changed (orientation, colour
profile, transparency). `check_image` decodes a file the same way and returns its displayed
(height, width), to vet a folder before any work starts.

Bounded: a file whose header says it holds more than `max_pixels` pixels (width x height of the
first frame; default MAX_PIXELS) is refused before anything is decoded, whatever its format or
bit depth (a 2 MB PNG can claim 20000 x 20000 pixels, 30 GB once decoded); callers raise the
limit with their --max-pixels.

Failures (missing file, directory, not an image, truncated / corrupt data) raise
`ImageReadError` (restore.errors), a `ValueError` with a one-line message.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import operator
import warnings
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from restore.errors import ImageReadError, UsageError, one_line

__all__ = ["ImageReadError", "load_image", "check_image", "save_image", "crop_resize", "to_uint8"]

PathLike = Union[str, Path]

#: the most pixels (width x height) decoded unless a caller allows more: 40 megapixels take about
#: 1 GB as the float64 RGB array of the conversion (a 48-megapixel phone photo needs --max-pixels)
MAX_PIXELS = 40_000_000
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_LUMA = (0.299, 0.587, 0.114)
_ORIENTATIONS = {2: "mirrored left-right", 3: "rotated 180°", 4: "mirrored top-bottom",
                 5: "mirrored across the main diagonal", 6: "rotated 90° clockwise",
                 7: "mirrored across the anti-diagonal", 8: "rotated 90° counter-clockwise"}
_PROFILE_MODES = {"RGB": ("RGB", "RGBX", "P"), "CMYK": ("CMYK",)}  # profile space -> image modes
_GREY_MODES = ("1", "L", "I", "F")


# --------------------------------------------------------------------------- 16-bit PNG
def _png_header(path: Path) -> tuple[int, int, int, int] | None:
    """(width, height, bit depth, colour type) of a PNG, or None if the file is not a PNG."""
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"), head[24], head[25]


def _check_pixels(path: Path, width: int, height: int, max_pixels: int) -> None:
    """Refuse, in one line, an image over the pixel budget (from its header: nothing decoded yet)."""
    if width * height > max_pixels:
        raise ImageReadError(f"cannot read image {path}: {width}x{height} = {width * height:,} pixels is over the "
                             f"limit of {max_pixels:,}; pass --max-pixels to allow more")


@contextlib.contextmanager
def _pil_limit(max_pixels: int):
    """PIL's own decompression-bomb check kept quiet and, for a budget above its limit, raised to
    the budget: the budget (checked from the header by _check_pixels) is the one rule."""
    from PIL import Image

    previous = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        if previous is not None and max_pixels > previous:
            Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _read_png16(path: Path) -> tuple[np.ndarray, bool]:
    """A 16-bit colour PNG (PIL would cut it to 8 bits) -> ((h, w, planes) float64 in [0, 1],
    whether it carries an ICC profile), decoded by pypng (which adds an alpha plane for tRNS)."""
    import png

    data = path.read_bytes()
    width, height, rows, info = png.Reader(bytes=data).asDirect()
    planes = info["planes"]
    a = np.vstack([np.asarray(row, dtype=np.uint16) for row in rows]).reshape(height, width, planes)
    header = itertools.takewhile(lambda chunk: chunk[0] != b"IDAT", png.Reader(bytes=data).chunks())
    return a.astype(np.float64) / 65535.0, any(kind == b"iCCP" for kind, _ in header)


# --------------------------------------------------------------------------- loading
def _upright(im, name: str, notes: list[str]):
    """The image as displayed: its EXIF orientation applied (a PIL image, `im` itself if none).
    Unreadable EXIF data is noted, not fatal: the pixels are still good."""
    from PIL import ImageOps

    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception as exc:  # noqa: BLE001 - a broken EXIF block in a readable image
        notes.append(f"{name}: EXIF data unreadable ({one_line(exc)}): orientation not applied")
        return im
    if orientation not in _ORIENTATIONS:
        return im
    notes.append(f"{name}: EXIF orientation applied ({_ORIENTATIONS[orientation]})")
    return ImageOps.exif_transpose(im)


def _split_alpha(im):
    """(colour image, alpha as (H, W, 1) float64 in [0, 1] or None); a transparent colour or
    palette entry (PNG tRNS, GIF) becomes an alpha channel too."""
    if "transparency" in im.info and im.mode in ("P", "L", "RGB"):
        im = im.convert("LA" if im.mode == "L" else "RGBA")
    if im.mode == "RGBa":  # premultiplied (some TIFFs)
        im = im.convert("RGBA")
    if im.mode not in ("RGBA", "LA", "PA"):
        return im, None
    alpha = np.asarray(im.getchannel("A")).astype(np.float64)[..., None] / 255.0
    return im.convert("L" if im.mode == "LA" else "RGB"), alpha


def _to_srgb(im, icc: Optional[bytes], name: str, notes: list[str]):
    """A colour image with its embedded ICC profile converted to sRGB ("RGB" mode), so that a
    value means the same colour whatever space the file was saved in. Returned unchanged: no
    profile, grey images, results within one 8-bit step of the stored values (an sRGB profile),
    and profiles that cannot be applied (noted)."""
    if not icc or im.mode in _GREY_MODES or im.mode.startswith("I;16"):
        return im
    from PIL import ImageCms

    label = "embedded"
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        label = repr(source.profile.profile_description or "embedded")
        space = source.profile.xcolor_space.strip()
        if im.mode not in _PROFILE_MODES.get(space, ()):
            raise ValueError(f"a {space} profile does not fit a {im.mode} image")
        base = im.convert("RGB") if im.mode in ("P", "RGBX") else im
        out = ImageCms.profileToProfile(base, source, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError) as exc:
        notes.append(f"{name}: colour profile {label} not applied ({one_line(exc)}): values kept as stored")
        return im
    if base.mode == "RGB" and np.abs(np.asarray(out, np.int16) - np.asarray(base, np.int16)).max() <= 1:
        return base
    notes.append(f"{name}: colour profile {label} converted to sRGB")
    return out


def _pil_to_unit(im) -> np.ndarray:
    """A loaded PIL image without alpha -> (H, W, C) float64 in [0, 1], C = 1 (grey) or 3."""
    mode = im.mode
    if mode.startswith("I;16"):
        a = np.asarray(im).astype(np.float64) / 65535.0
        return a[..., None]
    if mode == "I":
        a = np.clip(np.asarray(im).astype(np.float64), 0, 65535) / 65535.0
        return a[..., None]
    if mode == "F":
        if not np.isfinite(np.asarray(im)).all():  # a float TIFF: NaN is no colour, inf no brightness
            raise ValueError("it holds NaN or infinite values (a float image); give finite values on [0, 1]")
        return np.clip(np.asarray(im).astype(np.float64), 0.0, 1.0)[..., None]
    if mode in ("1", "L"):
        return (np.asarray(im.convert("L")).astype(np.float64) / 255.0)[..., None]
    if mode == "RGB":
        return np.asarray(im).astype(np.float64) / 255.0
    # palette (a grey palette gives R = G = B), RGBX, CMYK, YCbCr, LAB, HSV, ...
    return np.asarray(im.convert("RGB")).astype(np.float64) / 255.0


def _over_white(a: np.ndarray, alpha: Optional[np.ndarray], name: str, notes: list[str]) -> np.ndarray:
    """Colour values composited over white, c alpha + (1 - alpha): a restoration network sees
    the picture a viewer shows on a white page. A fully opaque alpha changes nothing."""
    if alpha is None or alpha.min() >= 1.0:
        return a
    notes.append(f"{name} has transparency: composited over white")
    return a * alpha + (1.0 - alpha)


def _read_unit(path: Path, notes: list[str], max_pixels: int) -> np.ndarray:
    """Decode `path` -> (H, W, C) float64 in [0, 1], C = 1 or 3, upright, sRGB, alpha composited."""
    from PIL import Image, UnidentifiedImageError

    name = path.name
    header = _png_header(path)
    if header is not None:
        _check_pixels(path, header[0], header[1], max_pixels)
    if header is not None and header[2] == 16 and header[3] in (2, 4, 6):  # colour or grey+alpha
        try:
            a, has_icc = _read_png16(path)
        except Exception as error:  # noqa: BLE001 - pypng's errors: a corrupt file
            raise ImageReadError(f"cannot read image {path}: {one_line(error)}") from None
        if has_icc:
            notes.append(f"{name}: colour profile of a 16-bit PNG not applied: values kept as stored")
        colours = a.shape[2] - 1 if a.shape[2] in (2, 4) else a.shape[2]
        alpha = a[..., colours:] if colours < a.shape[2] else None
        return _over_white(a[..., :colours], alpha, name, notes)
    try:
        with _pil_limit(max_pixels), Image.open(path) as im:
            im.seek(0)
            _check_pixels(path, *im.size, max_pixels)
            frames = getattr(im, "n_frames", 1)
            if frames > 1:  # an animated GIF / PNG / WebP, a multi-page TIFF
                notes.append(f"{name} holds {frames} frames (animated or multi-page): only the first is used")
            im.load()
            icc = im.info.get("icc_profile")
            colour, alpha = _split_alpha(_upright(im, name, notes))
            colour = _to_srgb(colour, icc, name, notes)
            return _over_white(_pil_to_unit(colour), alpha, name, notes)
    except UnidentifiedImageError:
        raise ImageReadError(f"cannot read image {path}: not an image file PIL recognises") from None


def _whole_at_least_one(value) -> bool:
    try:
        return not isinstance(value, bool) and operator.index(value) >= 1
    except TypeError:
        return False


def _decode(path: PathLike, notes: Optional[list], max_pixels: Optional[int]) -> np.ndarray:
    """The shared decoding of load_image and check_image: (H, W, C) float64 in [0, 1]; notes
    are appended to `notes` (a list) only when the whole file decoded."""
    if max_pixels is not None and not _whole_at_least_one(max_pixels):
        raise UsageError(f"max_pixels must be a whole number of pixels >= 1, got {max_pixels!r}")
    p = Path(path)
    if not p.exists():
        raise ImageReadError(f"cannot read image {p}: no such file")
    if not p.is_file():
        raise ImageReadError(f"cannot read image {p}: not a regular file")
    found: list[str] = []
    try:
        a = _read_unit(p, found, MAX_PIXELS if max_pixels is None else int(max_pixels))
    except ImageReadError:
        raise
    except Exception as exc:  # truncated data, decompression bombs, bad chunks, ...
        raise ImageReadError(f"cannot read image {p}: {one_line(exc)}") from exc
    if a.ndim != 3 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageReadError(f"cannot read image {p}: empty image")
    if notes is not None:
        notes.extend(found)
    return a


def load_image(path: PathLike, mode: str = "RGB", *, notes: Optional[list] = None,
               max_pixels: Optional[int] = None) -> torch.Tensor:
    """Read an image file -> (1, C, H, W) float32 tensor in [-1, 1]; C = 3 for mode "RGB",
    1 for mode "L" (see the module docstring for the formats and conventions). When `notes`
    is a list, one-line notes on what was changed (orientation, colour profile, transparency)
    are appended to it.

    Raises ImageReadError (a ValueError) for a missing file, a non-image, a corrupt image, or one
    of more than `max_pixels` pixels (default MAX_PIXELS), refused from its header."""
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be 'RGB' or 'L', got {mode!r}")
    a = _decode(path, notes, max_pixels)
    if mode == "RGB" and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif mode == "L" and a.shape[2] == 3:
        a = a @ np.asarray(_LUMA)
        a = a[..., None]
    a = np.clip(a * 2.0 - 1.0, -1.0, 1.0)  # in float64, then one rounding to float32
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float().unsqueeze(0)


def check_image(path: PathLike, max_pixels: Optional[int] = None) -> tuple[int, int]:
    """Decode the whole file as load_image does and return its displayed (height, width), EXIF
    orientation applied; raises ImageReadError exactly where load_image would. Lets a folder be
    vetted before any network call."""
    a = _decode(path, None, max_pixels)
    return a.shape[0], a.shape[1]


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


def crop_resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Centre-crop (B, C, H, W) to the aspect ratio of h x w (as much of it as fits), then resize
    to h x w with antialiased bicubic interpolation, clamped to [-1, 1]; returned as is when it is
    already h x w."""
    if x.dim() != 4:
        raise ValueError(f"crop_resize expects (B, C, H, W), got {tuple(x.shape)}")
    if h < 1 or w < 1:
        raise ValueError(f"the size must be positive, got {h}x{w}")
    H, W = x.shape[-2:]
    if (H, W) == (h, w):
        return x
    ch, cw = (H, round(H * w / h)) if H * w <= W * h else (round(W * h / w), W)
    top, left = (H - ch) // 2, (W - cw) // 2
    x = x[..., top : top + ch, left : left + cw]
    if (ch, cw) != (h, w):
        dtype = x.dtype if x.is_floating_point() else torch.float32
        x = F.interpolate(x.to(dtype), size=(h, w), mode="bicubic", align_corners=False, antialias=True).clamp(-1.0, 1.0)
    return x.contiguous()
