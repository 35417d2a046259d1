"""Any blur kernel: a circular convolution diagonalised by the 2-D Fourier transform, in real SVD
form (DDRM, Kawar et al. 2022, sec. 3.3 asks only for H = U diag(s) V^T with orthogonal U, V).

Per channel, y = k * x with circular (periodic) boundaries: the image is treated as a torus, so
the blur at the left edge takes pixels from the right edge. In Fourier terms y_hat(f) =
k_hat(f) x_hat(f), and with the orthonormal real Fourier basis below, H = U diag(|k_hat|) V^T:

- V: the real Fourier basis. From the orthonormal rfft2 coefficients c(f), every frequency f
  that is not its own conjugate gives two real coordinates sqrt(2) (Re c, Im c) (its conjugate
  -f is redundant), and each self-conjugate frequency (0 or Nyquist in each direction) one, Re c:
  h w coordinates per channel, an orthonormal change of basis.
- s = |k_hat(f)|, once per coordinate;
- U: V with each pair rotated by the kernel's phase, R(arg k_hat) (for a self-conjugate
  frequency, k_hat is real: U carries its sign). Then H x = U(s V^T x) is k_hat x_hat, exactly.

Every application is an FFT: O(n log n), against two dense matrix products per axis for the
separable blurs. Measurements y are the blurred image (C, h, w) flattened (m = n); components
with |k_hat| below `zero_below` are unmeasured (their singular value is set to 0), as the
separable blurs' "product" rule does.

A photo blurred by a lens is not periodic: `CroppedBlur` is the blur of a scene larger than the
photo seen through its frame (no SVD; DPS and DiffPIR take it through H and H^T).
docs/studies/any-blur.md measures what the periodic boundary costs on such a photo.

The kernel: any (kh, kw) array with kh <= h, kw <= w, odd or even, non-negative or not; it is
normalised to sum 1 (with a note in `notes`) when it does not, in float64 without overflow
(`degradations.kernels.normalised_kernel`: complex, non-finite, and sums <= 0 refused); its centre is at (kh // 2, kw // 2).
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

import torch
import torch.nn.functional as F

from degradations.base import SVDOperator
from degradations.kernels import disk_kernel, load_kernel, motion_kernel, normalised_kernel
from degradations.linear import LinearOperator
from degradations.options import NonNegative, Positive, option, whole
from degradations.tasks import declare_task

#: components with |k_hat| below this count as unmeasured (see the module docstring)
ZERO_BELOW = 3e-2


def _independent(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices into the flattened (h, w // 2 + 1) rfft2 grid: the self-conjugate frequencies and
    one of each conjugate pair of the others."""
    wr = w // 2 + 1
    u = torch.arange(h)[:, None].expand(h, wr)
    v = torch.arange(wr)[None, :].expand(h, wr)
    edge = (v == 0) | ((w % 2 == 0) & (v == w // 2))  # columns holding both f and -f
    self_conj = edge & ((u == 0) | ((h % 2 == 0) & (u == h // 2)))
    paired = ~edge | (edge & (u > 0) & (u < (h + 1) // 2))  # in an edge column keep u < h / 2 only
    paired &= ~self_conj
    return self_conj.flatten().nonzero()[:, 0], paired.flatten().nonzero()[:, 0]


def _mirrors(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(dst, src) into the flattened rfft2 grid: in the edge columns (0, and w / 2 for even w) the
    rows u > h / 2 are the conjugates of rows h - u, which `_independent` does not keep; irfft2
    needs them filled in."""
    wr = w // 2 + 1
    u = torch.arange(h // 2 + 1, h)
    dst, src = [], []
    for v in [0] + ([w // 2] if w % 2 == 0 and w > 1 else []):
        dst.append(u * wr + v)
        src.append((h - u) * wr + v)
    return torch.cat(dst), torch.cat(src)


def kernel_spectrum(kernel: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """k_hat on the (h, w // 2 + 1) rfft2 grid of a kernel centred at (kh // 2, kw // 2)."""
    kh, kw = kernel.shape
    padded = torch.zeros(h, w, dtype=torch.float64)
    padded[:kh, :kw] = kernel
    padded = torch.roll(padded, shifts=(-(kh // 2), -(kw // 2)), dims=(0, 1))
    return torch.fft.rfft2(padded)


class FourierBlur(SVDOperator):
    """y = k * x per channel, circular boundaries, for any 2-D kernel (module docstring)."""

    scale_factor: int = 1

    def __init__(self, channels: int, height: int, width: int, kernel, zero_below: float = ZERO_BELOW) -> None:
        self.channels, self.height, self.width = int(channels), int(height), int(width)
        k, note = normalised_kernel(kernel)  # real, finite, sum > 0, scaled in float64 without overflow
        if k.dim() != 2 or k.shape[0] < 1 or k.shape[1] < 1:
            raise ValueError(f"a blur kernel is one 2-D array, got shape {tuple(k.shape)}")
        if k.shape[0] > self.height or k.shape[1] > self.width:
            raise ValueError(f"the kernel ({k.shape[0]}x{k.shape[1]}) is larger than the image "
                             f"({self.height}x{self.width})")
        if zero_below < 0:
            raise ValueError(f"zero_below must be >= 0, got {zero_below}")
        self.notes: list[str] = [note] if note else []
        self.kernel, self.zero_below = k.to(torch.float32), float(zero_below)
        self.measurement_shape = (self.channels, self.height, self.width)
        k_hat = kernel_spectrum(k, self.height, self.width).flatten()
        self.real_idx, self.pair_idx = _independent(self.height, self.width)
        self.mirror_dst, self.mirror_src = _mirrors(self.height, self.width)
        mag, phase = k_hat.abs(), k_hat.angle()
        s = torch.cat([mag[self.real_idx], mag[self.pair_idx], mag[self.pair_idx]])
        self.magnitude = s.repeat(self.channels).to(torch.float32)  # every |k_hat|, none zeroed (wiener)
        s = torch.where(s < self.zero_below, torch.zeros_like(s), s)
        self._singulars = s.repeat(self.channels).to(torch.float32)  # channel-major, as the spectral vectors
        self.sign = torch.where(k_hat.real[self.real_idx] < 0, -1.0, 1.0).to(torch.float32)
        self.cos, self.sin = phase[self.pair_idx].cos().to(torch.float32), phase[self.pair_idx].sin().to(torch.float32)

    # -- the real Fourier basis ---------------------------------------------------------------
    def _to_real(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = c.flatten(-2)
        pairs = c[..., self.pair_idx]
        return c[..., self.real_idx].real, math.sqrt(2) * pairs.real, math.sqrt(2) * pairs.imag

    def _from_real(self, real: torch.Tensor, a: torch.Tensor, b: torch.Tensor, shape) -> torch.Tensor:
        h, w = self.height, self.width
        c = torch.zeros(*shape, h * (w // 2 + 1), dtype=torch.complex64 if real.dtype != torch.float64
                        else torch.complex128, device=real.device)
        c[..., self.real_idx] = real.to(c.dtype)
        c[..., self.pair_idx] = torch.complex(a, b).to(c.dtype) / math.sqrt(2)
        c[..., self.mirror_dst] = c[..., self.mirror_src].conj()  # the edge columns' redundant conjugates
        return torch.fft.irfft2(c.view(*shape, h, w // 2 + 1), s=(h, w), norm="ortho")

    def _split(self, v: torch.Tensor):
        B, C = v.shape[0], self.channels
        v = v.view(B, C, -1)
        r, p = len(self.real_idx), len(self.pair_idx)
        return v[..., :r], v[..., r : r + p], v[..., r + p :]

    def Vt(self, x: torch.Tensor) -> torch.Tensor:
        real, a, b = self._to_real(torch.fft.rfft2(x, norm="ortho"))
        return torch.cat([real, a, b], dim=-1).reshape(x.shape[0], -1)

    def V(self, v: torch.Tensor) -> torch.Tensor:
        real, a, b = self._split(v)
        return self._from_real(real, a, b, (v.shape[0], self.channels)).to(v.dtype)

    # -- U: the basis rotated by the kernel's phase -------------------------------------------
    def Ut(self, y: torch.Tensor) -> torch.Tensor:
        real, a, b = self._split(self.Vt(y.view(y.shape[0], *self.measurement_shape)))
        a, b = self.cos * a + self.sin * b, self.cos * b - self.sin * a  # R(-phase)
        return torch.cat([self.sign * real, a, b], dim=-1).reshape(y.shape[0], -1)

    def U(self, u: torch.Tensor) -> torch.Tensor:
        real, a, b = self._split(u)
        a, b = self.cos * a - self.sin * b, self.sin * a + self.cos * b  # R(phase)
        image = self._from_real(self.sign * real, a, b, (u.shape[0], self.channels))
        return image.reshape(u.shape[0], -1).to(u.dtype)

    # -- the classical deconvolution ------------------------------------------------------------
    def wiener(self, y: torch.Tensor, nsr: float) -> torch.Tensor:
        """The Wiener filter with noise-to-signal ratio `nsr` (restore.quality.baselines): every
        frequency, those below zero_below included."""
        m = self.magnitude
        return self.V(m / (m.square() + nsr) * self.Ut(y))


class CroppedBlur(LinearOperator):
    """A photo blurred by a lens: y is the (h, w) centre of k * x for an image x `margin` pixels
    larger on every side, so nothing wraps ('valid' convolution; margin >= the kernel's radius).
    H = crop . blur and H^T = blur^T . zero-pad, with the circular blur of the larger image
    (every frequency: zero_below 0), so each application is an FFT. It has no SVD: DPS and DiffPIR
    (its data step by conjugate gradients) restore with it, Nested around either; the outputs are
    (h + 2 margin, w + 2 margin), `crop` gives the photo's frame."""

    def __init__(self, channels: int, height: int, width: int, kernel, margin: int) -> None:
        margin = int(margin)
        if margin < 1:
            raise ValueError(f"margin must be >= 1 pixel, got {margin}")
        self.margin = margin
        self.blur = FourierBlur(channels, height + 2 * margin, width + 2 * margin, kernel, zero_below=0.0)
        if max(self.blur.kernel.shape) // 2 > margin:
            raise ValueError(f"margin {margin} is less than the kernel's radius {max(self.blur.kernel.shape) // 2}: "
                             "pixels of y would wrap")
        self.notes = self.blur.notes
        self.channels, self.height, self.width = self.blur.image_shape
        self.measurement_shape = (channels, height, width)

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """The photo's frame of an image (..., h + 2 margin, w + 2 margin)."""
        p = self.margin
        return x[..., p:-p, p:-p]

    def H(self, x: torch.Tensor) -> torch.Tensor:
        return self.crop(self.blur.to_image(self.blur.H(x))).flatten(1)

    def Ht(self, y: torch.Tensor) -> torch.Tensor:
        padded = F.pad(y.view(-1, *self.measurement_shape), [self.margin] * 4)
        return self.blur.Ht(padded.flatten(1))

    def to(self, device=None, dtype=None):
        self.blur.to(device, dtype)
        return self


# -- the tasks: a blur from a seed, a defocus disk, your own kernel; periodic or exact edges ----------
def margin_for(kernel: torch.Tensor) -> int:
    """Pixels of scene restored beyond each edge of a photo under the exact boundary: the kernel's
    side rounded up to a multiple of 8 (the measured margin of docs/studies/any-blur.md)."""
    return 8 * -(-max(kernel.shape) // 8)


def blur(height: int, width: int, channels: int, kernel, zero_below: float = ZERO_BELOW,
         boundary: str = "periodic") -> SVDOperator | CroppedBlur:
    """The blur by `kernel` of (height, width) images: circular (FourierBlur, an SVD operator) or,
    with boundary "exact", the centre of the blur of a scene of that size (CroppedBlur; the photo
    it measures is 2 margin_for(kernel) smaller a side)."""
    if boundary == "periodic":
        return FourierBlur(channels, height, width, kernel, zero_below)
    if boundary != "exact":
        raise ValueError(f"boundary must be periodic or exact, got {boundary!r}")
    kernel = torch.as_tensor(kernel)
    q = margin_for(kernel)
    if min(height, width) - 2 * q < 16:
        raise ValueError(f"--boundary exact on a {width}x{height} image measures its centre {width - 2 * q}x"
                         f"{height - 2 * q} (a {q}-pixel margin of scene a side): give an image of at least "
                         f"{16 + 2 * q} pixels a side")
    return CroppedBlur(channels, height - 2 * q, width - 2 * q, kernel, q)


KernelSide = whole(ge=3, le=255)
KernelSeed = whole(ge=0, lt=2**63)


@dataclass
class Edges:
    zero_below: NonNegative = option(ZERO_BELOW, "blurs and bicubic down-sampling: singular values below this "
                                                 "count as unmeasured (DDRM's 3e-2)")
    boundary: Literal["periodic", "exact"] = option(
        "periodic", "the Fourier blurs' edges: periodic (circular, every solver) or exact (a photo blurred by a lens: "
                    "the blur of a larger scene, cropped; the solvers that need only H and H^T)",
        expect="be periodic or exact")


@dataclass
class Motion(Edges):
    kernel_seed: KernelSeed = option(0, "deblur_motion: the seed of the camera-shake trajectory")
    kernel_size: KernelSide = option(17, "deblur_motion: the kernel's side in pixels")


@dataclass
class Defocus(Edges):
    disk_radius: Positive = option(3.0, "deblur_disk: the disk's radius in pixels")


@dataclass
class OwnKernel(Edges):
    kernel: Optional[str] = option(None, "deblur: your blur kernel, a .npy array or an image, any size (normalised "
                                         "to sum 1)", file=True, metavar="PATH",
                                   expect="a path to a blur kernel (.npy array or image)")


def own_kernel(kernel: Any) -> torch.Tensor:
    """deblur's kernel: a path (.npy or image) or a 2-D array; not yet normalised."""
    return load_kernel(kernel) if isinstance(kernel, (str, Path)) else torch.as_tensor(kernel)


def _margin(make_kernel):
    return lambda options: margin_for(make_kernel(options)) if options.get("boundary") == "exact" else 0


declare_task("deblur_motion", "deblurring, camera shake: a 17x17 motion kernel from a seed, circular or exact edges",
             lambda h, w, c, kernel_seed, kernel_size, **edges: blur(h, w, c, motion_kernel(kernel_seed, kernel_size),
                                                                     **edges),
             Motion, margin=_margin(lambda o: motion_kernel(o["kernel_seed"], o["kernel_size"])))
declare_task("deblur_disk", "deblurring, defocus: a uniform disk, circular or exact edges",
             lambda h, w, c, disk_radius, **edges: blur(h, w, c, disk_kernel(disk_radius), **edges),
             Defocus, margin=_margin(lambda o: disk_kernel(o["disk_radius"])))
declare_task("deblur", "deblurring with your own kernel (--kernel), any size, circular or exact edges",
             lambda h, w, c, kernel, **edges: blur(h, w, c, own_kernel(kernel), **edges),
             OwnKernel, required=("kernel",), margin=_margin(lambda o: own_kernel(o["kernel"])))
