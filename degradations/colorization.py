"""Colorization as an SVD operator (DDRM, Kawar et al. 2022, appendix: "Colorization").

The grey image is the mean of R, G, B per pixel: H's row for a pixel is (1/3, 1/3, 1/3) over its
three channels, one singular value ||row|| = 1/sqrt(3). V mixes the channels of each pixel with a
fixed orthonormal 3 x 3 matrix M whose first column is (1, 1, 1)/sqrt(3) (the others complete a
Helmert basis), so the first coefficient is sum(RGB)/sqrt(3) = sqrt(3) * grey, and U = I.

Shapes: images (B, 3, H, W) on [-1, 1]; spectral vectors (B, n) laid out as (B, 3, H*W) flattened,
the first H*W entries the luminance coefficients; measurements y (B, H*W) = the grey image,
measurement_shape (1, H, W), values on [-1, 1].
"""

from __future__ import annotations

import math

import torch

from degradations._util import like
from degradations.base import SVDOperator
from degradations.tasks import declare_task


class Colorization(SVDOperator):
    """y = (R + G + B) / 3 per pixel; 3 channels."""

    scale_factor: int = 1

    def __init__(self, height: int, width: int) -> None:
        self.channels, self.height, self.width = 3, int(height), int(width)
        self.measurement_shape = (1, self.height, self.width)
        mix = torch.tensor(
            [
                [1 / math.sqrt(3), 1 / math.sqrt(2), 1 / math.sqrt(6)],
                [1 / math.sqrt(3), -1 / math.sqrt(2), 1 / math.sqrt(6)],
                [1 / math.sqrt(3), 0.0, -2 / math.sqrt(6)],
            ],
            dtype=torch.float64,
        )
        self.mix = mix.to(torch.float32)  # (channel c, coefficient k), orthonormal columns
        self._singulars = torch.full((self.m,), 1.0 / math.sqrt(3))

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, n): v[k] = sum_c mix[c, k] x[c], layout (3, H*W)."""
        x = x.reshape(x.shape[0], 3, -1)
        return torch.einsum("ck,bcp->bkp", like(self.mix, x), x).reshape(x.shape[0], -1)

    def V(self, v: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, 3, H, W): x[c] = sum_k mix[c, k] v[k]."""
        v = v.reshape(v.shape[0], 3, -1)
        x = torch.einsum("ck,bkp->bcp", like(self.mix, v), v)
        return x.reshape(v.shape[0], *self.image_shape)


def _colorization(h: int, w: int, c: int) -> Colorization:
    if c != 3:
        raise ValueError(f"color needs channels=3 (an RGB image), got channels={c}")
    return Colorization(h, w)


declare_task("color", "colorization: grey = mean of R, G, B (3 channels)", _colorization)
