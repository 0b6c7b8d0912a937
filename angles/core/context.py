"""What plugins see of a run: the pipeline, shared connections, sinks and HTTP clients."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, TypeVar

from angles.core.errors import AnglesError, ServiceError
from angles.core.logging import Logs
from angles.core.progress import ProgressFactory, no_progress
from angles.core.redact import Redactor
from angles.core.retry import UNLIMITED, Activity, Budget, RetryPolicy, with_retries

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx
    import structlog

    from angles.core.connection import Connection
    from angles.core.pipeline import Pipeline
    from angles.core.plugin import Plugin
    from angles.core.plugins import Plugins
    from angles.core.sink import Sink

T = TypeVar("T")


class Context:
    """One run's shared state, handed to every plugin instance.

    Connections, sinks and HTTP clients (one per service) are created on first use and
    shared by every check and backup of the run (safely across the threads checks run
    in); :meth:`close` releases them. ``budget`` is what is left of the run's time
    (``defaults.run_timeout``): retries never wait past it. ``activity`` says what each
    thread is waiting for, so a run out of time can name the service. ``redact`` removes the pipeline's secret values from anything that
    leaves the run (results, reports, messages); :meth:`logger` writes the run's logs
    through it. Nothing of a run is kept in module globals, so two runs in one process
    never share secrets or log files.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        plugins: Plugins,
        *,
        test: bool = False,
        progress: ProgressFactory = no_progress,
        logs: Logs | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.plugins = plugins
        self.test = test
        #: Called around long operations; the command line draws a bar on a terminal.
        self.progress = progress
        self.redact = logs.redact if logs is not None else Redactor(pipeline.secrets)
        #: The run's log files (and console lines); closed with the context.
        self.logs = logs if logs is not None else Logs(pipeline.log_dir, self.redact)
        self._connections: dict[str, Connection] = {}
        self._sinks: dict[str, Sink] = {}
        self._clients: dict[str, httpx.Client] = {}
        self._lock = threading.Lock()
        #: The whole run's time: unlimited until :func:`angles.run.run_pipeline` starts
        #: the clock of ``defaults.run_timeout`` (a restore or a listing has no budget).
        self.run_budget: Budget = UNLIMITED
        #: What calls made now may use: the runner narrows it per phase.
        self.budget: Budget = UNLIMITED
        self.activity = Activity()

    def logger(self, channel: str, **bound: Any) -> structlog.typing.FilteringBoundLogger:
        """A logger for ``channel`` (``health``, ``backup``, ``restore``, ``runs``…) that
        names the pipeline in every event."""
        return self.logs.logger(channel, pipeline=self.pipeline.name, **bound)

    @property
    def default_timeout(self) -> float:
        return self.pipeline.timeout_seconds

    def create(self, kind: str, name: str, config: dict[str, Any]) -> Plugin:
        """An instance of the plugin type that ``config["type"]`` names."""
        cls = self.plugins.registries[kind].get(config["type"])
        if cls is None:  # validation rejects this first; kept for direct API use
            raise AnglesError(f"unknown {kind} type {config['type']!r}")
        return cls(name, config, self)

    def connection(self, name: str) -> Connection:
        """The connection called ``name`` in the pipeline, created once per run."""
        with self._lock:
            if name not in self._connections:
                config = self.pipeline.connections[name]
                self._connections[name] = self.create("connection", name, config)  # type: ignore[assignment]
            return self._connections[name]

    def sink(self, name: str) -> Sink:
        """The sink called ``name`` in the pipeline, created once per run."""
        with self._lock:
            if name not in self._sinks:
                self._sinks[name] = self.create("sink", name, self.pipeline.sinks[name])  # type: ignore[assignment]
            return self._sinks[name]

    def http_client(self, service: str, **options: Any) -> httpx.Client:
        """The run's HTTP client for ``service``, with angles' timeouts and user agent (see
        :mod:`angles.core.http`): made on first use with these ``options``, then shared,
        and closed with the context (closing it yourself does nothing)."""
        from angles.core.http import http_client, shared_client_class

        options.setdefault("timeout", self.default_timeout)
        key = f"{service}:{sorted(options.items(), key=lambda item: item[0])!r}"
        with self._lock:
            if key not in self._clients:
                client = http_client(service, client_class=shared_client_class(), **options)
                client.angles_context = self  # type: ignore[attr-defined]
                self._clients[key] = client
            return self._clients[key]

    def call(
        self,
        service: str,
        operation: str,
        send: Callable[[], T],
        *,
        policy: RetryPolicy,
        failure: Callable[[Exception], ServiceError] | None = None,
    ) -> T:
        """``send()`` with retries (:func:`angles.core.retry.with_retries`) that never wait
        past the run's budget, marked as waiting on ``service`` for ``operation`` (which
        names it in the message of a run that runs out of time).

        For plugins whose client library is not httpx: ``failure`` turns what it raises
        into a :class:`ServiceError`, ``transient`` when another try may help.
        """
        self.budget.require(service, operation)
        with self.activity.doing(service, operation):
            return with_retries(send, policy=policy, budget=self.budget, failure=failure)

    def close(self) -> None:
        """Close every connection and HTTP client opened during the run."""
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
            clients, self._clients = list(self._clients.values()), {}
            self._sinks.clear()
        for connection in connections:
            connection.close()
        for client in clients:
            client.release()  # type: ignore[attr-defined]
        self.logs.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
