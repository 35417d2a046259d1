"""The operators of the field's benchmark tasks, as the published codes build them, in SVD form.

A protocol task (restore.evaluation.protocol) names one of the operators below with its
parameters; `build_task` turns it into a `TaskOperators` for one image: `model`, the SVD operator
DDRM and the other SVD solvers restore through; `forward`, the exact linear map the reference
code applies (what DPS and DiffPIR, which need only H and H^T, restore through); and `measure`,
the clean image to its noiseless measurement exactly as the reference code makes it (with its
boundary, and 8-bit rounding where that code rounds).

Where each definition comes from (repository, file, line at the commit read):
- 4x super-resolution, `resizer`: DPS2022/diffusion-posterior-sampling util/resizer.py (Shocher's
  MATLAB-imresize clone; used by guided_diffusion/measurements.py L78 and DAPS
  forward_operator/__init__.py L122): Keys' cubic (a = -0.5) stretched by the factor
  (antialiasing, L112-113), output i centred on input (i + 0.5) r - 0.5, weights normalised to
  sum 1 (L153-155), and taps beyond an edge folded back by the half-sample mirror (L158-159).
  DiffPIR's utils_image.imresize_np gives the same matrix (tests/data/protocol). Separable, so
  an exact SVD operator (degradations.SeparableOperator) with its mirror boundary.
- Gaussian blur: util/img_utils.py L279-286 (Blurkernel.weights_init): scipy.ndimage's
  gaussian_filter of a 61 x 61 delta (truncate 4: a 25-tap support inside the 61), applied by
  nn.ReflectionPad2d(30) and a grouped nn.Conv2d (L268-271): a correlation with torch's
  reflection (edge not repeated). Separable: the reflection is folded into each 1-D matrix, so
  the SVD operator is exact, boundary included.
- Motion blur: the `motionblur` package's Kernel(size, intensity) (LeviBorodenko/motionblur
  motionblur.py; DAPS vendors the same file), reimplemented from its definition in
  `motionblur_kernel`. DPS's MotionBlurOperator (measurements.py L89-101) first builds a
  Blurkernel, whose weights_init draws one Kernel (img_utils.py L287-288), then draws the kernel
  it uses: the used kernel is the second drawn after seeding. Applied like the Gaussian
  (reflection, correlation). A 2-D kernel with a reflected boundary has no fast SVD: the SVD
  model is the circular blur (degradations.FourierBlur) of the same kernel, and `forward` is the
  reflected one (`ReflectBlur`), so DPS and DiffPIR see exactly the reference operator while
  DDRM restores a measurement whose edges its model does not explain (measured in
  docs/studies/protocol.md).
- DiffPIR's blurs (main_ddpir_deblur.py L161-199): `scipy.ndimage.convolve(mode='wrap')`, a
  true circular convolution, on the 8-bit image, whose uint8 output truncates (L193); its
  Gaussian's std is 3 |2u + 1|, u drawn after np.random.seed(10 index) (L162-165).
- Box inpainting, `box_mask`: img_utils.py L157-174 and L193-202 (DPS, margin 16), DAPS
  forward_operator/__init__.py L128-173 (margin 32): two randint(128, 129) draws for the sides,
  then the top and left corners randint(margin, 256 - margin - 128).
- Random inpainting, `random_mask`: img_utils.py L204-216: a fraction drawn uniform in
  mask_prob_range, then numpy's choice(H W, int(H W fraction), replace=False) pixels removed in
  every channel.

Every draw is numpy's legacy RandomState, as those codes seed it (np.random.seed), so a seed
reproduces their masks and kernels bit for bit (tests/test_protocol.py against fixtures made by
running the published code).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from degradations import FourierBlur, Inpainting, SeparableOperator
from degradations.linear import LinearOperator

#: the motionblur package's "tiny error used for numerical stability"
_MOTION_EPS = 0.1


# --------------------------------------------------------------------------- kernels
def gaussian_kernel_1d(size: int, std: float) -> np.ndarray:
    """The 1-D factor of DPS's Gaussian kernel: scipy.ndimage.gaussian_filter1d of a centred
    delta (its 2-D kernel, gaussian_filter of a 2-D delta, is the outer product of two)."""
    from scipy.ndimage import gaussian_filter1d

    delta = np.zeros(size)
    delta[size // 2] = 1.0
    return gaussian_filter1d(delta, sigma=float(std))


def gaussian_kernel_2d(size: int, std: float) -> np.ndarray:
    """DPS's Gaussian kernel itself: scipy.ndimage.gaussian_filter of a size x size delta."""
    from scipy.ndimage import gaussian_filter

    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1.0
    return gaussian_filter(delta, sigma=float(std))


