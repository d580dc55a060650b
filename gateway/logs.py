"""Structured logging: JSON lines for machines, a readable console for people.

Context is bound per session and per message with structlog's contextvars, so every line a relay task
writes carries the ESME's system_id, the peer address and the message_id without passing them around.
Secrets never reach a log: PDUs hide their passwords in repr, and ``drop_secrets`` masks any event
key that names one.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import PurePath
from typing import Any, TextIO, cast

import structlog

_SECRET_KEYS = frozenset({"password", "passwd", "secret", "token", "authorization"})


def drop_secrets(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if _SECRET_KEYS.isdisjoint(event):  # almost every line: no set built to find out
        return event
    for key in event.keys() & _SECRET_KEYS:
        event[key] = "***"
    return event


def plain_paths(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Paths as the strings a person typed, not ``PosixPath('...')``: both renderers fall back to repr
    for objects they do not know, inside lists and mappings too."""
    for key, value in event.items():
        if type(value) not in _SCALARS and _has_path(value):
            event[key] = _plain(value)
    return event


#: What almost every logged value is: settled by one type lookup (this runs for every field of every line).
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _has_path(value: Any) -> bool:
    if type(value) in _SCALARS:
        return False
    if isinstance(value, PurePath):
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return any(type(v) not in _SCALARS and _has_path(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_path(k) or _has_path(v) for k, v in value.items())
    return False


def _plain(value: Any) -> Any:
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=str)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


class _CurrentStderr:
    """Whatever ``sys.stderr`` is at the time of each write, not the object it was at configure time:
    a configure() made while something had swapped sys.stderr (pytest's capture, for one) must not
    leave every later log line writing to that stream after it is closed.

    A line is written whole, in one call: ``print`` writes the text and its newline apart, and where
    stderr writes through (it does when it is a pipe) the lines of the workers of ``afgw run
    --workers``, which share their supervisor's stderr, would otherwise interleave mid-line."""

    def __init__(self) -> None:
        self._partial = ""

    def write(self, text: str) -> int:
        if not text.endswith("\n"):
            self._partial += text
            return len(text)
        line, self._partial = self._partial + text, ""
        sys.stderr.write(line)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            sys.stderr.write(self._partial)
            self._partial = ""
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(fmt: str = "console", level: str = "info", stream: Any = None) -> None:
    """Set up structlog once per process. ``fmt`` is ``console`` or ``json``."""
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=(stream or sys.stderr).isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            drop_secrets,
            plain_paths,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, stream or _CurrentStderr())),
        cache_logger_on_first_use=False,
    )


class _Logger:
    """What ``get_logger`` gives: structlog's lazy proxy, without its cost on every call.

    structlog's proxy assembles a new bound logger (a logger from the factory, a context, the
    wrapper) for every call, filtered or not: about four times what the call itself costs through a
    bound logger, paid on the relay's path for each message. This one keeps the logger it assembled
    for as long as the configuration it came from holds (``configure`` here, or structlog's own,
    replaces the wrapper class, the processors, the factory or the context class, and that is seen
    at the next call).
    """

    __slots__ = ("_args", "_bound", "_made_from")

    def __init__(self, *args: Any) -> None:
        self._args = args
        self._bound: Any = None
        self._made_from: tuple[Any, ...] = ()

    def _current(self) -> Any:
        config = _CONFIG
        made_from = self._made_from
        if (
            not made_from
            or made_from[0] is not config.default_wrapper_class
            or made_from[1] is not config.default_processors
            or made_from[2] is not config.logger_factory
            or made_from[3] is not config.default_context_class
        ):
            self._bound = structlog.wrap_logger(None, logger_factory_args=self._args).bind()
            self._made_from = (
                config.default_wrapper_class,
                config.default_processors,
                config.logger_factory,
                config.default_context_class,
            )
        return self._bound

    # The level methods by name: reaching them through __getattr__ would cost more than they do.

    def debug(self, event: str, *args: Any, **fields: Any) -> Any:
        return self._current().debug(event, *args, **fields)

    def info(self, event: str, *args: Any, **fields: Any) -> Any:
        return self._current().info(event, *args, **fields)

    def warning(self, event: str, *args: Any, **fields: Any) -> Any:
        return self._current().warning(event, *args, **fields)

    def error(self, event: str, *args: Any, **fields: Any) -> Any:
        return self._current().error(event, *args, **fields)

    def exception(self, event: str, *args: Any, **fields: Any) -> Any:
        return self._current().exception(event, *args, **fields)

    def bind(self, **values: Any) -> Any:
        return self._current().bind(**values)

    def new(self, **values: Any) -> Any:
        return self._current().new(**values)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._current(), name)

    def __repr__(self) -> str:
        return f"<gateway.logs logger {self._args!r}>"


try:
    from structlog import _config as _structlog_config

    _CONFIG: Any = _structlog_config._CONFIG
except (ImportError, AttributeError):  # a structlog laid out otherwise than this knows: its own proxy
    _CONFIG = None


def get_logger(name: str) -> Any:
    if _CONFIG is None:
        return structlog.get_logger(name)
    return _Logger(name)
