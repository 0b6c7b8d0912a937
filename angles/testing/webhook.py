"""A generic HTTP receiver for webhook and heartbeat tests.

Any request to any path gets ``200 OK`` (text/plain), as Healthchecks and most webhook
receivers answer, and is kept in ``requests``. ``fail()`` from
:class:`~angles.testing.server.ServiceServer` programs refusals, delays and drops;
``refuse_unknown()`` makes paths other than those listed answer 404.
"""

from __future__ import annotations

import re

from angles.testing.server import RecordedRequest, Response, ServiceServer

__all__ = ["WebhookReceiver"]


class WebhookReceiver(ServiceServer):
    """Accepts every request (or only those to known paths) and records it."""

    name = "webhook"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._known: list[str] | None = None

    def refuse_unknown(self, *path_patterns: str) -> None:
        """Answer ``404 not found`` unless the path matches one of the regular expressions."""
        self._known = list(path_patterns)

    def reset(self) -> None:
        """Forget requests and faults; accept every path again."""
        self.clear()
        self._known = None

    def handle(self, request: RecordedRequest) -> Response:
        if self._known is not None and not any(re.search(p, request.path) for p in self._known):
            return Response(404, "not found", {"Content-Type": "text/plain"})
        return Response(200, "OK", {"Content-Type": "text/plain; charset=utf-8"})
