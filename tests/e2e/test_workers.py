"""``afgw run --workers N``: one supervisor, N gateways on the same ports and one Redis."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.e2e.sip_harness import (
    TRUNK_HOST,
    UdpPeer,
    answer,
    register_digest,
    request,
    shipped_config_with_free_ports,
)
from tests.e2e.test_cli_run import Process, readme_esme, wait_until
from tests.gateway.store.redis_server import start_redis

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@contextlib.contextmanager
def running_redis(tmp: Path) -> Iterator[str]:
    proc, port = start_redis(tmp)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with running_redis(tmp_path) as url:
        yield url


def workers_config(tmp_path: Path, redis_url: str, *, backend: str = "redis") -> tuple[Path, int, int, int]:
    """The shipped configuration on free ports and the test's Redis: (path, SMPP, SMSC, SIP port)."""
    sip_port = free_port()
    text = shipped_config_with_free_ports(sip_port)
    smpp_port, smsc_port = (int(p) for p in re.findall(r"^\s+port: (\d+)$", text, re.MULTILINE)[:2])
    text = text.replace("backend: sqlite", f"backend: {backend}")
    text = text.replace('redis_url: "redis://127.0.0.1:6379/0"', f'redis_url: "{redis_url}"')
    # Worker i serves the HTTP endpoint on port + i.
    text += f"\nhttp:\n  port: {free_port_pair(socket.SOCK_STREAM)}\n"
    # Worker i relays SIP from worker_udp_port + i, the ports a firewall in front of them must let through.
    listen = f"    tcp_port: {sip_port}\n"
    text = text.replace(
        listen, f"{listen}    worker_udp_port: {free_port_pair(socket.SOCK_DGRAM, avoid=sip_port)}\n", 1
    )
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    return path, smpp_port, smsc_port, sip_port


def free_port_pair(kind: socket.SocketKind, *, avoid: int = 0) -> int:
    """A free port (TCP or UDP, by ``kind``) whose successor is free too, neither of them ``avoid``."""
    while True:
        with socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port >= 65535 or avoid in (port, port + 1):
            continue
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, kind) as probe:
            probe.bind(("127.0.0.1", port + 1))
            return port


def worker_udp_ports(workers: Workers) -> tuple[int, int]:
    """The two workers' own SIP UDP ports, as the test's configuration gives them."""
    text = workers.path.read_text(encoding="utf-8")
    first = int(re.findall(r"^    worker_udp_port: (\d+)$", text, re.MULTILINE)[0])
    return first, first + 1


class Workers:
    """``afgw --log-format json run --workers 2`` and its simulated SMSC, with the log as JSON events."""

    def __init__(self, tmp_path: Path, redis_url: str) -> None:
        self.path, self.smpp_port, smsc_port, self.sip_port = workers_config(tmp_path, redis_url)
        self.smsc = Process("smsc", "--port", str(smsc_port), "--system-id", "afgw", "--password", "secret")
        self.smsc.wait_for(self.smsc.out, rf"simulated SMSC listening on 127\.0\.0\.1:{smsc_port}")
        self.supervisor = Process("--log-format", "json", "run", "-c", str(self.path), "--workers", "2")

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in list(self.supervisor.err):
            if line.startswith("{") and (event := json.loads(line))["event"] == name:
                found.append(event)
        return found

    def wait_events(self, name: str, count: int, within: float = 120.0) -> list[dict[str, Any]]:
        def enough() -> bool:
            assert self.supervisor.proc.poll() is None, self.supervisor.err
            return len(self.events(name)) >= count

        wait_until(enough, within, f"{count} {name}")
        return self.events(name)

    def close(self) -> None:
        self.supervisor.stop(signal.SIGKILL)
        for event in self.events("workers.started"):  # none outlives the test, whatever happened
            with contextlib.suppress(ProcessLookupError):
                os.kill(event["pid"], signal.SIGKILL)
        self.smsc.stop(signal.SIGKILL)


@contextlib.contextmanager
def running_workers(tmp_path: Path, redis_url: str) -> Iterator[Workers]:
    running = Workers(tmp_path, redis_url)
    try:
        running.wait_events("smsc.bound", 4)  # two binds each (smsc.binds in the shipped file)
        # Both listen on every port: until then the kernel's choice of worker for a peer may change.
        running.wait_events("afgw.started", 2)
        yield running
    finally:
        running.close()


@pytest.fixture
def workers(tmp_path: Path, redis_url: str) -> Iterator[Workers]:
    """Workers of the test's own, for a test that kills or signals them."""
    with running_workers(tmp_path, redis_url) as running:
        yield running


@pytest.fixture(scope="module")
def shared_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    """One supervisor and its workers for the tests that only send traffic through them and read their
    log: none of them stops, kills or reloads a worker, so each finds them as a fresh start leaves them."""
    tmp = tmp_path_factory.mktemp("workers")
    with running_redis(tmp) as url, running_workers(tmp, url) as running:
        yield running


