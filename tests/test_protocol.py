"""Benchmark protocols: each task's kernel, mask, operator and noise against the published code's
(tests/data/protocol/references.npz, made by running DPS's util/resizer.py and img_utils.py,
DAPS's forward_operator, DiffPIR's utils_image.imresize_np and the motionblur package at the
commits the protocol files cite; tests/data/protocol/README.md), deepinv's physics where it has
them, the protocol files, --solvers budgets, and the whole suite on the bundled prior."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from restore.errors import UsageError
from restore.evaluation import protocol_ops as po
from restore.evaluation.protocol import builtin_protocols, load_protocol, parse_solvers

REPO = Path(__file__).resolve().parents[1]
REF = np.load(REPO / "tests" / "data" / "protocol" / "references.npz")


def unpack(name):
    return torch.from_numpy(np.unpackbits(REF[name]).astype(bool).reshape(256, 256))


# --------------------------------------------------------------------------- operators
def test_resizer_is_dps_and_diffpir_bicubic():
    assert np.allclose(po.resizer_matrix(256, 4), REF["resizer_256"], atol=1e-6)
    assert np.allclose(po.resizer_matrix(256, 4), REF["diffpir_imresize_256"], atol=1e-6)
    ops = po.build_task({"operator": "resizer", "factor": 4}, 24, np.random.RandomState(0))
    y = ops.model.to_image(ops.model.H(torch.from_numpy(REF["resizer_24_x"])))
    assert torch.allclose(y, torch.from_numpy(REF["resizer_24_y"]), atol=1e-5)  # the whole Resizer, both axes


@pytest.mark.parametrize("seed", [0, 10, 42])
def test_motion_kernel_is_the_motionblur_package_s(seed):
    rng = np.random.RandomState(seed)
    assert np.array_equal(po.motionblur_kernel(61, 0.5, rng), REF[f"motion_first_{seed}"])
    assert np.array_equal(po.motionblur_kernel(61, 0.5, rng), REF[f"motion_used_{seed}"])
    assert np.array_equal(po.reference_motion_kernel(61, 0.5, np.random.RandomState(seed)), REF[f"motion_used_{seed}"])


def test_masks_are_dps_and_daps_s():
    assert torch.equal(po.box_mask(np.random.RandomState(42), 256, (128, 129), 32), unpack("daps_box_42"))
    assert torch.equal(po.random_mask(np.random.RandomState(42), 256, (0.70, 0.71)), unpack("daps_random_42"))
    for seed in (0, 1):
        assert torch.equal(po.box_mask(np.random.RandomState(seed), 256, (128, 129), 16), unpack(f"dps_box_{seed}"))
        assert torch.equal(po.random_mask(np.random.RandomState(seed), 256, (0.3, 0.7)), unpack(f"dps_random_{seed}"))
    ops = po.build_task(load_protocol("daps-ffhq").tasks["inp_box"], 256, np.random.RandomState(42))
    assert torch.equal(ops.model.mask[0], unpack("daps_box_42")) and ops.notes["height"] == 128


def dps_blurkernel(x, kernel):
    """DPS's Blurkernel.forward: nn.ReflectionPad2d(k // 2) then a grouped Conv2d (img_utils.py L268-276)."""
    p = kernel.shape[-1] // 2
    w = torch.as_tensor(np.asarray(kernel), dtype=x.dtype)[None, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), w, groups=x.shape[1])


def test_gaussian_blur_is_dps_s_boundary_included():
    k1, k2 = po.gaussian_kernel_1d(61, 3.0), po.gaussian_kernel_2d(61, 3.0)
    assert np.allclose(np.outer(k1, k1), k2, atol=1e-12)  # gaussian_filter of a delta is separable
    spec = {"operator": "gaussian_blur", "size": 61, "intensity": 3.0, "boundary": "reflect", "zero_below": 0.0}
    exact = po.build_task(spec, 64, np.random.RandomState(0)).model  # every component kept: the blur itself
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.allclose(exact.to_image(exact.H(x)), dps_blurkernel(x, k2), atol=1e-5)


def test_gaussian_blur_equals_deepinv_reflect_blur():
    dinv = pytest.importorskip("deepinv")
    k2 = po.gaussian_kernel_2d(61, 3.0)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    physics = dinv.physics.Blur(filter=torch.from_numpy(k2).float()[None, None], padding="reflect")
    a = torch.from_numpy(po.reflect_correlation_matrix(po.gaussian_kernel_1d(61, 3.0), 64))
    ours = po.SeparableOperator(3, 64, 64, a, a)
    assert torch.allclose(ours.to_image(ours.H(x)), physics(x), atol=1e-5)


def test_reflect_blur_is_dps_s_motion_operator_and_its_adjoint_is_exact():
    k = REF["motion_used_0"]
    op = po.ReflectBlur(3, 64, 64, k)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(op.to_image(op.H(x)), dps_blurkernel(x, k), atol=1e-6)
    small = po.ReflectBlur(2, 9, 11, np.random.default_rng(0).random((5, 3)))  # odd sizes, dense check
    basis = torch.eye(small.n, dtype=torch.float64).view(small.n, 2, 9, 11)
    dense = small.H(basis).T  # (m, n)
    y = torch.randn(3, small.m, dtype=torch.float64)
    assert torch.allclose(small.Ht(y).flatten(1), y @ dense, atol=1e-10)


