"""The status page in a real browser: headless Chromium with every network path closed.

Chromium reads the file, draws it (a screenshot that must not be blank), prints it (a
PDF) and serialises its DOM, whose text must name every check. A network log proves
that the page asked for nothing but itself. Outside CI the tests skip when Chromium is
not installed; in CI (``CI=true``) a missing Chromium fails them.

``ANGLES_SCREENSHOT=docs/status-page.png`` also saves the desktop screenshot there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest

from angles.status.page import render_page

DESKTOP, PHONE = (1280, 2600), (390, 2400)
# The page's status colours (light scheme), drawn as the day bars of the timeline.
OK, WARNING, ERROR = (26, 127, 55), (154, 103, 0), (207, 34, 46)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed: scripts/test installs the Debian package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@pytest.fixture
def page(month, tmp_path) -> Path:
    path = tmp_path / "status.html"
    path.write_bytes(render_page(month[0]))
    return path


def browse(chromium: str, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on ``page`` with no way out to any network."""
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-color-profile=srgb",
        "--blink-settings=preferredColorScheme=1",  # light: the colours checked below
        "--force-device-scale-factor=1",
        "--proxy-server=127.0.0.1:9",
        "--proxy-bypass-list=<-loopback>",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={profile}",
        *args,
        page.as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def test_the_page_draws_and_reads_without_any_network(chromium, page, tmp_path):
    from PIL import Image

    shot, netlog = tmp_path / "desktop.png", tmp_path / "netlog.json"
    browse(
        chromium,
        page,
        tmp_path / "profile",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
        f"--screenshot={shot}",
        f"--log-net-log={netlog}",
    )
    with Image.open(shot) as image:
        assert image.size == DESKTOP
        pixels = Counter(image.convert("RGB").get_flattened_data())
    total = DESKTOP[0] * DESKTOP[1]
    assert sum(n for colour, n in pixels.items() if colour != (255, 255, 255)) > total * 0.2
    common = [colour for colour, n in pixels.items() if n > 200]
    assert len(common) >= 8, common
    for colour in (OK, WARNING, ERROR):  # the timeline's bars are drawn
        assert pixels[colour] > 500, colour
    assert requested_by(netlog) == set()
    if target := os.environ.get("ANGLES_SCREENSHOT"):
        shutil.copy(shot, target)


def test_the_network_log_would_catch_a_page_that_fetches(chromium, tmp_path):
    """The control for the test above: a page with an image and a style sheet elsewhere."""
    fetching = tmp_path / "fetching.html"
    fetching.write_text(
        '<!doctype html><img src="https://example.org/x.png">'
        '<link rel="stylesheet" href="http://example.net/a.css">'
    )
    netlog = tmp_path / "netlog.json"
    browse(chromium, fetching, tmp_path / "profile", f"--log-net-log={netlog}", "--dump-dom")
    assert requested_by(netlog) == {"https://example.org/x.png", "http://example.net/a.css"}


def test_the_text_of_the_page_as_the_browser_reads_it(chromium, page, tmp_path, month):
    dom = browse(chromium, page, tmp_path / "profile", "--dump-dom").stdout
    text = " ".join(visible_text(dom).split())
    for name in ("supabase", "notion", "sync"):
        assert f"{name} " in text
    latest = month[1][-1]
    assert f"Last run {latest.started_at:%Y-%m-%d %H:%M} UTC" in text
    assert "Sync backlog" in text and "Notifications that failed" in text


def test_the_page_fits_a_phone_and_prints(chromium, page, tmp_path):
    from PIL import Image

    shot, pdf = tmp_path / "phone.png", tmp_path / "page.pdf"
    browse(
        chromium,
        page,
        tmp_path / "a",
        f"--window-size={PHONE[0]},{PHONE[1]}",
        f"--screenshot={shot}",
    )
    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        # The right edge of a phone screen is page background, not cut-off content.
        edge = Counter(rgb.getpixel((PHONE[0] - 2, y)) for y in range(0, PHONE[1], 4))
        assert len(Counter(rgb.get_flattened_data())) > 50
    assert edge.most_common(1)[0][0] == (255, 255, 255)
    browse(chromium, page, tmp_path / "b", "--no-pdf-header-footer", f"--print-to-pdf={pdf}")
    document = pdf.read_bytes()
    assert document.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", document)) >= 2  # pages, not one cut-off sheet


def requested_by(netlog: Path) -> set[str]:
    """The URLs that pages loaded from files asked Chromium's network stack for.

    Chromium's own background requests (updates, time) are in the log too; a page's
    requests are those whose network isolation key is the ``file://`` site.
    """
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return {
        event["params"]["url"]
        for event in log.get("events", [])
        if event.get("type") == start
        and str(event.get("params", {}).get("network_isolation_key", "")).startswith("file://")
    }


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in {"style", "script", "title"} and 1

    def handle_endtag(self, tag):
        if tag in {"style", "script", "title"}:
            self._skip = max(self._skip - 1, 0)

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)
