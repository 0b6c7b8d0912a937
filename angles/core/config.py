"""Loading a pipeline file: YAML 1.2 with line numbers, variables, ``extends:`` and validation.

Every problem is collected and reported at once, each with its file, line and key path,
before any service is contacted.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from angles.core.errors import PipelineError, Problem
from angles.core.kinds import KIND, KINDS, POSITIVE_DURATION_PATTERN
from angles.core.pipeline import Pipeline
from angles.core.plugins import Plugins
from angles.core.redact import Redactor, is_secret_name

KeyPath = tuple[str | int, ...]

VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_INTEGER = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")
#: The sections whose entries configure plugins (and so contact services).
PLUGIN_SECTIONS = frozenset(kind.section for kind in KINDS) | {"backups"}
#: A pipeline is a few kilobytes; past this, YAML parsing itself would take seconds.
MAX_PIPELINE_BYTES = 128 << 10
#: Values after YAML aliases are expanded: a few aliases can otherwise stand for billions.
MAX_PIPELINE_VALUES = 100_000
_BOOLEANS = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}


def format_path(path: Iterable[str | int]) -> str:
    """``checks[2].warn_above`` from ``("checks", 2, "warn_above")``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_pipeline(
    path: str | Path,
    plugins: Plugins,
    environ: Mapping[str, str] | None = None,
    *,
    plugin_variables: bool = True,
) -> Pipeline:
    """Read, interpolate, merge and validate a pipeline file.

    With ``plugin_variables=False`` (commands that contact no service, such as
    ``history``), a variable left unset in a plugin's settings is not a problem.
    Raises :class:`PipelineError` listing every problem found.
    """
    path = Path(path)
    environment = {
        **read_dotenv(path.parent / ".env"),
        **(environ if environ is not None else os.environ),
    }
    loader = _Loader(environment)
    document = loader.read(path, chain=())
    problems = loader.problems + (loader.plugin_variable_problems if plugin_variables else [])
    if document is not None:
        # A missing variable is reported once, not again as a wrong value for its key.
        reported = {p.key for p in (*loader.problems, *loader.plugin_variable_problems)}
        found = _Validator(document, loader.lines, plugins, path).validate()
        problems += [p for p in found if p.key not in reported]
    secrets = set(loader.secrets)
    if document is not None:
        secrets |= secret_values(document, plugins)
    if problems:
        redact = Redactor(secrets)
        # Two rules may find one fault (the core schema and a plugin's both require ``name``).
        problems = list(dict.fromkeys(problems))
        problems.sort(key=lambda p: (p.file != str(path), p.file, p.line or 0))
        raise PipelineError(
            [Problem(p.file, p.line, p.key, redact.text(p.message)) for p in problems]
        )
    assert document is not None
    return Pipeline(path, document, frozenset(secrets), loader.lines)


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables of a ``.env`` file, read as python-dotenv (and docker compose) read it.

    ``KEY=  # comment`` is empty; a line without ``=`` sets nothing.
    """
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {key: value for key, value in dotenv_values(path).items() if value is not None}


class _Loader:
    """Reads files (following ``extends:``), keeping lines and substituting variables."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[Problem] = []
        #: Unset variables in plugins' settings, which only commands using them care about.
        self.plugin_variable_problems: list[Problem] = []
        self.lines: dict[str, tuple[str, int]] = {}
        self.secrets: set[str] = set()
        self._budget = MAX_PIPELINE_VALUES

    def problem(self, file: Path, line: int | None, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(str(file), line, format_path(path), message))

    def _plugin_variable_problem(
        self, file: Path, line: int | None, path: KeyPath, message: str
    ) -> None:
        self.plugin_variable_problems.append(Problem(str(file), line, format_path(path), message))

    def read(
        self, path: Path, chain: tuple[Path, ...], cited: tuple[Path, int | None] | None = None
    ) -> dict[str, Any] | None:
        """The plain document of ``path`` merged over its ``extends:`` chain; ``cited`` is
        the file and line of the ``extends:`` that names ``path``, where problems finding
        it are reported."""
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError, YAMLError

        text = self._text(path, cited)
        if text is None:
            return None
        yaml = YAML(typ="rt")
        yaml.preserve_quotes = True
        try:
            node = yaml.load(text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            message = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
            source_lines = text.splitlines()
            if (
                line
                and line <= len(source_lines) + 1
                and "${" in "\n".join(source_lines[max(0, line - 2) : line])
            ):
                message += ' (inside { } or [ ], quote values that use variables: "${VAR}")'
            self.problem(path, line, (), f"invalid YAML: {message}")
            return None
        except YAMLError as exc:
            # A reader error (a NUL byte, a control character) carries a character position.
            position = getattr(exc, "position", None)
            line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
            reason = _character_problem(exc)
            self.problem(path, line, (), f"invalid YAML: {reason or ' '.join(str(exc).split())}")
            return None
        if node is None:
            node = {}
        if not isinstance(node, dict):
            self.problem(path, 1, (), "a pipeline file is a mapping of keys (version:, checks:, …)")
            return None
        lines: dict[str, tuple[str, int]] = {"": (str(path), 1)}
        try:
            document = self._plain(node, (), path, lines)
        except _TooManyValues as exc:
            key = _top_level(exc.path)
            self.problem(
                path,
                self._line(lines, key),
                key,
                f"the file expands to more than {MAX_PIPELINE_VALUES:,} values (YAML aliases "
                "repeat what their anchor holds): a pipeline is far smaller; write it out",
            )
            return None
        base_name = document.get("extends")
        if isinstance(base_name, str) and base_name:
            base_path = (path.parent / base_name).resolve()
            if base_path in chain or base_path == path.resolve():
                self.problem(
                    path, self._line(lines, ("extends",)), ("extends",), "extends itself in a loop"
                )
                return None
            cited = (path, self._line(lines, ("extends",)))
            base = self.read(base_path, (*chain, path.resolve()), cited)
            if base is None:
                return None
            document = deep_merge(base, document)
        self.lines.update(lines)
        return document

    def _text(self, path: Path, cited: tuple[Path, int | None] | None) -> str | None:
        """The file's text, or None with the problem recorded (at ``cited`` for a base)."""
        where, line, key = (*cited, ("extends",)) if cited else (path, None, ())
        # A base file's problem is reported at the extends: naming it, so name the file.
        subject = str(path) if cited else "the file"
        try:
            if path.is_dir():
                self.problem(
                    where,
                    line,
                    key,
                    f"{f'{path} is ' if cited else ''}a folder, not a pipeline file "
                    f"(give the file, e.g. {path / 'angles.yaml'})",
                )
                return None
            size = path.stat().st_size
            if size > MAX_PIPELINE_BYTES:
                self.problem(
                    where,
                    line,
                    key,
                    f"{subject} is {size:,} bytes; a pipeline file may be at most "
                    f"{MAX_PIPELINE_BYTES:,} bytes",
                )
                return None
            data = path.read_bytes()
        except FileNotFoundError:
            if cited:
                self.problem(
                    where, line, key, f"no such file {path} (a path relative to this file)"
                )
            else:
                self.problem(path, None, (), "no such pipeline file (write one with `angles init`)")
            return None
        except OSError as exc:
            self.problem(where, line, key, f"cannot read {subject}: {exc.strerror or exc}")
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad_line = data.count(b"\n", 0, exc.start) + 1
            self.problem(
                path,
                bad_line,
                (),
                f"byte {data[exc.start]:#04x} is not UTF-8: save the file as UTF-8",
            )
            return None

    @staticmethod
    def _line(lines: dict[str, tuple[str, int]], path: KeyPath) -> int | None:
        found = lines.get(format_path(path))
        return found[1] if found else None

    def _plain(
        self, node: Any, path: KeyPath, file: Path, lines: dict[str, tuple[str, int]]
    ) -> Any:
        """Plain dicts and lists from ruamel's nodes, recording each key's line."""
        self._budget -= 1
        if self._budget < 0:
            raise _TooManyValues(path)
        if isinstance(node, dict):
            result = {}
            for key in node:
                line = _key_line(node, key)
                child = (*path, str(key))
                if line:
                    lines[format_path(child)] = (str(file), line)
                result[str(key)] = self._plain(node[key], child, file, lines)
            return result
        if isinstance(node, list):
            items = []
            for index, item in enumerate(node):
                child = (*path, index)
                if hasattr(node, "lc"):
                    lines[format_path(child)] = (str(file), node.lc.item(index)[0] + 1)
                items.append(self._plain(item, child, file, lines))
            return items
        if isinstance(node, str):
            return self._substitute(node, path, file, lines)
        return node

    def _substitute(
        self, value: str, path: KeyPath, file: Path, lines: dict[str, tuple[str, int]]
    ) -> Any:
        from ruamel.yaml.scalarstring import ScalarString

        missing: list[str] = []
        empty: list[str] = []

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            found = self.environ.get(name)
            if not found:
                if default is None:
                    (missing if found is None else empty).append(name)
                    return ""
                found = default
            if is_secret_name(name) and found:
                self.secrets.add(found)
            return found

        result = VARIABLE.sub(replace, value)
        line = self._line(lines, path)
        problem = self.problem
        if path and path[0] in PLUGIN_SECTIONS:
            problem = self._plugin_variable_problem
        for name in missing:
            problem(
                file,
                line,
                path,
                f"variable {name} is not set: export it, add it to .env beside the pipeline, "
                f"or write ${{{name}:-default}}",
            )
        for name in empty:
            problem(
                file,
                line,
                path,
                f"variable {name} is empty: give it a value (in .env beside the pipeline or the "
                f"environment), or write ${{{name}:-}} where empty is meant",
            )
        whole = VARIABLE.fullmatch(value) and value != "$$"
        if whole and not isinstance(value, ScalarString):
            return resolve_scalar(result)
        return result


class _TooManyValues(Exception):
    """The document expands (through aliases) past :data:`MAX_PIPELINE_VALUES`."""

    def __init__(self, path: KeyPath) -> None:
        super().__init__(format_path(path))
        self.path = path


def _key_line(node: Any, key: Any) -> int | None:
    """The line of a key in ruamel's map; None for a key merged in by ``<<:``."""
    position = getattr(node, "lc", None) and node.lc.data.get(key)
    return position[0] + 1 if position else None


def _top_level(path: KeyPath) -> KeyPath:
    """The top-level key of a path: where an expansion is reported."""
    return path[:1]


def _character_problem(exc: Any) -> str | None:
    """``character 0x00 is not allowed in YAML`` from ruamel's reader error."""
    character = getattr(exc, "character", None)
    if isinstance(character, int):
        return f"character {character:#04x} is not allowed in YAML (remove it)"
    if isinstance(character, str) and len(character) == 1:
        return f"character {ord(character):#04x} is not allowed in YAML (remove it)"
    return None


def resolve_scalar(text: str) -> Any:
    """A substituted plain scalar typed as YAML 1.2 would type it (``587`` is an integer)."""
    if _INTEGER.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return _BOOLEANS.get(text, text)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Maps merge key by key; lists and scalars in ``override`` replace."""
    merged = dict(base)
    for key, value in override.items():
        if key == "extends":
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def secret_values(document: dict[str, Any], plugins: Plugins) -> set[str]:
    """Values of properties that plugins mark ``"secret": true``."""
    found = set()
    for kind in KINDS:
        for _, entry in _entries(document.get(kind.section)):
            cls = plugins.registries[kind.name].get(entry.get("type"))
            for key in cls.secret_options() if cls else ():
                found |= _strings(entry.get(key))
            if kind.name == "sink":
                found |= _encrypt_secrets(entry.get("encrypt"))
    # A postgresql:// state URL may carry a password.
    state = document.get("state")
    if isinstance(state, str) and "://" in state:
        from urllib.parse import urlsplit

        try:
            password = urlsplit(state).password
        except ValueError:
            password = None
        if password:
            found.add(password)
    return found


def _encrypt_secrets(settings: Any) -> set[str]:
    """A sink's passphrase and identity, and each line of a multi-line identity."""
    from angles.backup.encryption import SECRET_KEYS

    if not isinstance(settings, dict):
        return set()
    found = set()
    for key in SECRET_KEYS:
        for value in _strings(settings.get(key)):
            found |= {value, *filter(None, (line.strip() for line in value.splitlines()))}
    return found


def _strings(value: Any) -> set[str]:
    """The non-empty strings in a value (a secret may be a mapping, e.g. headers)."""
    if isinstance(value, str):
        return {value} if value else set()
    if isinstance(value, dict):
        return set().union(*map(_strings, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_strings, value)) if value else set()
    return set()


def _entries(section: Any) -> list[tuple[str | int, dict[str, Any]]]:
    """The entries of a section that are mappings (the schema reports the others)."""
    if isinstance(section, dict):
        pairs = list(section.items())
    elif isinstance(section, list):
        pairs = list(enumerate(section))
    else:
        return []
    return [(key, entry) for key, entry in pairs if isinstance(entry, dict)]


class _Validator:
    """Schema validation, plugin types, references and names, as located problems."""

    def __init__(
        self,
        document: dict[str, Any],
        lines: dict[str, tuple[str, int]],
        plugins: Plugins,
        path: Path,
    ) -> None:
        self.document = document
        self.lines = lines
        self.plugins = plugins
        self.path = path
        self.problems: list[Problem] = []

    def add(self, path: KeyPath, message: str) -> None:
        file, line = str(self.path), None
        probe = tuple(path)
        while True:
            found = self.lines.get(format_path(probe))
            if found:
                file, line = found
                break
            if not probe:
                break
            probe = probe[:-1]
        self.problems.append(Problem(file, line, format_path(path), message))

    def validate(self) -> list[Problem]:
        from angles.core.schema import CORE_SCHEMA

        self.check_schema(CORE_SCHEMA, self.document, ())
        for kind in KINDS:
            for key, entry in _entries(self.document.get(kind.section)):
                if isinstance(entry.get("type"), str):
                    self.check_entry(kind.name, (kind.section, key), entry)
        self.check_names()
        self.check_references()
        self.check_schedule()
        return self.problems

    def check_schema(self, schema: dict[str, Any], instance: Any, prefix: KeyPath) -> None:
        from jsonschema import Draft202012Validator

        validator = Draft202012Validator(schema)
        for error in sorted(
            validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))
        ):
            path = (*prefix, *error.absolute_path)
            for at, message in _describe(error):
                self.add((*path, *at), message)

    def check_entry(self, kind: str, path: KeyPath, entry: dict[str, Any]) -> None:
        from angles.core.schema import entry_schema

        registry = self.plugins.registries[kind]
        type_name = entry.get("type")
        cls = registry.get(type_name)
        if cls is None:
            known = ", ".join(registry) or "none"
            hint = _did_you_mean(str(type_name), list(registry))
            self.add(
                (*path, "type"),
                f"unknown {kind} type {type_name!r}{hint}; installed: {known} (see `angles plugins`)",
            )
            return
        before = len(self.problems)
        self.check_schema(entry_schema(kind, cls), entry, path)
        if len(self.problems) == before:
            for key, message in (
                cls.validate_config(entry) if hasattr(cls, "validate_config") else ()
            ):
                self.add((*path, key), message)
            for at, message in KIND[kind].validate(entry):
                self.add((*path, *at), message)

    def check_names(self) -> None:
        for section in ("checks", "backups", "notifiers"):
            seen: dict[str, int] = {}
            for index, entry in _entries(self.document.get(section)):
                name = entry.get("name")
                if name is None:
                    continue
                if name in seen:
                    self.add(
                        (section, index, "name"), f"the name {name!r} is used twice in {section}"
                    )
                seen.setdefault(name, index)

    def check_references(self) -> None:
        from angles.core.connection import Database

        connections = dict(_entries(self.document.get("connections")))
        sinks = dict(_entries(self.document.get("sinks")))

        def connection_class(name: str) -> type | None:
            entry = connections.get(name)
            return self.plugins.connections.get(entry.get("type")) if entry else None

        def refer(path: KeyPath, name: Any, pool: dict[str, Any], what: str) -> bool:
            if name in pool:
                return True
            defined = ", ".join(pool) or "none"
            self.add(
                path,
                f"unknown {what} {name!r}{_did_you_mean(str(name), list(pool))}; defined: {defined}",
            )
            return False

        backups = {e.get("name"): e for _, e in _entries(self.document.get("backups"))}
        for index, check in _entries(self.document.get("checks")):
            cls = self.plugins.checks.get(check.get("type"))
            wanted = {"connection": getattr(cls, "connection_type", None)}
            wanted.update(getattr(cls, "connection_keys", {}))
            for key, needed in wanted.items():
                if key in check and refer(
                    ("checks", index, key), check[key], connections, "connection"
                ):
                    actual = connection_class(check[key])
                    if needed and actual and not issubclass(actual, needed):
                        kind = needed.type or needed.__name__.lower()
                        self.add(
                            ("checks", index, key),
                            f"a {check['type']} check needs a {kind} connection; "
                            f"{check[key]!r} is a {actual.type} connection",
                        )
            for key in getattr(cls, "sink_keys", ()):
                if key in check:
                    refer(("checks", index, key), check[key], sinks, "sink")
            for key in getattr(cls, "backup_keys", ()):
                if key in check:
                    refer(("checks", index, key), check[key], backups, "backup entry")
        for index, backup in _entries(self.document.get("backups")):
            if "connection" in backup and refer(
                ("backups", index, "connection"), backup["connection"], connections, "connection"
            ):
                actual = connection_class(backup["connection"])
                if actual and not issubclass(actual, Database):
                    self.add(
                        ("backups", index, "connection"),
                        f"{backup['connection']!r} is a {actual.type} connection, which holds no tables",
                    )
            # A string (``sinks: local``) is the schema's to report, not five unknown sinks.
            named = backup.get("sinks")
            for position, sink in enumerate(named if isinstance(named, list) else []):
                refer(("backups", index, "sinks", position), sink, sinks, "sink")
            given = [key for key in ("table", "tables") if key in backup]
            if len(given) != 1:
                self.add(
                    ("backups", index, given[-1]) if given else ("backups", index),
                    "a backup names its tables with either `table:` or `tables:`"
                    if given
                    else "a backup needs `table:` (one table) or `tables:` (all, or a list)",
                )
            elif "exclude" in backup and "tables" not in backup:
                self.add(("backups", index, "exclude"), "`exclude:` goes with `tables:`")

    def check_schedule(self) -> None:
        schedule = self.document.get("schedule")
        if schedule is None:
            return
        from croniter import croniter

        if not croniter.is_valid(schedule):
            self.add(("schedule",), f'{schedule!r} is not a cron expression (e.g. "0 3 * * *")')


