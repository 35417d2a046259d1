"""Small helpers shared by the operators (not part of the public API)."""

from __future__ import annotations

import torch


def like(buffer: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """`buffer` on the device and (floating) dtype of `x`; itself, with no operator launched,
    when they already agree (the operator's to() has moved it for the run)."""
    if buffer.device == x.device and buffer.dtype == x.dtype:
        return buffer
    return buffer.to(device=x.device, dtype=x.dtype)


def dct_matrix(r: int) -> torch.Tensor:
    """Orthonormal 1-D DCT-II matrix (r, r) in float64; row k is the k-th basis vector.

    Row 0 is constant, 1/sqrt(r)."""
    k = torch.arange(r, dtype=torch.float64)[:, None]
    j = torch.arange(r, dtype=torch.float64)[None, :]
    d = torch.cos(torch.pi * (2 * j + 1) * k / (2 * r)) * (2.0 / r) ** 0.5
    d[0] = 1.0 / r**0.5
    return d
