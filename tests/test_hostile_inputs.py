"""Broken and hostile inputs outside the page: every setting typed and finite from one schema, files
read back checked (state.pt, checkpoints, configs), folders claimed by one process at a time, and
a disk that fills or a folder that turns read-only recorded as a failure, the last whole step kept.
Each gets one line, exit code 2, nothing half-written (docs/hostile-inputs.md lists them all)."""

from __future__ import annotations

import errno
import json
import math
from pathlib import Path

import pytest
import torch

from restore.errors import UsageError
from restore.io.locks import FolderLock
from test_cli_restore import _rgb, cli


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def strict_json(path: Path):
    """json.loads that refuses NaN and Infinity (which Python's json accepts by default)."""
    def bad(constant):
        raise ValueError(f"{path.name} holds {constant}, which is not JSON")
    return json.loads(path.read_text(), parse_constant=bad)


def one_line_error(code, err, *expected):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for part in expected:
        assert part in lines[0], (part, lines[0])


# --------------------------------------------------------------------------- settings
@pytest.mark.parametrize("flag", ["--sigma-y", "--eta", "--eta-b", "--zeta", "--lambda", "--outer-power", "--outer-eta",
                                  "--outer-noise", "--inner-power", "--time-budget"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_floats_are_refused(tiny_model_dir, tmp_path, capsys, flag, value):
    img = _rgb(tmp_path / "img.png", 32, 32)
    before = snapshot(tmp_path)
    code, _, err = cli(["--input", img, "--model", tiny_model_dir, "--out", tmp_path / "o", f"{flag}={value}"], capsys)
    one_line_error(code, err, flag, value)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv, expected", [
    (["--steps", "1001", "--solver", "ddrm"], "--steps must be a positive number of steps, at most 1000"),
    (["--outer", "1000000000"], "--outer must be a positive number of steps, at most 1000"),
    (["--inner", "5,2000"], "at most 1000 each"),
    (["--candidates", "100000"], "--candidates must be at least 1 and at most 64"),
    (["--sigma-y", "1.5"], "--sigma-y must be >= 0 and at most 1"),
    (["--device", "meta"], "restorations run on cpu, cuda or mps, not meta"),
    (["--outer-times", "950,850,x"], "argument --outer-times: expected whole times separated by commas"),
])
def test_out_of_range_values_are_one_line(tiny_model_dir, tmp_path, capsys, argv, expected):
    img = _rgb(tmp_path / "img.png", 32, 32)
    code, _, err = cli(["--input", img, "--model", tiny_model_dir, "--out", tmp_path / "o", *argv], capsys)
    one_line_error(code, err, expected)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("text, expected", [
    ("sigma_y: abc\n", "sigma_y must be >= 0 and at most 1 (a finite std on the [0, 1] pixel scale), got 'abc'"),
    ("eta: 2\n", "eta must lie in [0, 1], got 2"),
    ("outer: four\n", "outer must be a positive number of steps, at most 1000, got 'four'"),
    ("size: [1, 2]\n", "size must be at least 16 pixels, or 'native', got [1, 2]"),
    ("sigma_y: .nan\n", "got nan"),
    ("candidates: true\n", "candidates must be at least 1 and at most 64"),
    ("- sr4\n- deno\n", "must be a mapping of settings (key: value lines), got a list"),
    ("just text\n", "must be a mapping of settings"),
    ("colour: red\n", "unknown keys ['colour']"),
])
def test_bad_config_files_are_one_line(tiny_model_dir, tmp_path, capsys, text, expected):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    img = _rgb(tmp_path / "img.png", 32, 32)
    code, _, err = cli(["--input", img, "--model", tiny_model_dir, "--config", config, "--out", tmp_path / "o"], capsys)
    one_line_error(code, err, expected)
    assert f"config {config}" in err and not (tmp_path / "o").exists()


def test_a_config_that_is_not_text_is_one_line(tiny_model_dir, tmp_path, capsys):
    config = tmp_path / "bin.yaml"
    config.write_bytes(b"sigma_y: \xff\xfe\x00\x81\n")
    img = _rgb(tmp_path / "img.png", 32, 32)
    code, _, err = cli(["--input", img, "--model", tiny_model_dir, "--config", config], capsys)
    one_line_error(code, err, "is not UTF-8 text")