def _describe(error: Any) -> list[tuple[KeyPath, str]]:
    """Messages a person understands for one jsonschema error, with sub-paths."""
    validator, value, instance = error.validator, error.validator_value, error.instance
    if validator == "additionalProperties" and isinstance(instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in instance if k not in allowed]
        return [
            (
                (key,),
                f"unknown key {key!r}{_did_you_mean(key, allowed)}; allowed: {', '.join(allowed)}",
            )
            for key in extra
        ]
    if validator == "required":
        missing = [k for k in value if k not in instance]
        return [((), f"missing required key {k!r}") for k in missing]
    if validator == "type":
        expected = " or ".join(value) if isinstance(value, list) else value
        return [((), f"expected {_article(expected)}, got {_show(instance)}")]
    if validator == "enum":
        return [((), f"must be one of {', '.join(map(str, value))}, got {_show(instance)}")]
    if validator == "const":
        return [((), f"must be {value!r}, got {_show(instance)}")]
    if validator == "pattern" and error.schema.get("pattern") == r"^\s*\d+\s*(s|m|h|d|w)\s*$":
        return [((), f"expected a duration such as 30m, 6h or 1d, got {_show(instance)}")]
    if validator == "pattern" and error.schema.get("pattern") == POSITIVE_DURATION_PATTERN:
        return [((), f"expected a duration above zero, such as 15m or 1h, got {_show(instance)}")]
    if validator in {"minimum", "exclusiveMinimum", "maximum", "minItems", "minLength"}:
        return [((), f"{_show(instance)} is too small ({validator} {value})")]
    return [((), error.message)]


def _article(type_name: str) -> str:
    names = {
        "object": "a mapping",
        "array": "a list",
        "integer": "an integer",
        "string": "a string",
        "number": "a number",
        "boolean": "true or false",
        "null": "nothing",
    }
    return names.get(type_name, type_name)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
