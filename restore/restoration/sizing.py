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
  needs a square input of S / N. With `--boundary exact` (a photo blurred by a lens) the frame
  is the photo plus a margin of scene on every side, restored too and cropped from every output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from degradations.registry import scale_factors
from restore.errors import UsageError
from restore.io.images import crop_resize
from restore.settings.schema import Settings

MIN_SIDE = 16  # the smallest side restored: a U-Net needs some context, and an srN measurement a pixel


@dataclass(frozen=True)
class Frame:
    """The operator works on height x width; outputs are shown and scored on the `shown` = (h, w)
    of it from row `top`, column `left` (equal unless an srN task needed padding at the bottom
    and right, or an exact boundary a margin all round)."""

    height: int
    width: int
    shown: tuple[int, int]
    top: int = 0
    left: int = 0

    @property
    def padded(self) -> bool:
        return self.shown != (self.height, self.width)

    @property
    def input_size(self) -> tuple[int, int]:
        """The (h, w) a clean input is brought to in simulation: the whole frame under an exact
        boundary (the input is the scene), the shown part otherwise (padded after, if at all)."""
        return (self.height, self.width) if self.top or self.left else self.shown

    def view(self, x: torch.Tensor) -> torch.Tensor:
        """The shown part of images (..., height, width)."""
        if not self.padded:
            return x
        return x[..., self.top : self.top + self.shown[0], self.left : self.left + self.shown[1]]


def _check_min(task: str, h: int, w: int, what: str) -> None:
    fh, fw = scale_factors(task)
    if min(h, w) < MIN_SIDE:
        low = f" (an observed image of at least {MIN_SIDE // fw}x{MIN_SIDE // fh})" if max(fh, fw) > 1 else ""
        raise UsageError(f"{what} is {w}x{h}: {task} restores images of at least {MIN_SIDE}x{MIN_SIDE} pixels{low}; "
                         "give a larger image")


def simulation_frame(settings: Settings, h: int, w: int, prior: Any, note, margin: int = 0) -> Frame:
    """The frame of a clean input of h x w (see the module docstring); with a `margin` (an exact
    boundary) the input is the scene and the photo, shown and scored, its centre."""
    frame = _simulation_frame(settings, h, w, prior, note)
    if not margin:
        return frame
    shown = (frame.height - 2 * margin, frame.width - 2 * margin)
    if min(shown) >= MIN_SIDE:
        note(f"--boundary exact: the photo is the centre {shown[1]}x{shown[0]} of the input, blurred with the "
             f"{margin} pixels of scene around it; restored with them, shown and scored on the photo")
    return Frame(frame.height, frame.width, shown, margin, margin)


def simulated_scene(image: torch.Tensor, frame: Frame) -> tuple[torch.Tensor, torch.Tensor]:
    """A clean input made ready for simulation: (what the operator measures, at the frame's size;
    the reference outputs are scored against, at its shown size)."""
    image = crop_resize(image, *frame.input_size)
    if frame.top or frame.left:  # an exact boundary: the input is the scene, the photo its centre
        return image, frame.view(image)
    return pad_to(image, frame), image


def _simulation_frame(settings: Settings, h: int, w: int, prior: Any, note) -> Frame:
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
    fh, fw = scale_factors(settings.task)
    height, width = -(-h // fh) * fh, -(-w // fw) * fw
    if (height, width) != (h, w):
        by = fh if fh == fw else f"{fh} (rows) and {fw} (columns)"
        note(f"the input is {w}x{h}, which {settings.task} cannot divide by {by}: restoring it reflect-padded "
             f"to {width}x{height} and cropping the outputs back to {w}x{h}")
    return Frame(height, width, (h, w))


def observed_frame(settings: Settings, h: int, w: int, prior: Any, note, margin: int = 0) -> Frame:
    """The frame of a measurement image of h x w, with `margin` pixels of scene restored beyond
    each edge (see the module docstring)."""
    task, size = settings.task, settings.size
    fh, fw = scale_factors(task)
    factor = fh if fh == fw else f"{fh}x{fw}"
    kind = "low-resolution image" if max(fh, fw) > 1 else "image"
    if isinstance(size, int) and (h * fh, w * fw) != (size, size):
        raise UsageError(f"the observed {kind} is {w}x{h}, but {task} at --size {size} needs "
                         f"{size // fw}x{size // fh}; drop --size to restore at {w * fw}x{h * fh}")
    height, width = h * fh, w * fw
    _check_min(task, height, width, f"the restoration of the observed {kind} ({w}x{h})")
    model_size = getattr(prior, "image_size", None)
    if getattr(prior, "fixed_size", False) and (height, width) != (model_size, model_size):
        note(f"the observed {kind} is {w}x{h}: restoring at {width}x{height}"
             f"{f' (x{factor})' if max(fh, fw) > 1 else ''}, not the model's {model_size}x{model_size}")
    if margin:
        note(f"--boundary exact: restoring {width + 2 * margin}x{height + 2 * margin}, the photo and {margin} "
             "pixels of the scene beyond each edge, and keeping the photo's frame")
    return Frame(height + 2 * margin, width + 2 * margin, (height, width), margin, margin)


def pad_to(x: torch.Tensor, frame: Frame) -> torch.Tensor:
    """A clean image of the frame's shown size, reflect-padded at the bottom and right to the
    frame (pads are under the srN factor, so under the image's side)."""
    if frame.top or frame.left:
        raise ValueError("pad_to pads at the bottom and right; this frame has a margin all round")
    h, w = x.shape[-2:]
    return F.pad(x, (0, frame.width - w, 0, frame.height - h), mode="reflect") if frame.padded else x
