"""Blur kernels for `degradations.fourier.FourierBlur`: camera shake from a seed, defocus, or a
person's own kernel from a file. Each is a float64 (kh, kw) tensor summing to 1.

- `motion_kernel(seed, size)`: a random camera trajectory rasterised, after the model of
  Boracchi and Foi (2012, "Modeling the performance of image restoration from motion blur"): a
  particle whose velocity turns by random impulses, is pulled back towards the start, and now and
  then jerks; its path over the exposure is splatted (bilinearly, weighted by time) on the grid.
  The same seed gives the same kernel on every machine (numpy's PCG64).
- `disk_kernel(radius)`: a uniform disk (defocus), its edge anti-aliased by 16 x 16 supersampling.
- `load_kernel(path)`: a .npy array, or an image (grey levels; white = weight).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

#: the largest kernel side a file may give (a kernel is small; this bounds what is decoded)
MAX_KERNEL_SIDE = 255


def motion_kernel(seed: int = 0, size: int = 17, steps: int = 2000) -> torch.Tensor:
    """A size x size camera-shake kernel drawn from `seed` (module docstring)."""
    if size < 3:
        raise ValueError(f"a motion kernel needs size >= 3, got {size}")
    rng = np.random.default_rng(seed)
    anxiety = 0.005 * rng.random()  # how much the hand shakes: Boracchi-Foi's parameters
    centripetal, gaussian, jerk = 0.7 * rng.random(), 10 * rng.random(), 0.2 * rng.random()
    v = complex(*rng.standard_normal(2)) * 0.9
    v = v / abs(v)
    x = np.zeros(steps, complex)
    for t in range(steps - 1):
        if rng.random() < jerk * anxiety:  # a jerk: the velocity turns sharply
            v = 2 * v * np.exp(1j * np.pi * (rng.random() - 0.5))
        dv = jerk * (gaussian * complex(*rng.standard_normal(2)) - centripetal * x[t]) * anxiety
        v = v + dv
        v = v / max(abs(v), 1e-12) * (1.0 / steps)
        x[t + 1] = x[t] + v
    x -= x.mean()
    extent = max(np.abs(x.real).max(), np.abs(x.imag).max(), 1e-12)
    x *= (size / 2 - 1.5) / extent  # fit the path in the grid, a pixel from its border
    kernel = np.zeros((size, size))
    centre = size // 2
    for t, p in enumerate(x):
        weight = np.exp(-t / steps)  # the shutter's response: earlier positions weigh a little more
        r, c = p.imag + centre, p.real + centre
        r0, c0 = int(np.floor(r)), int(np.floor(c))
        fr, fc = r - r0, c - c0
        for dr, dc, wgt in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
            kernel[r0 + dr, c0 + dc] += weight * wgt
    return torch.from_numpy(kernel / kernel.sum())


def disk_kernel(radius: float = 3.0) -> torch.Tensor:
    """A uniform disk of `radius` pixels (defocus), (2 ceil(radius) + 1) pixels a side."""
    if not radius > 0:
        raise ValueError(f"a disk kernel needs radius > 0, got {radius}")
    half = int(np.ceil(radius))
    fine = (np.arange(16 * (2 * half + 1)) + 0.5) / 16 - half - 0.5
    yy, xx = np.meshgrid(fine, fine, indexing="ij")
    inside = (xx**2 + yy**2 <= radius**2).astype(float)
    kernel = inside.reshape(2 * half + 1, 16, 2 * half + 1, 16).mean(axis=(1, 3))
    return torch.from_numpy(kernel / kernel.sum())


def load_kernel(path: str | Path) -> torch.Tensor:
    """A person's kernel: a .npy 2-D array, or an image file (converted to grey; its levels are
    the weights). Not normalised here (FourierBlur does, with a note)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"kernel file {path} not found")
    if path.suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False, mmap_mode="r")  # the header first: a huge array is not read
        except (ValueError, OSError) as error:
            raise ValueError(f"cannot read kernel {path.name}: {error}") from None
        if a.ndim != 2 or not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"kernel {path.name} must hold one 2-D array of numbers, got shape {a.shape}, {a.dtype}")
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as image:
                if max(image.size) > MAX_KERNEL_SIDE:  # from the header, before decoding
                    raise ValueError(f"kernel {path.name} is {image.size[0]}x{image.size[1]}: a blur kernel is at "
                                     f"most {MAX_KERNEL_SIDE} pixels a side")
                a = np.asarray(image.convert("F"))
        except (UnidentifiedImageError, OSError) as error:
            raise ValueError(f"cannot read kernel {path.name}: not an image or .npy file ({error})") from None
    if max(a.shape) > MAX_KERNEL_SIDE:
        raise ValueError(f"kernel {path.name} is {a.shape[1]}x{a.shape[0]}: a blur kernel is at most "
                         f"{MAX_KERNEL_SIDE} pixels a side")
    return torch.from_numpy(np.array(a, dtype=np.float64))  # a copy: the .npy may be memory-mapped
