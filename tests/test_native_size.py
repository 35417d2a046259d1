"""Restoration at the image's own size: padding for the network and for srN, tiled network calls,
the memory estimate (issue 11)."""

import math
from pathlib import Path

import pytest
import torch

from restore import restore_image
from restore.errors import UsageError
from restore.io.images import crop_resize
from restore.models.network import SizedNetwork, network_bytes, plan_network, tile_starts

REPO = Path(__file__).resolve().parents[1]
BUNDLED_MODEL = REPO / "data" / "models" / "natural-ddpm" / "config.json"
FACE = REPO / "data" / "examples" / "face.png"


class Pointwise:
    """A 'network' whose eps at a pixel depends on that pixel only (a fixed 1x1 map) and that
    records the shapes it is called on: tiling and padding must leave it unchanged."""

    alphas_cumprod = torch.linspace(0.999, 0.01, 1000, dtype=torch.float64)

    def __init__(self):
        self.shapes = []
        self.mix = torch.tensor([[0.5, -0.2, 0.1], [0.3, 0.8, -0.4], [0.0, 0.2, 0.6]])

    def __call__(self, x, t):
        self.shapes.append(tuple(x.shape[-2:]))
        return torch.einsum("dc,bchw->bdhw", self.mix.to(x), x) * (1 + t.to(x).view(-1, 1, 1, 1) / 1000)


def _image(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, 4, 4, generator=g) * 2 - 1  # smooth, so every task has something to restore
    return torch.nn.functional.interpolate(base, size=(h, w), mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- the network wrapper
@pytest.mark.parametrize("h,w", [(37, 29), (16, 48), (33, 33)])
def test_padding_calls_the_network_on_its_multiple_and_crops_back(h, w, device):
    net = Pointwise()
    x, t = torch.randn(2, 3, h, w, device=device), torch.tensor([10, 700], device=device)
    eps = SizedNetwork(net, multiple=16)(x, t)
    assert eps.shape == x.shape
    assert all(a % 16 == 0 and b % 16 == 0 for a, b in net.shapes)
    torch.testing.assert_close(eps, net(x, t), rtol=1e-5, atol=1e-6)  # a pointwise net does not see the padding


def test_tiles_cover_the_image_and_blend_to_the_untiled_call(device):
    assert tile_starts(96, 32, 8) == [0, 21, 43, 64] and tile_starts(32, 32, 8) == [0] and tile_starts(20, 32, 8) == [0]
    for length, tile, overlap in [(96, 32, 8), (100, 48, 12), (513, 128, 32)]:
        starts = tile_starts(length, tile, overlap)
        assert starts[0] == 0 and starts[-1] + tile == length
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))  # neighbours share >= overlap
    net = Pointwise()
    x, t = torch.randn(1, 3, 64, 96, device=device), torch.tensor([300], device=device)
    tiled = SizedNetwork(net, multiple=2, tile=32)(x, t)
    assert set(net.shapes) == {(32, 32)} and len(net.shapes) == 3 * 4
    torch.testing.assert_close(tiled, net(x, t), rtol=1e-5, atol=1e-6)  # the weights sum to one everywhere


def test_tile_must_be_a_multiple_of_the_network():
    with pytest.raises(UsageError, match="multiple of 16"):
        SizedNetwork(Pointwise(), multiple=16, tile=40)


@pytest.mark.skipif(not BUNDLED_MODEL.exists(), reason="the bundled prior is not installed")
def test_a_tiled_restoration_is_close_to_the_untiled_one(device):
    """96x64 with 32-pixel tiles (8 overlapping) against one call on the whole image, with the
    bundled prior (a random network says nothing about seams). The tiles differ where the U-Net's
    receptive field and its GroupNorm statistics reach past a tile; measured on this face crop
    (DDRM 10 steps, deno 0.1): the two agree to 40.7 dB PSNR and score 27.53 / 27.41 dB."""
    from degradations import make_operator
    from restore.io.images import load_image
    from restore.models.prior import load_prior
    from solvers import DDRM, make_generators

    prior = load_prior("natural-ddpm", device)
    x = crop_resize(load_image(FACE), 64, 96).to(device)
    op = make_operator("deno", (64, 96)).to(device)
    y = op.observe(x, 0.1, make_generators([1], device))
    out = {name: DDRM(SizedNetwork(prior, tile=tile), op, steps=10).restore(y, 0.1, make_generators([7], device))
           .clamp(-1, 1)
           for name, tile in (("whole", 0), ("tiled", 32))}
    psnr = lambda a, b: (10 * torch.log10(4 / ((a - b) ** 2).mean())).item()  # noqa: E731
    assert psnr(out["tiled"], out["whole"]) > 35
    assert abs(psnr(out["tiled"], x) - psnr(out["whole"], x)) < 0.5
    assert psnr(out["whole"], x) > psnr(op.H_pinv(y).clamp(-1, 1), x) + 3  # both restore


# --------------------------------------------------------------------------- sizes through the tasks
@pytest.mark.parametrize("task", ["deno", "sr4", "sr_bicubic4", "color", "inp_box", "inp_random", "deblur_gauss"])
def test_every_task_family_at_an_odd_non_square_size(task, tiny_model_dir):
    x = _image(37, 29)
    r = restore_image(x, task=task, sigma_y=0.02, model=str(tiny_model_dir), solver="ddrm", steps=2, quiet=True)
    assert r.final.shape == (1, 3, 37, 29)  # the input's own size, srN padding cropped back
    assert r.reference.shape == (1, 3, 37, 29) and all(b.shape == (1, 3, 37, 29) for b in r.baselines.values())
    assert math.isfinite(r.metrics["final"]["psnr"]) and r.metrics["image_size"] == [37, 29]
    if task.startswith("sr"):
        assert any("reflect-padded to 32x40" in n for n in r.notes)
        assert r.observation.shape[-2:] == (10, 8)


