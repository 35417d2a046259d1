"""A linear degradation known through its forward map H and adjoint H^T alone (no SVD).

A point-spread function measured on a grid, a tomography projector, a sensor's sparse
sampling matrix: an operator that only applies H and H^T. DPS needs nothing more (the gradient
of ||y - H x0_hat|| goes through autograd), and DiffPIR solves its data step
(H^T H + rho I) x = H^T y + rho x0 by conjugate gradients (degradations.cg). The SVD operators
(degradations.base.SVDOperator) are linear operators too, with H and H^T derived from U, s, V.

Shapes and scales as for every operator: images x (B, C, H, W) on [-1, 1], measurements y
(B, m) flat in the order of `measurement_shape`, sigma_y on the [0, 1] pixel scale in public
methods (doubled internally).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from degradations.measurement import Measurement
from degradations.noise import Generators, randn


def pixel_sigma_to_model(sigma_y: float) -> float:
    """Noise std on the [0, 1] pixel scale -> std on the [-1, 1] scale the model works in."""
    if sigma_y < 0:
        raise ValueError(f"sigma_y must be >= 0 (got {sigma_y}); it is a std on the [0, 1] pixel scale")
    return 2.0 * float(sigma_y)


class LinearOperator:
    """Base class of a linear H: images (B, C, H, W) -> measurements (B, m).

    Subclasses set `channels`, `height`, `width`, `measurement_shape` (C', H', W' of the
    measurement image, prod = m) and implement `H` and `Ht` (its adjoint). Tensor attributes are
    moved together by `to()`."""

    channels: int
    height: int
    width: int
    measurement_shape: tuple[int, int, int]

    def H(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the degradation: image (B, C, H, W) -> measurement (B, m)."""
        raise NotImplementedError

    def Ht(self, y: torch.Tensor) -> torch.Tensor:
        """Adjoint: measurement (B, m) -> image (B, C, H, W)."""
        raise NotImplementedError

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)

    @property
    def n(self) -> int:
        return self.channels * self.height * self.width

    @property
    def m(self) -> int:
        c, h, w = self.measurement_shape
        return c * h * w

    def observe(self, x: torch.Tensor, sigma_y: float = 0.0, generator: Generators = None) -> torch.Tensor:
        """y = H x + noise, noise std `sigma_y` on the [0, 1] pixel scale (2 sigma_y on [-1, 1]).

        `generator`: one torch.Generator, a list with one per image, or None."""
        y = self.H(x)
        sigma = pixel_sigma_to_model(sigma_y)
        if sigma > 0:
            y = y + sigma * randn((self.m,), x.shape[0], generator, device=y.device, dtype=y.dtype)
        return y

    def measure(self, y: torch.Tensor, sigma_y: float = 0.0):
        """The measurement y (B, m) with noise std sigma_y ([0, 1] scale) as a solver uses it:
        H^+ y, proximal solves and weighted residuals by conjugate gradients (degradations.measurement)."""
        return Measurement(self, y, pixel_sigma_to_model(sigma_y))

    def to_image(self, y: torch.Tensor) -> torch.Tensor:
        """The measurement as a viewable image (B, C', H', W') on [-1, 1]: by default a reshape
        to `measurement_shape` (low-resolution image, grey image, blurred image)."""
        return y.reshape(y.shape[0], *self.measurement_shape)

    def from_image(self, image: torch.Tensor) -> torch.Tensor:
        """Inverse of `to_image`: a measurement image (B, C', H', W') -> measurement (B, m)."""
        expected = tuple(self.measurement_shape)
        if tuple(image.shape[1:]) != expected:
            raise ValueError(
                f"measurement image has shape {tuple(image.shape[1:])}, this operator expects {expected}"
            )
        return image.reshape(image.shape[0], -1)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None):
        """Move every tensor attribute (floating ones also to `dtype`); returns self."""
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                if value.is_floating_point():
                    setattr(self, name, value.to(device=device, dtype=dtype))
                else:
                    setattr(self, name, value.to(device=device))
        return self

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        return f"{type(self).__name__}(image={c}x{h}x{w}, m={self.m})"


class MatrixOperator(LinearOperator):
    """H given as an (m, n) matrix, dense or sparse (torch.sparse COO or CSR), acting on the
    flattened image: H x = matrix @ x.flatten(), H^T y = matrix^T @ y. The measurement image is
    (1, 1, m) unless `measurement_shape` says otherwise."""

    def __init__(self, matrix: torch.Tensor, image_shape: Sequence[int],
                 measurement_shape: Sequence[int] | None = None):
        self.channels, self.height, self.width = (int(d) for d in image_shape)
        rows, cols = matrix.shape
        if cols != self.n:
            raise ValueError(f"matrix has {cols} columns, the image {tuple(image_shape)} has {self.n} values")
        self.measurement_shape = tuple(int(d) for d in (measurement_shape or (1, 1, rows)))
        if math.prod(self.measurement_shape) != rows:
            raise ValueError(f"measurement_shape {self.measurement_shape} does not hold the matrix's {rows} rows")
        sparse = matrix.layout != torch.strided
        self.matrix = matrix.to_sparse_coo().coalesce() if sparse else matrix
        self.matrix_t = self.matrix.t().coalesce() if sparse else self.matrix.t()

    def H(self, x: torch.Tensor) -> torch.Tensor:
        return (self.matrix @ x.flatten(1).t()).t()

    def Ht(self, y: torch.Tensor) -> torch.Tensor:
        return (self.matrix_t @ y.t()).t().reshape(y.shape[0], *self.image_shape)
