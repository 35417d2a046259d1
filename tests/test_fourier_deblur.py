"""Deblurring with any kernel through the toolkit: --task deblur --kernel from the command line,
and a photo that is already blurred restored with its known kernel (--observed) and checked
against the sharp one with the bundled prior."""

from __future__ import annotations

import json

import numpy as np
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
