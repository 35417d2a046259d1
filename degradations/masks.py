"""Inpainting masks: bool tensors (H, W), True = kept pixel, False = missing (to be inpainted).

DDRM (Kawar et al. 2022) evaluates inpainting on random pixel masks and on text ("lorem ipsum")
masks; a centred box is the usual large-hole test. All makers here are deterministic and need no
file; `load_mask` reads a user's mask image (black = missing, white = kept).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = ["box_mask", "random_mask", "text_mask", "load_mask"]


def _check_size(h: int, w: int) -> tuple[int, int]:
    h, w = int(h), int(w)
    if h < 1 or w < 1:
        raise ValueError(f"mask size must be positive, got ({h}, {w})")
    return h, w


def box_mask(h: int, w: int) -> torch.Tensor:
    """A centred square hole whose side is half the shorter image side.

    Rounding: side = min(h, w) // 2 (floor); the hole starts at row (h - side) // 2 and column
    (w - side) // 2, so when the margins cannot be equal the extra pixel goes below / right.
    At 256 x 256 the hole is rows and columns 64..191 (128 x 128, 25% missing). Returns (h, w) bool."""
    h, w = _check_size(h, w)
    side = min(h, w) // 2
    top, left = (h - side) // 2, (w - side) // 2
    mask = torch.ones(h, w, dtype=torch.bool)
    mask[top : top + side, left : left + side] = False
    return mask


def random_mask(h: int, w: int, fraction_missing: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Exactly round(fraction_missing * h * w) missing pixels (Python's round, halves to even),
    chosen uniformly by a random permutation from a CPU torch.Generator seeded with `seed`.
    Returns (h, w) bool; about a millisecond at 256 x 256."""
    h, w = _check_size(h, w)
    if not 0.0 <= float(fraction_missing) <= 1.0:
        raise ValueError(f"fraction_missing must be in [0, 1], got {fraction_missing}")
    k = round(float(fraction_missing) * h * w)
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    missing = torch.randperm(h * w, generator=generator)[:k]
    mask = torch.ones(h * w, dtype=torch.bool)
    mask[missing] = False
    return mask.reshape(h, w)


# A 5 x 7 pixel font of the capital letters, one 5-bit row per entry, leftmost pixel = 0x10.
# Embedded so that the text mask does not depend on the fonts or the Pillow version installed.
_FONT: dict[str, tuple[int, ...]] = {
    " ": (0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0E),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
}

_TEXT_LINES: tuple[str, ...] = (
    "LOREM IPSUM",
    "DOLOR SIT",
    "AMET CONSEC",
    "TETUR ADIPI",
    "SCING ELIT",
    "SED DO EIUS",
    "MOD TEMPOR",
    "INCIDIDUNT",
)


def _text_canvas() -> torch.Tensor:
    """The text rendered at one canvas pixel per font pixel: (rows, cols) bool, True = ink."""
    chars = sorted(_FONT)
    codes = torch.tensor([_FONT[c] for c in chars], dtype=torch.int64)  # (G, 7)
    bits = 4 - torch.arange(5)
    glyphs = ((codes[:, :, None] >> bits) & 1).bool()  # (G, 7, 5)
    cell_h, cell_w, margin = 11, 6, 2  # 4 blank rows between lines, 1 blank column between letters
    glyphs = torch.nn.functional.pad(glyphs, (0, cell_w - 5, 0, cell_h - 7))  # (G, 11, 6)
    width = max(len(line) for line in _TEXT_LINES)
    index = torch.tensor(
        [[chars.index(c) for c in line.ljust(width)] for line in _TEXT_LINES], dtype=torch.int64
    )  # (L, width)
    cells = glyphs[index]  # (L, width, 11, 6)
    canvas = cells.permute(0, 2, 1, 3).reshape(len(_TEXT_LINES) * cell_h, width * cell_w)
    return torch.nn.functional.pad(canvas, (margin, margin, margin, margin))


def text_mask(h: int, w: int) -> torch.Tensor:
    """A deterministic text mask ("LOREM IPSUM ..." in capitals, 8 lines), in the spirit of the
    text masks DDRM evaluates on: an embedded 5 x 7 font is rendered on a small canvas and
    stretched to (h, w) by nearest-neighbour sampling (strokes about 3 pixels thick at 256 x 256).
    About 18% of the pixels are missing (text = missing). Returns (h, w) bool, True = kept."""
    h, w = _check_size(h, w)
    canvas = _text_canvas()
    ch, cw = canvas.shape
    rows = (torch.arange(h) * ch) // h
    cols = (torch.arange(w) * cw) // w
    ink = canvas[rows[:, None], cols[None, :]]
    return ~ink


def load_mask(path_or_tensor: str | Path | torch.Tensor, h: int, w: int) -> torch.Tensor:
    """A user's mask as a bool tensor (h, w), True = kept.

    An image file is converted to luminance (PIL mode "L") and thresholded at mid-grey:
    values >= 128 (white) are kept, < 128 (black) are missing. A bool tensor (h, w) is returned
    as is (a (C, h, w) one too, for per-channel masks). Raises ValueError when the size is not
    (h, w), naming both sizes."""
    h, w = _check_size(h, w)
    if isinstance(path_or_tensor, torch.Tensor):
        mask = path_or_tensor
        if mask.dtype != torch.bool:
            raise ValueError(f"a mask tensor must be bool (True = kept), got {mask.dtype}")
        if mask.dim() not in (2, 3):
            raise ValueError(f"a mask tensor must be (H, W) or (C, H, W), got shape {tuple(mask.shape)}")
    else:
        with Image.open(path_or_tensor) as image:
            if image.size != (w, h):  # from the header: a mask of another size is never decoded
                raise ValueError(f"mask size {image.size[::-1]} (H, W) does not match the image size {(h, w)}")
            grey = np.asarray(image.convert("L"))
        mask = torch.from_numpy(grey >= 128)
    if tuple(mask.shape[-2:]) != (h, w):
        raise ValueError(
            f"mask size {tuple(mask.shape[-2:])} (H, W) does not match the image size {(h, w)}"
        )
    return mask