def test_circular_model_and_reflected_reference_agree_away_from_the_edges():
    k = REF["motion_used_0"]
    ops = po.build_task({"operator": "motion_blur", "size": 61, "intensity": 0.5, "boundary": "reflect",
                         "convolution": "correlation", "draw": {"per": "run", "seed": 0}}, 96, np.random.RandomState(0))
    assert torch.equal(ops.forward.weight[0, 0], torch.from_numpy(k))  # the kernel of seed 0, the second drawn
    x = torch.rand(1, 3, 96, 96, generator=torch.Generator().manual_seed(3))
    circ = ops.model.to_image(ops.model.H(x))  # FourierBlur with every |k_hat| >= 3e-2 kept
    refl = ops.forward.to_image(ops.forward.H(x))
    full = po.FourierBlur(3, 96, 96, torch.from_numpy(k[::-1, ::-1].copy()), zero_below=0.0)
    inner = (..., slice(30, -30), slice(30, -30))
    assert torch.allclose(full.to_image(full.H(x))[inner], refl[inner], atol=1e-5)
    assert circ.shape == refl.shape


def test_diffpir_measurement_is_ndimage_wrap_convolution_truncated():
    from scipy.ndimage import convolve

    spec = load_protocol("diffpir-ffhq").tasks["deblur_motion"]
    ops = po.build_task(spec, 64, np.random.RandomState(10))
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1
    kernel = po.reference_motion_kernel(61, 0.5, np.random.RandomState(10))
    reference = convolve(image, kernel[..., None], mode="wrap")  # main_ddpir_deblur.py L193
    got = ((ops.measure(x).view(1, 3, 64, 64)[0].permute(1, 2, 0) + 1) * 127.5).round().numpy()
    assert np.array_equal(got, reference)
    exact = ((ops.forward.to_image(ops.forward.H(x))[0].permute(1, 2, 0) + 1) * 127.5).numpy()
    assert np.all((exact - reference > -1e-3) & (exact - reference < 1 + 1e-3))  # the SVD blur, before truncation


@pytest.mark.parametrize("name,sigma_y", [("dps-ffhq", 0.025), ("daps-imagenet", 0.025), ("diffpir-ffhq", 0.05)])
def test_noise_convention(name, sigma_y):
    """DPS/DAPS: y + 0.05 randn on [-1, 1]; DiffPIR: 2 x 0.05 on [-1, 1]; observe() adds 2 sigma_y."""
    p = load_protocol(name)
    assert p.sigma_y == pytest.approx(sigma_y)
    op = po.build_task({"operator": "resizer", "factor": 4}, 64, np.random.RandomState(0)).model
    x = torch.zeros(8, 3, 64, 64)
    noise = op.observe(x, p.sigma_y, torch.Generator().manual_seed(0)) - op.H(x)
    assert noise.std().item() == pytest.approx(p.sigma_model, rel=0.03)


def test_diffpir_gaussian_std_draw():
    ops = po.build_task(load_protocol("diffpir-ffhq").tasks["deblur_gauss"], 64, np.random.RandomState(30))
    rng = np.random.RandomState(30)
    assert ops.notes["std"] == pytest.approx(3.0 * abs(rng.rand() * 2 + 1), abs=1e-6)  # L162-164


# --------------------------------------------------------------------------- files and flags
def test_builtin_protocols_load():
    names = builtin_protocols()
    assert {"dps-ffhq", "dps-imagenet", "daps-ffhq", "daps-imagenet", "diffpir-ffhq", "diffpir-imagenet"} <= set(names)
    for name in names:
        p = load_protocol(name)
        assert p.tasks and p.size == 256


def test_bad_protocols_are_one_line_errors(tmp_path):
    with pytest.raises(UsageError, match="not found; built-in: "):
        load_protocol("no-such-protocol")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nimages: {size: 256}\nnoise: {sigma: 0.05, scale: '[-1, 1]'}\ntasks: {t: {operator: swirl}}\n")
    with pytest.raises(UsageError, match="operator must be one of"):
        load_protocol(bad)
    bad.write_text("name: x\nimages: {size: 256}\nnoise: {sigma: 0.05, scale: 'pixels'}\ntasks: {}\n")
    with pytest.raises(UsageError, match="noise.scale"):
        load_protocol(bad)


