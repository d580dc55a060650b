"""The supervisor of ``afgw run --workers N``: starts N worker processes and keeps them running.

- A worker that exits while the supervisor is not stopping is restarted after a backoff that doubles
  from ``backoff_initial`` to ``backoff_max`` and starts again from the bottom once a worker has run
  ``stable_after`` seconds; every death is logged with its exit status and the delay.
- SIGTERM and SIGINT: every worker is sent SIGTERM (each drains and exits as a lone gateway does),
  nothing is restarted any more, and the supervisor exits once all have exited: 0 if all exited 0.
- SIGHUP is forwarded to every worker (each reloads its rules).

The supervisor holds no listening socket and no state: the workers share the ports (SO_REUSEPORT) and
Redis; the supervisor only watches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Sequence

from gateway.logs import get_logger

log = get_logger("afgw.workers")


def describe_exit(code: int) -> str:
    """``exit 1`` or ``SIGKILL``: how an operator names the way a process ended."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
        return f"signal {-code}"
    return f"exit {code}"


class Supervisor:
    def __init__(
        self,
        command: Callable[[int], Sequence[str]],
        count: int,
        *,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        stable_after: float = 60.0,
    ) -> None:
        if count < 1:
            raise ValueError("count must be positive")
        #: The command line of worker ``index``.
        self.command = command
        self.count = count
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        #: The live process of each worker index.
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        #: Restarts so far, by worker index.
        self.restarts: dict[int, int] = {}
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop restarting and ask every worker to drain and exit."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.info("workers.stopping", workers=len(self.processes))
        self.signal_all(signal.SIGTERM)

    def signal_all(self, sig: signal.Signals) -> None:
        for process in list(self.processes.values()):
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)

    async def run(self) -> int:
        """Run the workers until :meth:`stop` and all have exited; 0 when every last exit was 0."""
        codes = await asyncio.gather(*(self._keep(index) for index in range(self.count)))
        log.info("workers.stopped", exits=[describe_exit(code) for code in codes])
        return 0 if all(code == 0 for code in codes) else 1

    async def serve(self) -> int:
        """:meth:`run` with the process's signals: SIGTERM/SIGINT stop, SIGHUP is forwarded."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._forward_hup)
        try:
            return await self.run()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)

    def _forward_hup(self) -> None:
        log.info("workers.reload", workers=len(self.processes))
        self.signal_all(signal.SIGHUP)

    async def _keep(self, index: int) -> int:
        loop = asyncio.get_running_loop()
        delay = self.backoff_initial
        while True:
            started = loop.time()
            process = await asyncio.create_subprocess_exec(*self.command(index))
            self.processes[index] = process
            log.info("workers.started", worker=index, pid=process.pid)
            if self._stopping.is_set():  # stopped while it was starting: it drains like the others
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            code = await process.wait()
            del self.processes[index]
            if self._stopping.is_set():
                log.info("workers.exited", worker=index, pid=process.pid, status=describe_exit(code))
                return code
            if loop.time() - started >= self.stable_after:
                delay = self.backoff_initial
            self.restarts[index] = self.restarts.get(index, 0) + 1
            log.warning(
                "workers.died", worker=index, pid=process.pid, status=describe_exit(code), restart_in=round(delay, 3)
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return code
            delay = min(delay * 2, self.backoff_max)
