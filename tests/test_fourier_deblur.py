"""Deblurring with any kernel through the toolkit: --task deblur --kernel from the command line,
and a photo that is already blurred restored with its known kernel (--observed) and checked
against the sharp one with the bundled prior."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_cli_restore import _rgb, cli

from degradations import make_operator
from degradations.kernels import disk_kernel
from restore.io.images import load_image, save_image


def test_deblur_with_a_kernel_file_on_the_command_line(tiny_model_dir, tmp_path, capsys):
    src = _rgb(tmp_path / "in.png", 32, 32)
    np.save(tmp_path / "k.npy", np.array([[0.0, 2.0, 1.0], [1.0, 4.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 0.0]]))
    out = tmp_path / "o"
    code, _, err = cli(["--task", "deblur", "--kernel", tmp_path / "k.npy", "--input", src, "--out", out, "--model",
                        tiny_model_dir, "--outer", "2", "--inner", "2", "--quiet"], capsys)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "complete" and m["settings"]["kernel"].endswith("k.npy")
    assert "the blur kernel summed to 13; normalised to sum 1" in m["notes"]
    code, _, err = cli(["--task", "deblur", "--input", src, "--out", tmp_path / "x", "--model", tiny_model_dir], capsys)
    assert code == 2 and "needs --kernel" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(["--task", "deblur", "--kernel", tmp_path / "none.npy", "--input", src, "--out", tmp_path / "x",
                        "--model", tiny_model_dir], capsys)
    assert code == 2 and "not found" in err


def test_an_already_blurred_photo_is_restored_with_its_kernel(tmp_path):
    from restore import restore_image

    sharp = load_image("data/examples/face.png")
    sharp = torch.nn.functional.interpolate(sharp, size=(64, 64), mode="area")
    save_image(sharp, tmp_path / "sharp.png")
    kernel = disk_kernel(2.0)
    np.save(tmp_path / "disk.npy", kernel.numpy())
    op = make_operator("deblur", 64, 3, kernel=kernel)
    blurred = op.to_image(op.H(load_image(tmp_path / "sharp.png")))
    save_image(blurred, tmp_path / "blurred.png")
    result = restore_image(str(tmp_path / "blurred.png"), task="deblur", kernel=str(tmp_path / "disk.npy"),
                           observed=True, reference=str(tmp_path / "sharp.png"), model="natural-ddpm",
                           size="native", quiet=True, seed=1)
    ref = load_image(tmp_path / "sharp.png")
    assert result.final.shape == ref.shape == (1, 3, 64, 64)

    def psnr(x):
        return float(10 * torch.log10(4 / (x.clamp(-1, 1) - ref).square().mean()))

    observed = load_image(tmp_path / "blurred.png")
    # measured: 33.5 dB against 23.3 for the blurred photo and 31.5 for the pseudo-inverse
    assert psnr(result.final) > psnr(observed) + 5.0, (psnr(result.final), psnr(observed))
    assert result.metrics["final"]["psnr"] > result.metrics["baselines"]["pinv"]["psnr"]


def _valid_blur(x: torch.Tensor, kernel: torch.Tensor, margin: int) -> torch.Tensor:
    """The reference by direct summation: y[i, j] = sum_ab k[a, b] x[i + m - a + ca, j + m - b + cb],
    the centre (kh // 2, kw // 2), for the (h, w) = x's size minus 2 margin."""
    kh, kw = kernel.shape
    ca, cb = kh // 2, kw // 2
    h, w = x.shape[-2] - 2 * margin, x.shape[-1] - 2 * margin
    y = torch.zeros(*x.shape[:-2], h, w, dtype=x.dtype)
    for a in range(kh):
        for b in range(kw):
            top, left = margin - a + ca, margin - b + cb
            y += kernel[a, b] * x[..., top : top + h, left : left + w]
    return y


def test_cropped_blur_is_the_valid_convolution_and_its_adjoint():
    from degradations import CroppedBlur

    g = torch.Generator().manual_seed(0)
    for (h, w), shape, margin in [((5, 7), (3, 4), 2), ((6, 3), (2, 2), 1), ((4, 4), (5, 3), 3)]:
        kernel = torch.rand(*shape, generator=g, dtype=torch.float64)
        kernel /= kernel.sum()
        op = CroppedBlur(2, h, w, kernel, margin).to("cpu", torch.float64)
        x = torch.randn(3, 2, h + 2 * margin, w + 2 * margin, generator=g, dtype=torch.float64)
        y = torch.randn(3, op.m, generator=g, dtype=torch.float64)
        assert op.image_shape == (2, h + 2 * margin, w + 2 * margin) and op.m == 2 * h * w
        # the operator keeps its phases in float32: agreement to ~1e-7, not to float64 precision
        torch.testing.assert_close(op.to_image(op.H(x)), _valid_blur(x, kernel, margin), rtol=0, atol=1e-6)
        torch.testing.assert_close((op.H(x) * y).sum(), (x * op.Ht(y)).sum(), rtol=1e-10, atol=1e-10)
        assert op.crop(x).shape == (3, 2, h, w)
    with pytest.raises(ValueError, match="less than the kernel's radius"):
        CroppedBlur(3, 16, 16, disk_kernel(3.0), 2)


def test_a_photo_blurred_by_a_lens_is_restored_through_h_and_ht(device):
    """The blur of a larger scene seen through the photo's frame (nothing wraps): DiffPIR with its CG
    data step through CroppedBlur restores it; DDRM with the circular blur at the photo's size
    rings from the edges, far below the blurred photo itself."""
    from degradations import CroppedBlur, FourierBlur
    from restore.models.prior import load_prior
    from restore.quality.metrics import psnr
    from solvers import DDRM, DiffPIR, make_generators

    prior = load_prior("natural-ddpm", device)
    scene = torch.nn.functional.interpolate(load_image("data/examples/face.png"), size=(80, 80), mode="area")
    kernel = disk_kernel(2.0).float()
    camera = CroppedBlur(3, 64, 64, kernel, 8).to(device)
    scene = scene.to(device)
    x, y = camera.crop(scene), camera.H(scene)
    score = {name: float(psnr(image.clamp(-1, 1), x)[0]) for name, image in {
        "blurred": camera.to_image(y),
        "exact": camera.crop(DiffPIR(prior, camera).restore(y, 0.0, make_generators([2], device))),
        "periodic": DDRM(prior, FourierBlur(3, 64, 64, kernel).to(device)).restore(y, 0.0, make_generators([2], device)),
    }.items()}
    # measured: exact 38.9 dB, blurred 25.2, periodic 11.2
    assert score["exact"] > score["blurred"] + 8 and score["periodic"] < score["blurred"], score


def test_boundary_exact_restores_an_observed_lens_blurred_photo_at_its_own_size(tmp_path):
    """--observed --boundary exact: the photo is restored with a margin of scene around it, and the
    outputs are the photo's frame; it beats the blurred photo where the periodic model falls below it."""
    from degradations import CroppedBlur
    from restore import restore_image

    scene = torch.nn.functional.interpolate(load_image("data/examples/face.png"), size=(80, 80), mode="area")
    kernel = disk_kernel(2.0).float()
    np.save(tmp_path / "disk.npy", kernel.numpy())
    camera = CroppedBlur(3, 64, 64, kernel, 8)  # 8: the margin the toolkit picks for a 5 x 5 kernel
    save_image(camera.to_image(camera.H(scene)), tmp_path / "blurred.png")
    save_image(camera.crop(scene), tmp_path / "sharp.png")
    common = dict(task="deblur", kernel=str(tmp_path / "disk.npy"), observed=True, reference=str(tmp_path / "sharp.png"),
                  model="natural-ddpm", size="native", quiet=True, seed=1)
    exact = restore_image(str(tmp_path / "blurred.png"), boundary="exact", solver="diffpir", **common)
    periodic = restore_image(str(tmp_path / "blurred.png"), solver="ddrm", **common)
    ref, blurred = load_image(tmp_path / "sharp.png"), load_image(tmp_path / "blurred.png")
    assert exact.final.shape == periodic.final.shape == ref.shape == (1, 3, 64, 64)

    def psnr(x):
        return float(10 * torch.log10(4 / (x.clamp(-1, 1) - ref).square().mean()))

    # measured: exact (DiffPIR, lambda 1, noiseless) 33.5 dB, the blurred photo 25.2, periodic DDRM 11.2
    assert psnr(exact.final) > psnr(blurred) + 6 > psnr(periodic.final) + 6, (psnr(exact.final), psnr(blurred),
                                                                             psnr(periodic.final))
    assert exact.metrics["final"]["psnr"] == pytest.approx(psnr(exact.final), abs=0.05)
    assert any("--boundary exact" in note and "80x80" in note for note in exact.metrics["notes"])
    assert exact.metrics["final"]["psnr"] > exact.metrics["baselines"]["pinv"]["psnr"]


def test_boundary_exact_in_simulation_and_its_one_line_refusals(tiny_model_dir, tmp_path, capsys):
    """Simulation: the input is the scene and the photo its centre, 2 margins smaller; the SVD
    solvers and an image too small for the margin are refused in one line; other tasks note it unused."""
    src = _rgb(tmp_path / "in.png", 48, 40)
    out = tmp_path / "o"
    code, _, err = cli(["--task", "deblur_disk", "--boundary", "exact", "--solver", "nested-diffpir", "--outer", "2",
                        "--inner", "2", "--input", src, "--out", out, "--model", tiny_model_dir, "--quiet"], capsys)
    assert code == 0, err
    m = json.loads((out / "metrics.json").read_text())
    assert m["image_size"] == [24, 32] and m["settings"]["boundary"] == "exact"  # 8-pixel margin for a 7 x 7 disk
    assert Image.open(out / "final.png").size == Image.open(out / "observation.png").size == (32, 24)  # (width, height)
    # --boundary is an option of the Fourier blurs: given for another task it is named as unused (the
    # way every task's option is) and the photo is restored at its own size, nothing cropped
    code, _, err = cli(["--task", "sr4", "--solver", "diffpir", "--steps", "2", "--boundary", "exact", "--input", src,
                        "--out", tmp_path / "sr", "--model", tiny_model_dir], capsys)
    assert code == 0 and "--boundary is only used by task deblur_motion, deblur_disk, deblur; ignored for sr4" in err
    assert Image.open(tmp_path / "sr" / "final.png").size == (48, 40)
    for flags, words in [(["--task", "deblur_disk"], "needs its SVD"),
                         (["--task", "deblur_motion", "--solver", "dps"], "at least 64 pixels")]:
        code, _, err = cli([*flags, "--boundary", "exact", "--input", src, "--out", tmp_path / "x", "--model",
                            tiny_model_dir], capsys)
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "x").exists()