def motionblur_kernel(size: int, intensity: float, rng: np.random.RandomState) -> np.ndarray:
    """One kernel of the `motionblur` package's Kernel((size, size), intensity), drawn from
    `rng` in the package's order (its functions draw from numpy's global RandomState; a
    RandomState seeded with s gives what np.random.seed(s) gives).

    The definition: on a grid twice the size, a path of steps whose total length is
    0.75 d (U(0, 1) + U(0, intensity^2)) (d the big grid's diagonal), each step
    beta(1, 30) (1 - intensity + eps) d long (kept while shorter than the total); turning angles
    with a largest angle U(0, intensity pi), a chance beta(2, 20) to flip the turn's sign, the
    first angle U(-max, max) and the others triangular(0, intensity max, max + eps); the path's
    centre of mass moved to the grid's centre after a rotation U(0, pi); drawn as a line
    int(d / 150) wide, blurred by a Gaussian of radius int(0.01 d), resized to size x size
    (Lanczos), made grey (8 bits) and normalised to sum 1. Pillow draws, blurs and resizes, as
    in the package."""
    from PIL import Image, ImageDraw, ImageFilter

    width = height = 2 * int(size)
    diagonal = (width**2 + height**2) ** 0.5
    intensity = float(intensity)

    longest = 0.75 * diagonal * (rng.uniform() + rng.uniform(0, intensity**2))
    steps: list[float] = []
    while sum(steps) < longest:
        step = rng.beta(1, 30) * (1 - intensity + _MOTION_EPS) * diagonal
        if step < longest:
            steps.append(step)

    max_angle = rng.uniform(0, intensity * math.pi)
    flip = rng.beta(2, 20)
    angles = [rng.uniform(low=-max_angle, high=max_angle)]
    while len(angles) < len(steps):
        angle = rng.triangular(0, intensity * max_angle, max_angle + _MOTION_EPS)
        angle *= -np.sign(angles[-1]) if rng.uniform() < flip else np.sign(angles[-1])
        angles.append(angle)

    path = np.cumsum(np.asarray(steps) * np.exp(1j * np.asarray(angles)))
    path -= sum(path) / len(steps)  # the package's Python sum (sequential), not numpy's pairwise one
    path *= np.exp(1j * rng.uniform(0, math.pi))
    path += (width + 1j * height) / 2

    canvas = Image.new("RGB", (width, height))
    ImageDraw.Draw(canvas).line(xy=[(p.real, p.imag) for p in path], width=int(diagonal / 150))
    canvas = canvas.filter(ImageFilter.GaussianBlur(radius=int(diagonal * 0.01)))
    grey = canvas.resize((int(size), int(size)), resample=Image.LANCZOS).convert("L")
    kernel = np.asarray(grey, dtype=np.float32)
    return kernel / np.sum(kernel)


def reference_motion_kernel(size: int, intensity: float, rng: np.random.RandomState) -> np.ndarray:
    """The kernel DPS's, DAPS's and DiffPIR's MotionBlurOperator uses: the second one drawn
    (their Blurkernel draws and discards one first; module docstring)."""
    motionblur_kernel(size, intensity, rng)
    return motionblur_kernel(size, intensity, rng)


