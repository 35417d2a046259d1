"""scripts/evaluate.py / restore.evaluation: outputs, per-image seeds, resuming, refusals, torchrun."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from restore.cli.evaluate import main
from restore.cli.options import run_cli
from restore.evaluation import folder as eval_folder
from restore.evaluation.images import find_images
from restore.restoration.seeds import image_seeds

REPO = Path(__file__).resolve().parents[1]
IMAGES = ["a.png", "b.jpg", "c.png", "sub/d.png", "sub/e.bmp"]
GROUPS = {"nested": [2, 4], "ddrm": [1, 2, 3, 4], "pinv": [0], "bicubic": [0]}
METRIC_TOL = 1e-4  # batched convolutions may round differently from single ones


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "sub").mkdir()
    rng = np.random.default_rng(0)
    from PIL import Image

    for name in IMAGES:  # 40 x 48: centre-cropped and resized to 32
        yy, xx = np.mgrid[0:40, 0:48]
        smooth = np.stack([(xx * 5 + rng.integers(0, 60)) % 256, (yy * 6) % 256, (xx + yy) * 2 % 256], -1)
        noisy = np.clip(smooth + rng.normal(0, 20, smooth.shape), 0, 255).astype(np.uint8)
        Image.fromarray(noisy).save(root / name, quality=95) if name.endswith(".jpg") else \
            Image.fromarray(noisy).save(root / name)
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"")
    return root


def args(image_dir, model, out, *extra):
    return ["--data", str(image_dir), "--out", str(out), "--task", "sr4", "--model", str(model), "--size", "32",
            "--outer", "2", "--inner", "2", "--sigma-y", "0.05", "--seed", "3", "--quiet", *map(str, extra)]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def metrics(rows):
    return {(r["image"], r["solver"], int(r["nfe"])): [float(r[k]) if r[k] else math.nan for k in ("psnr", "ssim", "lpips")]
            for r in rows}


def assert_same_numbers(a, b):
    ma, mb = metrics(a), metrics(b)
    assert ma.keys() == mb.keys()
    for key in ma:
        assert np.allclose(ma[key], mb[key], atol=METRIC_TOL, equal_nan=True), (key, ma[key], mb[key])


def assert_complete(rows):
    keys = [(r["image"], r["solver"], int(r["nfe"])) for r in rows]
    assert len(keys) == len(set(keys)), "duplicate rows"
    assert set(keys) == {(i, s, n) for i in IMAGES for s, nfes in GROUPS.items() for n in nfes}


@pytest.fixture(scope="module")
def reference(image_dir, tiny_model_dir, tmp_path_factory):
    """An uninterrupted single-process run, batch size 3, with --save-images."""
    out = tmp_path_factory.mktemp("reference")
    assert run_cli(main, args(image_dir, tiny_model_dir, out, "--batch-size", 3, "--save-images")) == 0
    return out


def test_find_images_and_seeds(image_dir, tmp_path):
    assert find_images(image_dir) == sorted(IMAGES)
    shutil.copytree(image_dir, tmp_path / "d")
    (tmp_path / "d" / "out").mkdir()
    (tmp_path / "d" / "out" / "x.png").write_bytes(b"")
    assert find_images(tmp_path / "d", exclude=tmp_path / "d" / "out") == sorted(IMAGES)
    obs, sampler = image_seeds(0, "a.png")
    assert image_seeds(0, "a.png") == (obs, sampler) and obs != sampler
    assert image_seeds(1, "a.png") != (obs, sampler) and image_seeds(0, "b.png") != (obs, sampler)
    assert 0 <= obs < 2**63


def test_csv_summary_and_plot(reference):
    rows = read_csv(reference / "per_image.csv")
    assert list(rows[0]) == ["image", "solver", "nfe", "psnr", "ssim", "lpips", "seconds"]
    assert_complete(rows)
    order = [(r["image"], r["solver"]) for r in rows]
    assert order == sorted(order, key=lambda k: (k[0], list(GROUPS).index(k[1])))
    for r in rows:
        assert math.isfinite(float(r["psnr"])) and -1 <= float(r["ssim"]) <= 1
        assert r["lpips"] == "" or float(r["lpips"]) >= 0
        assert float(r["seconds"]) >= 0
    # seconds grow along an image's anytime steps
    ddrm_a = [float(r["seconds"]) for r in rows if r["image"] == "a.png" and r["solver"] == "ddrm"]
    assert ddrm_a == sorted(ddrm_a)

    summary = json.loads((reference / "summary.json").read_text())
    assert summary["images"] == 5
    assert list(summary["solvers"]) == list(GROUPS)
    s = summary["settings"]
    assert (s["task"], s["outer"], s["inner"], s["steps"], s["size"], s["seed"]) == ("sr4", 2, 2, 4, 32, 3)
    assert s["ddrm_steps"] == s["nested_nfe"] == 4
    for solver, nfes in GROUPS.items():
        entry = summary["solvers"][solver]
        assert list(entry["nfe"]) == [str(n) for n in nfes]
        assert entry["final"]["nfe"] == nfes[-1]
        for nfe in nfes:
            stats = entry["nfe"][str(nfe)]
            assert stats["count"] == 5
            for metric in ("psnr", "ssim", "lpips", "seconds"):
                values = [float(r[metric]) for r in rows if r["solver"] == solver and int(r["nfe"]) == nfe and r[metric]]
                if not values:
                    assert stats[metric] == {"mean": None, "std": None}
                    continue
                assert stats[metric]["mean"] == pytest.approx(np.mean(values), abs=1e-9)
                assert stats[metric]["std"] == pytest.approx(np.std(values), abs=1e-9)
    assert (reference / "anytime.png").stat().st_size > 1000
    saved = sorted(p.relative_to(reference / "images").as_posix() for p in (reference / "images").rglob("*.png"))
    assert saved == sorted(f"{s}/{n if n.endswith('.png') else n + '.png'}" for s in ("nested", "ddrm") for n in IMAGES)


def test_results_do_not_depend_on_batch_size(reference, image_dir, tiny_model_dir, tmp_path):
    assert run_cli(main, args(image_dir, tiny_model_dir, tmp_path, "--batch-size", 1)) == 0
    assert_same_numbers(read_csv(tmp_path / "per_image.csv"), read_csv(reference / "per_image.csv"))


def test_resume_after_interruption(reference, image_dir, tiny_model_dir, tmp_path, monkeypatch):
    calls = {"n": 0}
    write = eval_folder.Writer.write

    def write_then_die(self, rows):
        if calls["n"] == 9:  # mid-run, inside the second batch: killed
            raise KeyboardInterrupt
        calls["n"] += 1
        write(self, rows)

    monkeypatch.setattr(eval_folder.Writer, "write", write_then_die)
    argv = args(image_dir, tiny_model_dir, tmp_path, "--batch-size", 2)
    assert run_cli(main, argv) == 130
    monkeypatch.undo()
    row_file = tmp_path / "rows.rank0.csv"
    kept = read_csv(row_file)
    assert len({(r["image"], r["solver"]) for r in kept}) == 9
    # a kill in the middle of writing a group: half of it, the last line cut
    with open(row_file, "a") as f:
        f.write("sub/e.bmp,ddrm,1,5.1,0.1,0.2,0.3\nsub/e.bmp,ddrm,2,5.2,0.1,0.2,0.3\nsub/e.bmp,ddrm,3,5.")

    assert run_cli(main, argv) == 0
    rows = read_csv(tmp_path / "per_image.csv")
    assert_complete(rows)
    assert_same_numbers(rows, read_csv(reference / "per_image.csv"))
    final = {(r["image"], r["solver"], r["nfe"]): r for r in rows}
    for r in kept:  # the rows written before the interruption were kept, not recomputed
        assert final[(r["image"], r["solver"], r["nfe"])] == r
    assert len(read_csv(row_file)) == len(rows)  # the cut group is gone from the row file

    # starting a finished run again computes nothing and rebuilds the same outputs
    before = (tmp_path / "per_image.csv").read_text()
    assert run_cli(main, argv) == 0
    assert (tmp_path / "per_image.csv").read_text() == before


def test_changed_arguments_are_refused(reference, image_dir, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    capsys.readouterr()
    base = args(image_dir, tiny_model_dir, out, "--save-images")
    assert run_cli(main, base + ["--seed", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "seed 3 -> 4" in err and "--overwrite" in err
    assert run_cli(main, base + ["--solvers", "nested"]) == 2
    assert "solvers" in capsys.readouterr().err
    # batch size, quiet and the device are not part of the run's identity
    assert run_cli(main, base + ["--batch-size", "5", "--device", "cpu"]) == 0
    # --overwrite starts again
    assert run_cli(main, base + ["--seed", "4", "--solvers", "ddrm", "--overwrite"]) == 0
    rows = read_csv(out / "per_image.csv")
    assert {r["solver"] for r in rows} == {"ddrm", "pinv", "bicubic"}
    assert not (out / "images" / "nested").exists()


def test_bad_input_is_one_line(image_dir, tiny_model_dir, tmp_path, capsys):
    def error(argv):
        assert run_cli(main, argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        return err

    assert "not found" in error(args(tmp_path / "missing", tiny_model_dir, tmp_path / "o1"))
    (tmp_path / "empty").mkdir()
    assert "no images" in error(args(tmp_path / "empty", tiny_model_dir, tmp_path / "o2"))
    bad = tmp_path / "bad"
    shutil.copytree(image_dir, bad)
    (bad / "sub" / "broken.png").write_bytes(b"not a png")
    assert "broken.png" in error(args(bad, tiny_model_dir, tmp_path / "o3"))
    assert "--solvers" in error(args(image_dir, tiny_model_dir, tmp_path / "o4", "--solver", "ddrm"))
    assert "unknown solver" in error(args(image_dir, tiny_model_dir, tmp_path / "o5", "--solvers", "nested,sgld"))


def test_torchrun_two_processes_match_one(reference, image_dir, tiny_model_dir, tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", str(REPO / "scripts" / "evaluate.py"),
           *args(image_dir, tiny_model_dir, tmp_path, "--batch-size", 2)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "rows.rank0.csv").exists() and (tmp_path / "rows.rank1.csv").exists()
    ranks = [{r["image"] for r in read_csv(tmp_path / f"rows.rank{k}.csv")} for k in (0, 1)]
    assert ranks[0].isdisjoint(ranks[1]) and ranks[0] | ranks[1] == set(IMAGES)
    rows = read_csv(tmp_path / "per_image.csv")
    assert_complete(rows)
    assert_same_numbers(rows, read_csv(reference / "per_image.csv"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["settings"]["world_size"] == 2 and summary["images"] == 5


def test_resume_after_sigkill(reference, image_dir, tiny_model_dir, tmp_path):
    """A real kill -9 at whatever point the run has reached once rows exist, then a restart."""
    import signal
    import time

    argv = args(image_dir, tiny_model_dir, tmp_path, "--batch-size", 1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "evaluate.py"), *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    row_file = tmp_path / "rows.rank0.csv"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if row_file.exists() and row_file.read_text().count("\n") > 6:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert run_cli(main, argv) == 0
    rows = read_csv(tmp_path / "per_image.csv")
    assert_complete(rows)
    assert_same_numbers(rows, read_csv(reference / "per_image.csv"))


def test_candidates_and_oracle_choice(reference, image_dir, tiny_model_dir, tmp_path):
    """--candidates 2 --choose oracle-lpips: candidate 1 is the plain run; the best of two is at
    least as good as the mean and as candidate 1 in LPIPS; the oracle's first step is the best of
    the two independent candidates (the runs part only after the first choice)."""
    out = tmp_path / "cand"
    argv = args(image_dir, tiny_model_dir, out, "--solvers", "nested", "--candidates", 2, "--choose", "oracle-lpips",
                "--batch-size", 2, "--save-images")
    assert run_cli(main, argv) == 0
    rows = read_csv(out / "per_image.csv")
    groups = {"nested": [2, 4], "nested/mean2": [2, 4], "nested/best2": [2, 4], "nested/oracle2": [2, 4],
              "pinv": [0], "bicubic": [0]}
    keys = [(r["image"], r["solver"], int(r["nfe"])) for r in rows]
    assert sorted(keys) == sorted((i, s, n) for i in IMAGES for s, nfes in groups.items() for n in nfes)
    plain = [r for r in read_csv(reference / "per_image.csv") if r["solver"] in ("nested", "pinv", "bicubic")]
    assert_same_numbers([r for r in rows if r["solver"] in ("nested", "pinv", "bicubic")], plain)
    m = metrics(rows)
    for image in IMAGES:
        for nfe in (2, 4):
            best, mean, first = (m[(image, g, nfe)] for g in ("nested/best2", "nested/mean2", "nested"))
            assert best[2] <= mean[2] + 1e-9 and best[2] <= first[2] + 1e-9
        assert np.allclose(m[(image, "nested/oracle2", 2)], m[(image, "nested/best2", 2)], atol=METRIC_TOL)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["candidates"] == 2 and summary["settings"]["choose"] == "oracle-lpips"
    assert list(summary["solvers"]) == list(groups)
    assert {p.name for p in (out / "images").iterdir()} == {"nested", "nested-oracle2"}
    # resuming a finished run computes nothing; a changed number of candidates is refused
    before = (out / "per_image.csv").read_text()
    assert run_cli(main, argv) == 0 and (out / "per_image.csv").read_text() == before
    assert run_cli(main, [*argv[:-5], "--candidates", "3", "--choose", "oracle-lpips", "--save-images"]) == 2


def test_choose_needs_candidates(image_dir, tiny_model_dir, tmp_path, capsys):
    assert run_cli(main, args(image_dir, tiny_model_dir, tmp_path / "o", "--choose", "oracle-lpips")) == 2
    assert "--candidates 2 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(args(image_dir, tiny_model_dir, tmp_path / "o", "--choose", "person"))
    assert exit_.value.code == 2 and "invalid choice" in capsys.readouterr().err
