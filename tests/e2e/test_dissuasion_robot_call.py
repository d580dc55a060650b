"""The dissuasion robot call end to end: the engine's attempt calls a registered handset from 96110
through the gateway's own SIP listener, where it is verified and labelled like the centre's calls.

One in-process gateway per test (SQLite store, a simulated SMSC for the flash, SIP with digest
handsets and the anti-fraud centre's labels), the engine on an injected wall clock: the next attempt
comes when the test moves the clock on by the interval.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.config import StoreConfig
from gateway.dissuasion import templates
from gateway.dissuasion.engine import DissuasionConfig
from gateway.dissuasion.robot_call import RobotCallConfig, SipRobotCaller
from gateway.dissuasion.triggers import Trigger
from gateway.events import MemoryEvents
from protocols.sip import Response
from protocols.stir import Signer
from protocols.stir.issue import new_key
from simulator.handset import Behaviour, Handset
from tests.e2e.labels_harness import CENTRE_X5U, Clock, LabelsPki, make_labels_pki
from tests.e2e.sip_harness import TRUNK_HOST, UdpPeer, sip_config
from tests.e2e.smpp_harness import eventually, make_config

VICTIM = "8613800000001"
LABEL = "公安反诈专号"
INTERVAL = 300.0
TEMPLATES = templates.load(templates.DEFAULT_PATH)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabelsPki:
    return make_labels_pki(tmp_path_factory.mktemp("robot-labels"))


@dataclass
class Net:
    gw: Gateway
    handset: Handset
    clock: Clock
    events: MemoryEvents

    async def case(self) -> Any:
        store: Any = self.gw.store
        return await store.open_case_of(VICTIM)

    def robot_calls(self) -> list[dict[str, Any]]:
        return [e.fields for e in self.events.named("case.robot_call")]


@contextlib.asynccontextmanager
async def network(
    smsc: Any, pki: LabelsPki, tmp_path: Path, *, robot: RobotCallConfig | None = None, **handset: Any
) -> AsyncIterator[Net]:
    robot = robot or RobotCallConfig(bind=TRUNK_HOST, ring_timeout=0.5, message_time=0.05, confirm_timeout=1.0)
    dissuasion = DissuasionConfig(
        interval=INTERVAL, lease=60.0, poll_interval=0.02, templates=TEMPLATES, robot_call=robot
    )
    sip = replace(sip_config(auth=True, users=((VICTIM, "pw1"),)), labels=pki.labels)
    store = StoreConfig(backend="sqlite", data_dir=str(tmp_path))
    config = replace(make_config(smsc.port), sip=sip, store=store, dissuasion=dissuasion)
    clock = Clock(pki.now)
    gw = Gateway(config, clock=clock)
    await gw.start()
    assert gw.sip is not None
    assert isinstance(gw.events, MemoryEvents)
    phone = Handset(VICTIM, ("127.0.0.1", gw.sip.udp_port), password="pw1", **handset)
    try:
        await phone.start()
        assert (await phone.register(120)).status == 200
        yield Net(gw, phone, clock, gw.events)
    finally:
        await phone.stop()
        await gw.stop()


async def _trigger(net: Net, tier: str) -> None:
    assert net.gw.dissuasion is not None
    await net.gw.dissuasion.trigger(Trigger(VICTIM, tier, "police_impersonation", "centre"), net.clock.now)


async def test_the_robot_call_rings_verified_and_labelled_and_answering_handles_the_case(
    smsc: Any, pki: LabelsPki, tmp_path: Path
) -> None:
    async with network(smsc, pki, tmp_path) as net:
        await _trigger(net, "medium")
        await eventually(lambda: bool(net.robot_calls()))
        [shown] = net.handset.screen.calls
        assert shown.call_id.startswith("robot-")
        assert (shown.caller_number, shown.label, shown.badge) == ("+8696110", LABEL, True)
        assert (shown.card_name, shown.call_reason) == (LABEL, "反诈预警劝阻")
        assert shown.answered
        assert shown.ended  # the robot hung up after its message
        [outcome] = net.robot_calls()
        assert (outcome["outcome"], outcome["status"], outcome["call_id"]) == ("answered", 200, shown.call_id)
        [verified] = net.events.named("call.label_verified")
        assert verified.fields["call_id"] == shown.call_id
        [attempt] = net.events.named("case.attempt")
        assert attempt.fields["call"] == "placed"
        [handled] = net.events.named("case.handled")
        assert handled.fields["how"] == "call_answered"
        assert await net.case() is None
        # The flash went out with the call: the attempt is both.
        assert smsc.inbox(VICTIM)


@pytest.mark.parametrize(
    ("behaviour", "outcome", "status"),
    [(Behaviour.IGNORE, "no_answer", 487), (Behaviour.BUSY, "busy", 486), (Behaviour.DECLINE, "declined", 603)],
)
async def test_an_unanswered_robot_call_leaves_the_case_open_and_the_next_attempt_calls_again(
    smsc: Any, pki: LabelsPki, tmp_path: Path, behaviour: Behaviour, outcome: str, status: int
) -> None:
    async with network(smsc, pki, tmp_path, behaviour=behaviour) as net:
        await _trigger(net, "low")
        await eventually(lambda: len(net.robot_calls()) == 1)
        assert [(c["outcome"], c["status"]) for c in net.robot_calls()] == [(outcome, status)]
        case = await net.case()
        assert (case.state, case.attempts) == ("open", 1)
        assert not net.events.named("case.handled")
        assert [c.answered for c in net.handset.screen.calls] == [False]

        net.clock.now += INTERVAL
        await eventually(lambda: len(net.robot_calls()) == 2)
        case = await net.case()
        assert (case.state, case.attempts) == ("open", 2)
        first, second = net.handset.screen.calls
        assert first.call_id != second.call_id
        assert (second.label, second.badge) == (LABEL, True)  # signed anew, at the new time
        assert [e.fields["call"] for e in net.events.named("case.attempt")] == ["placed", "placed"]


async def test_a_high_risk_case_is_handled_only_after_the_key_press(smsc: Any, pki: LabelsPki, tmp_path: Path) -> None:
    async with network(smsc, pki, tmp_path, press="1") as net:
        await _trigger(net, "high")
        await eventually(lambda: bool(net.robot_calls()))
        [outcome] = net.robot_calls()
        assert outcome["outcome"] == "confirmed"
        assert [r.status for r in net.handset.key_answers] == [200]
        [handled] = net.events.named("case.handled")
        assert handled.fields["how"] == "call_confirmed"
        assert await net.case() is None


@pytest.mark.parametrize("press", [None, "2"])
async def test_a_high_risk_call_answered_without_the_key_press_keeps_the_loop_going(
    smsc: Any, pki: LabelsPki, tmp_path: Path, press: str | None
) -> None:
    robot = RobotCallConfig(bind=TRUNK_HOST, ring_timeout=0.5, message_time=0.05, confirm_timeout=0.3)
    async with network(smsc, pki, tmp_path, robot=robot, press=press) as net:
        await _trigger(net, "high")
        await eventually(lambda: bool(net.robot_calls()))
        [outcome] = net.robot_calls()
        assert (outcome["outcome"], outcome["status"]) == ("unconfirmed", 200)
        assert net.handset.screen.calls[0].answered
        assert net.events.named("case.call_unconfirmed")
        assert not net.events.named("case.handled")
        case = await net.case()
        assert case is not None
        assert case.state == "open"


async def test_the_robot_call_config_is_read_from_the_dissuasion_section(tmp_path: Path, pki: LabelsPki) -> None:
    from gateway.config import load as load_config

    text = (
        "sip:\n  listen: {host: 127.0.0.1, udp_port: 0, tcp_port: 0}\n  domain: 127.0.0.1\n"
        f"  trusted_peers: ['127.0.0.2']\n  labels: {pki.labels_path}\n"
        "dissuasion:\n  robot_call:\n    number: 96110\n    bind: 127.0.0.2\n    ring_timeout: 20\n"
        "    message_time: 8\n    confirm_timeout: 25\n    confirm_key: 1\n"
    )
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path)
    assert config.dissuasion is not None
    assert config.dissuasion.robot_call == RobotCallConfig("96110", "127.0.0.2", 20.0, 8.0, 25.0, "1")


# --- forged robot calls: the same request shape, without the centre's signature -------------------


def _forgers(pki: LabelsPki) -> dict[str, tuple[Signer | None, int]]:
    return {
        "no-identity": (None, 428),
        "wrong-key": (Signer(new_key(), CENTRE_X5U, plan=pki.registry.plan), 438),
        "rogue-ca": (pki.rogue, 437),
    }


@pytest.mark.parametrize("forgery", ["no-identity", "wrong-key", "rogue-ca"])
async def test_a_forged_robot_call_is_refused_like_any_spoof_and_never_rings(
    smsc: Any, pki: LabelsPki, tmp_path: Path, forgery: str
) -> None:
    signer, code = _forgers(pki)[forgery]
    async with network(smsc, pki, tmp_path) as net:
        assert net.gw.sip is not None
        forger = SipRobotCaller(
            ("127.0.0.1", net.gw.sip.udp_port),
            signer or pki.centre,
            pki.registry.lookup("96110"),
            RobotCallConfig(bind=TRUNK_HOST),
            domain="127.0.0.1",
            events=net.events,
            clock=net.clock,
        )
        invite = forger.build_invite(VICTIM)
        if signer is None:
            invite.headers.remove("Identity")
        await forger.stop()
        peer = await UdpPeer.open(TRUNK_HOST)
        try:
            invite.headers.insert("Via", f"SIP/2.0/UDP {peer.host}:{peer.port};branch=z9hG4bK{forgery}x1;rport")
            invite.headers.set("Contact", f"<sip:96110@{peer.host}:{peer.port}>")
            peer.send(invite, net.gw.sip.udp_port)
            answer: Response = await peer.response(invite.call_id)
        finally:
            assert peer.transport is not None
            peer.transport.close()
        assert answer.status == code
        assert (answer.headers.get("Reason") or "").startswith(f"STIR;cause={code};")
        assert not net.handset.screen.rang(invite.call_id)
        [rejected] = net.events.named("call.label_rejected")
        assert (rejected.fields["call_id"], rejected.fields["code"]) == (invite.call_id, code)


async def test_the_person_hanging_up_ends_the_robot_call_and_the_robot_sends_no_bye(
    smsc: Any, pki: LabelsPki, tmp_path: Path
) -> None:
    """The handset's BYE names the labelled caller in To: it must reach the robot whole."""
    robot = RobotCallConfig(bind=TRUNK_HOST, ring_timeout=0.5, message_time=60.0, confirm_timeout=1.0)
    async with network(smsc, pki, tmp_path, robot=robot, hangup_after=0.0) as net:
        await _trigger(net, "low")
        await eventually(lambda: bool(net.robot_calls()), within=20.0)
        [outcome] = net.robot_calls()
        assert (outcome["outcome"], outcome["status"]) == ("answered", 200)
        [shown] = net.handset.screen.calls
        assert shown.ended
        [handled] = net.events.named("case.handled")
        assert handled.fields["how"] == "call_answered"


