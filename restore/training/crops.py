"""The random training crops of the bundled prior: `CropSampler` (a whole batch of antialiased
crops at random scales, positions and flips, at once) and `colour_jitter` (a small hue and
saturation jitter that keeps natural hues where they are)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# BT.601 RGB -> (luma, Cb, Cr): the colour jitter rotates and scales the (Cb, Cr) plane.
YCC = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


class CropSampler:
    """Random crops for a whole batch at once. Photo i is drawn with probability ~ sqrt(area); the
    scale s (source pixels per output pixel) is log-uniform in [1, min(max_zoom, short side / size)];
    then a random position and a horizontal flip. Downscaling is antialiased: the photos sit in a
    pyramid of 2x2-box-filtered levels, each a (1, 3, N, H, W) volume, and a crop at scale s reads
    level floor(log2 s) by bilinear sampling (zoom left in [1, 2)) with a 3-D `grid_sample` whose
    depth coordinate hits the centre of slice i."""

    def __init__(self, arrays: list, device: torch.device, levels: int = 3):
        h_max, w_max = max(a.shape[0] for a in arrays), max(a.shape[1] for a in arrays)
        volume = torch.zeros(1, 3, len(arrays), h_max, w_max)
        for i, a in enumerate(arrays):
            volume[0, :, i, : a.shape[0], : a.shape[1]] = torch.from_numpy(a).permute(2, 0, 1) / 127.5 - 1
        volume = volume.to(device)
        self.levels = [volume]
        for _ in range(1, levels):
            self.levels.append(F.avg_pool3d(self.levels[-1], (1, 2, 2)))
        self.sizes = torch.tensor([[a.shape[0], a.shape[1]] for a in arrays], dtype=torch.float32, device=device)
        self.weights = self.sizes.prod(1).sqrt()  # favour large photos, but not in proportion to area
        self.device = device

    def sample(self, batch: int, size: int, gen: torch.Generator, max_zoom: float = 4.0) -> torch.Tensor:
        dev, n = self.device, self.sizes.shape[0]
        rand = lambda: torch.rand(batch, device=dev, generator=gen)  # noqa: E731
        idx = torch.multinomial(self.weights, batch, replacement=True, generator=gen)
        h, w = self.sizes[idx, 0], self.sizes[idx, 1]
        short = torch.minimum(h, w)
        top = (short / size).clamp(max=max_zoom)  # < 1 only for a photo smaller than the crop
        scale = torch.where(top > 1, top.clamp(min=1) ** rand(), top)
        level = scale.log2().floor().clamp(0, len(self.levels) - 1).long()
        f = (2.0 ** level).float()  # level-0 pixels per level pixel
        h, w = (h / f).floor() * f, (w / f).floor() * f  # the part of the photo that level covers fully
        win = scale * size  # window side in level-0 pixels
        y0, x0 = rand() * (h - win).clamp(min=0), rand() * (w - win).clamp(min=0)
        flip = rand() < 0.5
        u = (torch.arange(size, device=dev) + 0.5) / size  # output pixel centres in [0, 1]
        out = torch.empty(batch, 3, size, size, device=dev)
        for lv in level.unique().tolist():
            m = (level == lv).nonzero().squeeze(1)
            vol, fl = self.levels[lv], float(2**lv)
            H, W = vol.shape[-2:]
            # sample positions in this level's pixels, kept between the photo's first and last pixel centres
            xs = (x0[m, None] + win[m, None] * torch.where(flip[m, None], 1 - u, u)) / fl
            ys = (y0[m, None] + win[m, None] * u) / fl
            xs = torch.minimum(xs.clamp(min=0.5), w[m, None] / fl - 0.5)
            ys = torch.minimum(ys.clamp(min=0.5), h[m, None] / fl - 0.5)
            k, s = len(m), size
            gx = (2 * xs / W - 1)[:, None, :].expand(k, s, s)
            gy = (2 * ys / H - 1)[:, :, None].expand(k, s, s)
            gz = ((2 * idx[m].float() + 1) / n - 1)[:, None, None].expand(k, s, s)
            grid = torch.stack([gx, gy, gz], dim=-1)[None]  # (1, k, S, S, 3): x, y, depth
            crops = F.grid_sample(vol, grid, mode="bilinear", padding_mode="border", align_corners=False)
            out[m] = crops[0].permute(1, 0, 2, 3)
        return out


def colour_jitter(x: torch.Tensor, gen: torch.Generator, hue_deg: float, saturation: float) -> torch.Tensor:
    """Rotate each image's chroma plane (BT.601 Cb, Cr) by a random angle of at most hue_deg degrees
    and scale it by a random factor in [1 - saturation, 1 + saturation]; luma and greys unchanged.
    Small on purpose: hues stay where they are in nature (skin, foliage, sky), unlike channel
    permutations, which would teach the prior that blue skin or purple grass is as likely."""
    if hue_deg <= 0 and saturation <= 0:
        return x
    b, dev = x.shape[0], x.device
    theta = (torch.rand(b, device=dev, generator=gen) * 2 - 1) * math.radians(hue_deg)
    gain = 1 + (torch.rand(b, device=dev, generator=gen) * 2 - 1) * saturation
    a = torch.zeros(b, 3, 3, device=dev)
    a[:, 0, 0] = 1
    a[:, 1, 1], a[:, 1, 2] = gain * theta.cos(), -gain * theta.sin()
    a[:, 2, 1], a[:, 2, 2] = gain * theta.sin(), gain * theta.cos()
    ycc = YCC.to(dev)
    m = torch.linalg.inv(ycc) @ a @ ycc  # (B, 3, 3), linear: maps grey (c, c, c) to itself
    return torch.einsum("bij,bjhw->bihw", m, x).clamp(-1, 1)
