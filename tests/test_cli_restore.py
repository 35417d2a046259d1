"""The command line (restore.cli.restore, behind scripts/restore.py) and restore.restore_image: end-to-end runs with a tiny random model (fast,
meaningless images), observed mode, the time budget, the output folder, every user error, and
one quality check with the bundled prior."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restore.cli import restore as cli_module
from restore.cli.options import run_cli

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "restore.py"
BUNDLED_CONFIG = REPO / "data" / "models" / "natural-ddpm" / "config.json"
FACE = REPO / "tests" / "data" / "lpips" / "ex_ref.png"  # a 64x64 natural photo (see LICENSE there)


def cli(argv, capsys):
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    try:
        code = run_cli(cli_module.main, [str(a) for a in argv])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _rgb(path, w, h, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), 0.5 + 0.0 * xx], -1) * 200 + rng.integers(0, 40, (h, w, 3))
    im = Image.fromarray(base.clip(0, 255).astype(np.uint8), "RGB")
    if mode == "RGBA":
        im = im.convert("RGBA")
        im.putalpha(Image.fromarray(rng.integers(0, 256, (h, w)).astype(np.uint8)))
    elif mode == "L":
        im = im.convert("L")
    elif mode == "I;16":
        grey = (np.asarray(im.convert("L")).astype(np.uint16) * 257)
        im = Image.fromarray(grey)  # uint16 -> mode I;16
    im.save(path)
    return path


def _tiny(model_dir, *extra):
    return ["--model", model_dir, "--outer", "2", "--inner", "2", *extra]


def _no_leftovers(parent: Path, before: set[str]):
    assert {p.name for p in parent.iterdir()} == before, "temporary folders left behind"


# --------------------------------------------------------------------------- simulation run
@pytest.fixture(scope="module")
def sim_run(tiny_model_dir, tmp_path_factory):
    """One simulation run shared by the checks below: a 48x40 RGB input (not the model's size,
    restored at its own size: the tiny model runs at any size).
    Module-scoped, so stdout / stderr are captured by hand (capsys is per test)."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("sim")
    src = _rgb(root / "photo.png", 48, 40)
    out = root / "out"
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        code = run_cli(cli_module.main, ["--task", "sr4", "--input", str(src), "--out", str(out),
                                         *map(str, _tiny(tiny_model_dir))])
    return code, out, std.getvalue(), err.getvalue()


def test_simulation_files(sim_run):
    code, out, stdout, stderr = sim_run
    assert code == 0, stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["final.png", "latest.png", "metrics.json", "metrics.png", "observation.png", "progress.png",
                     "step_1_nfe2.png", "step_2_nfe4.png"]  # state.pt is gone once the run is complete
    assert Image.open(out / "final.png").size == (48, 40)  # the input's own size
    assert Image.open(out / "observation.png").size == (12, 10)  # the 4x low-resolution measurement
    strip = Image.open(out / "progress.png")
    assert strip.width > 5 * 128 and strip.mode == "RGB"  # observation, 2 steps, final, reference
    assert "centre-cropped" not in stderr
    assert "wrote" in stdout and "final PSNR" in stdout
    _no_leftovers(out.parent, {"photo.png", "out"})


