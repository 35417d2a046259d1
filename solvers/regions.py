"""Choice by region: after an anytime step, one candidate's state inside a painted region and
another's elsewhere, as the next outer state every candidate continues from.

A region choice gives per-pixel weights w_k over the candidates of an image (they sum to 1 and are
feathered at the region's edges, `region_weights`). Each candidate's state at the next time t
(alpha-bar a) splits into the step's clean estimate x0_k (its preview) and a noise,

    x_k = sqrt(a) x0_k + sqrt(1 - a) eps_k,                         (this defines eps_k)

so a blend of states is the blend of the clean estimates plus the blend of the noises. The first
is what the person asked for. The second is too weak where the weights overlap: its variance is
sum_kl w_k w_l C_kl, C_kl = E[eps_k eps_l], which is below the candidates' own level sum_k w_k C_kk
(for independent noises by the factor sum_k w_k^2, 1/2 midway between two candidates; less so
when the candidates are correlated, as after an earlier choice, where the noises share x_t). A
state with too little noise for its time is sharpened by the next network call into blur along
the seam. So `compose` rescales the blended noise to the candidates' level there:

    x = sqrt(a) sum_k w_k x0_k + sqrt(1 - a) r sum_k w_k eps_k,     r^2 = sum_k w_k C_kk / sum_kl w_k w_l C_kl
      = sum_k w_k x_k + sqrt(1 - a) (r - 1) sum_k w_k eps_k,

with C estimated locally, over a WINDOW x WINDOW neighbourhood pooled over colour (the noise
level of an inpainted region differs from that of a measured one). Where one weight is 1 the
state is that candidate's, exactly: a region covering the whole image is `Run.choose`.

Why not blend the clean estimates and draw the noise afresh: the candidates' noise is part of
the sample (the outer step is DDIM's deterministic one by default), a fresh draw would change
the image outside the seam too, and a full region would no longer equal a whole choice.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

#: the feathering of a region's edge: the std, in pixels, of the Gaussian that blurs its mask
FEATHER = 3.0
#: side of the neighbourhood over which the candidates' noise covariance is estimated
WINDOW = 17


def feathered(mask: torch.Tensor, feather: float = FEATHER) -> torch.Tensor:
    """A region's mask (H, W), bool or in [0, 1], blurred by a Gaussian of std `feather` pixels
    (0: as given), in [0, 1], and exactly 0 or 1 more than 3 feather from its edge."""
    m = mask.to(torch.float64 if mask.dtype == torch.float64 else torch.float32)
    if feather <= 0:
        return m.clamp(0, 1)
    radius = max(1, int(3 * feather + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=m.dtype, device=m.device)
    g = torch.exp(-0.5 * (taps / feather) ** 2)
    g = g / g.sum()
    m = F.pad(m[None, None], (radius, radius, radius, radius), mode="replicate")
    m = F.conv2d(F.conv2d(m, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))[0, 0].clamp(0, 1)
    snap = 1e-6  # away from an edge the blur is 0 or 1 up to rounding: exactly, so one candidate's state stays exact
    return torch.where(m > 1 - snap, torch.ones_like(m), torch.where(m < snap, torch.zeros_like(m), m))


def region_weights(regions: Sequence[tuple[int, torch.Tensor]], rest: int | None, candidates: int,
                   feather: float = FEATHER) -> torch.Tensor:
    """Per-pixel weights (R, K, H, W) over K candidates for each of the R = K rows to compose.

    regions: (candidate index, mask (H, W)) pairs in the order painted (a later region covers an
    earlier one where they overlap); rest: the candidate outside every region, or None for
    "each row keeps its own" (then the R composites differ outside the regions)."""
    if not regions:
        raise ValueError("a region choice needs at least one region")
    for k, _ in regions:
        if not 0 <= k < candidates:
            raise ValueError(f"region for candidate index {k}, but there are {candidates}")
    if rest is not None and not 0 <= rest < candidates:
        raise ValueError(f"rest candidate index {rest}, but there are {candidates}")
    masks = [feathered(m, feather) for _, m in regions]
    shape = masks[0].shape
    if any(m.shape != shape for m in masks):
        raise ValueError(f"region masks differ in size: {[tuple(m.shape) for m in masks]}")
    w = torch.zeros(candidates, *shape, dtype=masks[0].dtype, device=masks[0].device)
    left = torch.ones(shape, dtype=w.dtype, device=w.device)  # the weight not yet given, painting top down
    for (k, _), m in reversed(list(zip(regions, masks))):
        w[k] += left * m
        left = left * (1 - m)
    rows = w.expand(candidates, *w.shape).clone()
    for r in range(candidates):
        rows[r, r if rest is None else rest] += left
    return rows


def _local_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a window x window neighbourhood (N, H, W), shrunk at the borders."""
    pad = min(window // 2, (min(x.shape[-2:]) - 1))
    if pad < 1:
        return x.mean(dim=(-2, -1), keepdim=True).expand_as(x)
    return F.avg_pool2d(x[:, None], 2 * pad + 1, stride=1, padding=pad, count_include_pad=False)[:, 0]


def compose(x: torch.Tensor, x0: torch.Tensor, a: float, weights: torch.Tensor,
            window: int = WINDOW) -> torch.Tensor:
    """The composite states (R, C, H, W) of K candidates' states x and clean estimates x0
    (K, C, H, W) at a time with alpha-bar a, for weights (R, K, H, W) (module docstring)."""
    eps = (x - a**0.5 * x0) / (1 - a) ** 0.5
    K = x.shape[0]
    pairs = (eps[:, None] * eps[None, :]).mean(dim=2)  # (K, K, H, W): products pooled over colour
    cov = _local_mean(pairs.flatten(0, 1), window).view(K, K, *x.shape[-2:])
    out = []
    for w in weights.to(x.dtype):  # (K, H, W)
        blend = (w[:, None] * x).sum(0)
        noise = (w[:, None] * eps).sum(0)
        own = (w * cov.diagonal().permute(2, 0, 1)).sum(0)
        mixed = torch.einsum("khw,lhw,klhw->hw", w, w, cov)
        r = (own / mixed.clamp_min(torch.finfo(x.dtype).tiny)).sqrt()
        r = torch.where(w.amax(0) >= 1, torch.ones_like(r), r)  # one candidate there: its state, exactly
        out.append(blend + (1 - a) ** 0.5 * (r - 1) * noise)
    return torch.stack(out)
