"""Hostile files, folders and numbers (issue 33): folder walks that meet symlink loops and
unreadable subfolders, path names the file system cannot take, kernels that overflow, are complex
or are not arrays, and values checked before any work. Each refused case: exit 2, one line,
nothing created (docs/hostile-inputs.md lists them)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restore.errors import UsageError
from test_cli_restore import _rgb, cli
from test_hostile_inputs import one_line_error, snapshot

LONG = "x" * 300  # one name part over the 255 bytes a file system takes


def _evaluate(argv, capsys):
    from restore.cli.evaluate import main
    from restore.cli.options import run_cli

    try:
        code = run_cli(main, [str(a) for a in argv])
    except SystemExit as exit_:  # argparse
        code = exit_.code
    return code, capsys.readouterr().err


# --------------------------------------------------------------------------- folder walks
def _data_with_loops(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    _rgb(data / "a.png", 32, 32)
    _rgb(data / "sub" / "b.png", 32, 32, seed=1)
    (data / "up").symlink_to("..")  # the folder above data: holds data itself
    (data / "root").symlink_to("/")
    (data / "self").symlink_to(".")
    (data / "sub" / "back").symlink_to("..")
    (data / "sub" / "alias.png").symlink_to("../a.png")  # one file, two names
    return data


def test_a_walk_finishes_on_every_loop_and_counts_each_file_once(tmp_path):
    from restore.evaluation.images import find_images, walk_images

    walk = walk_images(_data_with_loops(tmp_path))
    assert walk.images == ["a.png", "sub/b.png"]  # the alias counts once, under its real name
    assert walk.loops == ["root", "self", "sub/back", "up"] and walk.unreadable == []
    assert find_images(tmp_path / "data") == walk.images


def test_a_linked_folder_elsewhere_is_followed_once(tmp_path):
    from restore.evaluation.images import walk_images

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _rgb(elsewhere / "c.png", 32, 32)
    data = tmp_path / "data"
    data.mkdir()
    (data / "a_link").symlink_to(elsewhere)  # sorted before the real one
    (data / "b_link").symlink_to(elsewhere)
    (data / "real").symlink_to(elsewhere / "c.png")
    walk = walk_images(data)
    assert walk.images == ["a_link/c.png"] and walk.loops == []  # one real file, found through one link


def test_an_unreadable_subfolder_is_recorded(tmp_path, monkeypatch):
    """Simulated (os.scandir raising PermissionError): the tests run as root, who reads anything."""
    from restore.evaluation import images

    data = _data_with_loops(tmp_path)
    (data / "locked").mkdir()
    _rgb(data / "locked" / "c.png", 32, 32)
    real = os.scandir

    def scandir(path):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(images.os, "scandir", scandir)
    walk = images.walk_images(data)
    assert walk.images == ["a.png", "sub/b.png"]
    assert walk.unreadable == [{"image": "locked/", "error": "folder cannot be read: Permission denied"}]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder; the simulated test covers this")
def test_a_chmod_000_subfolder_is_recorded(tmp_path):
    from restore.evaluation.images import walk_images

    data = tmp_path / "data"
    (data / "locked").mkdir(parents=True)
    _rgb(data / "a.png", 32, 32)
    (data / "locked").chmod(0)
    try:
        assert [u["image"] for u in walk_images(data).unreadable] == ["locked/"]
    finally:
        (data / "locked").chmod(0o755)


def test_evaluate_on_loops_and_an_unreadable_folder(tiny_model_dir, tmp_path, capsys, monkeypatch):
    from restore.evaluation import images

    data = _data_with_loops(tmp_path)
    (data / "locked").mkdir()
    real = os.scandir
    monkeypatch.setattr(images.os, "scandir",
                        lambda p: (_ for _ in ()).throw(PermissionError(13, "Permission denied", str(p)))
                        if Path(p).name == "locked" else real(p))
    out = tmp_path / "o"
    argv = ["--data", data, "--out", out, "--model", tiny_model_dir, "--outer", "1", "--inner", "1",
            "--solvers", "nested", "--quiet"]
    code, err = _evaluate(argv, capsys)
    one_line_error(code, err, "0 of 2 images and 1 folder under", "locked/ (folder cannot be read: Permission denied)",
                   "--skip-unreadable")
    assert not out.exists()
    code, err = _evaluate([*argv, "--skip-unreadable"], capsys)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 2
    assert summary["settings"]["unreadable"] == [{"image": "locked/",
                                                  "error": "folder cannot be read: Permission denied"}]
    assert summary["settings"]["links_not_followed"] == ["root", "self", "sub/back", "up"]


# --------------------------------------------------------------------------- one line, nothing made
def _files(tmp_path: Path) -> dict[str, str]:
    """The hostile files, by name."""
    made = {"img": _rgb(tmp_path / "img.png", 32, 32)}
    np.savez(tmp_path / "k.npz", a=np.ones((3, 3)))
    os.replace(tmp_path / "k.npz", tmp_path / "npz.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    for name, array in {"complex": np.ones((3, 3)) * (1 + 1j), "negative": -np.ones((3, 3)),
                        "nan": np.array([[1.0, np.nan], [1.0, 1.0]]), "zeros": np.zeros((3, 3))}.items():
        np.save(tmp_path / f"{name}.npy", array)
    for name, bad in (("nan", np.nan), ("inf", np.inf)):
        a = np.full((32, 32), 0.5, np.float32)
        a[3, 3] = bad
        Image.fromarray(a, "F").save(tmp_path / f"{name}.tif")
    return {**made, **{p.name: str(p) for p in tmp_path.iterdir()}}


@pytest.mark.parametrize("argv, expected", [
    (["--out", "{t}/" + LONG], ["--out", "is 300 bytes long", "limit of 255"]),
    (["--out", "{t}/ok/" + LONG + "/deeper"], ["--out", "is 300 bytes long"]),
    (["--input", LONG + ".png"], ["--input", "is 304 bytes long"]),
    (["--task", "deblur", "--kernel", LONG + ".npy"], ["--kernel", "is 304 bytes long"]),
    (["--task", "inp_mask", "--mask", LONG + ".png"], ["--mask", "is 304 bytes long"]),
    (["--config", LONG + ".yaml"], ["--config", "is 305 bytes long"]),
    (["--task", "deblur", "--kernel", "{t}/npz.npy"], ["npz.npy is an .npz archive, not a .npy array"]),
    (["--task", "deblur", "--kernel", "{t}/empty.npy"], ["cannot read kernel empty.npy: the file is empty"]),
    (["--task", "deblur", "--kernel", "{t}/complex.npy"], ["complex.npy holds complex numbers"]),
    (["--task", "deblur", "--kernel", "{t}/negative.npy"], ["the blur kernel sums to -9"]),
    (["--task", "deblur", "--kernel", "{t}/nan.npy"], ["NaN or infinite"]),
    (["--task", "deblur", "--kernel", "{t}/zeros.npy"], ["the blur kernel is all zeros"]),
    (["--candidates", "2", "--choose", "²"], ["--choose takes", "got '²'"]),
    (["--outer", "1", "--inner", "1,2,3"], ["--outer 1 and --inner 1,2,3 disagree", "give --outer 3"]),
    (["--max-pixels", "-1"], ["--max-pixels: must be a whole number of pixels >= 1, got '-1'"]),
    (["--seed", str(2**70)], ["--seed must be a whole number in [-2^63, 2^64)"]),
    (["--input", "{t}/nan.tif"], ["cannot read image", "nan.tif: it holds NaN or infinite values"]),
    (["--input", "{t}/inf.tif"], ["inf.tif: it holds NaN or infinite values"]),
])
def test_hostile_restore_inputs_are_one_line(tiny_model_dir, tmp_path, capsys, argv, expected):
    files = _files(tmp_path)
    argv = [a.replace("{t}", str(tmp_path)) for a in argv]
    base = ["--model", tiny_model_dir, "--outer", "1", "--inner", "1", "--quiet"]
    if "--input" not in argv:
        base += ["--input", files["img"]]
    if "--out" not in argv:
        base += ["--out", tmp_path / "o"]
    if "--outer" in argv:
        base = base[:2] + base[6:]
    before = snapshot(tmp_path)
    code, _, err = cli([*base, *argv], capsys)
    one_line_error(code, err, *expected)
    assert snapshot(tmp_path) == before and not (tmp_path / "o").exists()


def test_a_resume_folder_name_too_long_is_one_line(tmp_path, capsys):
    code, _, err = cli(["--resume", tmp_path / LONG], capsys)
    one_line_error(code, err, "--resume", "is 300 bytes long")


@pytest.mark.parametrize("argv, expected", [
    (["--data", "{t}/" + LONG], ["--data", "is 300 bytes long"]),
    (["--out", "{t}/" + LONG], ["--out", "is 300 bytes long"]),
    (["--task", "deblur", "--kernel", "{t}/npz.npy"], ["npz.npy is an .npz archive"]),
    (["--task", "deblur", "--kernel", "{t}/empty.npy"], ["the file is empty"]),
    (["--max-pixels", "0"], ["--max-pixels: must be a whole number of pixels >= 1"]),
])
def test_hostile_evaluate_inputs_are_one_line(tiny_model_dir, tmp_path, capsys, argv, expected):
    _files(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    _rgb(data / "a.png", 32, 32)
    argv = [a.replace("{t}", str(tmp_path)) for a in argv]
    base = ["--model", tiny_model_dir, "--outer", "1", "--inner", "1", "--solvers", "nested", "--quiet"]
    base += [] if "--data" in argv else ["--data", data]
    base += [] if "--out" in argv else ["--out", tmp_path / "o"]
    before = snapshot(tmp_path)
    code, err = _evaluate([*base, *argv], capsys)
    one_line_error(code, err, *expected)
    assert snapshot(tmp_path) == before and not (tmp_path / "o").exists()


def test_a_name_too_long_that_no_check_named_is_still_one_line(capsys):
    """The net under every command: an ENAMETOOLONG from anywhere becomes one line, exit 2."""
    from restore.cli.options import run_cli

    def main(argv):
        Path(LONG).exists()  # Path.exists lets ENAMETOOLONG through

    assert run_cli(main, []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the name is too long for the file system" in err


# --------------------------------------------------------------------------- kernels, frames, the API
def test_kernels_of_any_positive_scale_are_the_same_blur():
    from degradations.fourier import FourierBlur
    from degradations.kernels import normalised_kernel

    ones, note = normalised_kernel(np.ones((3, 3)))
    assert note == "the blur kernel summed to 9; normalised to sum 1"
    for scale, shown in ((1e308, "9 x 1e+308"), (1e-12, "9e-12")):  # 9e308 overflows float64; 9e-12 is fine
        k, note = normalised_kernel(np.full((3, 3), scale))
        torch.testing.assert_close(k, ones, rtol=1e-15, atol=0)
        assert note == f"the blur kernel summed to {shown}; normalised to sum 1"
    blur = FourierBlur(1, 8, 8, np.full((3, 3), 1e308))
    torch.testing.assert_close(blur.kernel.double(), ones.float().double())
    assert normalised_kernel(torch.tensor([[0.25, 0.5, 0.25]]))[1] is None  # sums to 1: no note
    with pytest.raises(ValueError, match="complex"):
        FourierBlur(1, 8, 8, torch.ones(3, 3, dtype=torch.complex64))


def test_an_animated_image_says_only_its_first_frame_is_used(tmp_path):
    from restore.io.images import load_image

    frames = [Image.new("RGB", (16, 16), (40 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "pages.tif", save_all=True, append_images=frames[1:])
    for name in ("anim.gif", "pages.tif"):
        notes: list[str] = []
        load_image(tmp_path / name, notes=notes)
        assert f"{name} holds 3 frames (animated or multi-page): only the first is used" in notes


def test_the_api_names_keywords(tiny_model_dir, tmp_path):
    from restore import restore_image
    from restore.api import resume_image

    img = _rgb(tmp_path / "img.png", 32, 32)
    for kwargs, expected in [({"out": tmp_path / LONG}, "out= "), ({"task": "deblur", "kernel": LONG}, "kernel= "),
                             ({"outer": 1, "inner": [1, 2, 3]}, "outer 1 and inner 1,2,3 disagree"),
                             ({"max_pixels": -1}, "max_pixels must be a whole number of pixels >= 1, got -1")]:
        with pytest.raises(UsageError, match="^" + expected):
            restore_image(img, **{"task": "sr4", **kwargs}, model=str(tiny_model_dir), quiet=True)
    with pytest.raises(UsageError, match="^resume= .*: no such folder"):
        resume_image(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="^resume= .* is 300 bytes long"):
        resume_image(tmp_path / LONG)
    assert not any(p.is_dir() for p in tmp_path.iterdir())
