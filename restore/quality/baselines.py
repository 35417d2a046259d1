"""The simple restorations every result is compared with: the pseudo-inverse H^+ y; for
super-resolution the low-resolution measurement up-sampled by bicubic interpolation; for the
Fourier blurs (any kernel) the Wiener filter, the classical deconvolution.

The pseudo-inverse of an operator known only through H and H^T (degradations.LinearOperator,
such as the exact-boundary blur) is CG's least-squares solution (degradations.cg.least_squares).

Wiener: x = V diag(|k_hat| / (|k_hat|^2 + nsr)) U^T y over every frequency (the components the
solvers leave unmeasured included), nsr = noise variance / signal variance with a flat signal
spectrum of variance 0.25 on the [-1, 1] scale (that of an image spread over its range) and the
noise variance (2 sigma_y)^2, at least that of 8-bit quantisation ((2/255)^2 / 12).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from degradations.registry import FOURIER_TASKS, scale_factor
from degradations.cg import least_squares

SIGNAL_VARIANCE = 0.25
QUANTISATION_VARIANCE = (2 / 255) ** 2 / 12


def task_baselines(task: str, boundary: str = "periodic") -> list[str]:
    """The baselines of a task, as baseline_names gives them for its operator: "pinv", then
    "bicubic" (super-resolution) or "wiener" (Fourier blurs with periodic boundaries: the filter
    is diagonal in their Fourier basis, which the exact boundary's cropped blur has not)."""
    wiener = task in FOURIER_TASKS and boundary == "periodic"
    return ["pinv"] + (["bicubic"] if scale_factor(task) > 1 else []) + (["wiener"] if wiener else [])


def baseline_names(operator) -> list[str]:
    """"pinv" always, "bicubic" for super-resolution operators (scale_factor > 1), "wiener" for
    the Fourier blurs."""
    names = ["pinv", "bicubic"] if getattr(operator, "scale_factor", 1) > 1 else ["pinv"]
    return names + (["wiener"] if hasattr(operator, "wiener") else [])


def baseline(name: str, operator, y: torch.Tensor, sigma_y: float = 0.0) -> torch.Tensor:
    """Measurement (B, m) -> image (B, C, H, W) on [-1, 1] (clamped); sigma_y on the [0, 1] scale."""
    if name == "pinv" and not hasattr(operator, "H_pinv"):  # known through H and H^T only
        out = least_squares(operator, y).reshape(y.shape[0], *operator.image_shape)
    elif name == "pinv":
        out = operator.H_pinv(y)
    elif name == "bicubic":
        out = F.interpolate(operator.to_image(y), size=(operator.height, operator.width),
                            mode="bicubic", align_corners=False)
    elif name == "wiener":
        out = operator.wiener(y, max((2 * sigma_y) ** 2, QUANTISATION_VARIANCE) / SIGNAL_VARIANCE)
    else:
        raise ValueError(f"unknown baseline {name!r}; known: pinv, bicubic, wiener")
    return out.clamp(-1.0, 1.0)


def baselines(operator, y: torch.Tensor, sigma_y: float = 0.0) -> dict[str, torch.Tensor]:
    return {name: baseline(name, operator, y, sigma_y) for name in baseline_names(operator)}
