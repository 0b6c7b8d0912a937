"""Ready definitions that run ``angles run`` on the pipeline's schedule elsewhere:
a crontab line, systemd units, a GitHub Actions workflow, a Kubernetes CronJob.

The environment variables each definition passes are the ones the pipeline files use.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from angles.core.errors import AnglesError, PipelineError
from angles.core.pipeline import Pipeline
from angles.core.redact import is_secret_name
from angles.core.version import requirement

KINDS = ("cron", "systemd", "github-actions", "kubernetes")
#: The official Python image; the CronJob installs the pinned release into it.
KUBERNETES_IMAGE = "python:3.12-slim"
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
# Variables Actions sets itself: a workflow cannot override them.
_ACTIONS_DEFAULTS = re.compile(
    r"^GITHUB_(REPOSITORY|REPOSITORY_OWNER|SHA|REF|REF_NAME|RUN_ID|ACTOR|WORKSPACE|SERVER_URL|API_URL)$"
)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


@dataclass(frozen=True)
class Variable:
    """An environment variable a pipeline uses, and whether it has a default."""

    name: str
    has_default: bool

    @property
    def secret(self) -> bool:
        return is_secret_name(self.name)


def read_pipeline(path: Path) -> Pipeline:
    """The pipeline as written, variables not required (``--print`` needs no secrets)."""
    from angles.core.config import _Loader

    loader = _Loader(os.environ)
    document = loader.read(path.resolve(), chain=())
    fatal = [p for p in loader.problems if "is not set" not in p.message]
    if document is None or fatal:
        raise PipelineError(fatal or loader.problems)
    pipeline = Pipeline(path.resolve(), document, frozenset(loader.secrets), loader.lines)
    if not pipeline.schedule:
        raise AnglesError(
            f"{path} has no schedule", hint='add schedule: "0 3 * * *" (cron, in UTC)'
        )
    return pipeline


def variables(pipeline: Pipeline) -> list[Variable]:
    """The environment variables the pipeline's files use, in order of appearance."""
    files = dict.fromkeys([str(pipeline.path), *(file for file, _ in pipeline.lines.values())])
    found: dict[str, Variable] = {}
    for file in files:
        text = Path(file).read_text(encoding="utf-8")
        for match in _VARIABLE.finditer(text):
            name = match.group(1)
            if name not in found or not match.group(2):
                found[name] = Variable(name, bool(match.group(2)))
    return list(found.values())


def five_fields(schedule: str) -> str:
    """The cron expression with macros (``@daily``) spelled out."""
    expression = " ".join(schedule.split())
    return MACROS.get(expression.lower(), expression)


def on_calendar(schedule: str) -> str | None:
    """The systemd ``OnCalendar=`` value for a cron expression, or None when it has none.

    None for a six-field expression, ``L``/``W``/``#``/``?``, and for an expression that
    restricts both the day of the month and the weekday (cron runs when either matches,
    systemd only when both do).
    """
    fields = five_fields(schedule).lower().split()
    if len(fields) != 5:
        return None
    try:
        minute, hour, day, month, weekday = (
            _values(text, name, low, high)
            for text, (name, low, high) in zip(fields, _FIELDS, strict=True)
        )
    except ValueError:
        return None
    if day is not None and weekday is not None:
        return None
    days = ""
    if weekday is not None:
        days = ",".join(_SYSTEMD_DAYS[d % 7] for d in sorted({d % 7 for d in weekday})) + " "

    def spell(values: list[int] | None, width: int = 2) -> str:
        return "*" if values is None else ",".join(f"{v:0{width}d}" for v in values)

    return f"{days}*-{spell(month)}-{spell(day)} {spell(hour)}:{spell(minute)}:00 UTC"


def _values(text: str, name: str, low: int, high: int) -> list[int] | None:
    """The values a cron field matches (None for every value)."""
    if text == "*":
        return None
    names = _MONTHS if name == "month" else _DAYS if name == "weekday" else []
    offset = 1 if name == "month" else 0
    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high if name != "weekday" else 6
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _number(first, names, offset), _number(last, names, offset)
        else:
            start = _number(body, names, offset)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high and step > 0):
            raise ValueError(item)
        values.update(range(start, end + 1, step))
    return sorted(values)


