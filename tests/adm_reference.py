"""A from-scratch reference of OpenAI's guided-diffusion U-Net (ADM, Dhariwal & Nichol 2021) with
its parameter names, written for the tests from the paper and the published key layout, to check
the project's loading (azula's network, restore/models/families/adm.py) independently of it:
random weights are made here, saved in this layout, loaded through `load_prior`, and the two
networks must give the same eps.

Layout: time_embed.{0,2}; input_blocks.0.0 (a conv), then per level `blocks` res blocks (each
`input_blocks.i.0`, with attention as `input_blocks.i.1` at the attention levels) and, except at
the last level, a down-sampling res block; middle_block.{0: res, 1: attention, 2: res};
output_blocks: per level (deepest first) blocks + 1 res blocks on the concatenated skips, with
attention at `.1` and, at a level's last block (not the top level), an up-sampling res block after
them; out.{0: norm, 2: conv}. A res block: in_layers.{0: norm, 2: conv}, emb_layers.1 (2 x
channels: scale and shift), out_layers.{0: norm, 3: conv}, skip_connection (1x1 conv when the
width changes). Attention: norm, qkv (1x1, 3C), proj_out, heads of `head_channels`, each head's
q, k, v contiguous (the "legacy" order)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def sinusoid(t: torch.Tensor, dim: int) -> torch.Tensor:
    """[cos(t f_i), sin(t f_i)], f_i = 10000^(-i / (dim / 2))."""
    i = torch.arange(dim // 2, dtype=torch.float32, device=t.device)
    angle = t.float()[:, None] * torch.exp(-math.log(10000.0) * i / (dim // 2))[None]
    return torch.cat([angle.cos(), angle.sin()], dim=1)


class Res(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int, resample: str = ""):
        super().__init__()
        self.resample = resample
        self.in_layers = nn.Sequential(nn.GroupNorm(32, cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb, 2 * cout))
        self.out_layers = nn.Sequential(nn.GroupNorm(32, cout), nn.SiLU(), nn.Identity(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip_connection = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def _resample(self, x):
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x, emb):
        norm, act, conv = self.in_layers
        h = conv(self._resample(act(norm(x))))
        x = self._resample(x)
        scale, shift = self.emb_layers(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.out_layers[0](h) * (1 + scale) + shift
        h = self.out_layers[3](F.silu(h))
        return self.skip_connection(x) + h


class Attention(nn.Module):
    def __init__(self, channels: int, head_channels: int = 64):
        super().__init__()
        self.heads = channels // head_channels
        self.norm = nn.GroupNorm(32, channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        flat = x.reshape(b, c, h * w)
        qkv = self.qkv(self.norm(flat)).reshape(b * self.heads, 3 * c // self.heads, h * w)
        q, k, v = qkv.chunk(3, dim=1)  # per head: its q, then k, then v
        weights = torch.softmax(torch.einsum("nct,ncs->nts", q, k) / math.sqrt(q.shape[1]), dim=-1)
        out = torch.einsum("nts,ncs->nct", weights, v).reshape(b, c, h * w)
        return (flat + self.proj_out(out)).reshape(b, c, h, w)


class Stage(nn.ModuleList):
    """One entry of input_blocks / middle_block / output_blocks: layers called in turn."""

    def forward(self, x, emb):
        for layer in self:
            x = layer(x, emb) if isinstance(layer, Res) else layer(x)
        return x


class GuidedDiffusionUNet(nn.Module):
    def __init__(self, width=128, mult=(1, 1, 2, 2, 4, 4), blocks=1, attention_levels=(4,), learn_sigma=True,
                 channels=3, head_channels=64):
        super().__init__()
        self.width, emb = width, 4 * width
        self.time_embed = nn.Sequential(nn.Linear(width, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.input_blocks = nn.ModuleList([Stage([nn.Conv2d(channels, width, 3, padding=1)])])
        skips, c = [width], width
        for level, m in enumerate(mult):
            for _ in range(blocks):
                stage = Stage([Res(c, width * m, emb)])
                c = width * m
                if level in attention_levels:
                    stage.append(Attention(c, head_channels))
                self.input_blocks.append(stage)
                skips.append(c)
            if level < len(mult) - 1:
                self.input_blocks.append(Stage([Res(c, c, emb, "down")]))
                skips.append(c)
        self.middle_block = Stage([Res(c, c, emb), Attention(c, head_channels), Res(c, c, emb)])
        self.output_blocks = nn.ModuleList()
        for level in reversed(range(len(mult))):
            for i in range(blocks + 1):
                stage = Stage([Res(c + skips.pop(), width * mult[level], emb)])
                c = width * mult[level]
                if level in attention_levels:
                    stage.append(Attention(c, head_channels))
                if level and i == blocks:
                    stage.append(Res(c, c, emb, "up"))
                self.output_blocks.append(stage)
        self.out = nn.Sequential(nn.GroupNorm(32, c), nn.SiLU(), nn.Conv2d(c, (2 if learn_sigma else 1) * channels, 3, padding=1))

    def forward(self, x, t):
        emb = self.time_embed(sinusoid(t, self.width))
        hs, h = [], x
        for stage in self.input_blocks:
            h = stage(h, emb)
            hs.append(h)
        h = self.middle_block(h, emb)
        for stage in self.output_blocks:
            h = stage(torch.cat([h, hs.pop()], dim=1), emb)
        return self.out(h)


def randomised(model: nn.Module, seed: int = 0, scale: float = 0.05) -> nn.Module:
    """Random weights everywhere (norm gains and biases too), so every mapped tensor matters;
    small enough that activations stay O(1) through a deep network."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:  # biases around 0, norm gains (the only 1-D weights) around 1
                p.copy_(float(name.endswith("weight")) + scale * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
    return model.eval()
