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


def normalised_kernel(kernel) -> tuple[torch.Tensor, str | None]:
    """A kernel checked and scaled to sum 1 in float64: (kernel, a note when it did not sum to 1).

    Refused (ValueError): complex values (a blur is real), NaN or infinity, and a sum that is
    not > 0. The scaling divides by the largest magnitude first, so that no sum overflows (a
    kernel of 1e308s sums to 9e308 in exact arithmetic, inf in float64) or underflows; a kernel
    of any positive scale (1e-12s, 1e308s, an image's grey levels) becomes the same blur."""
    k = torch.as_tensor(np.asarray(kernel) if not torch.is_tensor(kernel) else kernel)
    if k.is_complex():
        raise ValueError("the blur kernel holds complex numbers: a blur is real; give real weights")
    if k.dtype == torch.bool or not (k.is_floating_point() or k.dtype in _INTEGERS):
        raise ValueError(f"the blur kernel must hold numbers, got {k.dtype}")
    k = k.detach().to(device="cpu", dtype=torch.float64)
    if k.numel() and not bool(torch.isfinite(k).all()):
        raise ValueError("the blur kernel holds NaN or infinite values")
    largest = float(k.abs().max()) if k.numel() else 0.0
    if largest == 0.0:
        raise ValueError("the blur kernel is all zeros: give a blur (non-negative weights, sum > 0)")
    unit = k / largest  # entries in [-1, 1]: their sum cannot overflow
    share = float(unit.sum())
    if share <= 1e-12 * k.numel():  # zero (up to rounding) or negative
        raise ValueError(f"the blur kernel sums to {share * largest:.3g}: a blur sums to more than 0 (it keeps the "
                         "image's mean); give non-negative weights")
    total = share * largest  # may be inf for a huge kernel: only shown
    note = None
    if abs(total - 1) > 1e-6:
        shown = f"{total:.6g}" if np.isfinite(total) else f"{share:.6g} x {largest:.6g}"
        note = f"the blur kernel summed to {shown}; normalised to sum 1"
    return unit / share, note


_INTEGERS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def load_kernel(path: str | Path) -> torch.Tensor:
    """A person's kernel: a .npy 2-D array, or an image file (converted to grey; its levels are
    the weights). Not normalised here (FourierBlur does, with a note)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"kernel file {path} not found")
    if path.suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False, mmap_mode="r")  # the header first: a huge array is not read
        except EOFError:
            raise ValueError(f"cannot read kernel {path.name}: the file is empty; give a .npy of one 2-D array") \
                from None
        except (ValueError, OSError) as error:
            raise ValueError(f"cannot read kernel {path.name}: {error}") from None
        if not isinstance(a, np.ndarray):  # an .npz archive (a zip of arrays) named .npy
            getattr(a, "close", lambda: None)()
            raise ValueError(f"kernel {path.name} is an .npz archive, not a .npy array: save one array with "
                             "numpy.save (or give the image of the kernel)")
        if np.iscomplexobj(a):
            raise ValueError(f"kernel {path.name} holds complex numbers: a blur is real; give real weights")
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
