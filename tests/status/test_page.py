"""The status page built from a month of recorded runs, and from an empty store."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

from angles.core.report import CheckRun, RunReport
from angles.core.results import Status
from angles.status.page import render_page
from angles.status.summary import collect, window_start

URL_ATTRIBUTES = {"src", "href", "srcset", "action", "formaction", "data", "poster", "xlink:href"}


class References(HTMLParser):
    """Every URL a page refers to: attributes, ``url(...)`` and ``@import`` in CSS."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in URL_ATTRIBUTES and value is not None:
                self.urls.append(value)
            if name == "style" and value:
                self._css(value)

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self._css(data)

    def _css(self, text: str) -> None:
        self.urls += re.findall(r"url\(\s*['\"]?([^'\")]*)", text)
        self.urls += re.findall(r"@import\s+['\"]([^'\"]+)", text)


def external(urls: list[str]) -> list[str]:
    """The URLs that a browser would fetch: anything but ``data:`` and ``#fragment``."""
    return [u for u in urls if not (u.startswith("#") or u.strip().lower().startswith("data:"))]


def parse(html: bytes) -> References:
    references = References()
    references.feed(html.decode("utf-8"))
    return references


def text_of(html: bytes) -> str:
    """The page's text as a reader sees it (tags dropped, entities decoded)."""
    import html as html_module

    without_style = re.sub(r"<style>.*?</style>", "", html.decode("utf-8"), flags=re.S)
    return html_module.unescape(re.sub(r"<[^>]+>", " ", without_style))


def test_the_page_of_a_month_shows_every_part(month):
    summary, reports = month
    html = render_page(summary)
    text = " ".join(text_of(html).split())

    # The newest run: its status and time; the backlog is rising again (a warning).
    latest = reports[-1]
    assert latest.status is Status.WARNING
    assert f"Last run {latest.started_at:%Y-%m-%d %H:%M} UTC" in text
    assert "! WARNING" in text
    # Every check with its status and message, and how long sync has been failing.
    for name in ("supabase", "notion", "sync"):
        assert f"{name} " in text
    sync = next(c for c in latest.checks if c.name == "sync")
    assert sync.message in text
    streak = 0
    for report in reversed(reports):
        if next(c for c in report.checks if c.name == "sync").status is Status.OK:
            break
        streak += 1
    assert f"({streak} runs in a row, since" in text
    # notion failed for a stretch and recovered: it passes now.
    assert "the database answers" in text
    # Charts: the runs per day, durations, the backlog, the table's records and sizes.
    svgs = re.findall(rb"<svg .*?</svg>", html, flags=re.S)
    labels = [re.search(rb'aria-label="([^"]*)"', svg).group(1).decode() for svg in svgs]
    assert labels == [
        "Runs per day",
        "Run duration",
        "sync: unsynced records",
        "decision_vault: records",
        "decision_vault: backup size",
    ]
    assert len(re.findall(rb"<g><title>", svgs[0])) == 30  # one bar a day
    assert b'class="limit warning"' in svgs[2] and b'class="limit error"' in svgs[2]
    assert len(re.findall(rb"<polyline", svgs[4])) == 2  # one line per sink
    # The newest backup of the table in each sink, with its size.
    newest = reports[-1].backups[0]
    for stored in newest.files:
        assert stored["name"] in text
    assert "275.1 kB" in text and "912.0 kB" in text  # 2,990 records x 92 / 305 bytes
    # Failed notifications, with why.
    assert "Notifications that failed" in text
    assert "Slack: HTTP 500 from chat.postMessage (check the webhook URL)" in text


def test_only_the_runs_of_the_window_are_read(month, now):
    summary, reports = month
    start = window_start(now, 30)
    inside = [r for r in reports if r.started_at >= start]
    assert 0 < len(inside) < len(reports)  # the oldest run is before the first midnight
    assert len(summary.runs) == len(inside)
    assert summary.runs[-1]["started_at"] == inside[0].to_dict()["started_at"]
    assert [day.total for day in summary.timeline] == [
        sum(1 for r in inside if r.started_at.date() == day.day) for day in summary.timeline
    ]


def test_the_page_refers_to_nothing_outside_itself(month):
    html = render_page(month[0])
    references = parse(html)
    assert external(references.urls) == []
    assert not references.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert b"http://" not in html and b"https://" not in html and b"//" not in html


def test_an_empty_store_says_no_runs_yet(production, store, now):
    html = render_page(collect(production, store, now=now))
    text = " ".join(text_of(html).split())
    assert "No runs yet" in text
    assert "angles run" in text
    assert external(parse(html).urls) == []


def test_service_text_is_escaped(production, store, now):
    hostile = '<script>alert("x")</script><img src="https://evil.example/x.png">'
    report = RunReport("production", now - timedelta(hours=1), duration_seconds=1.0)
    report.checks = [CheckRun("sync", "sync_backlog", Status.ERROR, hostile, 0.1, {"unsynced": 3})]
    store.record_run(report, report.to_dict())
    html = render_page(collect(production, store, now=now))
    references = parse(html)
    assert "script" not in references.tags and "img" not in references.tags
    assert external(references.urls) == []
    assert hostile in text_of(html)  # shown as text, exactly


def test_a_run_older_than_the_window_is_still_the_latest(production, store, now):
    old = RunReport("production", now - timedelta(days=45), duration_seconds=2.0)
    old.checks = [CheckRun("notion", "notion", Status.ERROR, "Notion: HTTP 401", 0.2)]
    store.record_run(old, old.to_dict())
    summary = collect(production, store, days=7, now=now)
    assert summary.runs == [] and summary.latest["status"] == "error"
    text = " ".join(text_of(render_page(summary)).split())
    assert f"Last run {old.started_at:%Y-%m-%d %H:%M} UTC" in text
    assert "Notion: HTTP 401" in text and "45 days" in text  # failing for
    assert "No run in these days" in text
