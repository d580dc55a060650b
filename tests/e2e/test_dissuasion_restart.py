"""``afgw run`` killed with SIGKILL in the middle of a dissuasion campaign, then started again on the
same SQLite file: the case goes on where it was.

The gateway runs as a process of its own on the real wall clock, which a test cannot step, so the
interval is 4 seconds (lease 2 s, polled every 0.1 s) instead of 5 minutes: short enough for the
whole campaign (3 attempts, then the escalation one interval later) to take about 15 seconds, long
enough for a restart to fit inside one interval on a loaded machine. Only the order and spacing of
what the store recorded is checked, never how long anything took.

The at-least-once bound this test holds the gateway to: no attempt is ever lost (the store ends
with exactly ``max_attempts`` attempts and the escalation, each attempt no earlier than one interval
after the one before), and at most one attempt is repeated. That one is the attempt the kill
interrupted between sending its flash and recording it: its lease lapses and it is made again, so
the person may see one flash (and one call) more than the store counts.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
from pathlib import Path

import pytest

from gateway.store import SqliteStore
from gateway.store.base import Case
from simulator.behaviour import UNREACHABLE, Population
from simulator.centre_mqtt import CentreDesk
from simulator.clock import LoopClock
from simulator.handset import Handset
from simulator.ports import free_udp_tcp_port
from simulator.smsc import SimulatedSmsc
from tests.conftest import free_port
from tests.e2e.labels_harness import LabelsPki, make_labels_pki
from tests.e2e.sip_harness import afgw_run, ping
from tests.e2e.smpp_harness import eventually
from tests.gateway.events.mqtt_broker import Broker

VICTIM = "8613800000001"
PASSWORD = "victimpw"
INTERVAL, LEASE, MAX_ATTEMPTS = 4.0, 2.0, 3
LABEL = "公安反诈专号"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabelsPki:
    return make_labels_pki(tmp_path_factory.mktemp("restart-labels"))


def _config(tmp_path: Path, pki: LabelsPki, *, smsc_port: int, sip_port: int, broker_port: int) -> str:
    return f"""
smpp:
  listen: {{host: 127.0.0.1, port: {free_port()}}}
  accounts:
    - {{system_id: bank, password: bankpw}}
  smsc:
    {{host: 127.0.0.1, port: {smsc_port}, system_id: afgw, password: secret, binds: 1,
     reconnect_initial: 0.1, reconnect_max: 0.5}}
sip:
  listen: {{host: 127.0.0.1, udp_port: {sip_port}, tcp_port: {sip_port}}}
  domain: 127.0.0.1
  trusted_peers: ["127.0.0.2"]
  registrar:
    auth: on
    min_expires: 60
    users:
      - {{user: "{VICTIM}", password: {PASSWORD}}}
  labels: {pki.labels_path}
store:
  backend: sqlite
  data_dir: {tmp_path / "data"}
events:
  mqtt: {{host: 127.0.0.1, port: {broker_port}, client_id: afgw-crash, backoff_initial: 0.1, backoff_max: 0.5}}
dissuasion:
  interval: {INTERVAL}
  max_attempts: {MAX_ATTEMPTS}
  lease: {LEASE}
  poll_interval: 0.1
  robot_call: {{number: "96110", bind: 127.0.0.2, ring_timeout: 1, message_time: 0.2, confirm_timeout: 1}}
"""


async def _stored_case(tmp_path: Path) -> Case:
    store = SqliteStore(tmp_path / "data" / "afgw.db")
    try:
        [case] = await store.all_cases()
    finally:
        await store.close()
    return case


async def _instruct_until_opened(desk: CentreDesk) -> None:
    """Send the instruction until the gateway has it: a fresh gateway subscribes a moment after it
    answers SIP, and the same reference sent again is one instruction."""
    reference = None
    for _ in range(20):
        reference = await desk.instruct(VICTIM, "medium", "冒充公检法", reference=reference)
        try:
            await desk.until(lambda v: v.case_of(VICTIM) is not None, within=1.0)
            return
        except TimeoutError:
            continue
    pytest.fail("the gateway never took the instruction")


@pytest.mark.parametrize("kill_when", ["attempt_recorded", "flash_sent"])
async def test_a_campaign_killed_after_its_first_attempt_resumes_on_its_schedule(
    tmp_path: Path, pki: LabelsPki, kill_when: str
) -> None:
    broker = Broker(tmp_path)
    await broker.start()
    people = Population(1, LoopClock())
    smsc = SimulatedSmsc(system_id="afgw", password="secret", people=people)
    await smsc.start("127.0.0.1", 0)
    sip_port = free_udp_tcp_port()
    config = _config(tmp_path, pki, smsc_port=smsc.port, sip_port=sip_port, broker_port=broker.port)
    handset = Handset(VICTIM, ("127.0.0.1", sip_port), password=PASSWORD, person=people.add(VICTIM, UNREACHABLE))
    desk = CentreDesk(port=broker.port)
    await desk.start()
    await handset.start()
    try:
        async with afgw_run(config, tmp_path) as gateway:
            await ping(sip_port, within=60.0)
            assert (await handset.register(3600)).status == 200
            await _instruct_until_opened(desk)
            if kill_when == "flash_sent":  # the flash is out; the attempt may not be recorded yet
                await eventually(lambda: bool(smsc.inbox(VICTIM)))
            else:  # the attempt is recorded (its event follows the store's commit)
                await desk.until(lambda v: bool(v.named("case.attempt")))
            gateway.send_signal(signal.SIGKILL)
            assert await asyncio.wait_for(gateway.wait(), 10) == -signal.SIGKILL
        before = await _stored_case(tmp_path)
        assert before.state == "open"

        async with afgw_run(config, tmp_path):
            # The handset does not register again: its binding was in the store too.
            escalated = await desk.until(
                lambda v: (c := v.case_of(VICTIM)) is not None and c.state == "escalated", within=60.0
            )
        after = await _stored_case(tmp_path)
    finally:
        await handset.stop()
        await desk.stop()
        await smsc.stop()
        await broker.stop(signal.SIGKILL)

    # No attempt lost: the store counts exactly max_attempts, then the escalation.
    assert (after.id, after.state, after.attempts) == (before.id, "escalated", MAX_ATTEMPTS)
    attempts = [t.at for t in after.transitions if t.event == "attempt"]
    [escalated_at] = [t.at for t in after.transitions if t.event == "escalated"]
    assert len(attempts) == MAX_ATTEMPTS
    # On its schedule: never early, and the due time the killed gateway stored is the one kept.
    assert all(later - earlier >= INTERVAL for earlier, later in itertools.pairwise(attempts))
    assert escalated_at - attempts[-1] >= INTERVAL
    if before.attempts == 1:
        assert before.due_at is not None
        assert attempts[1] >= before.due_at
    # At most one attempt repeated: the one the kill interrupted before it was recorded.
    flashes = [sms for sms in smsc.inbox(VICTIM) if sms.flash]
    assert MAX_ATTEMPTS <= len(flashes) <= MAX_ATTEMPTS + 1
    calls = handset.screen.calls
    assert MAX_ATTEMPTS - 1 <= len(calls) <= MAX_ATTEMPTS + 1  # the kill may land before the first call
    assert {(c.caller_number, c.label, c.badge) for c in calls} == {("+8696110", LABEL, True)}
    case = escalated.case_of(VICTIM)
    assert case is not None
    assert case.escalations == [("no_response", True)]
    # The attempts made after the restart were all reported; the first one's event may have been
    # in the killed process's publishing buffer when it died.
    assert {n for n, _ in case.attempt_log} >= {2, 3}