# --------------------------------------------------------------------------- 1-D matrices
def _keys_cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel, a = -0.5 (MATLAB's and util/resizer.py's `cubic`)."""
    ax = np.abs(x)
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1)
            + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def resizer_matrix(size: int, factor: int) -> np.ndarray:
    """(size // factor, size) float64: MATLAB-style antialiased bicubic down-sampling, as
    util/resizer.py builds it: output i centred on input (i + 0.5) factor - 0.5, weights
    cubic(distance / factor) / factor over the 4 factor + 2 nearest taps, normalised, and taps
    outside the image folded back by the half-sample mirror (-1 -> 0, size -> size - 1)."""
    r = int(factor)
    out = size // r
    centre = (np.arange(out) + 0.5) * r - 0.5
    width = 4.0 * r
    taps = np.floor(centre - width / 2)[:, None] + np.arange(int(np.ceil(width)) + 2)[None, :]  # util/resizer.py L135-145
    weights = _keys_cubic((centre[:, None] - taps) / r) / r
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(size), np.arange(size - 1, -1, -1)])
    index = mirror[np.mod(taps.astype(np.int64), 2 * size)]
    matrix = np.zeros((out, size))
    np.add.at(matrix, (np.repeat(np.arange(out), taps.shape[1]), index.ravel()), weights.ravel())
    return matrix


def reflect_index(size: int, pad: int) -> np.ndarray:
    """The source of each sample of torch's reflection padding (F.pad mode='reflect', edge not
    repeated): padded position q holds x[reflect(q - pad)]."""
    if pad >= size:
        raise ValueError(f"a reflection of {pad} pixels needs an image wider than that, got {size}")
    q = np.arange(size + 2 * pad) - pad
    q = np.where(q < 0, -q, q)
    return np.where(q >= size, 2 * (size - 1) - q, q)


def reflect_correlation_matrix(kernel: np.ndarray, size: int) -> np.ndarray:
    """(size, size): the 1-D correlation with an odd kernel after torch's reflection padding,
    (A x)_i = sum_t kernel[t] x[reflect(i + t - p)], p = len // 2 (nn.ReflectionPad2d + Conv2d)."""
    k = np.asarray(kernel, dtype=np.float64).ravel()
    p = k.size // 2
    index = reflect_index(size, p)
    matrix = np.zeros((size, size))
    for t, weight in enumerate(k):
        np.add.at(matrix, (np.arange(size), index[np.arange(size) + t]), weight)
    return matrix


def circular_correlation_matrix(kernel: np.ndarray, size: int) -> np.ndarray:
    """(size, size): the 1-D circular correlation with an odd kernel (scipy.ndimage 'wrap')."""
    k = np.asarray(kernel, dtype=np.float64).ravel()
    p = k.size // 2
    matrix = np.zeros((size, size))
    for t, weight in enumerate(k):
        np.add.at(matrix, (np.arange(size), (np.arange(size) + t - p) % size), weight)
    return matrix


# --------------------------------------------------------------------------- masks
def box_mask(rng: np.random.RandomState, size: int, side: tuple[int, int], margin: int) -> torch.Tensor:
    """DPS/DAPS's random box (True = kept): height and width randint(*side), then the top and
    left corners randint(margin, size - margin - side)."""
    lo, hi = int(side[0]), int(side[1])
    h, w = rng.randint(lo, hi), rng.randint(lo, hi)
    top = rng.randint(margin, size - margin - h)
    left = rng.randint(margin, size - margin - w)
    mask = torch.ones(size, size, dtype=torch.bool)
    mask[top : top + h, left : left + w] = False
    return mask


def random_mask(rng: np.random.RandomState, size: int, missing: tuple[float, float]) -> torch.Tensor:
    """DPS/DAPS's random pixels (True = kept): a fraction uniform in `missing`, then
    int(size^2 fraction) pixels chosen without replacement (numpy's choice) are removed."""
    fraction = rng.uniform(float(missing[0]), float(missing[1]))
    total = size * size
    removed = rng.choice(total, int(total * fraction), replace=False)
    mask = np.ones(total, dtype=bool)
    mask[removed] = False
    return torch.from_numpy(mask.reshape(size, size))


