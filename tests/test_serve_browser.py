"""The web app in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

A person's path through the page: drop a clip on it, pick x2 and a model, start the job, watch the
progress bar move, play the finished video, and drag the before/after slider. Screenshots of each
state go to the test's temporary folder (and to ``$STREAMSR_SCREENSHOTS`` where that is set).
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serving import Server

pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("STREAMSR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)")
# Chromium's own background traffic (updates, sync, safe browsing) has no network to reach here.
QUIET = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def shoot(page: object, name: str, folder: Path, element: str | None = None, *, whole: bool = False) -> bytes:
    picture = page.locator(element).screenshot() if element else page.screenshot(full_page=whole)
    (folder / f"{name}.png").write_bytes(picture)
    if extra := os.environ.get("STREAMSR_SCREENSHOTS"):
        Path(extra).mkdir(parents=True, exist_ok=True)
        (Path(extra) / f"{name}.png").write_bytes(picture)
    return picture


SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "media" / "sample.mp4"
"""The clip that ships in the repository: 2 s of *Big Buck Bunny*, 212x120, 24 fps, 5.1 AAC."""


def test_a_person_upscales_a_clip_in_the_browser(tmp_path: Path) -> None:
    clip = SAMPLE
    root = tmp_path / "root"
    root.mkdir()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with Server(root, "--segment-seconds", "0.5") as server, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=QUIET)
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url)
        page.wait_for_selector("#preset option", state="attached")
        shoot(page, "1-empty", shots)

        # Drop the clip on the drop zone, as a file dragged from the desktop arrives.
        data = base64.b64encode(clip.read_bytes()).decode()
        dropped = page.evaluate_handle("""([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "video/mp4" }));
            return transfer;
        }""", [clip.name, data])
        page.dispatch_event("#drop", "drop", {"dataTransfer": dropped})
        row = page.locator("#files tbody tr.selected")
        row.wait_for()
        assert row.locator("td").nth(0).inner_text() == "uploads/sample.mp4"
        assert row.locator("td").nth(1).inner_text() == "212×120, 24 fps"
        assert row.locator("td").nth(3).inner_text() == "aac"
        assert (root / "uploads" / clip.name).read_bytes() == clip.read_bytes()
        shoot(page, "2-dropped", shots)

        # x2 with the quality model: slow enough on a CPU that the bar is seen moving.
        page.check("input[name=size][value=x2]")
        page.select_option("#model", "safdn-x2")
        page.click("#estimate")
        page.wait_for_function("document.querySelector('#estimate-out').textContent.includes('measured here')")
        estimate = page.inner_text("#estimate-out")
        assert estimate.startswith("safdn-x2: ") and "safdn-tiny-x2: " in estimate, estimate
        page.click("#start")
        bar = page.locator("#jobs progress").first
        seen: list[float] = []
        deadline = time.monotonic() + 300
        while "done" not in (page.locator("#jobs .job").first.get_attribute("class") or ""):
            assert time.monotonic() < deadline, "the job did not finish"
            value = float(bar.get_attribute("value") or 0)
            if not seen or value != seen[-1]:
                seen.append(value)
                if 0 < value < 48 and not (shots / "3-running.png").exists():
                    shoot(page, "3-running", shots)
            time.sleep(0.05)
        assert any(0 < v < 48 for v in seen), f"the bar jumped from start to end: {seen}"
        assert seen == sorted(seen)

        # The finished video plays in the page: its length and size as the player reads them.
        length = page.locator("#jobs .job .length").first
        page.wait_for_function("document.querySelector('#jobs .job .length')?.textContent.includes('s')")
        assert length.inner_text() == "424×240, 2.0 s"
        video = page.locator("#jobs .job video").first
        assert video.evaluate("v => v.duration") == pytest.approx(2.0, abs=0.05)
        href = page.locator("#jobs .job a.download").first.get_attribute("href")
        assert href == "media/upscaled/sample_x2.mp4?download=1"
        shoot(page, "4-done", shots)

        # Before/after: dragging the slider moves the boundary between bicubic and the model.
        page.click("#jobs .job button.compare")
        page.wait_for_function("document.querySelector('#compare-what').textContent.includes('frame at')")
        page.locator("#ba").scroll_into_view_if_needed()
        middle = shoot(page, "5-compare-middle", shots, "#ba")
        shoot(page, "6-page", shots, whole=True)
        box = page.locator("#ba").bounding_box()
        page.mouse.click(box["x"] + box["width"] * 0.9, box["y"] + box["height"] / 2)
        assert page.eval_on_selector("#slider", "s => Number(s.value)") >= 85
        clip_right = page.eval_on_selector("#before", "i => parseFloat(i.style.clipPath.split(' ')[1])")
        assert clip_right <= 15  # bicubic now covers 85% or more from the left
        moved = shoot(page, "7-compare-right", shots, "#ba")
        a, b = (np.asarray(Image.open(BytesIO(x)).convert("RGB")).astype(int) for x in (middle, moved))
        assert a.shape == b.shape
        w = a.shape[1]
        # The stretch between the two boundaries changed from the model's picture to bicubic's; the
        # left of the old boundary showed bicubic both times.
        assert np.abs(a[:, int(w * 0.55):int(w * 0.85)] - b[:, int(w * 0.55):int(w * 0.85)]).mean() > 0.5
        assert np.abs(a[:, : int(w * 0.45)] - b[:, : int(w * 0.45)]).mean() < 0.5
        browser.close()
        assert errors == []
