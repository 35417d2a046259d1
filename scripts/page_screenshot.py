"""The docs' picture of the page during a run: the bundled prior, the example face, sr4 with
3 candidates, caught after the first candidate was chosen and the second outer step arrived.

    python scripts/page_screenshot.py data/figures/page.png

Needs Chromium (apt-get install -y chromium) and the dev extra (Playwright)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import _paths  # noqa: F401  (must come first: see scripts/_paths.py)
from playwright.sync_api import expect, sync_playwright

from restore.page.layout import EXAMPLE, serve


def main(out: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="page-screenshot-"))
    demo, _, url = serve("127.0.0.1", 7870, root=root, block=False, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1250})
            expect.set_options(timeout=600_000)
            page.goto(url)
            page.locator("#upload input[type=file]").set_input_files(str(EXAMPLE))
            expect(page.locator("#status")).to_contain_text("Loaded")
            page.locator("#candidates input[type=number]").fill("3")
            page.locator("#candidates input[type=number]").press("Enter")
            page.locator("#start").click()
            expect(page.locator("#status")).to_contain_text("Click a candidate")
            page.locator("#gallery button.thumbnail-item").nth(1).click()
            expect(page.locator("#status")).to_contain_text("Step 2 of 4")
            page.wait_for_timeout(1500)
            page.screenshot(path=out, full_page=True)
            page.locator("#stop").click()
            expect(page.locator("#status")).to_contain_text("Stopped")
            browser.close()
    finally:
        demo.close()
        shutil.rmtree(root, ignore_errors=True)
    from PIL import Image  # 4/5 size, 256 colours: a small file for the docs

    image = Image.open(out).convert("RGB")
    image = image.resize((image.width * 4 // 5, image.height * 4 // 5), Image.Resampling.LANCZOS)
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "data/figures/page.png")