# --------------------------------------------------------------------------- operators
class ReflectBlur(LinearOperator):
    """y = the correlation of each channel with a 2-D kernel after torch's reflection padding
    (DPS's Blurkernel: nn.ReflectionPad2d(k // 2) + grouped nn.Conv2d); H^T is its exact adjoint
    (the transposed convolution, its padding folded back onto the pixels it copied)."""

    def __init__(self, channels: int, height: int, width: int, kernel) -> None:
        k = torch.as_tensor(np.asarray(kernel), dtype=torch.float32)
        if k.dim() != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
            raise ValueError(f"ReflectBlur takes an odd 2-D kernel, got shape {tuple(k.shape)}")
        self.channels, self.height, self.width = int(channels), int(height), int(width)
        self.measurement_shape = (self.channels, self.height, self.width)
        self.pad_h, self.pad_w = k.shape[0] // 2, k.shape[1] // 2
        self.rows = torch.from_numpy(reflect_index(self.height, self.pad_h))
        self.cols = torch.from_numpy(reflect_index(self.width, self.pad_w))
        self.weight = k[None, None].repeat(self.channels, 1, 1, 1)

    def H(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (self.pad_w, self.pad_w, self.pad_h, self.pad_h), mode="reflect")
        return F.conv2d(padded, self.weight.to(x.dtype), groups=self.channels).flatten(1)

    def Ht(self, y: torch.Tensor) -> torch.Tensor:
        z = F.conv_transpose2d(y.view(-1, *self.measurement_shape), self.weight.to(y.dtype), groups=self.channels)
        folded = z.new_zeros(z.shape[0], self.channels, self.height, z.shape[-1])
        folded.index_add_(2, self.rows.to(z.device), z)
        out = z.new_zeros(z.shape[0], self.channels, self.height, self.width)
        return out.index_add_(3, self.cols.to(z.device), folded)


@dataclass
class TaskOperators:
    """One task's operators for one image (or for every image, when drawn once per run).

    model: the SVD operator (DDRM, DDNM, PiGDM and Nested around them); forward: the reference's
    exact linear map (DPS, DiffPIR); measure: clean images (B, C, H, W) on [-1, 1] -> noiseless
    measurements (B, m) as the reference makes them; notes: what was drawn (the kernel's std,
    the box's corner), for the run's record."""

    model: Any
    forward: LinearOperator
    measure: Callable[[torch.Tensor], torch.Tensor]
    notes: dict[str, Any]


