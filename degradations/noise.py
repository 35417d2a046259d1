"""Gaussian noise drawn per image, so that a result does not depend on the batch it ran in.

As in EDM (Karras et al. 2022), an image's randomness comes from its own generator: pass a list
with one `torch.Generator` per image. A single generator is also accepted (then the draws of an
image depend on its position in the batch), and None uses torch's global generator.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch

Generators = Union[torch.Generator, Sequence[torch.Generator], None]


def randn(
    shape: Sequence[int],
    batch: int,
    generator: Generators,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal noise of shape (batch, *shape) on `device`.

    With a list of generators, image i draws from generator[i] (on that generator's device, then
    moved to `device`, a no-op when they agree)."""
    shape = tuple(shape)
    if generator is None or isinstance(generator, torch.Generator):
        gen_device = generator.device if generator is not None else device
        noise = torch.randn((batch, *shape), generator=generator, device=gen_device, dtype=dtype)
        return noise.to(device)
    if len(generator) != batch:
        raise ValueError(f"got {len(generator)} generators for a batch of {batch} images")
    if batch == 1 and torch.device(generator[0].device) == torch.device(device or "cpu"):
        return torch.randn((1, *shape), generator=generator[0], device=device, dtype=dtype)  # the same draws, one op
    return torch.stack(
        [torch.randn(shape, generator=g, device=g.device, dtype=dtype) for g in generator]
    ).to(device)


def make_generators(seeds: Sequence[int], device: torch.device | str = "cpu") -> list[torch.Generator]:
    """One seeded generator per image."""
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
