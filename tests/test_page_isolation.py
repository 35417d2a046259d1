"""People using the page at once are kept apart, and what one person may ask of the server is
bounded: against the real server (restore.page.layout.serve on 127.0.0.1, the slowed tiny model of
tests/test_page.py), with person A in headless Chromium and person B a plain HTTP client (httpx,
with a cookie of its own) that knows where A's files lie on disk.

- nothing of the page's folder is served by its path (Gradio's file route answers 403), run folders
  have unguessable names, what the browser gets are Gradio's cache copies under a secret-seeded hash;
- B's Stop and Keep all (with no run of its own) do not touch A's run; B naming A's upload or A's
  result as its own input is refused (tests/test_page_uploads.py: every event, every path);
- the model menu holds exactly the models the server was started with; a typed one is refused
  with the same line whether or not it exists;
- an empty, NaN, infinite, non-numeric or out-of-range field, or an upload over max_pixels, gets a
  one-line message, no traceback, and leaves no run folder; no message names a server path."""

from __future__ import annotations

import hashlib
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from PIL import Image
from test_page import ARGS, CHROMIUM, EXAMPLE, TIMEOUT, SlowPrior, _free_port, setup_run

pytestmark = pytest.mark.browser

MAX_CALLS, MAX_CANDIDATES = 40, 4


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("isolation")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(root / "uploads"))  # as scripts/app.py does, before the import
    from restore.models.prior import load_prior
    from restore.page.layout import serve

    demo, page, url = serve("127.0.0.1", _free_port(), root=root, block=False, quiet=True,
                            models={"slow-tiny": SlowPrior(load_prior(str(tiny_model_dir)), 0.1)},
                            specs=[str(tiny_model_dir)], max_calls=MAX_CALLS, max_candidates=MAX_CANDIDATES)
    yield SimpleNamespace(demo=demo, page=page, url=url.rstrip("/"), root=root, tiny=tiny_model_dir)
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT)
    if not os.path.exists(CHROMIUM):
        pytest.fail("Chromium not found: apt-get install -y chromium (.ci/run installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def person(browser, server):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1100})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT)
    pg.goto(server.url)
    yield pg
    context.close()


# -- a plain HTTP client: person B ----------------------------------------------------------
def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def file_url(server, path: Path | str) -> str:
    return f"{server.url}/gradio_api/file={urllib.parse.quote(str(path))}"


def client(server) -> httpx.Client:
    """A plain HTTP client that keeps its cookies, as a browser does: the page knows it by the
    cookie of its first answer (restore.page.uploads)."""
    return httpx.Client(base_url=server.url, timeout=120)


def answer(server, api_name: str, data: list, http: httpx.Client | None = None) -> tuple[str, Any]:
    """One event through Gradio's HTTP API (from `http`, or a client of its own):
    ("complete", the last data it sends) or ("error", its message)."""
    http = http or client(server)
    body = json.dumps({"data": data})  # NaN and infinity as Python writes them: what a client may send
    event = http.post(f"/gradio_api/call/{api_name}", content=body,
                      headers={"Content-Type": "application/json"}).json()["event_id"]
    stream = http.get(f"/gradio_api/call/{api_name}/{event}").text
    kind, _, rest = stream.rstrip().rpartition("event: ")[2].partition("\ndata: ")
    body = json.loads(rest.strip().splitlines()[0])
    return kind, body if kind == "complete" else body.get("error")


def call(server, api_name: str, data: list, http: httpx.Client | None = None) -> list:
    """One event through Gradio's HTTP API: the last data it sends (it must complete)."""
    kind, body = answer(server, api_name, data, http)
    assert kind == "complete", body
    return body


def upload(http: httpx.Client, path: Path) -> str:
    """Upload a file as the browser does (multipart to /gradio_api/upload): its path on the server."""
    [where] = http.post("/gradio_api/upload", files={"files": (path.name, path.read_bytes())}).json()
    return where


def start(server, editor=None, http: httpx.Client | None = None, **fields) -> str:
    """The Start button through the HTTP API: its status line."""
    values = {**dict(task="sr4", sigma_y=0, model="slow-tiny", solver="nested", outer=1, inner=1, steps=20,
                     candidates=1, seed=0, mode="simulation"), **fields}
    order = ("task", "sigma_y", "model", "solver", "outer", "inner", "steps", "candidates", "seed", "mode")
    return call(server, "run", [editor, None, *(values[k] for k in order)], http)[0]


def runs(server) -> list[Path]:
    folder = server.root / "runs"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def assert_public(server, *texts: str) -> None:
    """Messages the page shows: one line each (a status may add its scores below), no server path."""
    for text in texts:
        assert str(server.root) not in text and str(server.root.resolve()) not in text, text
        assert "Traceback" not in text and "/runs/" not in text, text


def editor_of(path: str) -> dict:
    image = {"path": path, "meta": {"_type": "gradio.FileData"}, "orig_name": Path(path).name}
    return {"background": image, "layers": [], "composite": image, "id": None}


# -- the tests ------------------------------------------------------------------------------
def test_the_menu_holds_only_the_started_models(server):
    from restore.settings.model_spec import BUNDLED, celebahq_available

    components = {c["props"].get("elem_id"): c for c in server.demo.config["components"]}
    menu = components["model"]["props"]
    names = [value for _, value in menu["choices"]]
    assert names == [BUNDLED, *(["celebahq"] if celebahq_available() else []), server.tiny.name, "slow-tiny"]
    assert menu["allow_custom_value"] is False and not any("/" in n for n in names)  # no server path in the menu
    assert components["candidates"]["props"]["maximum"] == MAX_CANDIDATES


def test_a_typed_model_is_refused_alike_whether_or_not_it_exists(server):
    before = runs(server)
    there = start(server, model=str(server.tiny))  # a real folder on the server, not offered by this path
    missing = start(server, model="/no/such/model.ckpt")
    outside = start(server, model="../../../etc/passwd")
    assert there == missing == outside and "offers only the models of its menu" in there, (there, missing, outside)
    assert_public(server, there)
    assert str(server.tiny) not in there and runs(server) == before


def test_two_people_are_kept_apart(server, person):
    """A restores in the browser; B, with no run of its own, cannot steer it, and cannot fetch its
    files by their paths even knowing them; A's downloads are cache copies under a seeded hash."""
    from playwright.sync_api import expect

    seen = []
    setup_run(person, candidates=2, outer=2, inner=1)
    expect(person.locator("#status")).to_contain_text("Click a candidate")
    seen.append(person.locator("#status").inner_text())
    [mine] = [a for a in server.page.active.values() if a.session.status == "running"]
    # B presses Stop and Keep all (the events the page's buttons send, from a session of its own)
    assert call(server, "stop", []) == [] and call(server, "keep_all", []) == []
    assert mine.waiting and mine.session.status == "running" and mine.decisions.empty()
    expect(person.locator("#status")).to_contain_text("Click a candidate")
    person.locator("#keep").click()
    expect(person.locator("#status")).to_contain_text("Complete")
    seen.append(person.locator("#status").inner_text())

    # the run's folder: a random name, never served by its path
    folder = mine.path
    assert folder.parent == server.root / "runs" and re.fullmatch(r"[0-9a-f]{32}", folder.name), folder
    for path in (folder / "input.png", folder / "out" / "final.png", folder / "out" / "metrics.json",
                 folder / "plot_002.png", folder, server.root / "runs", server.root):
        assert path.exists()
        status, _ = fetch(file_url(server, path))
        assert status == 403, (path, status)
        status, _ = fetch(f"{server.url}/gradio_api/file/{urllib.parse.quote(str(path))}")  # the older route
        assert status in (403, 404), (path, status)

    # what A was handed: Gradio's cache copy, under a secret-seeded hash of its content
    link = person.locator("#files a[download='final.png']").first.get_attribute("href")
    served = Path(urllib.parse.unquote(link.split("file=", 1)[1]))
    content = (folder / "out" / "final.png").read_bytes()
    assert served.is_relative_to(server.root / "uploads") and served.read_bytes() == content
    digest = served.parent.name
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and digest != hashlib.sha256(content).hexdigest()
    assert fetch(link) == (200, content)  # reachable through its cache URL only
    # B names A's files as its own input (A's upload, as its link shows it, and A's result): refused
    from restore.page.uploads import COOKIE, REFUSED

    [cookie] = [c for c in person.context.cookies() if c["name"] == COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    uploaded = person.locator("#upload a[href*='file=']").first.get_attribute("href")
    b = client(server)
    for href in (uploaded, link):
        path = urllib.parse.unquote(href.split("file=", 1)[1])
        assert answer(server, "load_input_1", [editor_of(path)["background"]], b) == ("error", REFUSED)
        assert answer(server, "run", [editor_of(path), None, "sr4", 0, "slow-tiny", "nested", 1, 1, 20, 1, 0,
                                      "simulation"], b) == ("error", REFUSED)
    metrics = json.loads((folder / "out" / "metrics.json").read_text())
    assert metrics["input"] == "input.png" and str(server.root) not in json.dumps(metrics)

    # a second run: another random name
    person.locator("#candidates input[type=number]").fill("1")
    person.locator("#candidates input[type=number]").press("Enter")
    person.locator("#start").click()
    expect(person.locator("#status")).not_to_contain_text("showing candidate")  # the first run's last line
    expect(person.locator("#status")).to_contain_text("Complete")
    seen.append(person.locator("#status").inner_text())
    names = [r.name for r in runs(server)]
    assert len(names) == 2 and len(set(names)) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", n) for n in names)
    assert_public(server, *seen)


def test_bad_fields_get_one_line_and_leave_no_folder(server, person):
    from playwright.sync_api import expect

    before = runs(server)
    person.locator("#upload input[type=file]").set_input_files(str(EXAMPLE))
    expect(person.locator("#status")).to_contain_text("Loaded face.png")
    seen = []
    for field, value, said in (("#outer", "", "Outer steps is empty"),
                               ("#outer", "41", f"over this page's limit of {MAX_CALLS}")):
        person.locator(f"{field} input").fill(value)
        person.locator("#start").click()
        expect(person.locator("#status")).to_contain_text(said)
        seen.append(person.locator("#status").inner_text())
    # the same through the HTTP API, with what a browser cannot send
    for fields, said in ((dict(sigma_y=float("nan")), "sigma_y must be"), (dict(sigma_y=2), "sigma_y must be"),
                         (dict(sigma_y=None), "sigma_y is empty"), (dict(seed=float("inf")), "Seed must be"),
                         (dict(steps="many"), "DDRM steps must be"), (dict(outer=2.5), "Outer steps must be"),
                         (dict(outer=0), "Outer steps must be"), (dict(inner=None), "Inner steps is empty"),
                         (dict(candidates=MAX_CANDIDATES + 1), f"at most {MAX_CANDIDATES} on this page"),
                         (dict(solver="ddrm", steps=MAX_CALLS + 1), f"over this page's limit of {MAX_CALLS}"),
                         (dict(steps=1001), "DDRM steps must be")):
        text = start(server, **fields)
        assert text.startswith("**Cannot start:**") and said in text and "\n" not in text, (fields, text)
        seen.append(text)
    assert_public(server, *seen)
    assert runs(server) == before


def test_an_upload_over_max_pixels_is_refused_from_its_header(server, person, tmp_path, monkeypatch):
    """A 5000 x 5000 PNG (a few kB on disk, 1 bit per pixel) is refused before any decoding: in the
    upload's handler, and in the editor's payload sent straight to Start."""
    from PIL import ImageFile
    from playwright.sync_api import expect

    big = tmp_path / "huge.png"
    Image.new("1", (5000, 5000)).save(big)
    assert big.stat().st_size < 200_000
    decoded = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda im: decoded.append(im.size) or load(im))
    before = runs(server)
    person.locator("#upload input[type=file]").set_input_files(str(big))
    expect(person.locator("#status")).to_contain_text("huge.png is too large")
    text = person.locator("#status").inner_text()
    assert "5000x5000" in text and "4,000,000" in text and "\n" not in text.strip()
    # straight to Start, past the upload's handler: the editor's guard refuses it from its header
    http = client(server)
    said = start(server, editor=editor_of(upload(http, big)), http=http)
    assert "huge.png is too large" in said and "\n" not in said, said
    assert (5000, 5000) not in decoded, decoded
    assert_public(server, text, said)
    assert runs(server) == before