def _number(text: str, names: list[str], offset: int) -> int:
    if text in names:
        return names.index(text) + offset
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def render(kind: str, pipeline: Pipeline) -> str:
    """The definition of ``kind`` (one of :data:`KINDS`) for the pipeline."""
    renderers = {
        "cron": _cron,
        "systemd": _systemd,
        "github-actions": _github_actions,
        "kubernetes": _kubernetes,
    }
    return renderers[kind](pipeline)


def _angles_command() -> str:
    beside = Path(sys.executable).parent / "angles"
    return str(beside) if beside.exists() else shutil.which("angles") or "angles"


def _slug(pipeline: Pipeline) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", pipeline.name.lower()).strip("-") or "angles"


def _cron(pipeline: Pipeline) -> str:
    folder = pipeline.base_dir
    lock = pipeline.resolve(".angles/cron.lock")
    log = pipeline.log_dir / "cron.log"
    return f"""\
# angles: the "{pipeline.name}" pipeline at "{pipeline.schedule}" (UTC).
# Install with `crontab -e`. CRON_TZ makes cron read the times as UTC where it is supported
# (cronie, busybox); elsewhere set the machine's time zone to UTC or convert the hours.
# flock skips a run while the previous one is still going. The variables the pipeline
# uses come from {folder / ".env"}.
# It runs {requirement()}; on another machine: pipx install '{requirement()}'.
CRON_TZ=UTC
{five_fields(pipeline.schedule)} cd {folder} && mkdir -p {lock.parent} {log.parent} && flock -n {lock} {_angles_command()} run {pipeline.path.name} >> {log} 2>&1
"""


def _systemd(pipeline: Pipeline) -> str:
    slug = _slug(pipeline)
    calendar = on_calendar(pipeline.schedule)
    folder = pipeline.base_dir
    command = _angles_command()
    header = f"""\
# angles: the "{pipeline.name}" pipeline at "{pipeline.schedule}" (UTC).
# It runs {requirement()}; on another machine: pipx install '{requirement()}'.
# Save the parts below as the files they name, then:
#   systemctl daemon-reload && systemctl enable --now """
    if calendar is None:
        return f"""{header}angles-{slug}.service
# "{pipeline.schedule}" has no systemd calendar equivalent (cron runs when the day of the
# month OR the weekday matches; systemd needs both), so this service runs `angles schedule`,
# which follows the cron expression itself and finishes the current run on stop.

# /etc/systemd/system/angles-{slug}.service
[Unit]
Description=angles scheduler for the {pipeline.name} pipeline
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
WorkingDirectory={folder}
EnvironmentFile=-{folder / ".env"}
ExecStart={command} schedule {pipeline.path.name}
Restart=on-failure
KillSignal=SIGTERM
# Time for the current run to finish after `systemctl stop`.
TimeoutStopSec=1h

[Install]
WantedBy=multi-user.target
"""
    return f"""{header}angles-{slug}.timer

# /etc/systemd/system/angles-{slug}.service
[Unit]
Description=angles: run the {pipeline.name} pipeline
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
WorkingDirectory={folder}
EnvironmentFile=-{folder / ".env"}
ExecStart={command} run {pipeline.path.name}
# 1 is "warnings only"; 2 (errors) marks the unit failed, so OnFailure= hooks fire.
SuccessExitStatus=1

# /etc/systemd/system/angles-{slug}.timer
[Unit]
Description=angles: the {pipeline.name} pipeline at {pipeline.schedule} (UTC)

[Timer]
OnCalendar={calendar}
# After downtime, run once at boot for the time that was missed.
Persistent=true
Unit=angles-{slug}.service

[Install]
WantedBy=timers.target
"""


def _actions_secret(name: str) -> str:
    # Actions refuses secrets whose names start with GITHUB_.
    return f"BACKUP_{name}" if name.startswith("GITHUB_") else name


