"""Separable degradations (blur, bicubic down-sampling) as SVD operators (DDRM, Kawar et al. 2022,
appendix: "Deblurring" and "Super resolution", the separable case).

Per channel c, Y_c = A X_c B^T with A (h_out x H) acting on the rows and B (w_out x W) on the
columns. With the 1-D SVDs A = Ua diag(sa) Va^T and B = Ub diag(sb) Vb^T (computed in float64),
Y_c = Ua (S * Z_c[:h_out, :w_out]) Ub^T where Z_c = Va^T X_c Vb and S = outer(sa, sb): H = A kron B
has the singular values sa_i * sb_j on the (h_out, w_out) block of Z.

Spectral ordering (B, n), n = C * H * W: the block's entries sorted by singular value, descending
(stable sort, so ties keep the block's row-major order), channel-interleaved (spectral index
k * C + c holds entry k of channel c; singulars() = sorted values repeated C times), then every
coefficient outside the block (unmeasured) in (C, H, W) order. Components are set to exactly
zero by `zero_rule`: "1d" (default, DDRM's official rule) zeroes the 1-D singular values of A and
B below `zero_below` (3e-2), so a_i b_j survives when both factors do, down to 9e-4; "product"
zeroes every a_i b_j below it. The operator then is the blur with those components removed, and
H, H^T, H^+ and the solvers all see the same operator. Measured with DDRM (docs/tasks-and-models.md,
"Deblurring: which components count as measured"): noiseless deblur_uniform +6.5 dB with "1d", noisy a tie.

Measurements y (B, m), m = C * h_out * w_out, are the natural degraded image (C, h_out, w_out)
flattened, values on [-1, 1]; U maps spectral measurements to it (unorder, then Ua . Ub^T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import torch

from degradations._util import like
from degradations.base import SVDOperator, check_divisible
from degradations.options import NonNegative, Positive, option
from degradations.tasks import declare_task

#: how `zero_below` applies: "1d" zeroes the 1-D singular values of A and B below it (DDRM's
#: rule; products down to zero_below^2 stay measured), "product" the singular values of A kron B
ZERO_RULES = ("1d", "product")


class SeparableOperator(SVDOperator):
    """Y_c = A X_c B^T per channel; A (h_out, H), B (w_out, W) with h_out <= H, w_out <= W."""

    scale_factor: int = 1

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        A: torch.Tensor,
        B: torch.Tensor,
        zero_below: float = 0.0,
        zero_rule: str = "1d",
    ) -> None:
        self.channels, self.height, self.width = int(channels), int(height), int(width)
        A = torch.as_tensor(A, dtype=torch.float64).cpu()
        B = torch.as_tensor(B, dtype=torch.float64).cpu()
        if A.dim() != 2 or A.shape[1] != self.height or A.shape[0] > self.height:
            raise ValueError(f"A must be (h_out, {self.height}) with h_out <= {self.height}, got {tuple(A.shape)}")
        if B.dim() != 2 or B.shape[1] != self.width or B.shape[0] > self.width:
            raise ValueError(f"B must be (w_out, {self.width}) with w_out <= {self.width}, got {tuple(B.shape)}")
        if zero_below < 0:
            raise ValueError(f"zero_below must be >= 0, got {zero_below}")
        if zero_rule not in ZERO_RULES:
            raise ValueError(f"zero_rule must be one of {', '.join(ZERO_RULES)}, got {zero_rule!r}")
        self.zero_below, self.zero_rule = float(zero_below), zero_rule
        h_out, w_out = A.shape[0], B.shape[0]
        self.measurement_shape = (self.channels, h_out, w_out)

        ua, sa, vat = torch.linalg.svd(A, full_matrices=True)  # ua (h_out, h_out), vat (H, H)
        ub, sb, vbt = torch.linalg.svd(B, full_matrices=True)
        self.Ua, self.Va = ua.to(torch.float32), vat.T.contiguous().to(torch.float32)
        self.Ub, self.Vb = ub.to(torch.float32), vbt.T.contiguous().to(torch.float32)
        self.VaT, self.UaT = self.Va.T.contiguous(), self.Ua.T.contiguous()  # no transpose per call
        self.VbT, self.UbT = self.Vb.T.contiguous(), self.Ub.T.contiguous()

        # ordering of the (h_out, w_out) block, built from the block itself
        if zero_rule == "1d":  # DDRM's: zero the 1-D singular values, the products follow
            sa, sb = (torch.where(s < self.zero_below, torch.zeros_like(s), s) for s in (sa, sb))
        block = torch.outer(sa, sb).reshape(-1)  # (K,), K = h_out * w_out
        order = torch.argsort(block, descending=True, stable=True)
        s_sorted = block[order]
        if zero_rule == "product":
            s_sorted = torch.where(s_sorted < self.zero_below, torch.zeros_like(s_sorted), s_sorted)
        self.order = order  # spectral position k <- block entry order[k]
        self.inv_order = torch.argsort(order)
        # m values, non-increasing, each repeated C times; those below zero_below are 0
        self._singulars = s_sorted.repeat_interleave(self.channels).to(torch.float32)

        # permutation of the flattened Z (C, H, W): measured entries (k * C + c), then the rest
        hw = self.height * self.width
        rows, cols = order // w_out, order % w_out
        measured = (torch.arange(self.channels)[None, :] * hw + (rows * self.width + cols)[:, None]).reshape(-1)
        in_block = torch.zeros(self.height, self.width, dtype=torch.bool)
        in_block[:h_out, :w_out] = True
        rest = torch.nonzero(~in_block.expand(self.channels, -1, -1).reshape(-1)).squeeze(1)
        self.perm = torch.cat([measured, rest])
        self.inv_perm = torch.argsort(self.perm)

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, n): Z = Va^T X Vb per channel, then reordered."""
        z = like(self.VaT, x) @ x @ like(self.Vb, x)
        return z.reshape(x.shape[0], -1)[:, self.perm]

    def V(self, v: torch.Tensor) -> torch.Tensor:
        """(B, n) -> (B, C, H, W): un-reorder, then X = Va Z Vb^T."""
        z = v[:, self.inv_perm].reshape(v.shape[0], *self.image_shape)
        return like(self.Va, v) @ z @ like(self.VbT, v)

    def U(self, u: torch.Tensor) -> torch.Tensor:
        """Spectral measurement (B, m) -> measurement image (C, h_out, w_out) flattened (B, m)."""
        c, h_out, w_out = self.measurement_shape
        blk = u.reshape(u.shape[0], -1, c).transpose(1, 2)[:, :, self.inv_order]
        y = like(self.Ua, u) @ blk.reshape(u.shape[0], c, h_out, w_out) @ like(self.UbT, u)
        return y.reshape(u.shape[0], -1)

    def Ut(self, y: torch.Tensor) -> torch.Tensor:
        """Measurement (B, m) -> spectral measurement (B, m), ordered like singulars()."""
        c, h_out, w_out = self.measurement_shape
        blk = like(self.UaT, y) @ y.reshape(y.shape[0], c, h_out, w_out) @ like(self.Ub, y)
        blk = blk.reshape(y.shape[0], c, -1)[:, :, self.order]
        return blk.transpose(1, 2).reshape(y.shape[0], -1)


