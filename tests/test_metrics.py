"""restore.quality.metrics: PSNR / SSIM / LPIPS per image, LPIPS against the LPIPS authors' values."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restore.quality import metrics as M

DATA = Path(__file__).parent / "data" / "lpips"


def _load(name: str) -> torch.Tensor:
    a = np.asarray(Image.open(DATA / name).convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(a).permute(2, 0, 1)[None]


def _rand(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g) * 2 - 1


@pytest.fixture
def fresh_lpips():
    """Forget LPIPS' cached weights/models before and after the test."""
    M._reset_lpips_cache()
    yield
    M._reset_lpips_cache()


# --------------------------------------------------------------------------- LPIPS
def test_lpips_reproduces_reference_values(device):
    assert M.lpips_available()
    ref, p0, p1 = (_load(name).to(device) for name in ("ex_ref.png", "ex_p0.png", "ex_p1.png"))
    d = M.lpips(torch.cat([ref, ref]), torch.cat([p0, p1]))
    assert d.shape == (2,) and d.dtype == torch.float32 and d.device.type == device.type
    assert round(float(d[0]), 3) == 0.722
    assert round(float(d[1]), 3) == 0.138


def test_lpips_identical_is_zero_and_symmetric_shapes():
    ref, p0 = _load("ex_ref.png"), _load("ex_p0.png")
    assert float(M.lpips(ref, ref)[0]) == pytest.approx(0.0, abs=1e-7)
    # symmetric in its arguments
    assert float(M.lpips(p0, ref)[0]) == pytest.approx(float(M.lpips(ref, p0)[0]), abs=1e-6)


def test_lpips_grey_is_repeated_to_three_channels():
    x, y = _rand(2, 1, 40, 48, seed=1), _rand(2, 1, 40, 48, seed=2)
    grey = M.lpips(x, y)
    rgb = M.lpips(x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1))
    assert grey.shape == (2,)
    torch.testing.assert_close(grey, rgb)


def test_lpips_rejects_other_channel_counts():
    with pytest.raises(ValueError):
        M.lpips(torch.zeros(1, 2, 32, 32), torch.zeros(1, 2, 32, 32))


def test_lpips_too_small_images_are_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = M.lpips(torch.zeros(2, 3, 30, 64), torch.zeros(2, 3, 30, 64))
    assert d.shape == (2,) and torch.isnan(d).all()


def test_lpips_nan_when_weights_missing(monkeypatch, fresh_lpips):
    monkeypatch.setattr(M, "_find_backbone_weights", lambda: (None, "no weights in this test"))
    assert not M.lpips_available()
    x = _rand(3, 3, 32, 32)
    with pytest.warns(RuntimeWarning, match=r"^LPIPS unavailable: no weights in this test; reported as null$"):
        d = M.lpips(x, x)
    assert d.shape == (3,) and torch.isnan(d).all()
    with warnings.catch_warnings():  # warned once only
        warnings.simplefilter("error")
        assert torch.isnan(M.lpips(x, x)).all()
    out = M.compute_all(x, x)
    assert torch.isnan(out["lpips"]).all() and torch.isfinite(out["psnr"]).all()


def test_lpips_env_var_overrides(monkeypatch, fresh_lpips, tmp_path):
    # a missing file named by the env var: unavailable (no silent fallback)
    monkeypatch.setenv(M.LPIPS_WEIGHTS_ENV, str(tmp_path / "missing.safetensors"))
    assert not M.lpips_available()
    # a corrupt file: unavailable, not a crash
    M._reset_lpips_cache()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    monkeypatch.setenv(M.LPIPS_WEIGHTS_ENV, str(bad))
    with pytest.warns(RuntimeWarning, match="LPIPS unavailable: cannot read"):
        assert torch.isnan(M.lpips(_rand(1, 3, 32, 32), _rand(1, 3, 32, 32))).all()
    # the shipped file, named explicitly
    M._reset_lpips_cache()
    monkeypatch.setenv(M.LPIPS_WEIGHTS_ENV, str(M.SHIPPED_LPIPS_WEIGHTS))
    assert M.lpips_available()


