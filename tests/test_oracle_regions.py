"""The region oracle of the batch evaluation (evaluate.py --choose oracle-regions): its grid, its
per-cell pick by LPIPS, and a whole run's groups (a tiny random model: fast, meaningless images)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from restore.cli.evaluate import main
from restore.cli.options import run_cli
from restore.evaluation.solve import cell_masks, cell_picks
from restore.quality.metrics import lpips_available


def test_cells_partition_the_image_at_odd_sizes():
    masks = cell_masks(37, 29)
    assert len(masks) == 16
    assert torch.equal(torch.stack(masks).sum(0), torch.ones(37, 29, dtype=torch.long))
    sides = sorted({int(m.any(1).sum()) for m in masks}), sorted({int(m.any(0).sum()) for m in masks})
    assert sides == ([9, 10], [7, 8])


def test_each_cell_picks_the_candidate_that_is_right_there():
    assert lpips_available(), "the LPIPS weights ship in data/weights"
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 128), torch.linspace(-1, 1, 128), indexing="ij")
    ref = torch.stack([torch.sin(3 * xx) * torch.cos(2 * yy), xx * yy, torch.cos(4 * yy)])[None] * 0.8
    noise = 0.5 * torch.randn(2, 3, 128, 128, generator=g)
    left = torch.zeros(128, 128, dtype=torch.bool)
    left[:, :64] = True
    x0 = ref.repeat(2, 1, 1, 1)
    x0[0] = torch.where(left, x0[0] + noise[0], x0[0])  # candidate 0 is wrong on the left
    x0[1] = torch.where(~left, x0[1] + noise[1], x0[1])  # candidate 1 on the right
    picks = cell_picks(x0.clamp(-1, 1), ref, cell_masks(128, 128))
    assert picks == [1, 1, 0, 0] * 4


@pytest.mark.usefixtures("one_thread")
def test_evaluate_with_the_region_oracle(tiny_model_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 256, (128, 128, 3)).astype(np.uint8)).save(data / name)
    out = tmp_path / "out"
    argv = ["--data", data, "--out", out, "--task", "inp_box", "--model", tiny_model_dir, "--size", "128",
            "--outer", "2", "--inner", "2", "--solvers", "nested", "--candidates", "2", "--choose",
            "oracle-regions", "--quiet", "--save-images"]
    assert run_cli(main, [str(a) for a in argv]) == 0
    with open(out / "per_image.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    found = {(r["image"], r["solver"], int(r["nfe"])): float(r["lpips"]) for r in rows}
    for image in ("a.png", "b.png"):
        for group in ("nested", "nested/mean2", "nested/best2", "nested/oracle2", "nested/regions2"):
            assert {(image, group, 2), (image, group, 4)} <= set(found), group
        # before the first choice the steered runs are the independent ones: their best candidate
        assert found[(image, "nested/regions2", 2)] == pytest.approx(found[(image, "nested/best2", 2)], abs=1e-4)
    summary = json.loads((out / "summary.json").read_text())
    assert "nested/regions2" in summary["solvers"] and summary["settings"]["choose"] == "oracle-regions"
    assert {p.name for p in (out / "images").iterdir()} == {"nested", "nested-oracle2", "nested-regions2"}