# -- 1-D matrices and kernels ---------------------------------------------------------------------
def conv_matrix(kernel: torch.Tensor | Sequence[float], size: int) -> torch.Tensor:
    """'Same' zero-padded correlation matrix (size, size), float64, of an odd 1-D kernel:
    (A x)_i = sum_t kernel[t] x[i + t - p], p = len // 2, every tap used (as F.conv2d with
    padding p; equal to convolution for symmetric kernels)."""
    k = torch.as_tensor(kernel, dtype=torch.float64).reshape(-1).cpu()
    if k.numel() % 2 == 0:
        raise ValueError(f"the blur kernel must have an odd number of taps, got {k.numel()}")
    p = k.numel() // 2
    i = torch.arange(size)[:, None]
    j = torch.arange(size)[None, :]
    t = j - i + p
    valid = (t >= 0) & (t < k.numel())
    return torch.where(valid, k[t.clamp(0, k.numel() - 1)], torch.zeros((), dtype=torch.float64))


def uniform_kernel(size: int = 9) -> torch.Tensor:
    """`size` taps of 1/size (float64); DDRM's uniform deblurring uses 9."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the uniform kernel needs an odd number of taps, got {size}")
    return torch.full((size,), 1.0 / size, dtype=torch.float64)


def gaussian_kernel(sigma: float = 3.0, size: int | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian (float64), odd `size`, default 2 * ceil(3 sigma) + 1 (19 taps at
    sigma 3). The default sigma 3.0 is this project's choice: DDRM's deblur_gauss samples a
    Gaussian of sigma 10 at only 5 taps (-2..2), which is nearly a 5-tap box."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if size is None:
        size = 2 * math.ceil(3 * sigma) + 1
    if size < 1 or size % 2 == 0:
        raise ValueError(f"the Gaussian kernel needs an odd number of taps, got {size}")
    x = torch.arange(size, dtype=torch.float64) - size // 2
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def _keys_cubic(x: torch.Tensor, a: float = -0.5) -> torch.Tensor:
    """Keys' cubic convolution kernel with parameter a (PIL and antialiased torch use -0.5)."""
    x = x.abs()
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return torch.where(x <= 1, near, torch.where(x < 2, far, torch.zeros_like(x)))


