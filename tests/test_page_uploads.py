"""The page takes a file only as its browser's own upload (restore.page.uploads), against the real
server (restore.page.layout.serve on 127.0.0.1, a tiny model): raw HTTP (httpx, each client with
its own cookie jar: a browser) on every event, by Gradio's direct route and its queue, and
gradio_client. A file value naming anything else (a private image outside the page's folder, a
root-only file, /etc/shadow, a folder, a missing path, another browser's upload or result, a URL)
is refused before it is read, with the same line whatever it names, and nothing is copied; a
browser's own upload, the example and the downloads still work (the browser itself:
tests/test_page.py and tests/test_page_isolation.py)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from PIL import Image
from test_page import EXAMPLE, SlowPrior, _free_port

from restore.page.uploads import COOKIE, REFUSED, Received, file_values, token_of

# -- what the server's process opens: every open/listdir/copy while armed (an audit hook stays for the
# interpreter's life, so it is installed once and records only while a test arms it)
_OPENED: list[str] | None = None


def _audit(event: str, args: tuple) -> None:
    if _OPENED is not None and event in ("open", "os.listdir", "os.scandir", "shutil.copyfile", "shutil.copytree"):
        _OPENED.extend(str(a) for a in args[:2] if isinstance(a, (str, bytes, os.PathLike)))


sys.addaudithook(_audit)


@contextlib.contextmanager
def opens():
    """The paths this process opens, lists or copies within the block."""
    global _OPENED
    _OPENED = []
    try:
        yield _OPENED
    finally:
        _OPENED = None


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("uploads-page")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(root / "uploads"))  # as scripts/app.py does, before the import
    from gradio.utils import get_upload_folder

    from restore.models.prior import load_prior
    from restore.page.layout import serve

    demo, page, url = serve("127.0.0.1", _free_port(), root=root, block=False, quiet=True,
                            models={"slow-tiny": SlowPrior(load_prior(str(tiny_model_dir)), 0.0)})
    yield SimpleNamespace(demo=demo, page=page, url=url.rstrip("/"), root=root, cache=Path(get_upload_folder()))
    demo.close()


@pytest.fixture(scope="module")
def secrets_(tmp_path_factory):
    """Files of the server's machine outside the page's folders: a private image, a root-only file."""
    folder = tmp_path_factory.mktemp("private")
    image = folder / "private.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(image)
    root_only = folder / "root-only.png"
    root_only.write_bytes(image.read_bytes())
    root_only.chmod(0o600)
    return SimpleNamespace(image=image, root_only=root_only, folder=folder)


# -- a browser without a browser: an httpx client keeps its cookie as a browser does ------------
def browser(server) -> httpx.Client:
    http = httpx.Client(base_url=server.url, timeout=120)
    http.get("/config").raise_for_status()  # the page's first answer sets its cookie
    return http


def upload(http: httpx.Client, path: Path) -> str:
    [where] = http.post("/gradio_api/upload", files={"files": (path.name, path.read_bytes())}).json()
    return where


def fd(path) -> dict:
    return {"path": path if not isinstance(path, Path) else str(path), "meta": {"_type": "gradio.FileData"}}


def editor(image=None, *, key: str = "background", blob: str | None = None) -> dict:
    value = {"background": None, "layers": [], "composite": None, "id": blob}
    if image is not None:
        value[key] = [image] if key == "layers" else image
    return value


def direct(http: httpx.Client, api_name: str, data: list):
    """One event by Gradio's direct route (/gradio_api/run/NAME): ("ok", data) or ("error", text)."""
    response = http.post(f"/gradio_api/run/{api_name}", json={"data": data})
    body = response.json()
    return ("ok", body["data"]) if response.status_code == 200 else ("error", body.get("error"))


def called(http: httpx.Client, api_name: str, data: list):
    """One event by Gradio's HTTP API (/gradio_api/call/NAME, then its stream; a generator's last
    values): ("ok", data) or ("error", text)."""
    event = http.post(f"/gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
    stream = http.get(f"/gradio_api/call/{api_name}/{event}").text
    kind, _, rest = stream.rstrip().rpartition("event: ")[2].partition("\ndata: ")
    body = json.loads(rest.strip().splitlines()[0])
    return ("ok", body) if kind == "complete" else ("error", body.get("error"))


def queued(http: httpx.Client, fn_index: int, data: list, event_data=None):
    """One event by the browser's route (/gradio_api/queue/join, then its stream): ("ok", data) or
    ("error", text)."""
    session = uuid.uuid4().hex[:11]
    http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                              "event_data": event_data, "trigger_id": None}).raise_for_status()
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                output = message.get("output") or {}
                return ("ok", output["data"]) if message.get("success") else ("error", output.get("error"))
    raise AssertionError("the event's stream ended without completing")


def fns(server) -> dict[str, object]:
    return {fn.api_name: fn for fn in server.demo.fns.values()}


