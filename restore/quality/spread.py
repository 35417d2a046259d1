"""Where the candidates disagree: the per-pixel spread of K >= 2 candidates' previews, and its
summary over the image and inside and outside the region the measurement leaves unknown.

spread = sqrt(mean over colour of the candidates' variance), the variance with K - 1 in the
denominator (the sample standard deviation of K draws), on the [0, 1] pixel scale: 0.1 means
the candidates typically differ by a tenth of the range there. It is shown as a heat map
(spread_step<k>.png, restore.outputs.figures.spread_map) and measured against the error of the
candidates' mean in docs/studies/spread.md.
"""

from __future__ import annotations

import torch


def spread(x0: torch.Tensor) -> torch.Tensor:
    """(K, C, H, W) previews on [-1, 1], K >= 2 -> (H, W) on the [0, 1] scale."""
    if x0.shape[0] < 2:
        raise ValueError(f"the spread needs at least 2 candidates, got {x0.shape[0]}")
    return (x0.double() / 2).var(dim=0, correction=1).mean(dim=0).sqrt().float()


def unmeasured_region(operator, shown: tuple[int, int]) -> torch.Tensor | None:
    """The pixels (H, W) whose value the measurement does not hold in some colour (inpainting),
    cropped to the shown frame; None for an operator that measures every pixel in some way."""
    kept = getattr(operator, "mask", None)
    if kept is None:
        return None
    region = ~kept.bool().all(dim=0)
    return region[: shown[0], : shown[1]].cpu()


def summary(spread_map: torch.Tensor, region: torch.Tensor | None) -> dict[str, float | None]:
    """{"mean", "inside", "outside"}: the mean spread over the image, inside and outside the
    unmeasured region (None without one, or where a side is empty)."""
    def mean(values: torch.Tensor) -> float | None:
        return round(float(values.mean()), 6) if values.numel() else None

    out = {"mean": mean(spread_map), "inside": None, "outside": None}
    if region is not None:
        out.update(inside=mean(spread_map[region]), outside=mean(spread_map[~region]))
    return out