def bicubic_matrix(size: int, factor: int) -> torch.Tensor:
    """Antialiased bicubic down-sampling matrix (size // factor, size), float64, matching
    F.interpolate(mode='bicubic', antialias=True, align_corners=False) and PIL's BICUBIC reduce:
    output i has centre (i + 0.5) * r - 0.5 in input coordinates and weights
    cubic((j - centre) / r) over |j - centre| < 2r (Keys, a = -0.5); taps outside the image are
    dropped and the row is normalised to sum 1."""
    r = int(factor)
    i = torch.arange(size // r, dtype=torch.float64)[:, None]
    j = torch.arange(size, dtype=torch.float64)[None, :]
    dist = j - ((i + 0.5) * r - 0.5)
    w = torch.where(dist.abs() < 2 * r, _keys_cubic(dist / r), torch.zeros_like(dist))
    return w / w.sum(dim=1, keepdim=True)


# -- the tasks ------------------------------------------------------------------------------------
class Deblurring(SeparableOperator):
    """Separable blur with an odd 1-D kernel on rows and columns ('same' size, zero padding):
    A = conv_matrix(kernel, H), B = conv_matrix(kernel, W) (symmetric for symmetric kernels).

    Every tap of the kernel is used: the official DDRM code's conv-matrix loop drops the last tap
    of odd-length kernels (its 9-tap uniform blur has 8 taps); we do not reproduce that bug.
    Singular values below `zero_below` (default 3e-2, as DDRM) are set to zero."""

    scale_factor: int = 1

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        kernel_1d: torch.Tensor | Sequence[float],
        zero_below: float = 3e-2,
        zero_rule: str = "1d",
    ) -> None:
        kernel = torch.as_tensor(kernel_1d, dtype=torch.float64).reshape(-1).cpu()
        super().__init__(
            channels, height, width, conv_matrix(kernel, height), conv_matrix(kernel, width), zero_below, zero_rule
        )
        self.kernel = kernel.to(torch.float32)


class BicubicSR(SeparableOperator):
    """Antialiased bicubic down-sampling by `factor` (see `bicubic_matrix`), separable.

    Singular values below `zero_below` (default 3e-2, as DDRM) are set to zero."""

    scale_factor: int = 1  # set per instance to `factor`

    def __init__(
        self, channels: int, height: int, width: int, factor: int, zero_below: float = 3e-2,
        zero_rule: str = "1d",
    ) -> None:
        factor = int(factor)
        if factor < 1:
            raise ValueError(f"the super-resolution factor must be >= 1, got {factor}")
        check_divisible((height, width), factor, f"bicubic super-resolution x{factor}")
        super().__init__(
            channels, height, width, bicubic_matrix(height, factor), bicubic_matrix(width, factor), zero_below,
            zero_rule,
        )
        self.scale_factor = factor


@dataclass
class Cut:
    """The singular values a separable operator counts as unmeasured."""

    zero_below: NonNegative = option(3e-2, "blurs and bicubic down-sampling: singular values below this count as "
                                           "unmeasured (DDRM's 3e-2)")
    zero_rule: Literal[ZERO_RULES] = option("1d", "separable operators: cut the 1-D factors' singular values (1d, "
                                                  "DDRM's) or their products (product)")


@dataclass
class GaussianBlur(Cut):
    blur_sigma: Positive = option(2.0, "deblur_gauss: the Gaussian's std in pixels")


for _r in (4, 8):
    declare_task(f"sr_bicubic{_r}", f"super-resolution x{_r}, antialiased bicubic down-sampling",
                 lambda h, w, c, r=_r, **cut: BicubicSR(c, h, w, r, **cut), Cut, scale=_r)
declare_task("deblur_uniform", "deblurring, separable 9x9 uniform blur",
             lambda h, w, c, **cut: Deblurring(c, h, w, uniform_kernel(9), **cut), Cut)
declare_task("deblur_gauss", "deblurring, separable Gaussian blur",
             lambda h, w, c, blur_sigma, **cut: Deblurring(c, h, w, gaussian_kernel(blur_sigma), **cut), GaussianBlur)
