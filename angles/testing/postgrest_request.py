"""How PostgREST reads the headers and paging of a request, after its source (v13/v14).

* ``Accept``: wai-extra's ``parseHttpAccept`` (spaces removed, sorted by ``q`` then by
  specificity), each entry decoded by ``decodeMediaType`` and shown by ``toMime``
  (``src/PostgREST/MediaType.hs``); :func:`negotiate` is ``negotiateContent``
  (``src/PostgREST/Plan.hs``) with ``db-plan-enabled = false``, Supabase's default, so a
  plan (``application/vnd.pgrst.plan...``) is never available.
* ``Prefer``: ``fromHeaders`` and ``prefAppliedHeader`` (``ApiRequest/Preferences.hs``).
* ``limit``/``offset``/``Range``: ``QueryParams.parse`` (``ranges``), ``getRanges``
  (``ApiRequest.hs``) and ``restrictRange`` (``RangeQuery.hs``), with the interval
  arithmetic of the Ranged-sets package they use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MediaType",
    "Preferences",
    "Range",
    "negotiate",
    "parse_accept",
    "read_integer",
    "requested_range",
]

# -- media types ---------------------------------------------------------------------------

_SIMPLE_TYPES = {
    ("application", "json"): "application/json",
    ("application", "geo+json"): "application/geo+json",
    ("text", "csv"): "text/csv",
    ("text", "plain"): "text/plain",
    ("text", "xml"): "text/xml",
    ("application", "openapi+json"): "application/openapi+json",
    ("application", "x-www-form-urlencoded"): "application/x-www-form-urlencoded",
    ("application", "octet-stream"): "application/octet-stream",
    ("*", "*"): "*/*",
}
_PLAN_FORMATS = {
    "vnd.pgrst.plan": "text",
    "vnd.pgrst.plan+text": "text",
    "vnd.pgrst.plan+json": "json",
}
_PLAN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")
_MEDIA_RE = re.compile(r"([A-Za-z0-9.*]+)/([A-Za-z0-9.*+\-]+)")
_PARAM_RE = re.compile(r'\s*;\s*([A-Za-z0-9\-]+)\s*=\s*(?:"([^"]*)"|([A-Za-z0-9|\-]+))')


@dataclass(frozen=True)
class MediaType:
    """A decoded media type; ``mime`` is what ``toMime`` shows for it."""

    mime: str
    plan: bool = False

    @property
    def content_type(self) -> str:
        """``toContentType``: the mime type with ``; charset=utf-8`` (not for ``MTOther``)."""
        known = self.plan or self.mime.startswith("application/vnd.pgrst.")
        known = known or self.mime in _SIMPLE_TYPES.values()
        if not known or self.mime == "application/octet-stream":
            return self.mime
        return f"{self.mime}; charset=utf-8"


JSON = MediaType("application/json")
OPENAPI = MediaType("application/openapi+json")
ANY = MediaType("*/*")
OBJECT = MediaType("application/vnd.pgrst.object+json")
OBJECT_STRIPPED = MediaType("application/vnd.pgrst.object+json;nulls=stripped")
ARRAY_STRIPPED = MediaType("application/vnd.pgrst.array+json;nulls=stripped")
CSV = MediaType("text/csv")
GEOJSON = MediaType("application/geo+json")


def _tokenize(text: str) -> tuple[str, str, dict[str, str]]:
    """``tokenizeMediaType``: type, subtype and the parameters that parse (names lowered)."""
    match = _MEDIA_RE.match(text)
    if not match:
        return text, "", {}
    params: dict[str, str] = {}
    position = match.end()
    while param := _PARAM_RE.match(text, position):
        name, quoted, plain = param.groups()
        params[name.lower()] = quoted if quoted is not None else plain  # Map.fromList: last wins
        position = param.end()
    return match.group(1), match.group(2), params


def decode_media_type(text: str) -> MediaType:
    """``decodeMediaType``."""
    main, sub, params = _tokenize(text)
    main, sub = main.lower(), sub.lower()
    stripped = params.get("nulls", "false") == "stripped"
    if (main, sub) in _SIMPLE_TYPES:
        return MediaType(_SIMPLE_TYPES[main, sub])
    if main == "application" and sub in _PLAN_FORMATS:
        target = decode_media_type(params.get("for", "application/json"))
        chosen = set(params.get("options", "").split("|"))
        options = "|".join(option for option in _PLAN_OPTIONS if option in chosen)
        mime = f'application/vnd.pgrst.plan+{_PLAN_FORMATS[sub]}; for="{target.mime}"'
        return MediaType(mime + (f"; options={options}" if options else ""), plan=True)
    if main == "application" and sub in ("vnd.pgrst.object+json", "vnd.pgrst.object"):
        return OBJECT_STRIPPED if stripped else OBJECT
    if main == "application" and sub in ("vnd.pgrst.array+json", "vnd.pgrst.array"):
        return ARRAY_STRIPPED if stripped else JSON
    return MediaType(text)


def _read_double(text: str) -> float:
    """Haskell's ``reads`` for a Double, falling back to 1.0 as ``readQ`` does."""
    match = re.match(r"\s*(-?(?:\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|Infinity|NaN))", text)
    return float(match.group(1)) if match else 1.0


