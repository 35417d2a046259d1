"""The SVD form of a linear degradation H = U diag(s) V^T (DDRM, Kawar et al. 2022, sec. 3.3).

An operator never builds H as a matrix. Subclasses implement the four orthogonal transforms and
the singular values; H, H^T and H^+ are derived here once (noisy observation, the measurement
image and device moves: degradations.linear, the base of every operator).

Shapes and scales, for every operator:
- images x: (B, C, H, W) float, pixel values on the [-1, 1] scale;
- spectral vectors v = V^T x: flat (B, n) with n = C * H * W, sorted so that the first m entries
  are the ones H measures, in the order of `singulars()`;
- measurements y = H x: flat (B, m), laid out as the natural measurement image flattened
  (`measurement_shape`), so `to_image(y)` is a reshape for most tasks;
- sigma_y (measurement noise std) is on the [0, 1] pixel scale in every public method; it is
  doubled internally because images live on [-1, 1].
"""

from __future__ import annotations

from typing import Sequence

import torch

from degradations.linear import LinearOperator, pixel_sigma_to_model
from degradations.measurement import SpectralMeasurement


class SVDOperator(LinearOperator):
    """Base class of H = U diag(s) V^T with orthogonal U (m x m) and V (n x n).

    Subclasses set `channels`, `height`, `width`, `measurement_shape` (C', H', W' of the
    measurement image, prod = m) and implement `V`, `Vt`, `U`, `Ut`, `singulars`.
    Tensor attributes are moved together by `to()`.
    """

    # -- what a subclass provides -------------------------------------------------------------
    def V(self, v: torch.Tensor) -> torch.Tensor:
        """Spectral (B, n) -> image (B, C, H, W)."""
        raise NotImplementedError

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B, C, H, W) -> spectral (B, n)."""
        raise NotImplementedError

    def U(self, u: torch.Tensor) -> torch.Tensor:
        """Spectral measurement (B, m) -> measurement (B, m). Default: the identity, for
        operators whose measurement is already laid out in spectral order."""
        return u

    def Ut(self, y: torch.Tensor) -> torch.Tensor:
        """Measurement (B, m) -> spectral measurement (B, m). Default: the identity."""
        return y

    def singulars(self) -> torch.Tensor:
        """The m singular values (m,), non-negative, in the order of the spectral vectors
        (default: the tensor attribute `_singulars` a subclass sets)."""
        return self._singulars

    # -- derived ------------------------------------------------------------------------------
    def add_zeros(self, u: torch.Tensor) -> torch.Tensor:
        """Pad a (B, m) spectral vector with zeros to (B, n)."""
        return torch.nn.functional.pad(u, (0, self.n - u.shape[1]))

    def H(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the degradation: image (B, C, H, W) -> measurement (B, m)."""
        return self.U(self.singulars() * self.Vt(x)[:, : self.m])

    def Ht(self, y: torch.Tensor) -> torch.Tensor:
        """Adjoint: measurement (B, m) -> image (B, C, H, W)."""
        return self.V(self.add_zeros(self.singulars() * self.Ut(y)))

    def measure(self, y: torch.Tensor, sigma_y: float = 0.0) -> SpectralMeasurement:
        """The measurement in V's coordinates, computed once per restoration (degradations.measurement):
        the solves in closed form, y_bar = U^T y / s where measured (V y_bar = H^+ y)."""
        s = self.add_zeros(self.singulars()[None])[0]
        measured = s > 0
        u_y = self.add_zeros(self.Ut(y))
        safe_s = torch.where(measured, s, torch.ones_like(s))
        y_bar = torch.where(measured, u_y / safe_s, torch.zeros_like(u_y))
        sigma_0 = pixel_sigma_to_model(sigma_y)
        return SpectralMeasurement(s, measured, u_y, y_bar, sigma_0, sigma_0**2 / safe_s.square(), y, self)

    def H_pinv(self, y: torch.Tensor) -> torch.Tensor:
        """Moore-Penrose pseudo-inverse: measurement (B, m) -> image (B, C, H, W).

        Components with a zero singular value are set to zero (the minimum-norm solution)."""
        s = self.singulars()
        inv = torch.where(s > 0, 1.0 / s.clamp_min(torch.finfo(s.dtype).tiny), torch.zeros_like(s))
        return self.V(self.add_zeros(inv * self.Ut(y)))


def check_divisible(size: Sequence[int], factor: int, task: str) -> None:
    """Raise a one-line ValueError when an image size is not a multiple of `factor`."""
    for s in size:
        if s % factor:
            raise ValueError(f"{task} needs an image size divisible by {factor}, got {tuple(size)}")
