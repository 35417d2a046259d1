"""The bundled prior's training (restore.training, behind scripts/train_prior.py): the manifest of
training photos, build-data on a fake package tree, the crop sampler and colour jitter, a tiny training run and its resumption."""

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restore.models.architectures import architecture, make_model
from restore.training import sources as ts
from restore.training import train as tp
from restore.training.crops import CropSampler, colour_jitter

ROOT = Path(__file__).resolve().parent.parent


def test_manifest_rows_are_complete():
    rows = ts.read_manifest()
    assert len(rows) >= 60
    assert len({(r["package"], r["path"]) for r in rows}) == len(rows)
    for row in rows:
        assert row["package"] and row["path"] and row["licence"] and row["version"], row
        assert row["registry"] in ("debian", "pypi")
        assert int(row["width"]) >= 256 and int(row["height"]) >= 256, row
        assert not ts.is_held_out(row), row
        if row["registry"] == "debian":
            assert row["path"].startswith("/usr/share/"), row
    # the evaluation photos and the known face photos are not in it
    names = {os.path.basename(r["path"]) for r in rows}
    assert not names & {"butterfly.jpg", "squirrel_cls.jpg", "coffee.png", "astronaut.png", "camera.png",
                        "messi5.jpg", "basketball1.png", "Kleiber_by_Lukas_Baubkus.jpg"}


def _fake_tree(tmp_path):
    """A package tree with two photos (one Debian, one PyPI) and a held-out one, and its manifest."""
    root = tmp_path / "root"
    rng = np.random.default_rng(0)
    files = {
        "/usr/share/backgrounds/fake/lake.jpg": (300, 200),
        "skimage/data/leaf.png": (90, 120),
        "/usr/share/doc/opencv-doc/examples/data/butterfly.jpg": (100, 100),
    }
    for rel, (w, h) in files.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    rows = [
        dict(package="fake-wallpapers", registry="debian", version="1.0", path="/usr/share/backgrounds/fake/lake.jpg",
             licence="CC0-1.0", credit="test", width=300, height=200),
        dict(package="scikit-image", registry="pypi", version="0", path="skimage/data/leaf.png",
             licence="CC0-1.0", credit="test", width=90, height=120),
        dict(package="opencv-doc", registry="debian", version="0", licence="Apache-2.0", credit="test",
             path="/usr/share/doc/opencv-doc/examples/data/butterfly.jpg", width=100, height=100),
    ]
    manifest = tmp_path / "sources.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=ts.FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return root, manifest


@pytest.mark.parametrize("quality", [0, 95])
def test_build_data_packs_uint8_photos_without_held_out(tmp_path, quality):
    root, manifest = _fake_tree(tmp_path)
    out = tmp_path / "photos.npz"
    tp.main(["build-data", "--out", str(out), "--manifest", str(manifest), "--root", str(root),
             "--max-side", "150", "--quality", str(quality)])
    with np.load(out) as data:
        assert len(data.files) == 2 and all(data[k].dtype == np.uint8 for k in data.files)
        assert not any("butterfly" in k for k in data.files)
    photos = ts.load_photos(out)
    shapes = sorted(a.shape for a in photos.values())
    assert shapes == [(100, 150, 3), (120, 90, 3)]  # 300x200 downscaled to long side 150; 90x120 kept
    assert all(a.dtype == np.uint8 and a.flags.writeable for a in photos.values())


def test_build_data_refuses_a_missing_package_in_one_line(tmp_path, capsys):
    root, manifest = _fake_tree(tmp_path)
    (root / "usr/share/backgrounds/fake/lake.jpg").unlink()
    out = tmp_path / "photos.npz"
    with pytest.raises(SystemExit) as error:
        tp.main(["build-data", "--out", str(out), "--manifest", str(manifest), "--root", str(root)])
    message = str(error.value)
    assert "\n" not in message and "apt-get install fake-wallpapers" in message and "--skip-missing" in message
    assert not out.exists()
    tp.main(["build-data", "--out", str(out), "--manifest", str(manifest), "--root", str(root), "--skip-missing"])
    assert len(np.load(out).files) == 1
    assert "apt-get install fake-wallpapers" in capsys.readouterr().out


def test_default_architecture_is_the_bundled_models_and_attention_variant_fits():
    config = json.loads((ROOT / "data/models/natural-ddpm/config.json").read_text())
    arch = architecture()
    for key, value in arch.items():
        assert config[key] == (list(value) if isinstance(value, tuple) else value), key
    attn = architecture(attention=True)
    assert attn["down_block_types"][-2:] == ("AttnDownBlock2D",) * 2 and attn["add_attention"]
    assert attn["up_block_types"][:2] == ("AttnUpBlock2D",) * 2
    assert len(attn["block_out_channels"]) == 6  # 256 -> 8x8 at the lowest level
    n_params = sum(p.numel() for p in make_model(attention=True).parameters())
    assert 2 * n_params < 30e6  # fp16 safetensors under 30 MB


def test_sampler_and_colour_jitter(device):
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(40, 70), (130, 90), (20, 24)]]
    sampler = CropSampler(photos, device, levels=3)
    gen = torch.Generator(device).manual_seed(0)
    x = sampler.sample(16, 32, gen, max_zoom=4.0)
    assert x.shape == (16, 3, 32, 32) and x.device.type == device.type
    assert x.abs().max() <= 1 and torch.isfinite(x).all()
    grey = torch.linspace(-1, 1, 16, device=device).view(1, 1, 4, 4).expand(3, 3, 4, 4)
    assert torch.allclose(colour_jitter(grey, gen, 5.0, 0.1), grey, atol=1e-5)  # greys stay grey
    assert torch.equal(colour_jitter(x, gen, 0.0, 0.0), x)
    y = colour_jitter(x, gen, 5.0, 0.1)
    luma = torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)
    inside = (y.abs() < 1).all(1, keepdim=True)  # where nothing was clipped, luma is unchanged
    assert torch.allclose(((y - x) * luma).sum(1, keepdim=True)[inside], torch.zeros(1, device=device), atol=1e-4)


@pytest.mark.parametrize("attention", [False, True])
def test_tiny_training_writes_a_loadable_model_and_resumes(tmp_path, capsys, attention, device):
    """On CUDA the training runs as on the card: bf16 autocast, channels-last."""
    rng = np.random.default_rng(0)
    data = tmp_path / "photos.npz"
    np.savez(data, a=rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
             b=rng.integers(0, 256, (80, 40, 3), dtype=np.uint8))
    run = tmp_path / "run"
    base = ["train", "--data", str(data), "--out", str(run), "--size", "32", "--batch", "2", "--channels", "16,32",
            "--norm-groups", "8", "--device", device.type, "--log-every", "1", "--warmup", "2"]
    base += ["--attention"] if attention else []
    tp.main(base + ["--steps", "3"])
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 3

    from restore.models.prior import load_prior

    prior = load_prior(str(run / "model"))
    assert prior.unet.config.add_attention == attention
    with torch.no_grad():
        eps = prior(torch.zeros(1, 3, 32, 32), torch.tensor([10]))
    assert eps.shape == (1, 3, 32, 32) and torch.isfinite(eps).all()

    capsys.readouterr()
    # the checkpoint's architecture wins over the command line's
    tp.main([a for a in base if a != "--attention"] + ["--steps", "5", "--resume"])
    assert "resumed from" in capsys.readouterr().out
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert state["step"] == 5 and state["config"]["add_attention"] == attention
    with open(run / "loss.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4, 5]
