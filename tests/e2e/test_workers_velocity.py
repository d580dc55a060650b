"""``afgw run --workers 2`` on Redis: a sender whose messages the kernel spreads over both workers trips a
velocity rule at its whole rate, as one gateway would, because the workers count in Redis together."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import smpplib.client
import smpplib.consts

from tests.e2e.test_cli_run import Process
from tests.e2e.test_workers import Workers, workers_config
from tests.gateway.store.redis_server import start_redis

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MESSAGES = 16  # one connection each: the kernel hashes them over both workers
PACK = f"""rules:
  - id: t.spray
    title: one sender, {MESSAGES} messages within an hour
    category: other
    risk: high
    channel: sms
    action: block
    detection:
      sel:
        velocity: {{by: src, count: {MESSAGES}, within: 3600}}
      condition: sel
"""


class SprayWorkers(Workers):
    """The shipped configuration as two workers, with the velocity rule above as its only rule."""

    def __init__(self, tmp_path: Path, redis_url: str) -> None:
        path, self.smpp_port, smsc_port, self.sip_port = workers_config(tmp_path, redis_url)
        pack = tmp_path / "spray.yaml"
        pack.write_text(PACK, encoding="utf-8")
        text = path.read_text(encoding="utf-8")
        shipped = '  # packs: ["../rules/packs", "local-rules/"]'
        assert shipped in text
        path.write_text(text.replace(shipped, f'  packs: ["{pack}"]'), encoding="utf-8")
        self.smsc = Process("smsc", "--port", str(smsc_port), "--system-id", "afgw", "--password", "secret")
        self.smsc.wait_for(self.smsc.out, rf"simulated SMSC listening on 127\.0\.0\.1:{smsc_port}")
        self.supervisor = Process("--log-format", "json", "run", "-c", str(path), "--workers", "2")


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    proc, port = start_redis(tmp_path)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def workers(tmp_path: Path, redis_url: str) -> Iterator[Workers]:
    running = SprayWorkers(tmp_path, redis_url)
    try:
        running.wait_events("smsc.bound", 4)
        running.wait_events("afgw.started", 2)
        yield running
    finally:
        running.close()


def submit_once(port: int, destination: str) -> int:
    """Bind as the README's bank, send one message from 10690 and unbind: the submit_sm_resp status."""
    answers: list[object] = []
    client = smpplib.client.Client("127.0.0.1", port)
    client.set_message_sent_handler(lambda pdu: answers.append(pdu))
    client.set_error_pdu_handler(lambda pdu: None)  # a refusal is an answer here, not an error
    client.connect()
    try:
        client.bind_transceiver(system_id="bank", password="bankpw")
        client.send_message(
            source_addr="10690",
            destination_addr=destination,
            short_message="您的验证码是 123456".encode("utf-16-be"),
            data_coding=smpplib.consts.SMPP_ENCODING_ISO10646,
        )
        client.read_once()
        client.unbind()
    finally:
        with contextlib.suppress(Exception):
            client.disconnect()
    [resp] = answers
    return int(resp.status)  # type: ignore[attr-defined]


def test_a_sender_spread_over_two_workers_is_counted_whole(workers: Workers) -> None:
    statuses = [submit_once(workers.smpp_port, f"86138000010{i:02d}") for i in range(MESSAGES)]
    served = [e["worker"] for e in workers.wait_events("esme.bound", MESSAGES)]
    # both workers took some of them (all on one would happen once in 2**15 runs), so neither saw them all
    assert set(served) == {0, 1}
    assert statuses == [0] * (MESSAGES - 1) + [0x45]  # the last one is ESME_RSUBMITFAIL
    [decision] = workers.wait_events("sms.decision", 1)
    assert (decision["action"], decision["rules"], decision["source"]) == ("block", ["t.spray"], "10690")
    assert workers.supervisor.stop(signal.SIGTERM) == 0