def parse_accept(header: str | None) -> list[MediaType]:
    """The accepted media types, in the order PostgREST tries them (``*/*`` when absent)."""
    if header is None:
        return [ANY]
    entries = []
    for raw in header.split(",") if header else []:
        mime, marker, rest = raw.replace(" ", "").partition(";q=")
        quality = _read_double(rest.split(";", 1)[0]) if marker else 1.0
        entries.append((mime, (quality, mime.count(";") - mime.count("*"))))
    entries.sort(key=lambda entry: entry[1], reverse=True)  # stable, like sortBy
    return [decode_media_type(mime) for mime, _ in entries]


def negotiate(accepts: Sequence[MediaType], produced: Iterable[MediaType]) -> MediaType | None:
    """``negotiateContent``: the first accepted type a handler produces (``*/*`` is JSON)."""
    available = set(produced)
    for accepted in accepts:
        if accepted.plan:
            continue  # db-plan-enabled is false
        if accepted in available:
            return JSON if accepted == ANY else accepted
    return None


def unavailable_message(accepts: Sequence[MediaType]) -> str:
    """PGRST107's message."""
    return "None of these media types are available: " + ", ".join(a.mime for a in accepts)


# -- Prefer --------------------------------------------------------------------------------

_CATEGORIES = {
    "resolution": ("resolution=merge-duplicates", "resolution=ignore-duplicates"),
    "return": ("return=representation", "return=minimal", "return=headers-only"),
    "count": ("count=exact", "count=planned", "count=estimated"),
    "missing": ("missing=default", "missing=null"),
    "handling": ("handling=strict", "handling=lenient"),
}
_ACCEPTED = {token for tokens in _CATEGORIES.values() for token in tokens}
_ACCEPTED |= {"tx=commit", "tx=rollback"}


@dataclass
class Preferences:
    """The preferences PostgREST honours; ``tx`` is ignored (``db-tx-end`` is ``commit``)."""

    chosen: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    max_affected: int | None = None
    invalid: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, headers: Sequence[str], timezones: Iterable[str] = ()) -> Preferences:
        """``fromHeaders``: every ``Prefer`` header split at commas; the first valid value of
        each kind wins; ``timezone`` must be a known zone (``timezones``)."""
        tokens = [token.strip() for header in headers if header for token in header.split(",")]
        chosen = {}
        for kind, values in _CATEGORIES.items():
            first = next((token for token in tokens if token in values), None)
            if first is not None:
                chosen[kind] = first.partition("=")[2]
        zones = set(timezones)
        zone = next((t[len("timezone=") :] for t in tokens if t.startswith("timezone=")), None)
        timezone = zone if zone in zones else None
        affected = next(
            (t[len("max-affected=") :] for t in tokens if t.startswith("max-affected=")), None
        )
        invalid = [
            t
            for t in tokens
            if t not in _ACCEPTED
            and not (t.startswith("timezone=") and timezone is not None)
            and not t.startswith("max-affected=")
        ]
        max_affected = read_integer(affected) if affected is not None else None
        return cls(chosen, timezone, max_affected, invalid)

    def get(self, kind: str) -> str | None:
        return self.chosen.get(kind)

    @property
    def strict(self) -> bool:
        return self.chosen.get("handling") == "strict"

    @property
    def counted(self) -> bool:
        """``shouldCount``: exact and estimated counts (not planned) are reported on writes."""
        return self.chosen.get("count") in ("exact", "estimated")

    def applied(self, kinds: Sequence[str]) -> str | None:
        """``prefAppliedHeader`` for the kinds a response reports, in PostgREST's order."""
        values = [
            f"{kind}={self.chosen[kind]}"
            for kind in ("resolution", "missing", "return", "count", "handling")
            if kind in kinds and kind in self.chosen
        ]
        if "timezone" in kinds and self.timezone is not None:
            values.append(f"timezone={self.timezone}")
        if "max-affected" in kinds and self.strict and self.max_affected is not None:
            values.append(f"max-affected={self.max_affected}")
        return ", ".join(values) or None