def test_simulation_metrics_json(sim_run):
    _, out, _, _ = sim_run
    m = json.loads((out / "metrics.json").read_text())
    for key in ("task", "model", "solver", "sigma_y", "seed", "image_size", "nfe_total", "wall_seconds",
                "steps", "final", "baselines", "per_call"):
        assert key in m
    assert (m["task"], m["solver"], m["sigma_y"], m["seed"], m["image_size"]) == ("sr4", "nested", 0.0, 0, [40, 48])
    assert m["nfe_total"] == 4 and m["stopped_early"] is False and m["wall_seconds"] > 0
    assert m["status"] == "complete" and m["candidates"] == 1 and m["chosen"] == 1 and m["choices"] == []
    assert [s["nfe"] for s in m["steps"]] == [2, 4]
    assert [c["nfe"] for c in m["per_call"]] == [1, 2, 3, 4]
    assert [c["kind"] for c in m["per_call"]] == ["inner", "outer", "inner", "outer"]
    assert {c["candidate"] for c in m["per_call"]} == {1}
    seconds = [s["seconds"] for s in m["steps"]]
    assert seconds == sorted(seconds) and seconds[0] > 0
    for scores in [*m["steps"], m["final"], *m["baselines"].values()]:
        assert set(scores) >= {"psnr", "ssim", "lpips"}
        assert 0 < scores["psnr"] < 100 and -1 <= scores["ssim"] <= 1
        assert scores["lpips"] is None or 0 <= scores["lpips"] < 2
    assert set(m["baselines"]) == {"pinv", "bicubic"}
    assert m["final"] == {k: m["steps"][-1][k] for k in ("psnr", "ssim", "lpips")}


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16"])
def test_input_modes(mode, tiny_model_dir, tmp_path, capsys):
    src = _rgb(tmp_path / "in.png", 32, 32, mode=mode)
    code, _, err = cli(["--task", "deno", "--sigma-y", "0.05", "--input", src, "--out", tmp_path / "o",
                        "--model", tiny_model_dir, "--solver", "ddrm", "--steps", "1", "--quiet"], capsys)
    assert code == 0, err
    assert err == ""  # --quiet: no bar, no notes (the size already fits)
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["nfe_total"] == 1 and "bicubic" not in m["baselines"]
    assert Image.open(tmp_path / "o" / "final.png").mode == "RGB"


# --------------------------------------------------------------------------- observed mode
def test_observed_sr(tiny_model_dir, tmp_path, capsys):
    low = _rgb(tmp_path / "low.png", 8, 8)
    code, out, err = cli(["--task", "sr4", "--observed", "--input", low, "--out", tmp_path / "o",
                          "--model", tiny_model_dir, "--solver", "ddrm", "--steps", "2"], capsys)
    assert code == 0, err
    folder = tmp_path / "o"
    assert Image.open(folder / "final.png").size == (32, 32)  # the model's resolution
    assert not (folder / "metrics.png").exists()
    m = json.loads((folder / "metrics.json").read_text())
    assert m["mode"] == "observed" and m["final"] == {"psnr": None, "ssim": None, "lpips": None}
    assert m["per_call"] == [] and [s["nfe"] for s in m["steps"]] == [1, 2]
    assert "no metrics" in out


def test_observed_with_reference_and_other_size(tiny_model_dir, tmp_path, capsys):
    low = _rgb(tmp_path / "low.png", 16, 16)
    ref = _rgb(tmp_path / "ref.png", 80, 64, seed=1)
    code, _, err = cli(["--task", "sr4", "--observed", "--input", low, "--reference", ref, "--out", tmp_path / "o",
                        "--model", tiny_model_dir, "--solver", "ddrm", "--steps", "2"], capsys)
    assert code == 0, err
    assert "the reference is 80x64: centre-cropped and resized to 64x64" in err  # 16 x 4, said in one line
    assert Image.open(tmp_path / "o" / "final.png").size == (64, 64)
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["image_size"] == [64, 64] and m["final"]["psnr"] > 0 and (tmp_path / "o" / "metrics.png").exists()


def test_observed_color_and_inpainting_api(tiny_model_dir, tmp_path):
    from restore import restore_image

    grey = _rgb(tmp_path / "grey.png", 32, 32, mode="L")
    r = restore_image(grey, "color", observed=True, model=str(tiny_model_dir), solver="ddrm", steps=1, quiet=True)
    assert r.observation.shape == (1, 1, 32, 32) and r.final.shape == (1, 3, 32, 32)
    # the grey image is the measurement: restoring keeps its mean of R, G, B
    expected = torch.from_numpy(np.array(Image.open(grey))).float() / 127.5 - 1
    assert torch.allclose(r.final.mean(dim=1)[0], expected, atol=2e-2)

    mask = np.full((32, 32), 255, np.uint8)
    mask[8:24, 8:24] = 0
    Image.fromarray(mask).save(tmp_path / "mask.png")
    holed = _rgb(tmp_path / "holed.png", 32, 32)
    r = restore_image(holed, "inp_mask", observed=True, mask=tmp_path / "mask.png", model=str(tiny_model_dir),
                      solver="ddrm", steps=1, quiet=True)
    kept = torch.from_numpy(mask > 127)
    source = torch.from_numpy(np.array(Image.open(holed))).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(r.final[0][:, kept], source[:, kept], atol=1e-4)  # sigma_y = 0: kept pixels exact


