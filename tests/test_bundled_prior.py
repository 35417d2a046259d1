"""The bundled prior (data/models/natural-ddpm) loads offline and denoises images it never saw."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from degradations import make_operator
from restore.io.images import load_image
from restore.models.prior import celebahq_schedule, load_prior
from restore.quality.metrics import psnr
from restore.settings.model_spec import BUNDLED
from solvers import DDRM, make_generators

HELD_OUT = Path(__file__).parent / "data" / "lpips" / "ex_ref.png"  # an LPIPS example patch, not a training photo


@pytest.fixture(scope="module")
def prior():
    return load_prior(BUNDLED)


def test_loads_offline_with_the_celebahq_schedule(prior, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert prior.name == BUNDLED and prior.image_size == 256
    assert torch.allclose(prior.alphas_cumprod, celebahq_schedule())
    assert prior.unet.config.add_attention is False  # fully convolutional: any size that is a multiple of 16
    assert sum(p.numel() for p in prior.parameters()) < 12e6


@pytest.mark.parametrize("size", [32, 48])
def test_runs_at_other_sizes(prior, size):
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        eps = prior(x, torch.tensor([10, 900]))
    assert eps.shape == x.shape and torch.isfinite(eps).all()


def test_one_step_denoising_improves_psnr_on_an_unseen_image(prior):
    x0 = load_image(HELD_OUT)
    t = 100
    a = prior.alphas_cumprod[t].item()
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    x_t = a**0.5 * x0 + (1 - a) ** 0.5 * noise
    with torch.no_grad():
        eps = prior(x_t, torch.tensor([t]))
    x0_hat = (x_t - (1 - a) ** 0.5 * eps) / a**0.5
    noisy = x_t / a**0.5  # the input, rescaled to the image's scale
    assert psnr(x0_hat, x0).item() > psnr(noisy, x0).item() + 3.0


def test_two_step_ddrm_restoration(prior):
    x0 = load_image(HELD_OUT)
    op = make_operator("sr4", x0.shape[-1])
    out = DDRM(prior, op, steps=2).restore(op.observe(x0), 0.0, make_generators([0]))
    assert out.shape == x0.shape and torch.isfinite(out).all()
