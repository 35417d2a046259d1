"""Inpainting as an SVD operator (DDRM, Kawar et al. 2022, appendix: "Inpainting").

H keeps the pixels where the mask is True and drops the rest: U = I, s = 1 on the m kept
entries, V^T a permutation that puts the kept entries first (in flattened C, H, W order), then
the missing ones. Index tensors come from boolean masks (the official DDRM code builds them with
a Python loop that takes seconds at 256 x 256).

Shapes: images (B, C, H, W) on [-1, 1]; spectral vectors (B, n), n = C * H * W; measurements
y (B, m) = the kept entries of the flattened image. `to_image(y)` gives the masked full-size
image (missing entries 0, i.e. H^T y) and `from_image` gathers the kept entries back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from degradations.base import SVDOperator
from degradations.masks import box_mask, load_mask, random_mask, text_mask
from degradations.options import Seed, Share, option
from degradations.tasks import declare_task


class Inpainting(SVDOperator):
    """Keep the pixels where `mask` is True.

    mask: bool tensor (H, W) shared across `channels` (default 3) or (C, H, W) per channel
    (then `channels`, if given, must equal C). True = kept pixel."""

    scale_factor: int = 1

    def __init__(self, mask: torch.Tensor, channels: int | None = None) -> None:
        mask = torch.as_tensor(mask)
        if mask.dtype != torch.bool:
            raise ValueError(f"the inpainting mask must be a bool tensor (True = kept), got {mask.dtype}")
        if mask.dim() == 2:
            c = 3 if channels is None else int(channels)
            mask = mask.unsqueeze(0).expand(c, *mask.shape)
        elif mask.dim() == 3:
            if channels is not None and int(channels) != mask.shape[0]:
                raise ValueError(f"mask has {mask.shape[0]} channels but channels={channels} was given")
        else:
            raise ValueError(f"the inpainting mask must be (H, W) or (C, H, W), got shape {tuple(mask.shape)}")
        mask = mask.detach().cpu().contiguous()
        self.channels, self.height, self.width = (int(d) for d in mask.shape)
        kept = mask.reshape(-1)
        m = int(kept.sum())
        if m == 0:
            raise ValueError("the inpainting mask keeps no pixel (it is all False); True marks kept pixels")
        self.mask = mask  # (C, H, W) bool
        self.measurement_shape = (1, 1, m)  # y is the flat list of kept entries; see to_image
        # kept indices first (ascending), then missing ones (ascending): a stable argsort of ~kept
        self.perm = torch.argsort((~kept).to(torch.uint8), stable=True)
        self.inv_perm = torch.argsort(self.perm)
        self.kept_idx = self.perm[:m]
        self._singulars = torch.ones(m)

    def V(self, v: torch.Tensor) -> torch.Tensor:
        """(B, n) spectral -> (B, C, H, W) image: undo the permutation."""
        return v[:, self.inv_perm].reshape(v.shape[0], *self.image_shape)  # indices moved by to()

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) image -> (B, n): kept entries first, then missing ones."""
        return x.reshape(x.shape[0], -1)[:, self.perm]


    def to_image(self, y: torch.Tensor) -> torch.Tensor:
        """Measurement (B, m) -> masked image (B, C, H, W), missing entries 0 (= H^T y)."""
        out = y.new_zeros(y.shape[0], self.n)
        out[:, self.kept_idx.to(y.device)] = y
        return out.reshape(y.shape[0], *self.image_shape)

    def from_image(self, image: torch.Tensor) -> torch.Tensor:
        """Full-size image (B, C, H, W) -> measurement (B, m): gather the kept entries."""
        if tuple(image.shape[1:]) != self.image_shape:
            raise ValueError(
                f"inpainting takes a full-size image of shape {self.image_shape}, got {tuple(image.shape[1:])}"
            )
        return image.reshape(image.shape[0], -1)[:, self.kept_idx.to(image.device)]


@dataclass
class RandomPixels:
    fraction_missing: Share = option(0.5, "inp_random: the share of pixels missing")
    mask_seed: Seed = option(0, "inp_random: the seed the missing pixels are drawn from")


@dataclass
class UserMask:
    mask: Optional[str] = option(None, "inp_mask: the mask image (black = missing, white = kept; any size is "
                                       "refused but the image's own)", file=True, metavar="PATH",
                                 expect="a path to a mask image")


declare_task("inp_box", "inpainting of a centred square hole, half the image side",
             lambda h, w, c: Inpainting(box_mask(h, w), channels=c))
declare_task("inp_random", "inpainting of random pixels (50% missing by default)",
             lambda h, w, c, fraction_missing, mask_seed: Inpainting(random_mask(h, w, fraction_missing, mask_seed),
                                                                     channels=c), RandomPixels)
declare_task("inp_text", "inpainting of a deterministic text mask (about 18% missing)",
             lambda h, w, c: Inpainting(text_mask(h, w), channels=c))
declare_task("inp_mask", "inpainting with your mask (black = missing)",
             lambda h, w, c, mask: Inpainting(load_mask(mask, h, w), channels=c), UserMask, required=("mask",))