def test_shipped_weights_present():
    assert M.SHIPPED_LPIPS_WEIGHTS.is_file()
    sd = M._read_backbone(M.SHIPPED_LPIPS_WEIGHTS)
    assert sorted(sd) == sorted(f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias"))


# --------------------------------------------------------------------------- PSNR
def test_psnr_closed_form():
    x = torch.zeros(1, 3, 8, 8)  # 0.5 on the [0, 1] scale
    y = torch.full((1, 3, 8, 8), 0.2)  # 0.6: mse 0.01 -> 20 dB
    assert float(M.psnr(x, y)[0]) == pytest.approx(20.0, abs=1e-4)
    # a pattern: half the pixels off by 0.1, half by 0.3 on [0, 1] -> mse 0.05
    d = torch.zeros(1, 1, 4, 4)
    d[..., :2, :] = 0.2
    d[..., 2:, :] = 0.6
    assert float(M.psnr(x[:, :1, :4, :4], d)[0]) == pytest.approx(10 * math.log10(1 / 0.05), abs=1e-4)


def test_psnr_clamps_to_unit_range_and_caps_identical():
    ref = torch.ones(1, 3, 8, 8)
    assert float(M.psnr(torch.full_like(ref, 3.0), ref)[0]) == pytest.approx(100.0)
    assert float(M.psnr(torch.full_like(ref, -5.0), -ref)[0]) == pytest.approx(100.0)
    # -2 is clamped to -1 (0 on [0, 1]); vs 0 (0.5): mse 0.25 -> 6.0206 dB
    assert float(M.psnr(torch.full_like(ref, -2.0), torch.zeros_like(ref))[0]) == pytest.approx(
        10 * math.log10(4), abs=1e-4
    )
    x = _rand(2, 3, 16, 16)
    assert torch.equal(M.psnr(x, x), torch.full((2,), 100.0))


# --------------------------------------------------------------------------- SSIM
def test_ssim_identical_is_one_and_decreases_with_noise():
    x = _load("ex_ref.png")
    assert float(M.ssim(x, x)[0]) == pytest.approx(1.0, abs=1e-5)
    g = torch.Generator().manual_seed(0)
    n = torch.randn(x.shape, generator=g)
    vals = [float(M.ssim(x + s * n, x)[0]) for s in (0.02, 0.1, 0.4)]
    assert 1.0 > vals[0] > vals[1] > vals[2]


def test_ssim_small_images():
    for h, w in ((5, 7), (10, 10), (1, 1), (2, 9)):
        x, y = _rand(2, 3, h, w, seed=1), _rand(2, 3, h, w, seed=2)
        s = M.ssim(x, y)
        assert s.shape == (2,) and torch.isfinite(s).all()
        assert torch.allclose(M.ssim(x, x), torch.ones(2), atol=1e-5)
    assert M._ssim_kernel_size(10, 12) == 9
    assert M._ssim_kernel_size(64, 64) == 11
    assert M._ssim_kernel_size(3, 400) == 3


# --------------------------------------------------------------------------- all metrics
def test_shapes_dtype_and_batch_consistency(device):
    x, y = _rand(3, 3, 48, 40, seed=3).to(device), _rand(3, 3, 48, 40, seed=4).to(device)
    y = (0.7 * x + 0.3 * y)  # correlated, so SSIM / LPIPS are away from their extremes
    batch = M.compute_all(x, y)
    assert set(batch) == {"psnr", "ssim", "lpips"}
    for name, v in batch.items():
        assert v.shape == (3,) and v.dtype == torch.float32 and v.device == x.device, name
        single = torch.cat([M.compute_all(x[i:i + 1], y[i:i + 1])[name] for i in range(3)])
        torch.testing.assert_close(v, single, rtol=1e-5, atol=1e-5)


def test_grey_inputs():
    x, y = _rand(2, 1, 32, 32, seed=5), _rand(2, 1, 32, 32, seed=6)
    out = M.compute_all(x, y)
    assert all(v.shape == (2,) and torch.isfinite(v).all() for v in out.values())


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        M.psnr(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(ValueError):
        M.ssim(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
