"""The status page: one HTML file that needs nothing else.

No script, style sheet, font or image is fetched from anywhere: the CSS is inline and the
charts are inline SVG. It reads without JavaScript, on a phone and on paper. Every text
that comes from a check, a service or the pipeline is escaped by the template engine.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import resources
from typing import Any

from angles.status.charts import Chart, day_bars, line_chart
from angles.status.summary import Summary

TEMPLATE = "page.html.j2"
RECENT_RUNS = 20
FAILED_NOTIFICATIONS = 20
STATUS_SYMBOLS = {"ok": "✓", "warning": "!", "error": "✕"}


def render_page(summary: Summary) -> bytes:
    """The status page of ``summary``, as UTF-8 bytes."""
    from jinja2 import Environment, StrictUndefined

    environment = Environment(
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    environment.filters.update(
        when=when, count=count, size=size, seconds=seconds, span=span, symbol=symbol
    )
    text = resources.files(__package__).joinpath(TEMPLATE).read_text(encoding="utf-8")
    html = environment.from_string(text).render(
        s=summary,
        ago=lambda moment: ago(moment, summary.now),
        charts=charts(summary),
        recent=summary.runs[:RECENT_RUNS],
        problems=problems,
        failed=summary.failed_notifications[:FAILED_NOTIFICATIONS],
    )
    return html.encode("utf-8")


def charts(summary: Summary) -> dict[str, Any]:
    """Every chart of the page, by section."""
    start, end = summary.since, summary.now
    return {
        "timeline": day_bars("Runs per day", summary.timeline),
        "durations": line_chart("Run duration", {"run": summary.durations}, start, end, seconds),
        "backlog": {
            name: line_chart(
                f"{name}: unsynced records",
                {name: samples},
                start,
                end,
                count,
                _limits(summary.thresholds.get(name, {})),
            )
            for name, samples in summary.backlog.items()
        },
        "tables": {
            table: _table_charts(summary, table)
            for table in sorted(set(summary.records) | set(summary.sizes))
        },
    }


def _table_charts(summary: Summary, table: str) -> list[tuple[str, Chart]]:
    start, end = summary.since, summary.now
    found = []
    if table in summary.records:
        records = {table: summary.records[table]}
        found.append(("records", line_chart(f"{table}: records", records, start, end, count)))
    if table in summary.sizes:
        chart = line_chart(f"{table}: backup size", summary.sizes[table], start, end, size)
        found.append(("backup size", chart))
    return found


def _limits(thresholds: dict[str, float]) -> dict[str, float]:
    names = {"warn_above": "warning", "error_above": "error"}
    return {names[key]: value for key, value in thresholds.items() if key in names}


def problems(run: dict[str, Any]) -> str:
    """The checks and backups of a run that did not pass: ``sync (error), vault (warning)``."""
    failing = [c for c in run.get("checks", []) if c.get("status") != "ok"]
    failing += [b for b in run.get("backups", []) if b.get("status") != "ok"]
    return ", ".join(f"{item['name']} ({item['status']})" for item in failing)


# -- how values read ---------------------------------------------------------------------


def when(moment: datetime | None) -> str:
    """``2026-11-26 03:00 UTC``."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def ago(moment: datetime | None, now: datetime) -> str:
    """``3 h ago``, ``just now``."""
    if moment is None:
        return ""
    elapsed = (now - moment).total_seconds()
    return "just now" if elapsed < 60 else f"{span(elapsed)} ago"


def span(seconds: float | timedelta) -> str:
    """A length of time in its two largest units: ``45 s``, ``3 h 20 min``, ``2 days 4 h``."""
    total = int(seconds.total_seconds() if isinstance(seconds, timedelta) else seconds)
    days, rest = divmod(max(total, 0), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min" if minutes else f"{secs} s"


def count(value: float | None) -> str:
    """``12,345``."""
    return "—" if value is None else f"{round(value):,}"


def size(value: float | None) -> str:
    """Bytes in decimal units: ``532 B``, ``1.2 MB``."""
    if value is None:
        return "—"
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop always returns


def seconds(value: float | None) -> str:
    """``1.84 s``; a minute or more reads as a span."""
    if value is None:
        return "—"
    return f"{value:.2f} s" if value < 60 else span(value)


def symbol(status: Any) -> str:
    """A mark that tells the status without colour (✓ ! ✕; ○ not run)."""
    return STATUS_SYMBOLS.get(str(status), "○")
