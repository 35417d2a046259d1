"""Denoising as an SVD operator (DDRM, Kawar et al. 2022): H = I, every singular value 1.

Images (B, C, H, W) on [-1, 1]; spectral vectors and measurements are the flattened image (B, n),
n = C * H * W; measurement_shape = (C, H, W).
"""

from __future__ import annotations

import torch

from degradations.base import SVDOperator
from degradations.tasks import declare_task


class Denoising(SVDOperator):
    """H = I: y = x (+ noise of std sigma_y on the [0, 1] scale, via `observe`)."""

    scale_factor: int = 1

    def __init__(self, channels: int, height: int, width: int) -> None:
        self.channels, self.height, self.width = int(channels), int(height), int(width)
        self.measurement_shape = (self.channels, self.height, self.width)
        self._singulars = torch.ones(self.n)

    def V(self, v: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, C, H, W): a reshape."""
        return v.reshape(v.shape[0], *self.image_shape)

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, n): a flatten."""
        return x.reshape(x.shape[0], -1)


declare_task("deno", "denoising only: H = I", lambda h, w, c: Denoising(c, h, w))