@pytest.mark.parametrize(
    ("sip", "robot", "message"),
    [
        ("", "bind: 127.0.0.2", "robot_call needs the sip section with its labels file"),
        ("sip", "bind: 127.0.0.3", "bind: 127.0.0.3 is not in sip.trusted_peers"),
        ("sip", "bind: 10.0.0.1", "bind: 10.0.0.1 is not a loopback address"),
        ("sip", "confirm_key: 12", "confirm_key: '12' is not one key of a keypad"),
        ("sip", "ring_timeout: 0", "ring_timeout: must be greater than zero"),
        ("sip", "number: abc", "number: 'abc' is not a phone number"),
    ],
)
def test_a_robot_call_config_that_cannot_work_stops_the_start(
    tmp_path: Path, pki: LabelsPki, sip: str, robot: str, message: str
) -> None:
    from gateway.config import ConfigError
    from gateway.config import load as load_config

    text = "dissuasion:\n  robot_call:\n    " + robot + "\n"
    if sip:
        text = (
            "sip:\n  listen: {host: 127.0.0.1, udp_port: 0, tcp_port: 0}\n  domain: 127.0.0.1\n"
            f"  trusted_peers: ['127.0.0.2']\n  labels: {pki.labels_path}\n" + text
        )
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert message in str(raised.value)
    assert f"{path}:" in str(raised.value)


