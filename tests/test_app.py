"""The page's command (restore.cli.app, behind scripts/app.py) and the page's pieces that need no browser: the mask drawn on the input, the
host warning, bad arguments."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restore.cli.options import run_cli
from restore.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def test_the_brush_strokes_become_the_mask(tmp_path):
    from restore.page.handlers import Page

    page = Page(tmp_path)
    image = Image.new("RGB", (80, 60), "gray")  # not square: centre-cropped to 60x60, then 32x32
    layer = Image.new("RGBA", (80, 60), (0, 0, 0, 0))
    layer.paste((255, 0, 255, 255), (40, 0, 70, 30))  # strokes over x 40..69, y 0..29
    path = page._save_input({"background": image, "layers": [layer]}, tmp_path, "inp_mask", "simulation", 32)
    assert Image.open(path).size == (80, 60)
    mask = np.asarray(Image.open(tmp_path / "mask.png"))
    assert mask.shape == (32, 32) and set(np.unique(mask)) == {0, 255}
    # the crop keeps x 10..69: strokes at 30..59 of 60 -> 16..31 of 32 (black = missing)
    assert (mask[:15, 17:31] == 0).all() and (mask[:, :15] == 255).all() and (mask[17:, :] == 255).all()
    with pytest.raises(UsageError, match="paint the missing parts"):
        page._save_input({"background": image, "layers": []}, tmp_path, "inp_mask", "simulation", 32)
    with pytest.raises(UsageError, match="upload an image"):
        page._save_input(None, tmp_path, "sr4", "simulation", 32)


def test_host_warning_and_bad_port(monkeypatch, capsys):
    import restore.page.layout
    from restore.cli import app

    served = []
    monkeypatch.setattr(restore.page.layout, "serve", lambda host, port, **kw: served.append((host, port, kw["root"])))
    assert run_cli(app.main, ["--port", "7999"]) == 0
    assert capsys.readouterr().err == ""
    assert run_cli(app.main, ["--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: serving on 0.0.0.0")
    assert [s[:2] for s in served] == [("127.0.0.1", 7999), ("0.0.0.0", 7860)]
    assert not any(root.exists() for _, _, root in served)  # the temporary folder is gone afterwards
    assert run_cli(app.main, ["--port", "70000"]) == 2
    assert "--port must be between" in capsys.readouterr().err


def test_serves_then_leaves_nothing_behind(tmp_path):
    """The real entry point: it serves the page on 127.0.0.1, and SIGTERM removes its folder."""
    import os
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp, home = tmp_path / "tmp", tmp_path / "home"
    temp.mkdir()
    home.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "HOME": str(home)}
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "app.py"), "--port", str(port)], env=env,
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200 and b"gradio" in response.read().lower()
                break
            except OSError:
                assert time.monotonic() < deadline, "the page did not come up"
                time.sleep(0.2)
        assert [p.name for p in temp.iterdir()][0].startswith("anytime-restore-page-")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert list(temp.iterdir()) == [] and list(home.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home", "tmp"]


def test_ctrl_c_ends_the_page_during_a_run_even_when_started_in_the_background(tmp_path, tiny_model_dir):
    """SIGINT (Ctrl-C) ends the page while a run waits for a choice, and removes its folder, also
    when it was started with SIGINT ignored, as a shell starts a background job (`anytime-app &`)."""
    import os
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    from gradio_client import Client, handle_file

    from restore.paths import EXAMPLE_IMAGE

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, str(REPO / "scripts" / "app.py"), "--port", str(port), "--model",
                             str(tiny_model_dir)], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the page did not come up"
                time.sleep(0.2)
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        image = {"background": handle_file(str(EXAMPLE_IMAGE)), "layers": [], "composite": None, "id": None}
        job = client.submit(image, None, "sr4", 0, tiny_model_dir.name, "nested", 3, 1, 20, 2, 0, "simulation",
                            api_name="/run")  # two candidates: after step 1 it waits for a choice
        while not any("choose" in str(out[0]).lower() or "candidate" in str(out[0]).lower() for out in job.outputs()):
            assert time.monotonic() < deadline and not job.done(), "the run did not reach its first choice"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(temp.iterdir()) == []


# -- the start-up options: models and limits ------------------------------------------------
def _served(monkeypatch):
    """restore.page.layout.serve replaced by a recorder of its keyword arguments."""
    import restore.page.layout

    served = []
    monkeypatch.setattr(restore.page.layout, "serve", lambda host, port, **kw: served.append(kw))
    return served


def _exit_code(main, argv) -> int:
    """run_cli's exit code, or argparse's (its errors exit at once, with code 2)."""
    try:
        return run_cli(main, argv)
    except SystemExit as exit:
        return exit.code


def test_the_limits_defaults_and_the_command_line_reads_them_without_gradio():
    import subprocess
    import sys

    from restore.page import limits

    assert (limits.MAX_MODELS, limits.MAX_CALLS, limits.MAX_CANDIDATES_PAGE, limits.MAX_PIXELS_PAGE) == (
        2, 200, 8, 4_000_000)
    code = "import sys, restore.cli.app; print('gradio' in sys.modules)"  # GRADIO_TEMP_DIR is set later
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_bad_start_up_values_are_one_line(monkeypatch, capsys, tmp_path):
    import tempfile

    from restore.cli import app

    served = _served(monkeypatch)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for argv, said in ((["--max-calls", "0"], "--max-calls must be a whole number >= 1"),
                       (["--max-calls", "-5"], "--max-calls must be"),
                       (["--max-candidates", "0"], "--max-candidates must be"),
                       (["--max-candidates", "65"], "at most 64"),
                       (["--max-pixels", "0"], "--max-pixels must be"),
                       (["--max-models", "0"], "--max-models must be"),
                       (["--max-calls", "lots"], "invalid int value"),
                       (["--max-pixels", "1e6"], "invalid int value")):
        assert _exit_code(app.main, argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and said in err[0], (argv, err)
    assert served == [] and not list(tmp_path.glob("anytime-restore-page-*"))  # nothing started, no folder left


def test_a_model_that_does_not_load_stops_the_start(monkeypatch, capsys, tmp_path):
    import tempfile

    from restore.cli import app

    served = _served(monkeypatch)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    garbage = tmp_path / "broken.ckpt"
    garbage.write_bytes(b"\x80\x04 not a checkpoint at all" * 10)
    for spec in (str(garbage), str(tmp_path / "missing.ckpt"), str(tmp_path)):
        assert run_cli(app.main, ["--model", spec]) == 2, spec
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: --model {spec}: does not load"), err
    assert served == [] and not list(temp.glob("anytime-restore-page-*"))  # no page folder left


def test_the_models_and_limits_reach_the_page(monkeypatch, capsys, tiny_model_dir):
    from restore.cli import app

    served = _served(monkeypatch)
    assert run_cli(app.main, ["--model", str(tiny_model_dir), "--max-models", "1", "--max-calls", "30",
                              "--max-candidates", "3", "--max-pixels", "100000"]) == 0
    [kw] = served
    assert kw["specs"] == [str(tiny_model_dir)] and list(kw["warm"]) == [str(tiny_model_dir)]
    assert kw["allow_any_model"] is False
    assert (kw["max_models"], kw["max_calls"], kw["max_candidates"], kw["max_pixels"]) == (1, 30, 3, 100_000)
    assert run_cli(app.main, ["--allow-any-model"]) == 0
    assert served[-1]["allow_any_model"] is True and served[-1]["specs"] == [] and served[-1]["max_calls"] == 200


# -- the page's handler, without a browser ---------------------------------------------------
class _Request:
    def __init__(self, session_hash):
        self.session_hash = session_hash


def _start(page, session="me", editor="image", **fields):
    """The Start handler's first update's status line."""
    values = {**dict(task="sr4", sigma_y=0.0, model="natural-ddpm", solver="nested", outer=2, inner=1, steps=20,
                     candidates=1, seed=0, mode="simulation"), **fields}
    if editor == "image":
        editor = {"background": Image.new("RGB", (40, 40), "gray"), "layers": [], "composite": None}
    updates = page.run(editor, None, values["task"], values["sigma_y"], values["model"], values["solver"],
                       values["outer"], values["inner"], values["steps"], values["candidates"], values["seed"],
                       values["mode"], _Request(session))
    return next(updates)[0]


def test_every_bad_field_is_one_line_and_leaves_no_folder(tmp_path):
    from restore.page.handlers import Page

    page = Page(tmp_path, max_calls=12, max_candidates=3)
    for fields, said in ((dict(sigma_y=None), "sigma_y is empty"), (dict(sigma_y=""), "sigma_y is empty"),
                         (dict(seed=None), "Seed is empty"), (dict(outer=None), "Outer steps is empty"),
                         (dict(inner=None), "Inner steps is empty"), (dict(steps=None), "DDRM steps is empty"),
                         (dict(candidates=None), "Candidates K is empty"),
                         (dict(sigma_y=float("nan")), "sigma_y must be"), (dict(sigma_y=float("inf")), "sigma_y must"),
                         (dict(sigma_y=1.5), "sigma_y must be"), (dict(sigma_y="abc"), "sigma_y must be"),
                         (dict(sigma_y=True), "sigma_y must be"), (dict(seed=float("nan")), "Seed must be"),
                         (dict(outer=0), "Outer steps must be"), (dict(outer=2.5), "Outer steps must be"),
                         (dict(outer=float("inf")), "Outer steps must be"), (dict(inner=-1), "Inner steps must be"),
                         (dict(steps=1001), "DDRM steps must be"), (dict(candidates=0), "Candidates K must be"),
                         (dict(outer=4, inner=4), "4 outer x 4 inner steps make 16 network calls per candidate, "
                                                  "over this page's limit of 12"),
                         (dict(solver="ddrm", steps=13), "13 DDRM steps make 13 network calls"),
                         (dict(candidates=4), "Candidates K must be at most 3 on this page, got 4"),
                         (dict(solver="nested-nope"), "unknown solver")):
        text = _start(page, **fields)
        assert text.startswith("**Cannot start:** ") and said in text and "\n" not in text, (fields, text)
        assert str(tmp_path) not in text
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


def test_only_the_menus_models_unless_any_model_is_allowed(tmp_path):
    from restore.page.handlers import Page
    from restore.settings.model_spec import BUNDLED, celebahq_available

    garbage = tmp_path / "models" / "broken.ckpt"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a checkpoint")
    page = Page(tmp_path / "page", specs=[str(garbage)])
    assert page.models.menu == [BUNDLED, *(["celebahq"] if celebahq_available() else []), "broken.ckpt"]
    refusals = {_start(page, model=m) for m in (str(garbage), str(tmp_path / "none.ckpt"), "/etc/passwd", "x")}
    assert len(refusals) == 1, refusals  # the same line whether the path exists or not
    [refusal] = refusals
    assert "offers only the models of its menu" in refusal and str(tmp_path) not in refusal
    # the menu's broken model, and with --allow-any-model a typed one: one line, no folder left, no path
    for where, model in ((page, "broken.ckpt"), (Page(tmp_path / "any", allow_any_model=True), str(garbage)),
                         (Page(tmp_path / "any", allow_any_model=True), str(tmp_path / "none.ckpt"))):
        text = _start(where, model=model)
        assert text.startswith("**Cannot start:** model ") and "does not load" in text and "\n" not in text, text
        assert str(tmp_path) not in text and not re.search(r"(^|[\s'\"(])/\w", text), text  # no absolute path
        assert list((where.root / "runs").iterdir()) == [] and where.models.priors == {}


def test_at_most_max_models_stay_loaded(tmp_path, tiny_model_dir):
    import shutil

    from restore.page.handlers import Page

    specs = []
    for name in ("a", "b", "c"):
        shutil.copytree(tiny_model_dir, tmp_path / "models" / name)
        specs.append(str(tmp_path / "models" / name))
    pinned = object()
    page = Page(tmp_path / "page", {"pinned": pinned}, specs=specs, max_models=2)
    assert page.models.menu[-4:] == ["a", "b", "c", "pinned"]
    loaded = [page.models.load(name)[1] for name in ("a", "b")]
    assert list(page.models.priors) == specs[:2]
    assert page.models.load("a")[1] is loaded[0]  # reused, and now the most recently used
    page.models.load("c")
    assert list(page.models.priors) == [specs[0], specs[2]]  # b, the least recently used, dropped
    assert page.models.load("pinned") == (None, pinned) and len(page.models.priors) == 2  # programmatic models never count
    page.models.load("b")
    assert list(page.models.priors) == [specs[2], specs[1]]
    with pytest.raises(UsageError, match="max-models must be"):
        Page(tmp_path / "page", max_models=0)


def test_a_click_reaches_only_its_own_run(tmp_path):
    from types import SimpleNamespace

    from restore.page.handlers import Active, Page

    class Session:
        status, alive, stopped = "running", [1, 2], False

        def stop(self):
            self.stopped = True

    page = Page(tmp_path)
    mine = Active(Session(), folder=None, shown=[1, 2], waiting=True)
    page.active["a"] = mine
    for other in ("b", None, ""):
        page.stop(_Request(other))
        page.keep_all(_Request(other))
        assert page.select(None, SimpleNamespace(index=0), _Request(other))[0] == {"__type__": "update"}
        assert page.canvas(_Request(other)) == {"__type__": "update", "visible": False}
    assert not mine.session.stopped and mine.decisions.empty()
    page.keep_all(_Request("a"))
    assert mine.decisions.get_nowait() is None


def test_an_upload_over_max_pixels_is_refused_from_its_header(tmp_path, monkeypatch):
    """A PNG whose header claims 5000 x 5000 but whose data is junk: refused as too large, which it
    could not be had its data been decoded (that would fail on the junk)."""
    import struct
    import zlib

    from PIL import ImageFile

    from restore.page.handlers import Page

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path = tmp_path / "claims.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 5000, 5000, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", b"junk" * 10) + chunk(b"IEND", b""))
    decoded = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(im.size) or load(im))
    page = Page(tmp_path / "page", max_pixels=1_000_000)
    image, text = page.load_input(str(path))
    assert image is None and decoded == []
    assert text == ("**claims.png is too large: 5000x5000 = 25,000,000 pixels, over this page's limit of 1,000,000; "
                    "upload a smaller image**")
    small = tmp_path / "small.png"
    Image.new("RGB", (1000, 1000)).save(small)
    assert page.load_input(str(small))[1].startswith("Loaded small.png (1000x1000)")
    assert page.load_input(str(tmp_path / "notes.png"))[1].startswith("**notes.png is not an image** (no such file)")
    # the editor's image, decoded by Gradio before the Start handler: refused from its header too
    import gradio as gr
    from gradio.data_classes import FileData

    from restore.page.layout import bounded
    from restore.page.limits import Refused

    editor = bounded(gr.ImageEditor(type="pil", image_mode="RGBA", render=False), page.max_pixels)
    refused = editor.convert_and_format_image(FileData(path=str(path), orig_name="claims.png"), flatten_on_white=True)
    assert isinstance(refused, Refused) and (5000, 5000) not in decoded
    assert _start(page, editor={"background": refused, "layers": [], "composite": refused}) == (
        "**Cannot start:** claims.png is too large: 5000x5000 = 25,000,000 pixels, over this page's limit of "
        "1,000,000; upload a smaller image")
    assert editor.convert_and_format_image(FileData(path=str(small), orig_name="small.png")).size == (1000, 1000)


def test_messages_name_files_not_server_paths(tmp_path):
    from restore.page.handlers import Page
    from restore.page.limits import public

    assert public("cannot read image /srv/page/runs/abc/input.png: not an image") == \
        "cannot read image input.png: not an image"
    assert public("model '/a/b/m.ckpt' and ~/x/y.pt, sr4 [0, 1] 1/2 google/ddpm-x") == \
        "model 'm.ckpt' and y.pt, sr4 [0, 1] 1/2 google/ddpm-x"
    spaced = tmp_path / "a folder with spaces"
    assert public(f"cannot write {spaced}/runs/x/out/final.png: disk full", spaced) == \
        "cannot write final.png: disk full"
    page = Page(spaced)
    assert page._said(OSError(28, "No space left on device", str(spaced / "runs" / "x" / "input.png"))) == \
        "No space left on device: input.png"


def test_the_blocks_show_the_started_models_and_limits(tmp_path, tiny_model_dir):
    """The page's components as the browser gets them (the Blocks config), for both menus."""
    from restore.page.handlers import Page
    from restore.page.layout import build
    from restore.settings.model_spec import BUNDLED, celebahq_available

    for allow in (False, True):
        page = Page(tmp_path, {"extra": object()}, specs=[str(tiny_model_dir), BUNDLED], allow_any_model=allow,
                    max_candidates=5, max_calls=50)
        config = build(page).get_config_file()
        components = {c["props"].get("elem_id"): c for c in config["components"]}
        menu = components["model"]
        assert menu["type"] == "dropdown" and menu["props"]["allow_custom_value"] is allow
        assert [v for _, v in menu["props"]["choices"]] == [
            BUNDLED, *(["celebahq"] if celebahq_available() else []), "tiny-ddpm", "extra"]
        assert page.models.choices["tiny-ddpm"] == str(tiny_model_dir)
        assert components["candidates"]["type"] == "slider" and components["candidates"]["props"]["maximum"] == 5
        assert [components[k]["type"] for k in ("outer", "inner", "steps", "seed", "sigma_y", "input")] == [
            "number"] * 5 + ["imageeditor"]
        assert any("At most 50 network calls" in str(c["props"].get("value")) for c in config["components"])
        shown = json.dumps([c["props"] for c in config["components"]], default=str)
        assert str(tiny_model_dir) not in shown and str(tmp_path) not in shown  # no server path in the page
