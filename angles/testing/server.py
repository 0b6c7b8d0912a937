"""A small threaded HTTP server that the service imitations build on.

Every imitation (PostgREST, Notion, GitHub, Slack) is a subclass of :class:`ServiceServer`
that implements :meth:`ServiceServer.handle`. The base class gives each of them the same
two test tools: a log of every request received, and faults programmed for the next N
matching requests (a status, a body, headers, a delay or a dropped connection).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Fault", "RateLimiter", "RecordedRequest", "Response", "ServiceServer"]


@dataclass
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        """The value of a header, looked up case-insensitively."""
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def params(self) -> dict[str, str]:
        """The query parameters as a dict (the last value wins for repeated names)."""
        return dict(self.query)


@dataclass
class Response:
    """What a handler answers: a status, a body and headers."""

    status: int = 200
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None):
        """A JSON response with ``Content-Type: application/json``."""
        merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(payload).encode(), merged)

    def encoded_body(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Fault:
    """A misbehaviour applied to the next ``times`` requests that match.

    ``method`` and ``path`` (a regular expression searched in the path) select requests;
    ``delay`` sleeps before answering; ``drop`` closes the connection without an answer;
    otherwise ``status``/``body``/``headers`` replace the real answer (when ``status`` is
    None the request is served normally after the delay).
    """

    method: str | None = None
    path: str | None = None
    times: int = 1
    status: int | None = None
    body: bytes | str | Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not (self.path and not re.search(self.path, path))


class ServiceServer:
    """Base of the service imitations: a threaded HTTP/1.1 server on 127.0.0.1.

    Use it as a context manager or call :meth:`start` and :meth:`stop`. ``url`` is the base
    URL, ``requests`` the log, :meth:`fail` programs a fault.
    """

    name = "service"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.requests: list[RecordedRequest] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._httpd = _Server((host, port), _make_handler(self))
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._httpd.server_address[0]

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> ServiceServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"{self.name}-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- test tools ----------------------------------------------------------------------

    def fail(self, **fault: Any) -> Fault:
        """Program a fault (see :class:`Fault` for the arguments) and return it."""
        programmed = Fault(**fault)
        with self._lock:
            self._faults.append(programmed)
        return programmed

    def clear(self) -> None:
        """Forget the request log and every pending fault."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()

    def requests_to(self, path_pattern: str, method: str | None = None) -> list[RecordedRequest]:
        """The logged requests whose path matches a regular expression (and method)."""
        return [
            r
            for r in list(self.requests)
            if re.search(path_pattern, r.path) and (method is None or r.method == method.upper())
        ]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- to implement ----------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Response:
        """Answer one request; subclasses implement the service."""
        raise NotImplementedError


class RateLimiter:
    """A token bucket: ``rate`` requests per second on average, bursts of up to ``burst``.

    Imitations use it for the services' documented limits (Notion about 3 requests/s,
    Slack about 1 message/s). It is thread-safe.
    """

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take a token. Return 0.0 when allowed, else the seconds until one is available."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return 0.0
            return (1.0 - self._tokens) / self.rate


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class _DroppedConnection(Exception):
    pass


def _make_handler(service: ServiceServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = service.name
        # Headers and body go out in separate writes; with Nagle's algorithm on, a keep-alive
        # client waits ~40 ms (delayed ACK) for every answer.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # quiet by default
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urlsplit(self.path)
            request = RecordedRequest(
                method=self.command,
                path=split.path,
                query=parse_qsl(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            service.requests.append(request)
            fault = service._take_fault(request.method, request.path)
            if fault and fault.delay:
                time.sleep(fault.delay)
            if fault and fault.drop:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault and fault.status is not None:
                response = Response(fault.status, fault.body, dict(fault.headers))
            else:
                try:
                    response = service.handle(request)
                except Exception as exc:  # a bug in an imitation must be visible in the test
                    response = Response(500, f"{type(exc).__name__}: {exc}".encode())
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send(response)  # a client that gave up waiting has hung up

        def _send(self, response: Response) -> None:
            payload = response.encoded_body()
            try:
                phrase = HTTPStatus(response.status).phrase
            except ValueError:
                phrase = ""
            self.send_response_only(response.status, phrase)
            self.send_header("Date", self.date_time_string())
            lowered = {k.lower() for k in response.headers}
            for name, value in response.headers.items():
                self.send_header(name, value)
            # HEAD, 204 and 304 answers carry no body, hence no Content-Length either.
            bodiless = self.command == "HEAD" or response.status in (204, 304)
            if not bodiless and "content-length" not in lowered:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not bodiless and payload:
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return Handler
