"""Super-resolution by r x r block averaging as an SVD operator (DDRM, Kawar et al. 2022,
appendix: "Super resolution").

Each output pixel is the mean of an r x r block of one channel, so H's row for it is
(1/r^2, ..., 1/r^2) over the block: one singular value ||row|| = 1/r per block and channel.
V^T cuts the image into patches and applies an orthonormal r^2 x r^2 basis whose first vector
is constant: the 2-D orthonormal DCT-II (kron of two 1-D DCT-II matrices). The first coefficient
of a patch is then sum(patch) / r = r * mean, and y = mean = (1/r) * that coefficient, so U = I.

Shapes: images (B, C, H, W) on [-1, 1], H and W multiples of r; spectral vectors (B, n) laid out
as (B, r*r, C, H/r, W/r) flattened, so the first m = C * H/r * W/r entries are the patch means'
coefficients in (C, h, w) order; measurements y (B, m) = the low-resolution image (C, h, w)
flattened, values on [-1, 1].
"""

from __future__ import annotations

import torch

from degradations._util import dct_matrix, like
from degradations.base import SVDOperator, check_divisible
from degradations.tasks import declare_task


class BlockAverageSR(SVDOperator):
    """y = mean over r x r blocks, per channel (factor r = `factor`)."""

    scale_factor: int = 1  # set per instance to `factor`

    def __init__(self, channels: int, height: int, width: int, factor: int) -> None:
        factor = int(factor)
        if factor < 1:
            raise ValueError(f"the super-resolution factor must be >= 1, got {factor}")
        check_divisible((height, width), factor, f"super-resolution x{factor}")
        self.channels, self.height, self.width = int(channels), int(height), int(width)
        self.scale_factor = factor
        self.measurement_shape = (self.channels, self.height // factor, self.width // factor)
        d1 = dct_matrix(factor)
        # (r^2, r^2) float64 -> float32; row k is basis vector k over patch pixels (a * r + b)
        self.basis = torch.kron(d1, d1).to(torch.float32)
        # filters[k * C + c, c] = basis vector k as an r x r patch: V^T as one convolution, V as its transpose
        c = self.channels
        self.filters = torch.zeros(factor * factor * c, c, factor, factor)
        for k in range(factor * factor):
            for ch in range(c):
                self.filters[k * c + ch, ch] = self.basis[k].reshape(factor, factor)
        self._singulars = torch.full((self.m,), 1.0 / factor)

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, n): DCT coefficients of every patch, layout (r*r, C, h, w): one
        stride-r convolution whose output channel k * C + c is basis vector k on channel c."""
        return torch.nn.functional.conv2d(x, like(self.filters, x), stride=self.scale_factor).reshape(x.shape[0], -1)

    def V(self, v: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, C, H, W): inverse DCT of every patch (the transposed convolution)."""
        coef = v.reshape(v.shape[0], self.scale_factor**2 * self.channels, *self.measurement_shape[1:])
        return torch.nn.functional.conv_transpose2d(coef, like(self.filters, v), stride=self.scale_factor)


for _r in (2, 4, 8, 16):
    declare_task(f"sr{_r}", f"super-resolution x{_r} by {_r}x{_r} block averaging",
                 lambda h, w, c, r=_r: BlockAverageSR(c, h, w, r), scale=_r)
