"""Where a restoration's randomness comes from: one generator per candidate, seeded from the run's seed.

Two schemes, because a folder evaluation keys each image by its path (so that an image's numbers
do not depend on which other images the folder holds, their order, the batch or the process),
while a single restoration has no name to key by (its input may be a tensor):
- one image: `derive_seeds(seed)` expands the seed (numpy SeedSequence) into an observation seed
  (the measurement noise) and a sampler seed;
- a folder: `image_seeds(seed, rel)` takes both from SHA-256 of the seed and the image's path.
Candidate k then draws from its own generator, seeded by `candidate_seed(sampler seed, k)`, where
candidate 0 uses the sampler seed itself: a single-candidate run and candidate 1 of a K-candidate
run are the same restoration.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seeds(seed: int) -> tuple[int, int]:
    """(observation seed, sampler seed): two independent 64-bit seeds expanded from `seed`."""
    state = np.random.SeedSequence([int(seed) % 2**64, 0x5EED]).generate_state(2, dtype=np.uint64)
    return int(state[0]), int(state[1])


def image_seeds(seed: int, rel: str) -> tuple[int, int]:
    """(observation seed, sampler seed) of image `rel` under run seed `seed`: 63-bit integers
    from SHA-256 of "seed/rel/observation" and "seed/rel/sampler"."""
    return _hash_seed(f"{seed}/{rel}/observation"), _hash_seed(f"{seed}/{rel}/sampler")


def candidate_seed(sampler_seed: int, k: int) -> int:
    """Seed of candidate k (0-based): the sampler seed for k = 0, an independent one otherwise."""
    if k == 0:
        return int(sampler_seed)
    return int(np.random.SeedSequence([int(sampler_seed), int(k)]).generate_state(1, dtype=np.uint64)[0])


def _hash_seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") & (2**63 - 1)