# --------------------------------------------------------------------------- API
def test_api_tensor_input_and_reproducibility(tiny_model_dir):
    from restore import RestoreResult, load_prior, restore_image

    prior = load_prior(str(tiny_model_dir))  # a loaded prior is reused across calls
    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    runs = [restore_image(x, "sr2", sigma_y=0.05, model=prior, solver="ddrm", steps=2, seed=s, quiet=True)
            for s in (3, 3, 4)]
    assert isinstance(runs[0], RestoreResult)
    assert torch.equal(runs[0].final, runs[1].final) and torch.equal(runs[0].measurement, runs[1].measurement)
    assert not torch.equal(runs[0].measurement, runs[2].measurement)
    r = runs[0]
    assert r.final.shape == (1, 3, 32, 32) and r.final.abs().max() <= 1
    assert len(r.steps) == 2 and r.steps[-1].psnr == r.metrics["final"]["psnr"]
    assert set(r.baselines) == {"pinv", "bicubic"} and r.metrics["input"] == "tensor"
    assert r.metrics["model"] == "tiny-ddpm"


def test_api_callback_stops(tiny_model_dir):
    from restore import restore_image

    seen = []
    r = restore_image(torch.zeros(1, 3, 32, 32), "sr4", model=str(tiny_model_dir), outer=3, inner=2, quiet=True,
                      callback=lambda step: seen.append(step.nfe) or True)
    assert seen == [2] and r.stopped_early and r.metrics["nfe_total"] == 2


# --------------------------------------------------------------------------- time budget, output folder
def test_time_budget(tiny_model_dir, tmp_path, capsys):
    src = _rgb(tmp_path / "in.png", 32, 32)
    code, _, err = cli(["--task", "sr4", "--input", src, "--out", tmp_path / "o", "--model", tiny_model_dir,
                        "--outer", "3", "--inner", "2", "--time-budget", "1e-9"], capsys)
    assert code == 0, err
    assert "time budget of 1e-09 s ran out after 2 of 6 network calls" in err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["stopped_early"] is True and m["nfe_total"] == 2 and len(m["steps"]) == 1
    assert m["status"] == "time budget" and m["nfe_planned"] == 6
    files = sorted(p.name for p in (tmp_path / "o").iterdir() if p.name.startswith("step_"))
    assert files == ["step_1_nfe2.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o" / "final.png")),
                          np.asarray(Image.open(tmp_path / "o" / files[0])))


def test_overwrite(tiny_model_dir, tmp_path, capsys):
    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "o"
    base = ["--task", "deno", "--input", src, "--out", out, "--model", tiny_model_dir, "--solver", "ddrm", "--quiet"]
    assert cli([*base, "--steps", "2"], capsys)[0] == 0
    assert cli([*base, "--steps", "1", "--overwrite"], capsys)[0] == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("step_")) == ["step_1_nfe1.png"]
    (out / "notes.txt").write_text("mine")  # a folder with foreign files is never replaced
    code, _, err = cli([*base, "--steps", "1", "--overwrite"], capsys)
    assert code == 2 and "did not write" in err and (out / "notes.txt").read_text() == "mine"
    _no_leftovers(tmp_path, {"in.png", "o"})


