"""A person's choice by region, as the front ends pass it: candidate numbers (from 1) with masks
at the result's size (files, arrays or tensors), read and checked here, then handed to
`solvers.Run.choose_regions` in the run's frame.

    RegionChoice([(2, "eyes.png")], rest=1)   # candidate 2 in the white of eyes.png, 1 elsewhere
    RegionChoice([(2, a), (3, b)])            # 2 in a, 3 in b (b over a), each its own elsewhere
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from restore.errors import ImageReadError, UsageError, one_line
from restore.io.images import load_image
from restore.restoration.sizing import Frame
from solvers.regions import FEATHER


@dataclass(frozen=True)
class RegionChoice:
    """regions: (candidate number, mask) pairs in the order painted (a later one covers an earlier
    one); a mask is an image file (white = the region) or an (H, W) array / tensor, bool or in
    [0, 1]; rest: the candidate outside every region (None: each candidate keeps its own there);
    feather: the std in pixels of the blur of each mask's edge."""

    regions: tuple[tuple[int, Any], ...]
    rest: int | None = None
    feather: float = FEATHER

    @classmethod
    def of(cls, regions: "RegionChoice | Mapping[int, Any] | Sequence[tuple[int, Any]]",
           rest: int | None = None, feather: float = FEATHER) -> "RegionChoice":
        if isinstance(regions, RegionChoice):
            return regions
        pairs = regions.items() if isinstance(regions, Mapping) else regions
        return cls(tuple((n, m) for n, m in pairs), rest, feather)


def read_mask(mask: Any, shown: tuple[int, int]) -> torch.Tensor:
    """A region's mask as a bool tensor (h, w) = shown: a file (more than half white = in), or an
    array / tensor (bool, or values in [0, 1] where more than 0.5 is in)."""
    if isinstance(mask, (str, Path)):
        try:
            m = load_image(mask, mode="L")[0, 0] > 0.0  # [-1, 1]: above mid-grey
        except ImageReadError as error:
            raise UsageError(f"cannot read region mask {mask}: {error}") from None
        except OSError as error:  # a name the system refuses (too long, ...)
            raise UsageError(f"cannot read region mask {mask}: {one_line(error)}") from None
        name = Path(mask).name
    else:
        a = torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask)
        if a.ndim != 2:
            raise UsageError(f"a region mask is one (H, W) image, got shape {tuple(a.shape)}")
        m = a.bool() if a.dtype == torch.bool else a.double() > 0.5
        name = "a region mask"
    if tuple(m.shape) != tuple(shown):
        raise UsageError(f"{name} is {m.shape[1]}x{m.shape[0]} but the result is {shown[1]}x{shown[0]}; "
                         "paint the region at the result's size")
    if not bool(m.any()):
        raise UsageError(f"{name} is empty (no white pixels): paint the region to choose")
    return m.cpu()


def in_frame(mask: torch.Tensor, frame: Frame | tuple[int, int]) -> torch.Tensor:
    """A mask at the shown size extended to the run's frame, a Frame or its (height, width) (an
    srN task's padding takes the nearest shown pixel's value)."""
    h, w = (frame.height, frame.width) if isinstance(frame, Frame) else frame
    if tuple(mask.shape) == (h, w):
        return mask
    top, left = (frame.top, frame.left) if isinstance(frame, Frame) else (0, 0)
    pad = (left, w - mask.shape[1] - left, top, h - mask.shape[0] - top)
    return F.pad(mask[None, None].float(), pad, mode="replicate")[0, 0] > 0.5


def region_file(after_step: int, j: int) -> str:
    """The file of the j-th region (from 1) of the region choice made after step `after_step`, in
    a run's folder (restore.outputs.files.write_region_masks)."""
    return f"region_step{after_step}_{j}.png"
