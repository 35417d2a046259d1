"""deepinv's physics as this project's operators, and this project's operators as deepinv physics
(deepinv, Tachella et al. 2025, is optional: `pip install deepinv`; it is imported when used).

deepinv -> here (`from_deepinv(physics)`):
- a `LinearPhysics` (its A and A_adjoint) becomes a `DeepinvOperator`, an operator known through H
  and H^T (degradations.linear): DPS, DiffPIR (its data step by conjugate gradients) and Nested
  around them take it;
- a `DecomposablePhysics` A = U diag(mask) V^T (its U, U_adjoint, V, V_adjoint and mask) becomes a
  `DeepinvSVDOperator` (degradations.base), which every solver takes, DDRM, DDNM and PiGDM too. The
  spectral order puts the measured coefficients (mask != 0) first, as every operator here does; a
  negative singular value's sign moves into U. Its V and U must be orthogonal maps of the image's
  n real values (checked on random vectors when built);
- deepinv's `BlurFFT` is decomposable in name only: its V^T is the half spectrum of rfft2 viewed as
  real pairs, more numbers than pixels and not orthogonal, so it becomes this project's
  `FourierBlur` of the same filter (the real Fourier basis, degradations.fourier), the same H.

here -> deepinv (`as_physics(operator)`): an SVD operator becomes a `DecomposablePhysics` (so
deepinv's A_dagger, prox_l2 and solvers use its SVD), any other a `LinearPhysics`; A(x) is the
measurement image (`operator.to_image(H x)`: the low-resolution image, the masked image, ...).

Scales. deepinv's images are on [0, 1], this project's on [-1, 1]: x = 2 x01 - 1. H is linear, so
the operators need no change, but a measurement taken by deepinv, y01 = A(x01) + n, is
y = 2 y01 - A(1) here (`measurement_from_deepinv`): the same measurement of x, with its noise
doubled, which is exactly what this project's sigma_y means (a std on the [0, 1] pixel scale,
2 sigma_y on [-1, 1]). So deepinv's GaussianNoise(sigma) is sigma_y = sigma here, unchanged.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from degradations.base import SVDOperator
from degradations.fourier import ZERO_BELOW, FourierBlur
from degradations.linear import LinearOperator

__all__ = ["DeepinvOperator", "DeepinvSVDOperator", "as_physics", "from_deepinv", "measurement_from_deepinv"]


def _deepinv():
    try:
        import deepinv
    except ImportError:
        raise ImportError("deepinv's physics need deepinv: pip install deepinv "
                          "(or pip install 'anytime-restore[deepinv]')") from None
    return deepinv


def _image_shape(physics: Any, image_shape: Sequence[int] | None) -> tuple[int, int, int]:
    shape = image_shape or getattr(physics, "img_size", None) or getattr(physics, "imsize", None)
    if shape is None or len(tuple(shape)) != 3:
        raise ValueError(f"give the image shape (C, H, W) of {type(physics).__name__}: image_shape=(3, 256, 256)")
    return tuple(int(d) for d in shape)


def _measurement_shape(shape: Sequence[int]) -> tuple[int, int, int]:
    """A measurement's shape as (C', H', W'): 3 dimensions as they are, fewer padded with 1s, more
    flattened to (1, 1, m)."""
    shape = tuple(int(d) for d in shape)
    return shape if len(shape) == 3 else (1,) * (3 - len(shape)) + shape if len(shape) < 3 else (1, 1, math.prod(shape))


def _probe(physics: Any, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """A(0): the measurement's shape and dtype, on the physics' device."""
    device = next((b.device for b in physics.buffers()), torch.device("cpu")) if hasattr(physics, "buffers") else "cpu"
    with torch.no_grad():
        y = physics.A(torch.zeros(1, *image_shape, device=device))
    if y.is_complex():
        raise ValueError(f"{type(physics).__name__} measures complex values; the solvers here work on real ones")
    return y


class DeepinvOperator(LinearOperator):
    """A deepinv `LinearPhysics` known through H = A and H^T = A_adjoint: measurements flat
    (B, m) in the order of A's output (`y_shape`), measurement_shape its (C', H', W')."""

    def __init__(self, physics: Any, image_shape: Sequence[int] | None = None):
        self.physics = physics
        self.channels, self.height, self.width = _image_shape(physics, image_shape)
        y = _probe(physics, self.image_shape)
        self.y_shape = tuple(y.shape[1:])
        self.measurement_shape = _measurement_shape(self.y_shape)

    def H(self, x: torch.Tensor) -> torch.Tensor:
        return self.physics.A(x).reshape(x.shape[0], -1)

    def Ht(self, y: torch.Tensor) -> torch.Tensor:
        return self.physics.A_adjoint(y.reshape(y.shape[0], *self.y_shape))

    def to(self, device=None, dtype=None):
        """Tensor attributes as every operator's; the physics only to `device` (its complex
        buffers, BlurFFT's phases, would lose their imaginary part in a real dtype)."""
        if device is not None:
            self.physics.to(device)
        return super().to(device, dtype)