def test_restore_image_validates_like_the_command_line(tiny_model_dir):
    from restore import restore_image

    img = torch.zeros(1, 3, 32, 32)
    for kwargs, expected in [({"sigma_y": math.nan}, "sigma_y must be"), ({"outer": 0}, "outer must be"),
                             ({"eta": "high"}, "eta must lie in [0, 1], got 'high'"),
                             ({"colour": "red"}, "restore_image got unknown setting(s) colour"), ({"steps": True}, "steps must be"),
                             ({"time_budget": -1.0}, "time_budget must be a positive"),
                             ({"mask": "nowhere.png", "task": "inp_mask"}, "mask file nowhere.png not found"),
                             ({"zeta": 0.5}, "zeta 0.5: zeta is an old name"),
                             ({"out": "/", "overwrite": True}, "out= / must name a new folder")]:
        with pytest.raises(UsageError, match="^" + expected.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
            restore_image(img, **{"task": "sr4", **kwargs}, model=str(tiny_model_dir), quiet=True)


def test_metrics_json_is_strict_json(tiny_model_dir, tmp_path, capsys):
    """Scores that are undefined (LPIPS of a 16 x 16 image) are null, never a bare NaN."""
    img = _rgb(tmp_path / "img.png", 16, 16)
    code, _, err = cli(["--input", img, "--model", tiny_model_dir, "--task", "deno", "--sigma-y", "0.1", "--outer", "1",
                        "--inner", "1", "--out", tmp_path / "o", "--quiet"], capsys)
    assert code == 0, err
    metrics = strict_json(tmp_path / "o" / "metrics.json")
    assert metrics["final"]["lpips"] is None and metrics["final"]["psnr"] is not None


def test_evaluate_refuses_nan_before_any_work(tiny_model_dir, tmp_path, capsys):
    from restore.cli.evaluate import main
    from restore.cli.options import run_cli

    data = tmp_path / "data"
    data.mkdir()
    _rgb(data / "a.png", 32, 32)
    code = run_cli(main, ["--data", str(data), "--out", str(tmp_path / "o"), "--model", str(tiny_model_dir),
                          "--sigma-y", "nan", "--quiet"])
    one_line_error(code, capsys.readouterr().err, "--sigma-y must be")
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- files read back
def test_a_garbage_checkpoint_or_model_folder_is_one_line(tmp_path, capsys):
    img = _rgb(tmp_path / "img.png", 32, 32)
    garbage = tmp_path / "model.ckpt"
    garbage.write_bytes(b"this is not a checkpoint" * 100)
    code, _, err = cli(["--input", img, "--model", garbage, "--out", tmp_path / "o"], capsys)
    one_line_error(code, err, "not an original DDPM checkpoint")
    folder = tmp_path / "fake-model"
    folder.mkdir()
    (folder / "config.json").write_text('{"_class_name": "UNet2DModel", "sample_size": 32}')
    (folder / "diffusion_pytorch_model.safetensors").write_bytes(b"\x00" * 64)
    code, _, err = cli(["--input", img, "--model", folder, "--out", tmp_path / "o"], capsys)
    one_line_error(code, err, "not a diffusers UNet2DModel folder")
    assert not (tmp_path / "o").exists()


def _stopped_run(tiny_model_dir, folder: Path, src) -> None:
    from restore import restore_image

    restore_image(src, "sr4", model=str(tiny_model_dir), outer=3, inner=2, seed=4, out=folder, quiet=True,
                  callback=lambda step: step.index == 1)


@pytest.mark.parametrize("damage, expected", [
    (lambda s: s["run"].update(x=torch.zeros(2, 3)), "run.x (2, 3)"),
    (lambda s: s["run"].update(rows=[[0, 0], [0, 1]]), "2 rows for 1 states"),
    (lambda s: s["run"].update(index="one"), "run.index is missing or a str"),
    (lambda s: s["run"].update(generators=[torch.zeros(3)]), "generator states"),
    (lambda s: s.update(steps=[{"nope": 1}]), "its steps are not step records"),
    (lambda s: s["identity"].update(mode="dream"), "no mode or settings"),
    (lambda s: s.update(run=[1, 2]), "run is missing or a list"),
])
def test_a_state_with_the_right_keys_and_the_wrong_contents_is_one_line(tiny_model_dir, tmp_path, capsys,
                                                                        damage, expected):
    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "o"
    _stopped_run(tiny_model_dir, out, src)
    state = torch.load(out / "state.pt", weights_only=True)
    damage(state)
    torch.save(state, out / "state.pt")
    before = snapshot(out)
    code, _, err = cli(["--resume", out], capsys)
    one_line_error(code, err, "state.pt is not a saved run of this tool", expected)
    assert snapshot(out) == before


def test_a_state_of_another_shape_is_refused_when_rebuilt(tiny_model_dir, tmp_path, capsys):
    """Well formed, but its states are of another size than the run it claims to be."""
    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "o"
    _stopped_run(tiny_model_dir, out, src)
    state = torch.load(out / "state.pt", weights_only=True)
    state["run"]["y"] = torch.zeros(1, 7)
    torch.save(state, out / "state.pt")
    code, _, err = cli(["--resume", out], capsys)
    one_line_error(code, err, "the saved state does not fit this run")


# --------------------------------------------------------------------------- folders held by one run
def test_a_held_folder_is_refused_to_a_second_run(tiny_model_dir, tmp_path, capsys):
    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "o"
    _stopped_run(tiny_model_dir, out, src)
    before = snapshot(out)
    with FolderLock(out):  # as another process's run would hold it
        code, _, err = cli(["--resume", out], capsys)
        one_line_error(code, err, f"output folder {out} is in use by another run")
        code, _, err = cli(["--input", src, "--model", tiny_model_dir, "--out", out, "--overwrite"], capsys)
        one_line_error(code, err, "is in use by another run")
        from restore.cli.evaluate import main
        from restore.cli.options import run_cli

        data = tmp_path / "data"
        data.mkdir()
        _rgb(data / "a.png", 32, 32)
        code = run_cli(main, ["--data", str(data), "--out", str(out), "--model", str(tiny_model_dir), "--quiet"])
        one_line_error(code, capsys.readouterr().err, "is in use by another run")
    held = snapshot(out)
    assert {k: v for k, v in held.items() if k != ".lock"} == before
    assert cli(["--resume", out, "--quiet"], capsys)[0] == 0  # once released, it resumes
    assert not (out / ".lock").exists()


def test_resume_of_an_unwritable_folder_is_refused_before_any_work(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """A folder that cannot take a file (read-only: the OS says EROFS) is refused before the model
    loads or the network is called."""
    import restore.api
    import restore.io.locks

    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "o"
    _stopped_run(tiny_model_dir, out, src)
    real_open = restore.io.locks.os.open

    def read_only(path, *args, **kwargs):
        if Path(path).parent == out:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(restore.io.locks.os, "open", read_only)
    monkeypatch.setattr(restore.api, "prepare_job", lambda *a, **k: pytest.fail("work started"))
    code, _, err = cli(["--resume", out], capsys)
    one_line_error(code, err, f"output folder {out} cannot be written", "Read-only file system")


# --------------------------------------------------------------------------- a disk that fills
def _full_disk_at(monkeypatch, module, name: str, calls: int):
    """Make module.name raise ENOSPC from its `calls`-th call on."""
    real, count = getattr(module, name), [0]

    def write(*args, **kwargs):
        count[0] += 1
        if count[0] >= calls:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, write)


def test_a_disk_that_fills_mid_run_records_the_failure_and_resumes(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from restore import restore_image
    from restore.outputs import files

    src = _rgb(tmp_path / "in.png", 32, 32)
    whole = restore_image(src, "sr4", model=str(tiny_model_dir), outer=3, inner=2, seed=4, quiet=True).final
    out = tmp_path / "o"
    _full_disk_at(monkeypatch, files, "save_image", 3)  # the observation and step 1 go through; step 2 fails
    code, _, err = cli(["--input", src, "--model", tiny_model_dir, "--outer", "3", "--inner", "2", "--seed", "4",
                        "--out", out, "--quiet"], capsys)
    one_line_error(code, err, f"cannot write to {out}: [Errno 28] No space left on device",
                   "state.pt keeps step 1", f"--resume {out}")
    metrics = strict_json(out / "metrics.json")
    assert metrics["status"] == "failed" and "No space left" in metrics["failure"]
    assert metrics["resumable_from_step"] == 1 and not (out / "final.png").exists() and not (out / ".lock").exists()
    monkeypatch.undo()
    assert cli(["--resume", out, "--quiet"], capsys)[0] == 0
    assert strict_json(out / "metrics.json")["status"] == "complete"
    from restore.io.images import load_image

    torch.testing.assert_close(load_image(out / "final.png"), ((whole.clamp(-1, 1) + 1) * 127.5).round() / 127.5 - 1,
                               atol=1e-6, rtol=0)


def test_a_disk_that_fills_at_the_end_leaves_no_final_image_beside_running(tiny_model_dir, tmp_path, capsys,
                                                                        monkeypatch):
    from restore.outputs import files

    src = _rgb(tmp_path / "in.png", 32, 32)
    out = tmp_path / "o"
    _full_disk_at(monkeypatch, files, "metrics_figure", 1)  # final.png and progress.png written, then full
    code, _, err = cli(["--input", src, "--model", tiny_model_dir, "--outer", "2", "--inner", "1", "--out", out,
                        "--quiet"], capsys)
    one_line_error(code, err, "No space left on device")
    metrics = strict_json(out / "metrics.json")
    assert metrics["status"] == "failed" and not (out / "final.png").exists() and not (out / "progress.png").exists()
    assert (out / "state.pt").is_file()
    monkeypatch.undo()
    assert cli(["--resume", out, "--quiet"], capsys)[0] == 0
    assert strict_json(out / "metrics.json")["status"] == "complete" and (out / "final.png").is_file()


def test_an_evaluation_whose_disk_fills_keeps_its_rows(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from restore.cli.evaluate import main
    from restore.cli.options import run_cli
    from restore.evaluation import folder

    data = tmp_path / "data"
    data.mkdir()
    for i in range(2):
        _rgb(data / f"{i}.png", 32, 32, seed=i)
    argv = ["--data", str(data), "--out", str(tmp_path / "o"), "--model", str(tiny_model_dir), "--outer", "1",
            "--inner", "2", "--batch-size", "1", "--quiet"]
    _full_disk_at(monkeypatch, folder.Writer, "write", 3)  # image 0's groups are written, then full
    one_line_error(run_cli(main, argv), capsys.readouterr().err, "No space left on device", "run the same command")
    monkeypatch.undo()
    assert run_cli(main, argv) == 0
    assert strict_json(tmp_path / "o" / "summary.json")["images"] == 2
