"""The local event log: one JSON object per line, appended, rotated by size.

Each event is one ``write`` of a whole line on a file opened for appending, so a process killed at
any point leaves whole lines (at most the last one missing), and other readers (``tail -F``) never
see half an event. Durability against the machine losing power is a policy: ``fsync_every`` = 1
syncs after every event, N after every N events, 0 (the default) leaves it to the OS (within about
30 s on Linux). When the file passes ``max_bytes`` it becomes ``<name>.1`` (the previous ``.1``
becomes ``.2`` ... up to ``keep``) and a new file starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.events.wire import event_json
from gateway.logs import get_logger

log = get_logger("afgw.events")


class JsonlEvents:
    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 100 * 1024 * 1024,
        keep: int = 5,
        fsync_every: int = 0,
        instance: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.keep = keep
        self.fsync_every = fsync_every
        self.instance = instance
        self._clock = clock
        self._unsynced = 0
        self.failed = 0
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def emit(self, name: str, /, **fields: Any) -> None:
        line = (event_json(name, self._clock(), fields, self.instance) + "\n").encode()
        try:
            os.write(self._fd, line)
            self._unsynced += 1
            if self.fsync_every and self._unsynced >= self.fsync_every:
                os.fsync(self._fd)
                self._unsynced = 0
            if os.fstat(self._fd).st_size >= self.max_bytes:
                self._rotate()
        except OSError as exc:
            # A full disk must not stop the gateway: the event is counted and logged instead.
            self.failed += 1
            log.error("events.log_write_failed", path=str(self.path), error=str(exc))

    def _rotate(self) -> None:
        os.close(self._fd)
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        if self.keep > 0:
            self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._fd = self._open()

    def close(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