def test_solver_budgets():
    specs = parse_solvers("ddrm@20,nested-ddrm@4x5,dps@1000,nested@2+3+5+10,ddnm")
    assert [s.label for s in specs] == ["ddrm@20", "nested-ddrm@4x5", "dps@1000", "nested@2+3+5+10", "ddnm@20"]
    assert specs[1].settings == {"solver": "nested-ddrm", "outer": 4, "inner": 5}
    assert specs[3].settings == {"solver": "nested", "inner": (2, 3, 5, 10)}
    for bad, why in [("ddrm@4x5", "plain solver"), ("nested-ddrm@20", "outer x inner"), ("dpss@10", "unknown"),
                     ("ddrm@0", "whole numbers"), ("ddrm@20,ddrm", "twice")]:
        with pytest.raises(UsageError, match=why):
            parse_solvers(bad)


def test_markdown_shows_published_rows_only_at_the_protocol_s_size():
    from restore.evaluation.protocol_table import markdown, published_rows

    p = load_protocol("diffpir-ffhq")
    rows = published_rows(p.published, p.name)
    stat = {"mean": 25.0, "std": 1.0, "se": 0.5}
    entry = {"calls": 20, "final": {"nfe": 20, "psnr": stat, "ssim": stat, "lpips": stat, "seconds": stat, "fid": 90.0}}
    summary = {"title": "t", "protocol": p.name, "protocol_file": "f", "images": 100, "size": 256, "sigma_model": 0.1,
               "sigma_y": 0.05, "model": "m", "device": "cpu", "world_size": 1, "fid_variant": "v", "notes": [],
               "tasks": {t: {"ddrm@20": entry} for t in p.tasks}}
    text = markdown(summary, list(p.tasks), ["ddrm@20"], rows, True)
    assert "DDRM (published)" in text and "101.89" in text and "0.298 (vgg)" in text and "DiffPIR README" in text
    assert "(published)" not in markdown(summary, list(p.tasks), ["ddrm@20"], rows, False)


# --------------------------------------------------------------------------- the suite, end to end
@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(3):
        yy, xx = np.mgrid[0:40, 0:40]
        a = np.stack([(xx * 5 + 40 * i) % 256, (yy * 6) % 256, (xx + yy) * 2 % 256], -1)
        Image.fromarray(np.clip(a + rng.normal(0, 10, a.shape), 0, 255).astype(np.uint8)).save(root / f"{i}.png")
    return root


def test_whole_suite_on_the_bundled_prior(photos, tmp_path, one_thread):
    """Every task of daps-ffhq, two solvers, FID on a small network (tests/test_fid.py), resumed."""
    from restore.evaluation.protocol_run import ProtocolConfig, run_protocol
    from test_fid import TinyNet

    cfg = ProtocolConfig(protocol=load_protocol("daps-ffhq"), data=photos, out=tmp_path / "out",
                         solvers=parse_solvers("ddrm@2,nested-ddrm@2x1"), model="natural-ddpm", size=32, limit=2,
                         device="cpu", quiet=True, features=TinyNet())
    summary = run_protocol(cfg)
    out = tmp_path / "out"
    for name in ("table.md", "table.tex", "anytime.png", "summary.json", "per_image.csv"):
        assert (out / name).is_file()
    assert set(summary["tasks"]) == {"sr4", "inp_box", "inp_random", "deblur_gauss", "deblur_motion"}
    final = summary["tasks"]["deblur_motion"]["nested-ddrm@2x1"]["final"]
    assert final["nfe"] == 2 and final["count"] == 2 and final["psnr"]["se"] is not None
    assert final["images"] == 2 and final["fid"] is not None and "biased upward" in final["warning"]
    assert "tiny-test-cnn" in summary["fid_variant"] and "rest on 2 images" in " ".join(summary["notes"])
    table = (out / "table.md").read_text()
    assert "`ddrm@2`" in table and "deblur_motion FID" in table and "(published)" not in table
    rows = (out / "per_image.csv").read_text().splitlines()
    assert len(rows) == 1 + 5 * 2 * (2 + 2)  # tasks x images x (ddrm 2 steps + nested 2 outer steps)
    again = run_protocol(cfg)  # resumed: nothing to do, the same numbers
    assert again["tasks"] == json.loads((out / "summary.json").read_text())["tasks"]


def test_cli_refuses_what_a_protocol_fixes_and_runs_offline(photos, tmp_path, monkeypatch, capsys, one_thread):
    from restore.cli.evaluate import main
    from restore.cli.options import run_cli

    monkeypatch.setenv("RESTORE_INCEPTION_WEIGHTS", str(tmp_path / "absent.pth"))  # offline: no weights, no download
    base = ["--protocol", "dps-ffhq", "--data", str(photos), "--out", str(tmp_path / "o"), "--model", "natural-ddpm",
            "--size", "32", "--limit", "1", "--device", "cpu"]
    assert run_cli(main, base + ["--task", "sr4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drop --task" in err
    assert run_cli(main, base + ["--solvers", "ddrm@1", "--protocol-tasks", "sr4", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "FID and KID skipped" in err and "absent.pth" in err and err.count("FID and KID skipped") == 1
    assert "FID and KID not computed" in (tmp_path / "o" / "table.md").read_text()
    assert (tmp_path / "o" / "per_image.csv").read_text().count("sr4/ddrm@1") == 1  # the other metrics ran