# -- ranges --------------------------------------------------------------------------------

_INFINITY = float("inf")


@dataclass(frozen=True)
class Range:
    """A range of row positions ``lower..upper`` (inclusive; ``upper`` may be infinite)."""

    lower: int
    upper: float = _INFINITY

    @property
    def empty(self) -> bool:
        return self.upper < self.lower

    @property
    def limit_zero(self) -> bool:
        """``hasLimitZero``: the upper bound is -1 (``limit=0`` and its look-alikes)."""
        return self.upper == -1

    @property
    def limit(self) -> int | None:
        return None if self.upper == _INFINITY else int(self.upper - self.lower + 1)

    def __and__(self, other: Range) -> Range:
        return Range(max(self.lower, other.lower), min(self.upper, other.upper))

    def restrict(self, max_rows: int | None) -> Range:
        """``restrictRange`` by db-max-rows, keeping a limit-zero range as it is."""
        if max_rows is None or self.limit_zero:
            return self
        return Range(self.lower, min(self.upper, self.lower + max_rows - 1))


ALL = Range(0)
LIMIT_ZERO = Range(0, -1)


def read_integer(text: str) -> int | None:
    """Haskell's ``readMaybe`` for an Integer: ``12``, `` -3 ``, ``(4)``, ``0x1f``."""
    match = re.fullmatch(r"\s*(\()?\s*(-)?\s*(0[xX][0-9a-fA-F]+|0[oO][0-7]+|\d+)\s*(\))?\s*", text)
    if not match or bool(match.group(1)) != bool(match.group(4)):
        return None
    digits = match.group(3)
    value = int(digits, 0) if digits[:2].lower() in ("0x", "0o") else int(digits)
    return -value if match.group(2) else value


def _last(query: Sequence[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in query if key == name]
    return values[-1] if values else None


def requested_range(
    query: Sequence[tuple[str, str]], method: str, range_header: str | None
) -> tuple[Range, str | None]:
    """The top-level range and, when it is invalid, PGRST103's details.

    ``limit`` alone is ``0..limit-1``; ``offset`` alone ``offset..``; both together
    ``offset..offset+limit-1`` where an unreadable limit counts as 0. The ``Range`` header
    (GET only, ``^([0-9]+)-([0-9]*)$``) is intersected with it, which also clamps a negative
    offset to 0. An empty result is refused unless it is a limit-zero range.
    """
    limit_text, offset_text = _last(query, "limit"), _last(query, "offset")
    limit = read_integer(limit_text) if limit_text is not None else None
    offset = read_integer(offset_text) if offset_text is not None else None
    if limit_text is not None and offset_text is not None:
        start = offset or 0
        requested = Range(start, start + (limit or 0) - 1)
    elif limit_text is not None:
        requested = ALL if limit is None else Range(0, limit - 1)
    elif offset_text is not None:
        requested = ALL if offset is None else Range(offset)
    else:
        requested = ALL
    header = ALL
    if method == "GET" and range_header is not None:
        match = re.fullmatch(r"([0-9]+)-([0-9]*)", range_header)
        if match:
            upper = int(match.group(2)) if match.group(2) else _INFINITY
            header = Range(int(match.group(1)), upper)
    top = LIMIT_ZERO if requested.limit_zero else header & requested
    if top.empty and not requested.limit_zero:
        if header.empty:
            return top, (
                "The lower boundary must be lower than or equal to the upper boundary "
                "in the Range header."
            )
        return top, "Limit should be greater than or equal to zero."
    return top, None
