"""The network at any image size: padding to its size multiple, tiled calls for large images, and
the memory a call needs, estimated before the first one.

The solvers call `prior(x_t, t) -> eps` on the whole image; `SizedNetwork` stands in for the prior
and keeps that contract at any (H, W):

- a U-Net halves its feature maps k times, so it runs on sides that are multiples of 2^k
  (`size_multiple`): x_t is reflect-padded up to the next multiple (split between both sides) and
  eps is cropped back. Only the network sees the padding; the operator and the solver work on the
  image's own pixels.
- with `tile` > 0, the network is called on overlapping tile x tile windows and their eps are
  blended with smooth weights (MultiDiffusion, Bar-Tal et al. 2023: the fused prediction is the
  weighted least-squares fit of the tiles' predictions, eq. 5, i.e. their weighted average per
  pixel). The weights rise as a raised cosine over the `overlap` pixels at an edge that has a
  neighbour and are 1 elsewhere, so no seam shows and a pixel covered once keeps its tile's eps.
  Memory then scales with the tile, not the image.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
import torch.nn.functional as F

from restore.errors import UsageError
from restore.models import memory

GIB = 2.0 ** 30


def _layout(prior: Any) -> Any:
    """The U-Net's levels (block_out_channels, layers_per_block): a diffusers network's config,
    else the prior's `layout` (restore.models.wrapper.Prior), else None."""
    config = getattr(getattr(prior, "unet", None), "config", None)
    if config is not None and getattr(config, "block_out_channels", None):
        return config
    layout = getattr(prior, "layout", None)
    return layout if getattr(layout, "block_out_channels", None) else None


