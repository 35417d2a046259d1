"""The web page (scripts/app.py, restore/page/) in a real browser: headless Chromium (Debian's
package, which .ci/run installs) driven by Playwright. The page is served in this process with a
tiny random model slowed to 0.6 s per network call, so that a person's clicks land mid-run."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "data" / "examples" / "face.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TIMEOUT = 90_000  # ms: generous, for a loaded machine
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


class SlowPrior:
    """A prior whose every network call takes at least `delay` seconds. Marked as trained at one
    size (as CelebA-HQ's), so the page restores the 256x256 example at the tiny model's 32x32."""

    fixed_size = True

    def __init__(self, prior, delay: float):
        self.prior, self.delay = prior, delay
        self.alphas_cumprod, self.image_size, self.name = prior.alphas_cumprod, prior.image_size, "slow-tiny"

    def __call__(self, x_t, t):
        time.sleep(self.delay)
        return self.prior(x_t, t)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("page")
    os.environ.setdefault("GRADIO_TEMP_DIR", str(root / "uploads"))  # as scripts/app.py does, before the import
    from restore.models.prior import load_prior
    from restore.page.layout import serve

    demo, page, url = serve("127.0.0.1", _free_port(), root=root, block=False, quiet=True,
                            models={"slow-tiny": SlowPrior(load_prior(str(tiny_model_dir)), 0.6)})
    yield url, root
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
def page(browser, server):
    url, _ = server
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 1100})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT)
    hosts = []
    pg.on("request", lambda r: hosts.append(urlparse(r.url).hostname or r.url.split(":")[0]))
    pg.goto(url)
    yield pg
    context.close()
    outside = {h for h in hosts if h not in ("127.0.0.1", "localhost", "data", "blob")}
    assert not outside, f"the page asked for something beyond this machine: {outside}"


def choose(pg, elem_id: str, value: str):
    """Pick `value` in a dropdown by clicking its option (pressing Enter in the filter box can
    race the list's update and keep the old value), then wait until the box shows it."""
    from playwright.sync_api import expect

    box = pg.locator(f"#{elem_id} input")
    box.click()
    box.fill(value)
    pg.locator(f"#{elem_id} [role=option]", has_text=value).first.click()
    expect(box).to_have_value(value)


def setup_run(pg, candidates: int = 1, outer: int = 3, inner: int = 2):
    from playwright.sync_api import expect

    pg.locator("#upload input[type=file]").set_input_files(str(EXAMPLE))
    expect(pg.locator("#status")).to_contain_text("Loaded face.png")
    choose(pg, "model", "slow-tiny")
    pg.locator("#outer input").fill(str(outer))
    pg.locator("#inner input").fill(str(inner))
    if candidates > 1:
        pg.locator("#candidates input[type=number]").fill(str(candidates))
        pg.locator("#candidates input[type=number]").press("Enter")
    pg.locator("#start").click()


def download(pg, name: str) -> Path:
    with pg.expect_download() as info:
        pg.locator("#files a[data-testid=download-link]", has_text="").filter(
            has=pg.locator(f"xpath=self::*[@download='{name}']")).first.click()
    return Path(info.value.path())


def test_watch_stop_and_download(page):
    """sr4, 3 outer x 2 inner: the first preview arrives before the run ends; Stop keeps it."""
    from playwright.sync_api import expect

    setup_run(page)
    expect(page.locator("#latest img")).to_be_visible()
    status = page.locator("#status").inner_text()
    assert "Step 1 of 3" in status and "Complete" not in status, status
    page.locator("#stop").click()
    expect(page.locator("#status")).to_contain_text("Stopped")
    expect(page.locator("#latest img")).to_be_visible()
    metrics = json.loads(download(page, "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["nfe_planned"] == 6 and metrics["nfe_total"] < 6
    assert metrics["task"] == "sr4" and metrics["steps"] and metrics["final"]["psnr"] is not None
    final = np.asarray(Image.open(download(page, "final.png")))
    assert final.shape == (32, 32, 3)


def test_choose_a_candidate(page):
    """K = 2: clicking candidate 2 after the first step continues every candidate from it."""
    from playwright.sync_api import expect

    setup_run(page, candidates=2)
    expect(page.locator("#status")).to_contain_text("Click a candidate")
    thumbs = page.locator("#gallery button.thumbnail-item")
    expect(thumbs).to_have_count(2)
    thumbs.nth(1).click()
    expect(page.locator("#status")).to_contain_text("Step 2 of 3")
    expect(page.locator("#status")).to_contain_text("Click a candidate")
    page.locator("#keep").click()
    expect(page.locator("#status")).to_contain_text("Complete")
    metrics = json.loads(download(page, "metrics.json").read_text())
    assert metrics["status"] == "complete" and metrics["candidates"] == 2
    assert metrics["choices"] == [{"after_step": 1, "choose": 2}]
    assert [s["lead"] for s in metrics["steps"]] == [2, 2, 2]
    # after the last step a click picks the final image
    page.locator("#gallery button.thumbnail-item").nth(0).click()
    expect(page.locator("#status")).to_contain_text("showing candidate 1")
    metrics = json.loads(download(page, "metrics.json").read_text())
    assert metrics["chosen"] == 1 and metrics["choices"][-1] == {"after_step": 3, "choose": 1}


def test_the_example_restores(page):
    """A click on the example loads it (the page hands the browser its copy, which the browser then
    names: restore.page.uploads lets it), and it restores to a downloadable final image."""
    from playwright.sync_api import expect

    page.locator("#example").get_by_text("face.png").first.click()
    expect(page.locator("#status")).to_contain_text("Loaded face.png")
    choose(page, "model", "slow-tiny")
    page.locator("#outer input").fill("1")
    page.locator("#inner input").fill("1")
    page.locator("#start").click()
    expect(page.locator("#status")).to_contain_text("Complete")
    final = np.asarray(Image.open(download(page, "final.png")))
    assert final.shape == (32, 32, 3)
    assert json.loads(download(page, "metrics.json").read_text())["status"] == "complete"


def test_bad_uploads_get_a_message(page, tmp_path):
    from playwright.sync_api import expect

    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    page.locator("#upload input[type=file]").set_input_files(str(text))
    expect(page.locator("#status")).to_contain_text("notes.png is not an image")
    page.locator("#start").click()
    expect(page.locator("#status")).to_contain_text("Cannot start: upload an image")
    page.reload()
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(21 * 1024 * 1024))
    page.locator("#upload input[type=file]").set_input_files(str(big))
    expect(page.get_by_text("exceed the maximum allowed size").first).to_be_visible()


def test_a_second_person_waits_in_the_queue(browser, server, page):
    """One restoration at a time: while the first waits for a choice, the second is queued and
    told so; it runs once the first is done."""
    from playwright.sync_api import expect

    other = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    try:
        other.goto(server[0])
        setup_run(page, candidates=2, outer=2, inner=1)
        expect(page.locator("#status")).to_contain_text("Click a candidate")
        setup_run(other, outer=1, inner=1)
        expect(other.locator("#status")).to_contain_text("queue")
        page.locator("#keep").click()
        expect(page.locator("#status")).to_contain_text("Complete")
        expect(other.locator("#status")).to_contain_text("Complete")
    finally:
        other.context.close()


def test_everything_written_lives_in_the_temporary_folder(server):
    import re
    import urllib.error
    import urllib.request

    url, root = server
    runs = sorted((root / "runs").iterdir())  # the five runs (a start that failed leaves nothing)
    assert len(runs) == 5 and all((r / "input.png").is_file() and (r / "out" / "metrics.json").is_file() for r in runs)
    # each run's folder has a random name, and nothing in it is served by its path (tests/test_page_isolation.py)
    assert all(re.fullmatch(r"[0-9a-f]{32}", r.name) for r in runs)
    for path in (runs[0] / "input.png", runs[0] / "out" / "final.png", runs[0] / "out" / "metrics.json"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{url.rstrip('/')}/gradio_api/file={path}", timeout=30)
        assert refused.value.code == 403
    assert (root / "uploads").is_dir()  # Gradio's uploads and served files
    # nothing of the page's in the repository
    assert not (REPO / ".gradio").exists() and not (REPO / "flagged").exists()


def test_steer_by_region(page, server, tiny_model_dir):
    """K = 2: paint the left half of the latest result, click candidate 2 (kept there), click
    candidate 1 (everywhere else). metrics.json records the region choice with its mask, and the
    final images are those of the same region choice made through the API (same settings, seed
    and mask), which lie closer to candidate 2's whole-choice lineage inside the region and to
    candidate 1's outside it."""
    import torch
    from playwright.sync_api import expect

    from restore import RegionChoice, restore_image
    from restore.models.prior import load_prior
    from restore.settings.schema import Settings

    setup_run(page, candidates=2)
    expect(page.locator("#status")).to_contain_text("Click a candidate")
    canvas = page.locator("#regions canvas").last
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    # the result is shown centred in the canvas, about 0.7 of its height: strokes near its left edge
    cx, cy, h = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, box["height"]
    page.mouse.move(cx - 0.3 * h, cy - 0.3 * h)
    page.mouse.down()
    for i in range(1, 13):  # a zigzag down the left part
        page.mouse.move(cx - (0.3 - 0.1 * (i % 2)) * h, cy + (-0.3 + 0.05 * i) * h, steps=6)
    page.mouse.up()
    thumbs = page.locator("#gallery button.thumbnail-item")
    thumbs.nth(1).click()
    expect(page.locator("#status")).to_contain_text("Regions so far: candidate 2")
    thumbs.nth(0).click()
    expect(page.locator("#status")).to_contain_text("Step 2 of 3")
    page.locator("#keep").click()
    expect(page.locator("#status")).to_contain_text("Complete")
    metrics = json.loads(download(page, "metrics.json").read_text())
    choice = metrics["choices"][0]
    assert choice["after_step"] == 1 and choice["rest"] == 1
    assert choice["regions"] == [{"candidate": 2, "mask": "region_step1_1.png"}]
    assert metrics["steps"][0]["spread"]["mean"] > 0 and metrics["chosen"] == 1
    expect(page.locator("#spread img")).to_be_visible()

    _, root = server
    (out,) = [p.parent for p in root.glob("runs/*/out/metrics.json")
              if json.loads(p.read_text())["choices"][:1] == [choice]]
    mask = np.asarray(Image.open(out / "region_step1_1.png")) > 127
    assert 0 < mask.mean() < 0.8 and mask[:, : mask.shape[1] // 2].sum() > mask[:, mask.shape[1] // 2 :].sum()
    settings = Settings(**metrics["settings"])
    prior = SlowPrior(load_prior(str(tiny_model_dir)), 0.0)  # as the page's model: restored at 32x32
    source = out.parent / "input.png"

    def final(choose):
        r = restore_image(str(source), settings=settings, model=prior, quiet=True, choose=choose)
        return r.finals[1][0].numpy()  # (C, H, W) on [-1, 1]

    ours = final(lambda step, s: RegionChoice([(2, out / "region_step1_1.png")], rest=1) if step.index == 1 else None)
    page_final = np.asarray(Image.open(out / "final.png").convert("RGB")).astype(float).transpose(2, 0, 1)
    assert np.abs((ours + 1) * 127.5 - page_final).max() <= 1.5  # the page's run, reproduced (8-bit rounding)
    two = final(lambda step, s: 2 if step.index == 1 else None)
    one = final(lambda step, s: 1 if step.index == 1 else None)
    inside, outside = torch.from_numpy(mask), torch.from_numpy(~mask)
    d = lambda a, b, where: float(np.abs(a - b)[:, where.numpy()].mean())  # noqa: E731
    assert d(ours, two, inside) < d(ours, one, inside) and d(ours, one, outside) < d(ours, two, outside)