def run_args(image_editor, reference=None, **fields) -> list:
    values = {**dict(task="sr4", sigma_y=0, model="slow-tiny", solver="nested", outer=1, inner=1, steps=20,
                     candidates=1, seed=0, mode="simulation"), **fields}
    order = ("task", "sigma_y", "model", "solver", "outer", "inner", "steps", "candidates", "seed", "mode")
    return [image_editor, reference, *(values[k] for k in order)]


def contents(*folders: Path) -> dict[str, int]:
    """Every file under the folders, with its size."""
    return {str(p): p.stat().st_size for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def someone_else(server, tmp_path_factory):
    """Another browser's upload and the cache copy of its result (which its download link names).
    Its own image: Gradio names an upload by a hash of its content, so a browser that uploads the
    same bytes gets the same path, as its own."""
    theirs = tmp_path_factory.mktemp("theirs") / "theirs.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(theirs)
    other = browser(server)
    mine = upload(other, theirs)
    kind, data = called(other, "run", run_args(editor(fd(mine))))
    assert kind == "ok", data
    final = next(f["path"] for f in data[4] if f["orig_name"] == "final.png")
    return SimpleNamespace(upload=mine, result=final)


def hostile(server, secrets_, someone_else) -> dict[str, object]:
    """Paths a client might name that are not its own: what each is."""
    named = {"a private image outside the page's folder": str(secrets_.image),
             "a root-only file": str(secrets_.root_only),
             "a folder": str(secrets_.folder),
             "a missing path": str(secrets_.folder / "missing.png"),
             "another browser's upload": someone_else.upload,
             "another browser's result (its download's path)": someone_else.result,
             "the upload folder": str(server.cache),
             "a missing name in the upload folder": str(server.cache / "missing.png"),
             "a relative path": "../../../../../../etc/passwd",
             "a URL": "https://example.com/face.png",
             "not a string": 7}
    if Path("/etc/shadow").exists():
        named["/etc/shadow"] = "/etc/shadow"
    return named


def _never_opened(opened: list[str], targets) -> None:
    touched = [p for p in opened for t in targets if isinstance(t, str) and t.startswith("/") and p == t]
    assert not touched, touched


# -- the tests ---------------------------------------------------------------------------------
def test_every_file_value_on_every_event_is_refused_unless_it_is_the_browsers_own(server, secrets_, someone_else):
    """Every event of the page (by the direct route, and the run event also by the queue), every
    input position (a file value in a number field too: Gradio would copy it), each hostile path:
    the same one line, nothing opened, nothing new in the page's folders or Gradio's cache."""
    http = browser(server)
    named = hostile(server, secrets_, someone_else)
    before = contents(server.root, server.cache)
    with opens() as opened:
        answers = attack_every_event(server, http, named)
    assert len(answers) == (sum(len(fn.inputs) for fn in fns(server).values()) + 8) * len(named)
    wrong = [(how, answer) for how, answer in answers if answer != ("error", REFUSED)]
    assert not wrong, wrong[:5]
    _never_opened(opened, named.values())
    assert contents(server.root, server.cache) == before


def attack_every_event(server, http, named) -> list[tuple[str, object]]:
    """(how, answer) for each hostile path in each input of each event, by each route."""
    answers = []
    for name, fn in fns(server).items():
        for i, block in enumerate(fn.inputs):
            for what, path in named.items():
                data = [None] * len(fn.inputs)
                data[i] = editor(fd(path)) if type(block).__name__ == "ImageEditor" else fd(path)
                answers.append((f"{what} in {name}'s input {i}", direct(http, name, data)))
    run = fns(server)["run"]
    for key in ("background", "composite", "layers"):
        for what, path in named.items():
            answers.append((f"{what} as the editor's {key}", direct(http, "run", run_args(editor(fd(path), key=key)))))
            answers.append((f"{what} as the editor's {key}, queued",
                            queued(http, run._id, run_args(editor(fd(path), key=key)))))
    for what, path in named.items():  # without Gradio's meta, and as the reference
        answers.append((f"{what} without meta", direct(http, "run", run_args(editor({"path": path})))))
        answers.append((f"{what} as the reference", direct(http, "run", run_args(None, fd(path), mode="observed"))))
    return answers


def test_another_browsers_editor_blobs_are_refused(server):
    """The image editor can also take its images as blobs posted under an id the browser picks:
    that id is honoured only for the browser that posted them."""
    # Gradio's component_server route runs a component's server functions outside process_api (where
    # restore.page.uploads checks): the page's only one is the editor's, which guard wraps
    assert {(type(b).__name__, f.__name__) for b in server.demo.blocks.values()
            for f in getattr(b, "server_fns", [])} == {("ImageEditor", "accept_blobs")}
    owner, other = browser(server), browser(server)
    editor_id = next(b._id for b in server.demo.blocks.values() if getattr(b, "elem_id", None) == "input")
    blob = uuid.uuid4().hex
    fields = {"session_hash": "s", "component_id": str(editor_id), "fn_name": "accept_blobs", "type": "background",
              "index": "null", "id": blob}
    posted = owner.post("/gradio_api/component_server", data=fields,
                        files={"file": ("background.png", EXAMPLE.read_bytes(), "image/png")})
    assert posted.status_code == 200, posted.text
    assert direct(other, "run", run_args(editor(blob=blob))) == ("error", REFUSED)
    kind, data = called(owner, "run", run_args(editor(blob=blob)))
    assert kind == "ok" and "Complete" in data[0], data


def test_a_browsers_own_upload_works_in_every_field(server):
    """The browser's own uploads: the upload field, the editor, the reference; its downloads are
    served; the page's cookie is HttpOnly and SameSite=Strict, and a made-up one is replaced."""
    http = browser(server)
    cookie = next(c for c in http.cookies.jar if c.name == COOKIE)
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.get_nonstandard_attr("SameSite") == "Strict"
    mine = upload(http, EXAMPLE)
    kind, data = direct(http, "load_input_1", [fd(mine)])
    assert kind == "ok" and data[1].startswith("Loaded face.png"), data
    shown = data[0]["background"]["path"]  # what the page put in the editor: this browser may send it back
    kind, data = called(http, "run", run_args(editor(fd(shown))))
    assert kind == "ok" and "Complete" in data[0], data
    for f in data[4]:  # the downloads
        assert http.get(f"/gradio_api/file={f['path']}").status_code == 200
    kind, data = called(http, "run", run_args(editor(fd(mine)), fd(mine), mode="observed", task="deno"))
    assert kind == "ok" and "PSNR" in data[0], data  # the reference was read: scores
    made_up = httpx.Client(base_url=server.url, timeout=60, cookies={COOKIE: "mine"})
    assert token_of(made_up.get("/config").cookies) not in (None, "mine")
    # without cookies every request is a new browser: its upload is not the next request's
    sent = {"files": ("face.png", EXAMPLE.read_bytes())}
    [forgotten] = httpx.post(f"{server.url}/gradio_api/upload", files=sent).json()
    assert direct(httpx.Client(base_url=server.url), "load_input_1", [fd(forgotten)]) == ("error", REFUSED)


def test_the_example_is_handed_to_the_browser_that_picks_it(server):
    http = browser(server)
    kind, data = direct(http, "load_example", [0])  # what a click on the example sends
    assert kind == "ok", data
    [(_, example)] = file_values(data[0])  # the upload field's new value: the example's copy
    kind, data = direct(http, "load_input", [fd(example)])
    assert kind == "ok" and data[1].startswith("Loaded face.png"), data


def test_gradio_client_uploads_its_own_files_and_cannot_name_the_servers(server, secrets_, someone_else,
                                                                          monkeypatch):
    """gradio_client uploads a local file it is given (it reads it itself, then names its upload):
    that works. A client elsewhere cannot read the server's files and would send their paths as
    they are: that is what its upload step, replaced by a verbatim copy, sends here; refused."""
    from gradio_client import Client, handle_file
    from gradio_client.client import Endpoint
    from gradio_client.exceptions import AppError

    client = Client(server.url, verbose=False, download_files=False)
    _, said = client.predict(handle_file(str(EXAMPLE)), api_name="/load_input_1")
    assert said.startswith("Loaded face.png"), said

    monkeypatch.setattr(Endpoint, "_upload_file", lambda self, f, data_index: f)
    named = hostile(server, secrets_, someone_else)
    before = contents(server.root, server.cache)
    with opens() as opened:
        client_attack(client, named)
    _never_opened(opened, named.values())
    assert contents(server.root, server.cache) == before


def client_attack(client, named) -> None:
    from gradio_client.exceptions import AppError

    for path in (p for p in named.values() if isinstance(p, str)):
        for args in (run_args(editor(fd(path))), run_args(editor(fd(path), key="composite")),
                     run_args(None, fd(path), mode="observed")):
            with pytest.raises(AppError) as refused:
                client.predict(*args, api_name="/run")
            assert str(refused.value) == REFUSED
        with pytest.raises(AppError) as refused:
            client.predict(fd(path), api_name="/load_input_1")
        assert str(refused.value) == REFUSED


def test_the_ledger_and_what_counts_as_a_file_value():
    received = Received(max_browsers=2, max_files=2)
    payload = {"background": fd("/a"), "layers": [fd("/b"), None], "composite": {"path": "/c"}, "id": "blob1"}
    assert sorted(file_values(payload)) == [("blob", "blob1"), ("path", "/a"), ("path", "/b"), ("path", "/c")]
    assert list(file_values([1, "x", {"value": {"nested": [fd("/d")]}}])) == [("path", "/d")]
    received.record("A", [("path", "/a"), ("path", "/b"), ("path", "/c")])  # at most 2: /a dropped
    assert not received.holds("A", ("path", "/a")) and received.holds("A", ("path", "/c"))
    assert not received.holds("B", ("path", "/c")) and not received.holds(None, ("path", "/c"))
    assert not received.holds("A", ("path", "/c/../c")) and not received.holds("A", ("path", 7))
    received.record("B", [("path", "/x")])
    received.record("C", [("path", "/y")])  # at most 2 browsers: A, the least recently active, dropped
    assert not received.holds("A", ("path", "/c")) and received.holds("C", ("path", "/y"))