class _Answers:
    def __init__(self) -> None:
        self.answered: list[tuple[str, bool]] = []

    async def call_answered(self, case_id: str, now: float, *, confirmed: bool) -> bool:
        self.answered.append((case_id, confirmed))
        return True


async def test_a_robot_call_the_gateway_never_takes_is_reported_failed_not_unanswered(pki: LabelsPki) -> None:
    from simulator.ports import free_udp_tcp_port

    events, answers = MemoryEvents(), _Answers()
    robot = SipRobotCaller(
        ("127.0.0.1", free_udp_tcp_port("127.0.0.1")),  # nothing listens there
        pki.centre,
        pki.registry.lookup("96110"),
        RobotCallConfig(bind=TRUNK_HOST, ring_timeout=30.0),
        domain="127.0.0.1",
        events=events,
        clock=Clock(pki.now),
        answers=answers,
    )
    await robot.start()
    try:
        await robot.call(VICTIM, "7", confirm=False)
        await eventually(lambda: bool(events.named("case.robot_call")), within=5.0)
    finally:
        await robot.stop()
    [ended] = events.named("case.robot_call")
    assert (ended.fields["case_id"], ended.fields["outcome"], ended.fields["status"]) == ("7", "failed", 0)
    assert answers.answered == []


@pytest.mark.parametrize("forgery", ["wrong-key", "rogue-ca"])
async def test_a_robot_with_the_wrong_key_is_refused_reports_it_and_never_rings(
    smsc: Any, pki: LabelsPki, tmp_path: Path, forgery: str
) -> None:
    signer, code = _forgers(pki)[forgery]
    assert signer is not None
    async with network(smsc, pki, tmp_path) as net:
        assert net.gw.sip is not None
        answers = _Answers()
        robot = SipRobotCaller(
            ("127.0.0.1", net.gw.sip.udp_port),
            signer,
            pki.registry.lookup("96110"),
            RobotCallConfig(bind=TRUNK_HOST),
            domain="127.0.0.1",
            events=net.events,
            clock=net.clock,
            answers=answers,
        )
        await robot.start()
        try:
            await robot.call(VICTIM, "42", confirm=False)
            await eventually(lambda: any(c["case_id"] == "42" for c in net.robot_calls()))
        finally:
            await robot.stop()
        [ended] = [c for c in net.robot_calls() if c["case_id"] == "42"]
        assert (ended["outcome"], ended["status"]) == ("rejected", code)
        assert not net.handset.screen.rang(ended["call_id"])
        assert answers.answered == []
