"""The simple restorations every result is compared with: the pseudo-inverse H^+ y, and for
super-resolution the low-resolution measurement up-sampled by bicubic interpolation."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def baseline_names(operator) -> list[str]:
    """"pinv" always, "bicubic" for super-resolution operators (scale_factor > 1)."""
    return ["pinv", "bicubic"] if getattr(operator, "scale_factor", 1) > 1 else ["pinv"]


def baseline(name: str, operator, y: torch.Tensor) -> torch.Tensor:
    """Measurement (B, m) -> image (B, C, H, W) on [-1, 1] (clamped)."""
    if name == "pinv":
        out = operator.H_pinv(y)
    elif name == "bicubic":
        out = F.interpolate(operator.to_image(y), size=(operator.height, operator.width),
                            mode="bicubic", align_corners=False)
    else:
        raise ValueError(f"unknown baseline {name!r}; known: pinv, bicubic")
    return out.clamp(-1.0, 1.0)


def baselines(operator, y: torch.Tensor) -> dict[str, torch.Tensor]:
    return {name: baseline(name, operator, y) for name in baseline_names(operator)}
