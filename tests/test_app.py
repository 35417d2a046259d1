"""The page's command (restore.cli.app, behind scripts/app.py) and the page's pieces that need no browser: the mask drawn on the input, the
host warning, bad arguments."""

from __future__ import annotations

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
