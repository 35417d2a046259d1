"""Named degradation tasks (the DDRM task names, plus a few of this project's) -> SVD operators.

`make_operator(task, image_size, channels=3, **options)` builds an operator for images
(B, channels, H, W) on [-1, 1]; sigma_y is given later, to `observe`, on the [0, 1] pixel scale.
Every operator has `scale_factor` (the down-sampling factor of sr tasks, 1 for the others).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from degradations.base import SVDOperator, check_divisible
from degradations.colorization import Colorization
from degradations.denoising import Denoising
from degradations.fourier import FourierBlur
from degradations.inpainting import Inpainting
from degradations.kernels import disk_kernel, load_kernel, motion_kernel
from degradations.masks import box_mask, load_mask, random_mask, text_mask
from degradations.separable import (
    BicubicSR,
    Deblurring,
    gaussian_kernel,
    uniform_kernel,
)
from degradations.superres import BlockAverageSR

TASKS: dict[str, str] = {
    "deno": "denoising only: H = I",
    "sr2": "super-resolution x2 by 2x2 block averaging",
    "sr4": "super-resolution x4 by 4x4 block averaging",
    "sr8": "super-resolution x8 by 8x8 block averaging",
    "sr16": "super-resolution x16 by 16x16 block averaging",
    "sr_bicubic4": "super-resolution x4, antialiased bicubic down-sampling (option zero_below=3e-2)",
    "sr_bicubic8": "super-resolution x8, antialiased bicubic down-sampling (option zero_below=3e-2)",
    "color": "colorization: grey = mean of R, G, B (3 channels)",
    "inp_box": "inpainting of a centred square hole, half the image side",
    "inp_random": "inpainting of random pixels (options fraction_missing=0.5, seed=0)",
    "inp_text": "inpainting of a deterministic text mask (about 18% missing)",
    "inp_mask": "inpainting with a user mask (option mask=image path or bool tensor; black = missing)",
    "deblur_uniform": "deblurring, separable 9x9 uniform blur (options zero_below=3e-2, zero_rule=1d)",
    "deblur_gauss": "deblurring, separable Gaussian blur (options sigma=2.0 pixels, zero_below=3e-2, zero_rule=1d)",
    "deblur_motion": "deblurring, camera shake: a 17x17 motion kernel from a seed, circular (options seed=0, size=17, "
                     "zero_below=3e-2)",
    "deblur_disk": "deblurring, defocus: a uniform disk, circular (options radius=3.0 pixels, zero_below=3e-2)",
    "deblur": "deblurring with a kernel of your own, any size, circular (option kernel=.npy/image path or 2-D "
              "array; zero_below=3e-2)",
}

#: the blurs built by the 2-D Fourier transform (degradations.fourier)
FOURIER_TASKS = ("deblur_motion", "deblur_disk", "deblur")

_SEPARABLE_OPTIONS = {"zero_below", "zero_rule"}
_OPTIONS: dict[str, set[str]] = {
    "sr_bicubic4": _SEPARABLE_OPTIONS,
    "sr_bicubic8": _SEPARABLE_OPTIONS,
    "inp_random": {"fraction_missing", "seed"},
    "inp_mask": {"mask"},
    "deblur_uniform": _SEPARABLE_OPTIONS,
    "deblur_gauss": {"sigma"} | _SEPARABLE_OPTIONS,
    "deblur_motion": {"seed", "size", "zero_below"},
    "deblur_disk": {"radius", "zero_below"},
    "deblur": {"kernel", "zero_below"},
}


def _size(image_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(image_size, int):
        h = w = image_size
    else:
        if len(image_size) != 2:
            raise ValueError(f"image_size must be an int or (H, W), got {image_size!r}")
        h, w = (int(s) for s in image_size)
    if h < 1 or w < 1:
        raise ValueError(f"image_size must be positive, got {(h, w)}")
    return h, w


def scale_factor(task: str) -> int:
    """The down-sampling factor of a super-resolution task (4 for sr4, sr_bicubic4), else 1."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    for prefix in ("sr_bicubic", "sr"):
        if task.startswith(prefix) and task[len(prefix):].isdigit():
            return int(task[len(prefix):])
    return 1


def make_operator(
    task: str, image_size: int | Sequence[int], channels: int = 3, **options: Any
) -> SVDOperator:
    """The SVD operator of `task` (a key of TASKS) for images (B, channels, H, W) on [-1, 1].

    image_size: an int (square) or (H, W). Raises ValueError for an unknown task, an unknown
    option, or a size the task cannot take (not divisible by an sr factor)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    unknown = sorted(set(options) - _OPTIONS.get(task, set()))
    if unknown:
        allowed = sorted(_OPTIONS.get(task, set()))
        raise ValueError(
            f"unknown option(s) for task {task!r}: {', '.join(unknown)}"
            f" (it takes: {', '.join(allowed) if allowed else 'none'})"
        )
    h, w = _size(image_size)
    channels = int(channels)
    if channels < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")

    if task == "deno":
        return Denoising(channels, h, w)
    factor = scale_factor(task)
    if factor > 1:
        check_divisible((h, w), factor, task)
        if task.startswith("sr_bicubic"):
            return BicubicSR(channels, h, w, factor, **options)
        return BlockAverageSR(channels, h, w, factor)
    if task == "color":
        if channels != 3:
            raise ValueError(f"color needs channels=3 (an RGB image), got channels={channels}")
        return Colorization(h, w)
    if task == "inp_box":
        return Inpainting(box_mask(h, w), channels=channels)
    if task == "inp_random":
        return Inpainting(random_mask(h, w, **options), channels=channels)
    if task == "inp_text":
        return Inpainting(text_mask(h, w), channels=channels)
    if task == "inp_mask":
        if options.get("mask") is None:
            raise ValueError(
                "inp_mask needs a mask: pass mask=<image path> (black = missing, white = kept)"
                " or mask=<bool tensor (H, W), True = kept>"
            )
        return Inpainting(load_mask(options["mask"], h, w), channels=channels)
    if task == "deblur_uniform":
        return Deblurring(channels, h, w, uniform_kernel(9), **options)
    if task == "deblur_gauss":
        sigma = options.pop("sigma", 2.0)
        return Deblurring(channels, h, w, gaussian_kernel(sigma), **options)
    if task in FOURIER_TASKS:
        return FourierBlur(channels, h, w, fourier_kernel(task, options), **options)
    raise AssertionError(f"task {task!r} is listed in TASKS but not built")  # pragma: no cover


def fourier_kernel(task: str, options: dict[str, Any]):
    """The blur kernel of a Fourier task (deblur_motion: seed, size; deblur_disk: radius; deblur:
    kernel, a path or a 2-D array), its options popped from `options`; not yet normalised."""
    if task == "deblur_motion":
        return motion_kernel(options.pop("seed", 0), options.pop("size", 17))
    if task == "deblur_disk":
        return disk_kernel(options.pop("radius", 3.0))
    if task != "deblur":
        raise ValueError(f"{task} is not a Fourier blur; those are {', '.join(FOURIER_TASKS)}")
    kernel = options.pop("kernel", None)
    if kernel is None:
        raise ValueError("deblur needs a kernel: pass kernel=<.npy or image path> or a 2-D array")
    return load_kernel(kernel) if isinstance(kernel, (str, Path)) else kernel
