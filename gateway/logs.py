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


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
