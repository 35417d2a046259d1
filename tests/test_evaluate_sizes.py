"""Evaluation over a real folder: images of different sizes, each restored at its own size, and
unreadable files found before the first network call (issue 11)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from restore.cli.evaluate import main
from restore.cli.options import run_cli

SIZES = {"a.png": (40, 48), "b.png": (40, 48), "odd.png": (37, 29), "small.png": (32, 32)}  # (H, W)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture()
def mixed_dir(tmp_path):
    rng = np.random.default_rng(0)
    for name, (h, w) in SIZES.items():
        yy, xx = np.mgrid[0:h, 0:w]
        smooth = np.stack([(xx * 5) % 256, (yy * 6) % 256, (xx + yy) * 2 % 256], -1) + rng.normal(0, 10, (h, w, 3))
        Image.fromarray(np.clip(smooth, 0, 255).astype(np.uint8)).save(tmp_path / name)
    return tmp_path


def _truncate(folder, name="broken.png"):
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(folder / name)
    data = (folder / name).read_bytes()
    (folder / name).write_bytes(data[: len(data) // 2])


def _args(data, out, model, *extra):
    return ["--data", str(data), "--out", str(out), "--task", "sr4", "--model", str(model), "--solvers", "ddrm",
            "--steps", "2", "--seed", "1", "--quiet", *map(str, extra)]


def test_images_of_different_sizes_each_at_its_own_size(mixed_dir, tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("eval") / "o"
    assert run_cli(main, _args(mixed_dir, out, tiny_model_dir, "--save-images", "--batch-size", "4")) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["sizes_restored"] == ["29x37", "32x32", "48x40"]
    assert summary["settings"]["unreadable"] == []
    for name, (h, w) in SIZES.items():
        assert Image.open(out / "images" / "ddrm" / name).size == (w, h)  # odd.png: padded to 32x40, cropped back
    per_image = (out / "per_image.csv").read_text().splitlines()
    assert {line.split(",")[0] for line in per_image[1:]} == set(SIZES)


def test_a_batch_of_one_size_equals_the_images_run_alone(mixed_dir, tmp_path_factory, tiny_model_dir):
    """Batching by size does not change the numbers (per-image seeds): a.png with b.png, and alone."""
    root = tmp_path_factory.mktemp("eval")
    assert run_cli(main, _args(mixed_dir, root / "all", tiny_model_dir)) == 0
    alone = root / "alone"
    alone.mkdir()
    (alone / "a.png").write_bytes((mixed_dir / "a.png").read_bytes())
    assert run_cli(main, _args(alone, root / "one", tiny_model_dir)) == 0
    rows = lambda folder: {l.split(",")[1] + l.split(",")[2]: l.split(",")[3]  # noqa: E731
                           for l in (root / folder / "per_image.csv").read_text().splitlines()[1:]
                           if l.startswith("a.png")}
    both, one = rows("all"), rows("one")
    assert both.keys() == one.keys()
    for key in both:
        assert abs(float(both[key]) - float(one[key])) < 1e-3, key


def test_unreadable_images_stop_the_run_before_any_work(mixed_dir, tmp_path, tiny_model_dir, capsys):
    _truncate(mixed_dir)
    (mixed_dir / "fake.jpg").write_text("not a jpeg")
    out = tmp_path / "o"
    assert run_cli(main, _args(mixed_dir, out, tiny_model_dir)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 2 of 6 images")
    assert "broken.png (" in err[0] and "fake.jpg (" in err[0] and "--skip-unreadable" in err[0]
    assert not out.exists()  # nothing written


def test_skip_unreadable_goes_on_and_records_them(mixed_dir, tmp_path, tiny_model_dir):
    _truncate(mixed_dir)
    out = tmp_path / "o"
    assert run_cli(main, _args(mixed_dir, out, tiny_model_dir, "--skip-unreadable")) == 0
    summary = json.loads((out / "summary.json").read_text())
    (bad,) = summary["settings"]["unreadable"]
    assert bad["image"] == "broken.png" and "truncated" in bad["error"]
    assert "broken.png" not in (out / "per_image.csv").read_text()