def _github_actions(pipeline: Pipeline) -> str:
    used = variables(pipeline)
    env_lines = []
    notes = []
    for variable in used:
        if _ACTIONS_DEFAULTS.match(variable.name):
            notes.append(
                f"# {variable.name} is set by Actions to this repository and cannot be "
                "overridden: if the pipeline needs\n# another value, write it in the "
                "pipeline (e.g. an angles.ci.yaml that extends angles.yaml)."
            )
            continue
        secret = _actions_secret(variable.name)
        if secret != variable.name:
            notes.append(
                f"# {variable.name} comes from the secret {secret}: Actions refuses secret "
                "names starting with GITHUB_."
            )
        env_lines.append(f"          {variable.name}: ${{{{ secrets.{secret} }}}}")
    env = "\n".join(env_lines) or "          {}"
    path = Path(os.path.relpath(pipeline.path)).as_posix()
    state = pipeline.document.get("state", ".angles/state.db")
    cache = ""
    if "://" not in str(state):
        cache = f"""\
      # The state store (alerting state, history) survives between runs in the cache;
      # a postgresql:// state: URL is sturdier.
      - uses: actions/cache@v4
        with:
          path: {Path(os.path.relpath(pipeline.state)).parent.as_posix()}
          key: angles-state-${{{{ github.run_id }}}}
          restore-keys: angles-state-
"""
    note_text = "\n".join(notes)
    return f"""\
# .github/workflows/angles.yml: the "{pipeline.name}" pipeline at "{pipeline.schedule}".
# Actions reads cron in UTC, as angles does. Add the secrets below under
# Settings → Secrets and variables → Actions.
{note_text + chr(10) if note_text else ""}name: angles {pipeline.name}

on:
  schedule:
    - cron: "{five_fields(pipeline.schedule)}"
  workflow_dispatch: {{}}

concurrency:
  group: angles-{_slug(pipeline)}
  cancel-in-progress: false

permissions:
  contents: read

jobs:
  run:
    runs-on: ubuntu-latest
    timeout-minutes: 60
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - run: pip install {requirement()}
{cache}      - name: angles run
        run: angles run {path}
        env:
{env}
"""


def _kubernetes(pipeline: Pipeline) -> str:
    slug = _slug(pipeline)
    used = variables(pipeline)
    secret_keys = "\n".join(f'  {v.name}: ""' for v in used) or "  {}"
    files = sorted({Path(file).name for file, _ in pipeline.lines.values()} | {pipeline.path.name})
    from_files = " ".join(f"--from-file={name}" for name in files)
    state = pipeline.document.get("state", ".angles/state.db")
    state_note = (
        ""
        if "://" in str(state)
        else "# The pipeline's state: is a file, which a pod loses: use a postgresql:// URL there\n"
        "# so alerting state (recoveries, remind_every) and history survive between runs.\n"
    )
    return f"""\
# angles: the "{pipeline.name}" pipeline at "{pipeline.schedule}" (UTC), as a Kubernetes CronJob.
# The pipeline files go into a ConfigMap:
#   kubectl create configmap angles-{slug}-pipeline {from_files}
# Fill in the Secret below (or: kubectl create secret generic angles-{slug} --from-env-file=.env),
# then: kubectl apply -f this-file.yaml. The job installs {requirement()} into the official
# Python image at each run; an image of your own with it preinstalled starts faster.
{state_note}apiVersion: v1
kind: Secret
metadata:
  name: angles-{slug}
type: Opaque
stringData:
{secret_keys}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: angles-{slug}
spec:
  schedule: "{five_fields(pipeline.schedule)}"
  timeZone: Etc/UTC
  concurrencyPolicy: Forbid
  # After downtime, one missed run starts if it is less than an hour late.
  startingDeadlineSeconds: 3600
  successfulJobsHistoryLimit: 3
  failedJobsHistoryLimit: 3
  jobTemplate:
    spec:
      # Exit 2 means checks failed, not that the job should run again.
      backoffLimit: 0
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: angles
              image: {KUBERNETES_IMAGE}
              # Copied out of the read-only ConfigMap: relative paths (state, logs) are
              # taken from the pipeline's folder, which must be writable.
              command: ["sh", "-c"]
              args:
                - >-
                  pip install --quiet --no-cache-dir --root-user-action=ignore '{requirement()}'
                  && cp /etc/angles/* /var/lib/angles/
                  && exec angles run /var/lib/angles/{pipeline.path.name}
              workingDir: /var/lib/angles
              envFrom:
                - secretRef:
                    name: angles-{slug}
              volumeMounts:
                - {{name: pipeline, mountPath: /etc/angles, readOnly: true}}
                - {{name: work, mountPath: /var/lib/angles}}
          volumes:
            - name: pipeline
              configMap:
                name: angles-{slug}-pipeline
            - name: work
              emptyDir: {{}}
"""
