"""Hot reload: rules change on disk (or on SIGHUP) and the engine swaps them in without dropping traffic.

The watcher polls the rule files' modification times (and the set of files under the watched
directories) every ``interval`` seconds of its injected clock. A change loads and compiles the whole set
off the event loop (Hyperscan compiles without the GIL), then installs it with one reference swap;
evaluation never waits. A bad edit installs nothing: the old rules keep running and every error is
logged with its ``file:line:col``; the watcher tries again when the files change again.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from rules.compiler import RuleSet, build
from rules.engine import Engine
from rules.loader import rule_files
from rules.yaml_source import SourceError, SourceErrors

log = structlog.get_logger("afgw.rules")

Snapshot = dict[str, tuple[int, int]]


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    seconds: float
    rules: int = 0
    errors: list[SourceError] = field(default_factory=list)


def snapshot(paths: Iterable[str | Path]) -> Snapshot:
    """(mtime_ns, size) of every rule file under ``paths``; a missing file is simply absent."""
    out: Snapshot = {}
    for f in rule_files(paths):
        try:
            st = f.stat()
        except OSError:
            continue
        out[str(f)] = (st.st_mtime_ns, st.st_size)
    return out


class RuleWatcher:
    """Reloads ``engine``'s rules from ``paths`` when they change or when asked (SIGHUP)."""

    def __init__(
        self,
        engine: Engine,
        paths: Sequence[str | Path],
        *,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        builder: Callable[[Sequence[str | Path]], RuleSet] = build,
    ) -> None:
        self.engine = engine
        self.paths = list(paths)
        self.interval = interval
        self.clock = clock
        self.builder = builder
        self.seen: Snapshot = snapshot(self.paths)
        self.last: ReloadResult | None = None
        self._next_poll = clock() + interval
        self._requested = False
        self._wakeup: asyncio.Event | None = None

    def changed(self) -> bool:
        return snapshot(self.paths) != self.seen

    def request_reload(self) -> None:
        """Reload at the next opportunity, changed or not (the SIGHUP handler)."""
        self._requested = True
        if self._wakeup is not None:
            self._wakeup.set()

    def due(self) -> bool:
        """Whether a reload is wanted now: asked for, or the interval passed and the files changed."""
        if self._requested:
            return True
        now = self.clock()
        if now < self._next_poll:
            return False
        self._next_poll = now + self.interval
        return self.changed()

    def poll(self) -> ReloadResult | None:
        """Reload synchronously if due; None when nothing was due."""
        return self.reload() if self.due() else None

    def reload(self) -> ReloadResult:
        """Build the rules now and install them if they are good."""
        self._requested = False
        seen = snapshot(self.paths)
        started = time.perf_counter()
        try:
            ruleset = self.builder(self.paths)
        except SourceErrors as exc:
            return self._failed(seen, exc.errors, time.perf_counter() - started)
        return self._install(seen, ruleset, time.perf_counter() - started)

    async def reload_async(self) -> ReloadResult:
        """Like :meth:`reload`, with loading and compiling in a worker thread so the loop keeps serving."""
        self._requested = False
        seen = snapshot(self.paths)
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            ruleset = await loop.run_in_executor(None, self.builder, self.paths)
        except SourceErrors as exc:
            return self._failed(seen, exc.errors, time.perf_counter() - started)
        return self._install(seen, ruleset, time.perf_counter() - started)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Poll until ``stop`` is set; reload off the loop when due."""
        self._wakeup = asyncio.Event()
        stop = stop or asyncio.Event()
        try:
            while not stop.is_set():
                if self.due():
                    await self.reload_async()
                    continue
                self._wakeup.clear()
                waiters: list[asyncio.Task[Any]] = [
                    asyncio.ensure_future(self._wakeup.wait()),
                    asyncio.ensure_future(stop.wait()),
                ]
                _, pending = await asyncio.wait(waiters, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
        finally:
            self._wakeup = None

    def _install(self, seen: Snapshot, ruleset: RuleSet, seconds: float) -> ReloadResult:
        self.engine.install(ruleset)
        self.seen = seen
        self.last = ReloadResult(True, seconds, len(ruleset))
        log.info("rules.reloaded", rules=len(ruleset), seconds=round(seconds, 3))
        return self.last

    def _failed(self, seen: Snapshot, errors: list[SourceError], seconds: float) -> ReloadResult:
        self.seen = seen  # retry when the files change again, not on every poll
        self.last = ReloadResult(False, seconds, len(self.engine.ruleset), errors)
        log.error(
            "rules.reload_failed",
            errors=[str(e) for e in errors],
            count=len(errors),
            kept_rules=len(self.engine.ruleset),
        )
        return self.last


def install_sighup(watcher: RuleWatcher, loop: asyncio.AbstractEventLoop | None = None) -> Callable[[], None]:
    """Make SIGHUP reload the rules; returns a function that removes the handler."""
    loop = loop or asyncio.get_running_loop()
    running = loop
    running.add_signal_handler(signal.SIGHUP, watcher.request_reload)

    def remove() -> None:
        running.remove_signal_handler(signal.SIGHUP)

    return remove