def test_failed_save_leaves_nothing(tiny_model_dir, tmp_path, monkeypatch):
    from restore import restore_image, save_result
    from restore.outputs import files as report

    r = restore_image(torch.zeros(1, 3, 32, 32), "sr4", model=str(tiny_model_dir), outer=1, inner=1, quiet=True)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "metrics_figure", boom)  # fails after the images are written
    with pytest.raises(RuntimeError):
        save_result(r, tmp_path / "deep" / "o")
    assert list(tmp_path.iterdir()) == []  # no output folder, no temporary folder, no parents


def test_script_entry_point(tiny_model_dir, tmp_path):
    """The real command line: `python scripts/restore.py`, default --out under the working folder."""
    src = _rgb(tmp_path / "face.png", 32, 32)
    proc = subprocess.run([sys.executable, str(SCRIPT), "--task", "sr4", "--input", str(src), "--model",
                           str(tiny_model_dir), "--outer", "1", "--inner", "2", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    assert (tmp_path / "outputs" / "face_sr4" / "metrics.json").is_file()
    bad = subprocess.run([sys.executable, str(SCRIPT), "--task", "nope", "--input", str(src)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


# --------------------------------------------------------------------------- user errors
def _errors(tmp: Path, model: Path):
    img = _rgb(tmp / "img.png", 32, 32)
    (tmp / "notes.txt").write_text("not an image")
    (tmp / "adir").mkdir()
    truncated = tmp / "trunc.png"
    truncated.write_bytes(Path(img).read_bytes()[:200])
    small_mask = tmp / "mask16.png"
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(small_mask)
    full = tmp / "full"
    full.mkdir()
    (full / "x.txt").write_text("x")
    tiny = ["--model", model]
    return {
        "missing input": (["--input", tmp / "nope.png", *tiny], "no such file"),
        "directory input": (["--input", tmp / "adir", *tiny], "not a regular file"),
        "not an image": (["--input", tmp / "notes.txt", *tiny], "not an image"),
        "truncated image": (["--input", truncated, *tiny], "cannot read image"),
        "unknown task": (["--input", img, "--task", "sr3", *tiny], "valid tasks: deno, sr2, sr4"),
        "inp_mask without mask": (["--input", img, "--task", "inp_mask", *tiny], "needs --mask"),
        "mask size": (["--input", img, "--task", "inp_mask", "--mask", small_mask, *tiny], "does not match"),
        "mask missing": (["--input", img, "--task", "inp_mask", "--mask", tmp / "m.png", *tiny], "not found"),
        "mask not an image": (["--input", img, "--task", "inp_mask", "--mask", tmp / "notes.txt", *tiny],
                              "cannot read mask"),
        "negative sigma": (["--input", img, "--sigma-y", "-0.1", *tiny], "--sigma-y must be >= 0"),
        "zero outer": (["--input", img, "--outer", "0", *tiny], "--outer must be a positive"),
        "negative inner": (["--input", img, "--inner", "-2", *tiny], "--inner must be a positive"),
        "zero steps": (["--input", img, "--solver", "ddrm", "--steps", "0", *tiny], "--steps must be a positive"),
        "unknown solver": (["--input", img, "--solver", "nested-foo", *tiny], "unknown solver 'nested-foo'"),
        "bad inner list": (["--input", img, *tiny, "--inner", "2,x"], "comma list such as 2,3,5,10"),
        "zero in inner list": (["--input", img, *tiny, "--inner", "2,0"], "positive numbers of calls"),
        "diffpir zeta": (["--input", img, "--solver", "diffpir", "--zeta", "3", *tiny], "--noise-share must lie in [0, 1], got 3.0"),
        "existing output": (["--input", img, "--out", full, *tiny], "pass --overwrite"),
        "model not found": (["--input", img, "--model", tmp / "no-such-model"], "not found"),
        "model not a model": (["--input", img, "--model", tmp / "adir"], "not a diffusers"),
        "observed too small": (["--input", _rgb(tmp / "o3.png", 3, 3), "--observed", *tiny],
                               "at least 16x16 pixels (an observed image of at least 4x4)"),
        "input too small": (["--input", _rgb(tmp / "i12.png", 12, 20), "--task", "deno", *tiny], "at least 16x16"),
        "observed vs --size": (["--input", _rgb(tmp / "o4.png", 4, 4), "--observed", "--size", "32", *tiny],
                               "needs 8x8"),
        "reference without observed": (["--input", img, "--reference", img, *tiny], "only for --observed"),
        "time budget": (["--input", img, "--time-budget", "0", *tiny], "--time-budget must be a positive"),
        "bad size": (["--input", img, "--size", "8", *tiny], "at least 16 pixels"),
        "size not a number": (["--input", img, "--size", "big", *tiny], "--size"),
        "tile not a multiple": (["--input", img, "--tile", "21", *tiny], "multiple of 2"),
        "negative tile": (["--input", img, "--tile", "-1", *tiny], "--tile must be"),
        "no input flag": ([*tiny], "--input"),
        "bad config": (["--input", img, "--config", tmp / "none.yaml", *tiny], "config file"),
    }


def _case_ids():
    import tempfile

    with tempfile.TemporaryDirectory() as d:  # the case names, for parametrize
        return list(_errors(Path(d), Path(d)))


@pytest.mark.parametrize("case", _case_ids())
def test_user_errors(case, tiny_model_dir, tmp_path, capsys):
    argv, expected = _errors(tmp_path, tiny_model_dir)[case]
    out = tmp_path / "result"
    if "--out" not in argv:
        argv = [*argv, "--out", out]
    before = {p.name for p in tmp_path.iterdir()}
    code, stdout, err = cli(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in err and stdout == ""
    assert not out.exists()
    assert {p.name for p in tmp_path.iterdir()} == before  # nothing written
    if case == "existing output":
        assert [p.name for p in (tmp_path / "full").iterdir()] == ["x.txt"]


@pytest.mark.parametrize("solver,extra,nfes", [
    ("nested-ddnm", ["--inner", "1,2"], [1, 3]),
    ("nested-diffpir", ["--outer", "2", "--inner", "2"], [2, 4]),
    ("dps", ["--steps", "2"], [1, 2]),
])
def test_every_solver_from_the_command_line(solver, extra, nfes, tiny_model_dir, tmp_path, capsys, device):
    img = _rgb(tmp_path / "x.png", 32, 32)
    code, _, err = cli(["--input", img, "--out", tmp_path / "o", "--task", "sr4", "--model", tiny_model_dir,
                        "--solver", solver, *extra, "--device", device.type, "--quiet"], capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["solver"] == solver and [s["nfe"] for s in m["steps"]] == nfes and m["nfe_total"] == nfes[-1]
    assert m["device"].startswith(device.type)


# --------------------------------------------------------------------------- quality, bundled prior
@pytest.mark.skipif(not BUNDLED_CONFIG.exists(), reason="the bundled prior data/models/natural-ddpm is not "
                    "installed yet (scripts/train_prior.py writes it)")
def test_bundled_prior_beats_pseudo_inverse(tmp_path, capsys):
    code, _, err = cli(["--task", "sr4", "--input", FACE, "--model", "natural-ddpm", "--size", "64",
                        "--out", tmp_path / "o", "--quiet"], capsys)
    assert code == 0, err
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["nfe_total"] == 20 and m["image_size"] == [64, 64]
    assert m["final"]["psnr"] > m["baselines"]["pinv"]["psnr"] + 0.3, m["final"]
    assert math.isfinite(m["final"]["lpips"])


def test_short_inner_runs_with_noise_get_a_note(tiny_model_dir):
    from restore import restore_image

    r = restore_image(torch.zeros(1, 3, 32, 32), "deno", model=str(tiny_model_dir), sigma_y=0.1,
                      outer=2, inner=2, quiet=True)
    assert any("--inner 2 with a noisy measurement" in n for n in r.notes)
    r = restore_image(torch.zeros(1, 3, 32, 32), "deno", model=str(tiny_model_dir), sigma_y=0.1,
                      outer=1, inner=4, quiet=True)
    assert not any("--inner" in n for n in r.notes)