class DeepinvSVDOperator(SVDOperator):
    """A deepinv `DecomposablePhysics` A = U diag(mask) V^T as an SVD operator (module docstring):
    spectral vectors are V_adjoint's coefficients, measured ones first; m = n."""

    def __init__(self, physics: Any, image_shape: Sequence[int] | None = None, check: bool = True):
        self.physics = physics
        self.channels, self.height, self.width = _image_shape(physics, image_shape)
        y = _probe(physics, self.image_shape)
        self.y_shape = tuple(y.shape[1:])
        self.measurement_shape = _measurement_shape(self.y_shape)
        with torch.no_grad():
            coefficients = physics.V_adjoint(torch.zeros(1, *self.image_shape, device=y.device))
        self.c_shape = tuple(coefficients.shape[1:])
        name = type(physics).__name__
        if coefficients.is_complex() or coefficients[0].numel() != self.n or y[0].numel() != self.n:
            raise ValueError(f"{name}'s V^T gives {coefficients[0].numel()} {'complex' if coefficients.is_complex() else 'real'} "
                             f"coefficients and U {y[0].numel()} values for an image of {self.n}: not an SVD of "
                             "orthogonal n x n maps; use DeepinvOperator (H and H^T: DPS, DiffPIR)")
        mask = torch.as_tensor(physics.mask, device=y.device)
        if mask.is_complex():
            raise ValueError(f"{name}'s singular values (mask) are complex; use DeepinvOperator (H and H^T)")
        if mask.dim() == len(self.c_shape) + 1 and mask.shape[0] != 1:
            raise ValueError(f"{name}'s mask differs per image ({mask.shape[0]} masks): build one operator per image")
        mask = torch.broadcast_to(mask.reshape(mask.shape[1:] if mask.dim() == len(self.c_shape) + 1 else mask.shape),
                                  self.c_shape).reshape(-1).to(torch.float32)
        self.order = torch.argsort((mask == 0).to(torch.uint8), stable=True)  # measured first, in order
        self.inverse = torch.argsort(self.order)
        self.sign = torch.where(mask[self.order] < 0, -1.0, 1.0)
        self._singulars = mask[self.order].abs()
        if check:
            self._check_orthogonal(name)

    def _check_orthogonal(self, name: str) -> None:
        g = torch.Generator().manual_seed(0)
        v = torch.randn(2, self.n, generator=g).to(self._singulars.device)
        x = torch.randn(2, *self.image_shape, generator=g).to(v.device)
        with torch.no_grad():
            errors = [(self.Vt(self.V(v)) - v).norm() / v.norm(), (self.V(self.Vt(x)) - x).norm() / x.norm(),
                      (self.Ut(self.U(v)) - v).norm() / v.norm()]
        if max(float(e) for e in errors) > 1e-4:
            raise ValueError(f"{name}'s U and V are not orthogonal on {self.n} real values (errors "
                             f"{', '.join(f'{float(e):.1e}' for e in errors)}); use DeepinvOperator (H and H^T)")

    def V(self, v: torch.Tensor) -> torch.Tensor:
        return self.physics.V(v[:, self.inverse].reshape(v.shape[0], *self.c_shape))

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        return self.physics.V_adjoint(x).reshape(x.shape[0], -1)[:, self.order]

    def U(self, u: torch.Tensor) -> torch.Tensor:
        return self.physics.U((u * self.sign)[:, self.inverse].reshape(u.shape[0], *self.c_shape)).reshape(u.shape[0], -1)

    def Ut(self, y: torch.Tensor) -> torch.Tensor:
        return self.physics.U_adjoint(y.reshape(y.shape[0], *self.y_shape)).reshape(y.shape[0], -1)[:, self.order] * self.sign

    def to(self, device=None, dtype=None):
        if device is not None:
            self.physics.to(device)
        return super().to(device, dtype)