def submit_through(workers: Workers, count: int) -> None:
    """``count`` ESMEs, each on its own connection (so spread over the workers), send one message each;
    every one is answered ESME_ROK with the SMSC's id and stored by the SMSC."""
    for _ in range(count):
        message_id = readme_esme(workers.smpp_port)
        workers.smsc.wait_for(workers.smsc.out, rf"^stored {re.escape(message_id)}: 10690 -> 8613800000001: ")


def test_two_workers_share_the_smpp_port_and_each_binds_to_the_smsc(shared_workers: Workers) -> None:
    workers = shared_workers
    started = workers.events("workers.started")
    assert sorted(e["worker"] for e in started) == [0, 1]
    assert len({e["pid"] for e in started}) == 2
    assert sorted(e["worker"] for e in workers.events("smsc.bound")) == [0, 0, 1, 1]
    listening = workers.wait_events("sip.listening", 2)
    assert sorted((e["worker"], e["worker_udp_port"]) for e in listening) == list(enumerate(worker_udp_ports(workers)))
    submit_through(workers, 16)
    # Connections were spread by the kernel (SO_REUSEPORT, a hash of each ESME's address and port):
    # both workers took ESMEs (all 16 on one would happen once in 2**15 runs).
    served = {e["worker"] for e in workers.wait_events("esme.bound", 16)}
    assert served == {0, 1}


def test_a_killed_worker_is_restarted_and_messages_keep_flowing(workers: Workers) -> None:
    [first] = [e for e in workers.events("workers.started") if e["worker"] == 0]
    os.kill(first["pid"], signal.SIGKILL)
    [died] = workers.wait_events("workers.died", 1)
    assert (died["worker"], died["pid"], died["status"], died["level"]) == (0, first["pid"], "SIGKILL", "warning")
    assert died["restart_in"] == 0.5
    again = [e for e in workers.wait_events("workers.started", 3) if e["worker"] == 0]
    assert len(again) == 2
    assert again[1]["pid"] != first["pid"]
    workers.wait_events("smsc.bound", 6)  # the new worker 0 bound again
    submit_through(workers, 16)
    assert {e["worker"] for e in workers.events("esme.bound")} == {0, 1}


def test_sighup_reaches_every_worker_and_sigterm_stops_them_all_cleanly(workers: Workers) -> None:
    workers.supervisor.proc.send_signal(signal.SIGHUP)
    reloaded = workers.wait_events("config.reloaded", 2)
    assert sorted(e["worker"] for e in reloaded) == [0, 1]
    assert workers.supervisor.stop(signal.SIGTERM) == 0
    assert sorted(e["worker"] for e in workers.events("afgw.stopped")) == [0, 1]
    assert [e["status"] for e in workers.events("workers.exited")] == ["exit 0", "exit 0"]
    assert workers.events("workers.died") == []
    last = json.loads(workers.supervisor.err[-1])
    assert (last["event"], last["exits"]) == ("workers.stopped", ["exit 0", "exit 0"])


async def test_a_handset_registered_through_one_worker_is_called_through_either(shared_workers: Workers) -> None:
    workers = shared_workers
    handset = await UdpPeer.open()
    try:
        registered = await register_digest(handset, workers.sip_port, "8613800000001", "handset1pw", expires=3600)
        assert registered.status == 200
        # Callers from eight source ports: the kernel hashes them over both workers. The handset answers
        # where each INVITE came from (its Via), the worker that holds the call.
        own_ports = worker_udp_ports(workers)
        for _ in range(8):
            trunk = await UdpPeer.open(TRUNK_HOST)
            try:
                invite = request("INVITE", "sip:8613800000001@127.0.0.1", trunk)
                trunk.send(invite, workers.sip_port)
                got = await handset.request("INVITE", invite.call_id, within=30)
                via = got.headers.get("Via") or ""
                sent_by = int(re.search(r"SIP/2\.0/UDP 127\.0\.0\.1:(\d+)", via).group(1))  # type: ignore[union-attr]
                assert sent_by in own_ports
                handset.send(answer(got, 486), sent_by)
                assert (await trunk.response(invite.call_id, 486, within=30)).status == 486
            finally:
                trunk.close()
    finally:
        handset.close()


def test_workers_refuse_a_store_of_their_own(tmp_path: Path) -> None:
    path, *_ = workers_config(tmp_path, "redis://127.0.0.1:1/0", backend="sqlite")
    run = Process("run", "-c", str(path), "--workers", "2")
    assert run.proc.wait(20) == 2
    wait_until(lambda: any("needs store.backend: redis" in line for line in run.err))
    [line] = [line for line in run.err if "needs store.backend: redis" in line]
    assert line.startswith(f"{path}: --workers 2 needs store.backend: redis; with sqlite registrations")


def test_each_worker_serves_the_http_endpoint_on_its_own_port(shared_workers: Workers) -> None:
    workers = shared_workers
    text = workers.path.read_text(encoding="utf-8")
    base = int(re.findall(r"^http:\n  port: (\d+)$", text, re.MULTILINE)[0])
    for port in (base, base + 1):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
            assert answer.status == 200
    assert workers.events("workers.died") == []
