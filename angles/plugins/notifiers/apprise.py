"""The ``apprise`` notifier: any service the Apprise library can reach, by URL.

.. code-block:: yaml

    notifiers:
      - {name: everything, type: apprise, urls: ["${APPRISE_URLS}"], on: [error, recovery]}

Each entry of ``urls`` may hold several URLs (separated by spaces or commas, as Apprise
reads them), so one variable can list them all. Every URL is a secret: it usually holds
the service's token, so messages name a URL by its position and service, never by itself.
"""

from __future__ import annotations

import re
from typing import Any

from angles import Notification, Notifier, ServiceError, Status, hookimpl
from angles.helpers import RetryPolicy, plural

SERVICE = "Apprise"
#: Pieces of a URL at least this long are kept out of messages (tokens, passwords, ids).
SECRET_PIECE = re.compile(r"[^\s/:@?&=#,.]{6,}")


class AppriseNotifier(Notifier):
    """Sends the title and text every notifier sends, through each configured URL."""

    type = "apprise"
    description = "Sends through the Apprise library to any of its services, by URL."
    #: Seconds before the first retry of a failed delivery; doubles each time.
    retry_backoff = 0.5
    config_schema = {
        "type": "object",
        "additionalProperties": False,
        "required": ["urls"],
        "properties": {
            "urls": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "minLength": 1},
                "secret": True,
                "description": "Apprise URLs (e.g. tgram://…, discord://…, json://…); an "
                "entry may hold several, separated by spaces or commas. Each is a secret.",
            },
        },
    }

    def send(self, notification: Notification) -> None:
        import apprise

        urls = split_urls(self.config["urls"])
        services = [self._service(apprise, index, url, len(urls)) for index, url in enumerate(urls)]
        title, _, body = notification.text().partition("\n")
        notify_type = NOTIFY_TYPES[notification.status]
        pending = list(range(len(services)))

        def attempt() -> None:
            # Each try sends only to the URLs not yet delivered: the others got it.
            failures: dict[int, str] = {}
            for index in pending:
                self._bound_timeouts(services[index], urls[index])
                reason = deliver(apprise, services[index], title, body, notify_type)
                if reason is not None:
                    failures[index] = self._scrub(reason, urls)
            pending[:] = list(failures)
            if failures:
                raise self._undelivered(failures, services, len(urls))

        self.context.call(
            SERVICE,
            f"sending to {plural(len(urls), 'URL')}",
            attempt,
            policy=RetryPolicy.with_retries(self.retries, backoff=self.retry_backoff),
        )

    def _undelivered(
        self, failures: dict[int, str], services: list[Any], total: int
    ) -> ServiceError:
        """The failure of one try: every URL still undelivered, by position and service.

        Apprise only says "not sent", so any failure is worth another try."""
        described = "; ".join(
            f"URL {index + 1} ({services[index].service_name}): {reason}"
            for index, reason in failures.items()
        )
        return ServiceError(
            SERVICE,
            f"could not deliver to {len(failures)} of {total} URLs: {described}",
            hint="check those URLs against the service's page in Apprise's wiki, "
            "and that the service is reachable",
            transient=True,
        )

    def _service(self, apprise: Any, index: int, url: str, total: int) -> Any:
        """The Apprise plugin instance for one URL, with angles' timeout."""
        service = apprise.Apprise.instantiate(url, asset=apprise.AppriseAsset(app_id="angles"))
        if service is None:
            scheme = url.partition("://")[0] if "://" in url else ""
            known = f" (scheme {scheme!r})" if re.fullmatch(r"[a-z0-9+]{1,16}", scheme) else ""
            raise ServiceError(
                SERVICE,
                f"URL {index + 1} of {total} is not a URL Apprise can send to{known}",
                hint="see https://github.com/caronc/apprise/wiki for each service's URL",
            )
        return service

    def _bound_timeouts(self, service: Any, url: str) -> None:
        """angles' timeout on the service's sockets (unless the URL sets ``cto``/``rto``),
        cut to what is left of the run's time limit."""
        query = url.partition("?")[2]
        timeout = self.context.budget.bound(self.timeout)
        if "cto=" not in query and hasattr(service, "socket_connect_timeout"):
            service.socket_connect_timeout = timeout
        if "rto=" not in query and hasattr(service, "socket_read_timeout"):
            service.socket_read_timeout = timeout

    def _scrub(self, text: str, urls: list[str]) -> str:
        """``text`` without the secrets, nor any long piece of a URL (its token)."""
        pieces = {p for url in urls for p in SECRET_PIECE.findall(url.partition("://")[2])}
        for piece in sorted(pieces, key=len, reverse=True):
            text = text.replace(piece, "***")
        return self.context.redact(text)


def deliver(apprise: Any, service: Any, title: str, body: str, notify_type: str) -> str | None:
    """Send through one service; None when delivered, else why not (Apprise's own words)."""
    import logging

    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
        sent = service.notify(
            body=body, title=title, notify_type=notify_type, body_format=apprise.NotifyFormat.TEXT
        )
    if sent:
        return None
    words = " ".join(line.strip() for line in captured.getvalue().splitlines() if line.strip())
    return words or "the service refused the message"


def split_urls(entries: list[str]) -> list[str]:
    """Every URL in ``urls:``, an entry holding several separated by spaces or commas."""
    from apprise.utils.parse import parse_urls

    return [url for entry in entries for url in parse_urls(entry)]


#: Apprise's notify type (its ``NotifyType`` values) for each run status.
NOTIFY_TYPES = {Status.OK: "success", Status.WARNING: "warning", Status.ERROR: "failure"}


@hookimpl
def angles_register_notifiers(register):
    register(AppriseNotifier)
