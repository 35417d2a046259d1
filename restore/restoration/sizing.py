"""Where a restoration happens: the size it restores at, chosen from the input, the task, the model
and `--size`, and the padding a super-resolution task needs. Each choice that changes what the
person gave is said in one line.

- simulation (the input is the clean image): at the input's own size (`--size native`, the default
  for models that run at any size, such as the bundled prior); at the model's size, centre-cropped
  and resized, for models trained on aligned images of one size (CelebA-HQ), said in one line; at
  S x S for `--size S`. An srN task needs sides divisible by N: the image is reflect-padded at the
  bottom and right up to the next multiple, restored, and every output is cropped back, so no
  pixel is lost and none is stretched.
- observed (the input is the measurement): at the task's output size, N times the input for srN
  (an 80x60 input gives 320x240), the input's size otherwise. `--size S` asks for S x S and then
  needs a square input of S / N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from degradations import scale_factor
from restore.errors import UsageError
from restore.settings.schema import Settings

MIN_SIDE = 16  # the smallest side restored: a U-Net needs some context, and an srN measurement a pixel


@dataclass(frozen=True)
class Frame:
    """The operator works on height x width; outputs are shown and scored on the top-left
    `shown` = (h, w) of it (equal unless an srN task needed padding)."""

    height: int
    width: int
    shown: tuple[int, int]

    @property
    def padded(self) -> bool:
        return self.shown != (self.height, self.width)

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """The shown part of images (..., height, width)."""
        return x[..., : self.shown[0], : self.shown[1]] if self.padded else x


def _check_min(task: str, h: int, w: int, what: str) -> None:
    factor = scale_factor(task)
    if min(h, w) < MIN_SIDE:
        low = f" (an observed image of at least {MIN_SIDE // factor}x{MIN_SIDE // factor})" if factor > 1 else ""
        raise UsageError(f"{what} is {w}x{h}: {task} restores images of at least {MIN_SIDE}x{MIN_SIDE} pixels{low}; "
                         "give a larger image")


def simulation_frame(settings: Settings, h: int, w: int, prior: Any, note) -> Frame:
    """The frame of a clean input of h x w (see the module docstring)."""
    size, model_size = settings.size, int(getattr(prior, "image_size", 0) or 0)
    if size is None and getattr(prior, "fixed_size", False):
        size = model_size
        if (h, w) != (size, size):
            note(f"{getattr(prior, 'name', 'the model')} is trained on aligned {size}x{size} images: the input "
                 f"({w}x{h}) is centre-cropped and resized to {size}x{size} (--size native keeps {w}x{h})")
    elif isinstance(size, int) and (h, w) != (size, size):
        note(f"the input is {w}x{h}: centre-cropped and resized to {size}x{size} (--size {size})")
    if isinstance(size, int):
        return Frame(size, size, (size, size))
    _check_min(settings.task, h, w, "the input")
    factor = scale_factor(settings.task)
    height, width = -(-h // factor) * factor, -(-w // factor) * factor
    if (height, width) != (h, w):
        note(f"the input is {w}x{h}, which {settings.task} cannot divide by {factor}: restoring it reflect-padded "
             f"to {width}x{height} and cropping the outputs back to {w}x{h}")
    return Frame(height, width, (h, w))


def observed_frame(settings: Settings, h: int, w: int, prior: Any, note) -> Frame:
    """The frame of a measurement image of h x w (see the module docstring)."""
    task, size = settings.task, settings.size
    factor = scale_factor(task)
    kind = "low-resolution image" if factor > 1 else "image"
    if isinstance(size, int) and (h * factor, w * factor) != (size, size):
        raise UsageError(f"the observed {kind} is {w}x{h}, but {task} at --size {size} needs "
                         f"{size // factor}x{size // factor}; drop --size to restore at {w * factor}x{h * factor}")
    height, width = h * factor, w * factor
    _check_min(task, height, width, f"the restoration of the observed {kind} ({w}x{h})")
    model_size = getattr(prior, "image_size", None)
    if getattr(prior, "fixed_size", False) and (height, width) != (model_size, model_size):
        note(f"the observed {kind} is {w}x{h}: restoring at {width}x{height}"
             f"{f' (x{factor})' if factor > 1 else ''}, not the model's {model_size}x{model_size}")
    return Frame(height, width, (height, width))


def pad_to(x: torch.Tensor, frame: Frame) -> torch.Tensor:
    """A clean image of the frame's shown size, reflect-padded at the bottom and right to the
    frame (pads are under the srN factor, so under the image's side)."""
    h, w = x.shape[-2:]
    return F.pad(x, (0, frame.width - w, 0, frame.height - h), mode="reflect") if frame.padded else x
