"""What the benchmarks share: timing on any device, the network timed alone, a prior that adds
up the time spent in its calls, and commands run in a fresh process (for a peak memory of its own)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import torch

from restore import paths
from restore.models.architectures import celebahq_architecture
from restore.models.prior import DiffusersPrior, load_prior

SIZE = 256


def get_prior(name: str, device: torch.device) -> DiffusersPrior:
    """A prior by name; "celebahq-arch" is the CelebA-HQ U-Net with random weights (timing only)."""
    prior = celebahq_architecture() if name == "celebahq-arch" else load_prior(name)
    return prior.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TimedPrior:
    """Wraps a prior and adds up the wall time spent inside its calls."""

    def __init__(self, prior, device: torch.device):
        self.prior, self.device = prior, device
        self.alphas_cumprod = prior.alphas_cumprod
        self.seconds, self.calls = 0.0, 0

    def __call__(self, x_t, t):
        sync(self.device)
        start = time.perf_counter()
        eps = self.prior(x_t, t)
        sync(self.device)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return eps


def network_seconds(prior, device: torch.device, batch: int = 1, calls: int = 3) -> float:
    x = torch.randn(batch, 3, SIZE, SIZE, device=device)
    t = torch.full((batch,), 500, device=device)
    with torch.no_grad():
        prior(x, t)  # warm-up
        sync(device)
        start = time.perf_counter()
        for _ in range(calls):
            prior(x, t)
        sync(device)
    return (time.perf_counter() - start) / calls


def in_subprocess(module: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m module args` in a fresh process that imports this package (stdout and stderr
    captured as text)."""
    root = str(paths.PACKAGE_DIR.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env)