def size_multiple(prior: Any) -> int:
    """The side multiple the network needs: 2^(number of down-samplings) for a U-Net of known
    levels, else the prior's `size_multiple` attribute, else 1 (any size)."""
    layout = _layout(prior)
    if layout is not None:
        return 2 ** (len(layout.block_out_channels) - 1)
    return int(getattr(prior, "size_multiple", 1))


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of `tile` pixels covering [0, length) with at least `overlap`
    pixels shared by neighbours, evenly spread (the first at 0, the last ending at length)."""
    if length <= tile:
        return [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (n - 1)) for i in range(n)]


@functools.lru_cache(maxsize=64)
def _ramp(length: int, overlap: int, rise: bool, fall: bool) -> torch.Tensor:
    """1-D blending weights of one tile: a raised cosine over `overlap` pixels at each side that
    meets a neighbour (rise at the start, fall at the end), 1 elsewhere; never exactly 0. Cached:
    every network call of a run asks for the same few (read only)."""
    w = torch.ones(length, dtype=torch.float64)
    if overlap > 0:
        r = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(overlap, dtype=torch.float64) + 0.5) / overlap)
        if rise:
            w[:overlap] = torch.minimum(w[:overlap], r)
        if fall:
            w[-overlap:] = torch.minimum(w[-overlap:], r.flip(0))
    return w


class SizedNetwork:
    """`prior` callable on (B, C, H, W) of any H, W: padded to `multiple`, tiled when `tile` > 0.

    Every other attribute (alphas_cumprod, name, image_size, ...) is the prior's."""

    def __init__(self, prior: Any, multiple: int | None = None, tile: int = 0, overlap: int | None = None):
        self.prior = prior
        self.multiple = size_multiple(prior) if multiple is None else int(multiple)
        self.tile = int(tile)
        if self.tile and self.tile % self.multiple:
            raise UsageError(f"--tile {tile}: the tile must be a multiple of {self.multiple} pixels for this network")
        self.overlap = (self.tile // 4 if overlap is None else int(overlap)) if self.tile else 0
        if self.tile and not 0 <= self.overlap < self.tile:
            raise UsageError(f"the tile overlap must lie in [0, {self.tile}), got {self.overlap}")

    def __getattr__(self, name: str) -> Any:
        if name == "prior":  # not set yet (copy, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.prior, name)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h, w = x_t.shape[-2:]
        if not self.tile or (h <= self.tile and w <= self.tile):
            return self._padded(x_t, t)
        eps = torch.zeros_like(x_t)
        total = torch.zeros(h, w, dtype=x_t.dtype, device=x_t.device)
        rows, cols = tile_starts(h, self.tile, self.overlap), tile_starts(w, self.tile, self.overlap)
        th, tw = min(self.tile, h), min(self.tile, w)
        for i, top in enumerate(rows):
            wy = _ramp(th, self.overlap, i > 0, i < len(rows) - 1)
            for j, left in enumerate(cols):
                wx = _ramp(tw, self.overlap, j > 0, j < len(cols) - 1)
                weight = torch.outer(wy, wx).to(x_t)
                window = (..., slice(top, top + th), slice(left, left + tw))
                eps[window] += weight * self._padded(x_t[window], t)
                total[window[1:]] += weight
        return eps / total

    def _padded(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One network call, reflect-padded to the multiple and cropped back."""
        h, w = x.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        if not ph and not pw:
            return self.prior(x, t)
        pad = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        mode = "reflect" if max(pad[:2]) < w and max(pad[2:]) < h else "replicate"
        eps = self.prior(F.pad(x, pad, mode=mode), t)
        return eps[..., pad[2] : pad[2] + h, pad[0] : pad[0] + w]


# --------------------------------------------------------------------------- memory
def network_bytes(prior: Any, batch: int, h: int, w: int) -> float:
    """Estimated peak memory of one call of a diffusers U-Net on (batch, C, h, w) in float32,
    weights excluded: the skip activations the U-Net keeps for its up path plus the working
    tensors of its widest level (about four feature maps at the up path's concatenated width).
    Checked against measured peaks in docs/usage/sizes.md (diffusers U-Nets); guided-diffusion's
    are estimated the same way from their levels. 0 for other priors."""
    config = _layout(prior)
    if config is None:
        return 0.0
    m = size_multiple(prior)
    h, w = h + (-h % m), w + (-w % m)
    channels = list(config.block_out_channels)
    layers = int(config.layers_per_block)
    skips = channels[0]  # conv_in
    work = 0.0
    for level, c in enumerate(channels):
        area = 4.0 ** -level
        skips += layers * c * area + (c * area / 4 if level < len(channels) - 1 else 0)
        work = max(work, (c + channels[max(level - 1, 0)] + c) * area)
    return 4.0 * batch * h * w * (skips + 4 * work)


def available_bytes(device: torch.device) -> float:
    """Memory free for this process on `device`: CUDA's free memory, else the system's
    MemAvailable (Linux), else infinity (no estimate)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return float(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    return math.inf


def plan_network(prior: Any, device: torch.device, batch: int, h: int, w: int, tile: int | None,
                 solver_images: int = 24, note=None) -> SizedNetwork:
    """The network for restoring `batch` images of h x w on `device`, or a one-line UsageError
    when it cannot fit, raised before anything of that size is allocated.

    tile None: tiles of 512 pixels (or smaller, down to 4 multiples) only when the untiled call
    would not fit in 80% of the free memory; 0: never; > 0: that tile. solver_images: the image-sized
    float32 tensors the solver and the run keep per image (states, predictions, records)."""
    free = 0.8 * available_bytes(device)
    state = 4.0 * batch * 3 * h * w * solver_images
    multiple = size_multiple(prior)
    gib = lambda b: f"{b / GIB:.1f} GiB"  # noqa: E731
    auto = tile is None
    if tile is None:
        tile = 0
        if state + network_bytes(prior, batch, h, w) > free:
            tile = next((s for s in (512, 384, 256, 128, 4 * multiple)
                         if s % multiple == 0 and s < max(h, w) and state + network_bytes(prior, batch, s, s) <= free), 0)
            if tile and note is not None:
                note(f"{w}x{h} does not fit the free memory in one network call "
                     f"(about {gib(network_bytes(prior, batch, h, w))}): calling it on {tile}-pixel tiles "
                     "(--tile 0 turns tiling off)")
    need = state + network_bytes(prior, batch, *((min(tile, h), min(tile, w)) if tile else (h, w)))
    if need > free:
        fix = "a smaller --tile or --size" if tile else ("a smaller --size" if auto else "--tile 512 or a smaller --size")
        raise UsageError(f"restoring {batch} image(s) of {w}x{h} needs about {gib(need)} of memory, "
                         f"{gib(free / 0.8)} is free on {device}; pass {fix}")
    if device.type == "cpu" and memory.kept() and need * memory.KEPT_PEAK_FACTOR > free:
        memory.give_back_freed_memory()  # fits only if freed memory goes back between calls
        if note is not None:
            note(f"{w}x{h} fits the free memory only if each network call's memory is given back to the system "
                 "afterwards: doing so (slower: the next call faults its pages in again)")
    return SizedNetwork(prior, multiple, tile)
