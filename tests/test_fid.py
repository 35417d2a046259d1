"""restore.quality.fid: the Frechet distance and KID against closed forms, the folder pipeline on a
small network built here, and the offline path (no Inception weights, no network)."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
import torch

from restore.quality import fid


def exact_gaussian_sample(mean, cov, n, seed):
    """n points whose sample mean and (unbiased) sample covariance are exactly `mean` and `cov`."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # sample covariance I
    return mean + z @ np.linalg.cholesky(cov).T


def sqrtm_psd(a):
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def closed_form_fid(m1, s1, m2, s2):
    """||m1 - m2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), by symmetric eigendecompositions."""
    r = sqrtm_psd(s1)
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrtm_psd(r @ s2 @ r)))


def random_cov(d, seed):
    a = np.random.default_rng(seed).standard_normal((d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


def test_frechet_distance_of_two_gaussians_is_the_closed_form():
    d = 6
    m1, m2 = np.zeros(d), np.linspace(-1, 1, d)
    s1, s2 = random_cov(d, 1), random_cov(d, 2)  # not commuting
    x1, x2 = exact_gaussian_sample(m1, s1, 300, 3), exact_gaussian_sample(m2, s2, 200, 4)
    assert fid.frechet_distance(x1, x2) == pytest.approx(closed_form_fid(m1, s1, m2, s2), rel=1e-6)
    # isotropic: ||dm||^2 + d (a - b)^2
    x3, x4 = exact_gaussian_sample(m1, 4 * np.eye(d), 100, 5), exact_gaussian_sample(m2, np.eye(d), 100, 6)
    assert fid.frechet_distance(x3, x4) == pytest.approx(np.sum(m2**2) + d * (2 - 1) ** 2, rel=1e-6)


def test_a_set_against_itself_scores_zero():
    x = exact_gaussian_sample(np.ones(5), random_cov(5, 7), 50, 8)
    assert abs(fid.frechet_distance(x, x)) < 1e-6
    out = fid.fid_kid(x, x, min_images=10)
    assert abs(out["fid"]) < 1e-6 and out["images"] == 50 and out["warning"] is None


def test_kid_matches_the_mmd_of_two_zero_mean_gaussians():
    """For zero-mean Gaussians and k(x, y) = (x.y / d + 1)^3 the odd moments vanish and
    MMD^2 = 3 ||S1 - S2||_F^2 / d^2; KID (unbiased) estimates it; the same law gives ~0."""
    d, n = 4, 4000
    rng = np.random.default_rng(0)
    s1, s2 = np.diag([1.0, 1.0, 1.0, 1.0]), np.diag([3.0, 2.0, 1.0, 0.5])
    x1 = rng.standard_normal((n, d)) @ np.sqrt(s1)
    x2 = rng.standard_normal((n, d)) @ np.sqrt(s2)
    truth = 3 * np.sum((s1 - s2) ** 2) / d**2
    kid, _ = fid.kernel_inception_distance(x1, x2, subsets=50, subset_size=1000)
    assert kid == pytest.approx(truth, rel=0.15)
    same, std = fid.kernel_inception_distance(x1, rng.standard_normal((n, d)), subsets=50, subset_size=1000)
    assert abs(same) < 0.05 * truth and abs(same) < 4 * std


class TinyNet(torch.nn.Module):
    """A small fixed-seed convolutional feature network (8-bit images -> 12 features), to test the
    pipeline without the Inception weights; its numbers are no image metric."""

    name, dim = "tiny-test-cnn", 12

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, self.dim, 5, stride=2)

    @torch.no_grad()
    def __call__(self, images):
        return torch.relu(self.conv(images.float() / 127.5 - 1)).mean((2, 3)).double()


def write_images(folder, seed, n=6, size=24):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"{i}.png")


def test_folder_pipeline_on_a_small_network(tmp_path):
    net = TinyNet()
    write_images(tmp_path / "a", 0)
    write_images(tmp_path / "b", 1)
    same = fid.fid_folders(tmp_path / "a", tmp_path / "a", net)
    assert abs(same["fid"]) < 1e-6 and same["images"] == 6
    assert "biased upward" in same["warning"]  # 6 images: said, not hidden
    other = fid.fid_folders(tmp_path / "a", tmp_path / "b", net)
    names, fa = fid.folder_features(tmp_path / "a", net)
    _, fb = fid.folder_features(tmp_path / "b", net)
    assert names == [f"{i}.png" for i in range(6)] and fa.shape == (6, net.dim)
    assert other["fid"] > 0 and other["fid"] == pytest.approx(fid.frechet_distance(fa, fb), rel=1e-9)


def test_offline_one_line_says_what_to_fetch(tmp_path, monkeypatch):
    monkeypatch.delenv(fid.INCEPTION_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(url, path):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(fid, "_download", no_network)
    lines = []
    assert fid.load_inception(note=lines.append) is None
    assert len(lines) == 1 and "\n" not in lines[0]
    assert fid.INCEPTION_URL in lines[0] and str(tmp_path / "hub" / "checkpoints" / fid.INCEPTION_FILE) in lines[0]
    assert "PSNR, SSIM and LPIPS" in lines[0]
    monkeypatch.setenv(fid.INCEPTION_WEIGHTS_ENV, str(tmp_path / "none.pth"))
    lines.clear()
    assert fid.load_inception(note=lines.append) is None and "none.pth" in lines[0] and "not found" in lines[0]
