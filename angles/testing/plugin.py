"""The pytest plugin (entry point ``pytest11``) that exposes the angles test fixtures."""

from __future__ import annotations

from angles.testing.github import github_server  # noqa: F401
from angles.testing.notion import _angles_notion_server, notion_server  # noqa: F401
from angles.testing.pipelines import (  # noqa: F401
    angles_cli,
    angles_plugins,
    pipeline_file,
    register_plugin,
)
from angles.testing.postgres import postgres_admin_url, postgres_db, postgres_url  # noqa: F401
from angles.testing.postgrest import (  # noqa: F401
    _postgrest_session_server,
    postgrest,
    postgrest_factory,
)
from angles.testing.slack import _angles_slack_server, slack_server  # noqa: F401
from angles.testing.smtp import (  # noqa: F401
    _angles_smtp_certificate,
    _angles_smtp_server,
    silent_smtp_server,
    smtp_server,
    smtp_server_factory,
    unavailable_smtp_server,
)
from angles.testing.webhook import _angles_webhook_server, webhook_server  # noqa: F401