def _quantised_wrap_convolution(kernel: np.ndarray) -> Callable[[torch.Tensor], torch.Tensor]:
    """DiffPIR's measurement: scipy.ndimage.convolve(mode='wrap') of the 8-bit image, whose uint8
    output truncates (main_ddpir_deblur.py L193), back on [-1, 1]."""
    from scipy.ndimage import convolve

    def measure(x: torch.Tensor) -> torch.Tensor:
        images = ((x.detach().cpu().double() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        out = np.stack([np.stack([convolve(channel, kernel, mode="wrap") for channel in image]) for image in images])
        return (torch.from_numpy(out.astype(np.float32)) / 127.5 - 1).flatten(1).to(x.device)

    return measure


def build_task(spec: dict[str, Any], size: int, rng: np.random.RandomState, channels: int = 3,
               scale: float = 1.0) -> TaskOperators:
    """The operators of one protocol task (a `tasks:` entry of a protocol file) at `size`,
    drawing what it draws from `rng`. `scale` (size / the protocol's size, 1 at the protocol's
    own size) scales every length: box sides and margins, kernel sizes and the Gaussian's std; a
    motion kernel is drawn at the protocol's size and resized (Lanczos), so that the same seed
    gives the same path."""
    kind = spec["operator"]
    notes: dict[str, Any] = {}
    if kind == "resizer":
        factor = int(spec.get("factor", 4))
        a = torch.from_numpy(resizer_matrix(size, factor))
        op = SeparableOperator(channels, size, size, a, a, zero_below=float(spec.get("zero_below", 0.0)))
        return TaskOperators(op, op, op.H, notes)
    if kind in ("box_mask", "random_mask"):
        if kind == "box_mask":
            lo = max(1, round(int(spec["side"][0]) * scale))
            side = (lo, max(lo + 1, round(int(spec["side"][1]) * scale)))  # randint's high is exclusive
            mask = box_mask(rng, size, side, round(int(spec["margin"]) * scale))
            rows, cols = (~mask).any(1).nonzero()[:, 0], (~mask).any(0).nonzero()[:, 0]
            notes.update(top=int(rows[0]), left=int(cols[0]), height=len(rows), width=len(cols))
        else:
            mask = random_mask(rng, size, tuple(spec["missing"]))
            notes["missing"] = round(1 - float(mask.float().mean()), 6)
        op = Inpainting(mask, channels=channels)
        return TaskOperators(op, op, op.H, notes)
    if kind not in ("gaussian_blur", "motion_blur"):
        raise ValueError(f"unknown protocol operator {kind!r}; known: resizer, box_mask, random_mask, "
                         "gaussian_blur, motion_blur")
    boundary = spec.get("boundary", "reflect")
    if boundary not in ("reflect", "circular"):
        raise ValueError(f"boundary must be reflect or circular, got {boundary!r}")
    ksize = int(spec["size"])
    if scale != 1.0:
        ksize = max(3, int(round(ksize * scale)) | 1)  # odd
    if kind == "gaussian_blur":
        std = float(spec["intensity"])
        if "intensity_factor" in spec:  # DiffPIR: std |2u + 1|, u ~ U(0, 1) (main_ddpir_deblur.py L164)
            lo, hi = (float(v) for v in spec["intensity_factor"])
            std *= float(np.abs(rng.rand() * (hi - lo) + lo))
        std *= scale
        notes["std"] = round(std, 6)
        kernel = gaussian_kernel_2d(ksize, std)
        k1 = gaussian_kernel_1d(ksize, std)
    else:
        kernel = reference_motion_kernel(int(spec["size"]), float(spec["intensity"]), rng)
        if scale != 1.0:
            from PIL import Image

            kernel = np.asarray(Image.fromarray(kernel.astype(np.float32)).resize((ksize, ksize), Image.LANCZOS))
            kernel = np.clip(kernel, 0, None) / np.clip(kernel, 0, None).sum()
        k1 = None
    correlation = spec.get("convolution", "correlation") == "correlation"
    # FourierBlur and ndimage.convolve convolve; F.conv2d correlates: the same map with the flipped kernel
    conv_kernel = kernel[::-1, ::-1].copy() if correlation else kernel
    zero_below = float(spec.get("zero_below", 3e-2))
    if k1 is not None and boundary == "reflect":  # separable and reflected: an exact SVD operator
        a = torch.from_numpy(reflect_correlation_matrix(k1, size))
        op = SeparableOperator(channels, size, size, a, a, zero_below=zero_below)
        return TaskOperators(op, op, op.H, notes)
    model = FourierBlur(channels, size, size, torch.from_numpy(np.ascontiguousarray(conv_kernel)), zero_below=zero_below)
    if boundary == "reflect":
        forward = ReflectBlur(channels, size, size, kernel if correlation else kernel[::-1, ::-1].copy())
        return TaskOperators(model, forward, forward.H, notes)
    exact = FourierBlur(channels, size, size, torch.from_numpy(np.ascontiguousarray(conv_kernel)), zero_below=0.0)
    # DiffPIR hands ndimage the float32 kernel its torch Blurkernel holds
    measure = _quantised_wrap_convolution(conv_kernel.astype(np.float32)) if spec.get("quantise") else exact.H
    return TaskOperators(model, exact, measure, notes)
