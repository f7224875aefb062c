"""Open a report in headless Debian Chromium via Playwright and collect what a person would see.

Skips locally when no Chromium is installed, fails under CI=true (``.ci/run`` installs it).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import need

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def chromium_path() -> str:
    """Return the Debian Chromium binary, or skip/fail with the reason."""
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).exists():
            return candidate
    found = shutil.which("chromium")
    need(found is not None, "no Chromium found (apt-get install chromium chromium-driver; .ci/run does this)")
    assert found is not None
    return found


@dataclass
class PageResult:
    """What the page did: console errors, requests outside the file, counts read from the page."""

    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    markers: int = 0
    fences: int = 0
    tracks: int = 0
    track_points: int = 0
    screenshot: Path | None = None
    screenshot_distinct_colours: int = 0
    #: Markers drawn after using the controls: {"type_off:<type>": n, "subject:<id>": n, "time_start": n}.
    filtered: dict[str, int] = field(default_factory=dict)


_EXERCISE = """(subject) => {
  const R = window.GEOFENCE_REPORT, out = {};
  const fire = (el, kind) => el.dispatchEvent(new Event(kind));
  const box = document.querySelector('#types input');
  if (box) {
    box.checked = false; fire(box, 'change'); out['type_off:' + box.value] = R.markerCount();
    box.checked = true; fire(box, 'change');
  }
  const who = document.getElementById('subject');
  if (subject) { who.value = subject; fire(who, 'input'); out['subject:' + subject] = R.markerCount(); }
  who.value = ''; fire(who, 'input');
  const slider = document.getElementById('time');
  slider.value = 0; fire(slider, 'input'); out['time_start'] = R.markerCount();
  slider.value = 1000; fire(slider, 'input'); out['restored'] = R.markerCount();
  return out;
}"""


def open_report(html: Path, screenshot: Path, *, subject: str | None = None) -> PageResult:
    """Load ``html`` from file:// in headless Chromium, screenshot it, then work the controls.

    After the screenshot the first alert-type checkbox is switched off, the subject filter set
    to ``subject`` (when given) and the time slider moved to the start, each in turn; the marker
    counts seen are in :attr:`PageResult.filtered`.
    """
    from playwright.sync_api import sync_playwright

    result = PageResult()
    url = html.resolve().as_uri()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("console", lambda m: result.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: result.console_errors.append(str(e)))
            page.on("request", lambda r: result.outside_requests.append(r.url) if r.url != url else None)
            page.goto(url)
            page.wait_for_function("window.GEOFENCE_REPORT && window.GEOFENCE_REPORT.ready === true")
            result.markers = int(page.evaluate("window.GEOFENCE_REPORT.markerCount()"))
            result.fences = int(page.evaluate("window.GEOFENCE_REPORT.fenceCount()"))
            result.tracks = int(page.evaluate("window.GEOFENCE_REPORT.trackCount()"))
            result.track_points = int(page.evaluate("window.GEOFENCE_REPORT.trackPointsDrawn()"))
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
            result.screenshot = screenshot
            result.filtered = {str(k): int(v) for k, v in page.evaluate(_EXERCISE, subject).items()}
        finally:
            browser.close()
    result.screenshot_distinct_colours = _distinct_colours(screenshot)
    return result


def _distinct_colours(png: Path) -> int:
    import matplotlib.image as mpimg
    import numpy as np

    img = mpimg.imread(str(png))
    flat = (img[..., :3].reshape(-1, 3) * 255).astype(np.uint8)
    return len(np.unique(flat, axis=0))