def from_deepinv(physics: Any, image_shape: Sequence[int] | None = None, zero_below: float = ZERO_BELOW):
    """The operator a deepinv physics stands for (module docstring): FourierBlur for BlurFFT (its
    kernel normalised to sum 1 and components below `zero_below` counted as unmeasured, as for the
    project's own blurs: 0 keeps every one), DeepinvSVDOperator for a DecomposablePhysics whose
    SVD is real and orthogonal, DeepinvOperator for any other LinearPhysics."""
    dinv = _deepinv()
    shape = _image_shape(physics, image_shape)
    if isinstance(physics, dinv.physics.BlurFFT) and physics.filter is not None:
        kernel = physics.filter[0]
        if all(torch.equal(kernel[0], k) for k in kernel) and abs(float(kernel[0].sum()) - 1) < 1e-5:
            return FourierBlur(shape[0], shape[1], shape[2], kernel[0].detach().cpu(), zero_below=zero_below)
    if isinstance(physics, dinv.physics.DecomposablePhysics):
        try:
            return DeepinvSVDOperator(physics, shape)
        except ValueError:
            pass  # no usable SVD: through A and A_adjoint
    if not isinstance(physics, dinv.physics.LinearPhysics):
        raise ValueError(f"{type(physics).__name__} is not a deepinv LinearPhysics: the solvers need a linear H")
    return DeepinvOperator(physics, shape)


def measurement_from_deepinv(physics: Any, y01: torch.Tensor) -> torch.Tensor:
    """A measurement deepinv took of an image on [0, 1] as this project's flat (B, m) measurement
    of the same image on [-1, 1]: y = 2 y01 - A(1) (module docstring)."""
    with torch.no_grad():
        offset = physics.A(torch.ones(1, *_image_shape(physics, None), device=y01.device, dtype=y01.dtype))
    return (2 * y01 - offset).reshape(y01.shape[0], -1)


def as_physics(operator: LinearOperator, sigma_y: float = 0.0):
    """This project's operator as deepinv physics (module docstring), with deepinv's Gaussian noise
    of std sigma_y on the [0, 1] scale: a DecomposablePhysics for an SVDOperator, else a
    LinearPhysics. A(x) = operator.to_image(H x), A_adjoint(y) = H^T operator.from_image(y)."""
    dinv = _deepinv()
    op, noise = operator, dinv.physics.GaussianNoise(sigma=float(sigma_y))
    if not isinstance(op, SVDOperator):
        return dinv.physics.LinearPhysics(A=lambda x, **kw: op.to_image(op.H(x)),
                                          A_adjoint=lambda y, **kw: op.Ht(op.from_image(y)),
                                          img_size=op.image_shape, noise_model=noise)
    m = op.m
    return dinv.physics.DecomposablePhysics(
        U=lambda u: op.to_image(op.U(u[:, :m])), U_adjoint=lambda y: op.add_zeros(op.Ut(op.from_image(y))),
        V=lambda v: op.V(v).contiguous(), V_adjoint=op.Vt, mask=op.add_zeros(op.singulars()[None]),
        img_size=op.image_shape, noise_model=noise)