def test_observed_super_resolution_of_a_non_square_image(tiny_model_dir):
    low = _image(8, 12)
    r = restore_image(low, task="sr4", observed=True, model=str(tiny_model_dir), solver="ddrm", steps=2, quiet=True)
    assert r.final.shape == (1, 3, 32, 48) and r.metrics["image_size"] == [32, 48]


def test_size_forces_a_square_and_native_overrides_a_fixed_size_model(tiny_model_dir):
    from restore.models.prior import load_prior

    prior = load_prior(str(tiny_model_dir))
    prior.fixed_size = True  # as CelebA-HQ's: restorations default to its 32x32
    x = _image(40, 48)
    common = dict(task="deno", model=prior, solver="ddrm", steps=1, quiet=True)
    assert restore_image(x, **common).final.shape == (1, 3, 32, 32)
    r = restore_image(x, size="native", **common)
    assert r.final.shape == (1, 3, 40, 48)
    prior.fixed_size = False
    assert restore_image(x, size=24, **common).final.shape == (1, 3, 24, 24)


# --------------------------------------------------------------------------- memory
def test_memory_estimate_grows_with_the_pixels(tiny_model_dir):
    from restore.models.prior import load_prior

    prior = load_prior(str(tiny_model_dir))
    a, b = network_bytes(prior, 1, 64, 64), network_bytes(prior, 2, 128, 128)
    assert a > 0 and b == pytest.approx(8 * a)
    assert network_bytes(Pointwise(), 1, 64, 64) == 0  # unknown architecture: no estimate


def test_auto_tiling_and_refusal(tiny_model_dir, monkeypatch, device):
    import restore.models.network as N
    from restore.models.prior import load_prior

    prior = load_prior(str(tiny_model_dir), device)
    dev = device
    need = network_bytes(prior, 1, 1024, 1024) + 4.0 * 3 * 1024 * 1024 * 24
    monkeypatch.setattr(N, "available_bytes", lambda device: need / 0.8 * 0.5)  # half of what one call needs
    notes = []
    net = plan_network(prior, dev, 1, 1024, 1024, None, note=notes.append)
    assert net.tile == 512 and "512-pixel tiles" in notes[0]
    with pytest.raises(UsageError, match="pass --tile 512 or a smaller --size"):
        plan_network(prior, dev, 1, 1024, 1024, 0)
    assert plan_network(prior, dev, 1, 256, 256, None).tile == 0  # fits: no tiling


@pytest.mark.cuda
def test_the_gpu_s_free_memory_is_read_and_a_256_call_fits(tiny_model_dir):
    import restore.models.network as N
    from restore.models.prior import load_prior

    cuda = torch.device("cuda")
    free = N.available_bytes(cuda)
    assert 0 < free <= torch.cuda.get_device_properties(cuda).total_memory
    assert plan_network(load_prior(str(tiny_model_dir), cuda), cuda, 1, 256, 256, None).tile == 0


def test_a_huge_size_is_refused_before_anything_is_allocated(tiny_model_dir):
    """200000 x 200000 float32 RGB would be 480 GB: refused in one line from the estimate (the
    restoration would otherwise die in the allocator or the resize)."""
    with pytest.raises(UsageError, match=r"needs about .* GiB of memory"):
        restore_image(_image(32, 32), task="deno", size=200000, model=str(tiny_model_dir), quiet=True)


def test_figures_keep_the_aspect_ratio_and_files_their_size(tiny_model_dir, tmp_path):
    from PIL import Image

    r = restore_image(_image(32, 64), task="sr4", model=str(tiny_model_dir), solver="nested", outer=2, inner=1,
                      quiet=True, out=tmp_path / "o")
    assert Image.open(tmp_path / "o" / "final.png").size == (64, 32)
    strip = Image.open(tmp_path / "o" / "progress.png")
    assert strip.height < 128 < strip.width  # 2:1 tiles of 128x64 (a square layout would be >= 128 high)
    assert r.final.shape == (1, 3, 32, 64)


def test_a_phone_photo_comes_back_upright(tiny_model_dir, tmp_path):
    """A JPEG stored 48 wide x 32 high with EXIF orientation 6 (rotate 90° clockwise to display)
    is restored as displayed: 32 wide x 48 high, its red corner where a viewer shows it."""
    import numpy as np
    from PIL import Image

    stored = np.full((32, 48, 3), 60, np.uint8)
    stored[:8, :8] = (255, 0, 0)  # top-left as stored -> top-right as displayed
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    r = restore_image(tmp_path / "phone.jpg", task="deno", sigma_y=0.01, model=str(tiny_model_dir), solver="ddrm",
                      steps=1, quiet=True, out=tmp_path / "o")
    assert r.reference.shape == (1, 3, 48, 32) and Image.open(tmp_path / "o" / "final.png").size == (32, 48)
    corner = r.reference[0, 0, :8, -8:].mean().item()
    assert corner > 0.7 and r.reference[0, 0, :8, :8].mean().item() < -0.3
    assert any("EXIF orientation" in n for n in r.notes)
