"""The dissuasion engine on an injected clock: what the person at risk and their family receive, when."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import uuid
from dataclasses import dataclass, field

import pytest
import structlog.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.dissuasion import templates
from gateway.dissuasion.engine import DissuasionConfig, DissuasionEngine, QuietHours
from gateway.dissuasion.instructions import REFERENCE
from gateway.dissuasion.triggers import Trigger
from gateway.events import MemoryEvents
from gateway.store import MemoryStore, SqliteStore
from gateway.store.base import canonical_message_id
from gateway.store.redis_store import RedisStore
from tests.gateway.store.redis_server import start_redis

TEMPLATES = templates.load(templates.DEFAULT_PATH)
VICTIM = "8613900000001"
FAMILY = ("8613700000002", "8613700000003")
# 2026-12-06 00:00 UTC is 08:00 in China: outside the usual quiet hours.
DAY0 = 1_796_515_200.0


@dataclass
class FakeFlash:
    sent: list[tuple[str, str, str, str]] = field(default_factory=list)  # recipient, text, case, message id

    async def send_flash(self, recipient: str, message: str, case_id: str) -> str | None:
        await asyncio.sleep(0)  # a real submit waits for the SMSC: let other instances run meanwhile
        message_id = format(0xA000 + len(self.sent), "X")
        self.sent.append((recipient, message, case_id, message_id))
        return message_id

    def to(self, recipient: str) -> list[tuple[str, str, str, str]]:
        return [s for s in self.sent if s[0] == recipient]


@dataclass
class FakeCaller:
    calls: list[tuple[str, str, bool]] = field(default_factory=list)

    async def call(self, callee: str, case_id: str, *, confirm: bool) -> None:
        self.calls.append((callee, case_id, confirm))


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    proc, port = start_redis(tmp_path_factory.mktemp("redis"))
    yield port
    proc.kill()
    proc.wait()


@pytest.fixture(params=["sqlite", "redis"])
def shared_store(request, tmp_path):
    """Opens another handle on one durable store: a second instance, or the same one restarted."""
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "afgw.db")
    port = request.getfixturevalue("redis_port")
    prefix = f"t{uuid.uuid4().hex[:8]}"
    return lambda: RedisStore(f"redis://127.0.0.1:{port}/0", prefix=prefix)


class Rig:
    def __init__(self, store, config: DissuasionConfig | None = None, instance: str = "gw1") -> None:
        self.store = store
        self.clock = DAY0
        self.events = MemoryEvents(clock=lambda: self.clock)
        self.flash = FakeFlash()
        self.caller = FakeCaller()
        self.engine = DissuasionEngine(
            store, self.events, self.flash, self.caller, TEMPLATES, config or DissuasionConfig(), instance=instance
        )

    async def trigger(self, tier="medium", fraud_type="police_impersonation", at=0.0, **kw):
        kw.setdefault("family", FAMILY)
        await self.engine.trigger(Trigger(VICTIM, tier, fraud_type, "centre", **kw), DAY0 + at)

    async def run_until(self, until: float, step: float = 30.0, start: float | None = None) -> None:
        t = self.clock - DAY0 if start is None else start
        while t <= until:
            self.clock = DAY0 + t
            await self.engine.tick(self.clock)
            t += step

    def names(self) -> list[str]:
        return [e.name for e in self.events.events]


def _attempt_times(rig: Rig) -> list[float]:
    return [e.fields["at"] - DAY0 for e in rig.events.named("case.attempt")]


@pytest.mark.parametrize("answer_on", [1, 2, 3, 5])
@pytest.mark.parametrize("how", ["flash_ack", "call_answered", "call_confirmed_high"])
async def test_answer_on_attempt_n_gets_exactly_n_flashes_and_calls(answer_on, how):
    rig = Rig(MemoryStore())
    await rig.trigger(tier="high" if how == "call_confirmed_high" else "low")
    await rig.run_until(300.0 * (answer_on - 1) + 60)
    case = await rig.store.open_case_of(VICTIM)
    if how == "flash_ack":
        # The acknowledgement quotes the SMSC's id in another form (decimal for a hex id).
        last_id = rig.flash.to(VICTIM)[-1][3]
        assert await rig.engine.flash_acknowledged(str(int(last_id, 16)), rig.clock)
    else:
        assert await rig.engine.call_answered(case.id, rig.clock, confirmed=how != "call_answered")
    await rig.run_until(10 * 300.0)
    assert len(rig.flash.to(VICTIM)) == answer_on
    assert [c[0] for c in rig.caller.calls] == [VICTIM] * answer_on
    assert _attempt_times(rig) == [300.0 * i for i in range(answer_on)]
    final = await rig.store.get_case(case.id)
    assert final.state == "handled"
    assert [e.fields["state"] for e in rig.events.named("case.handled")] == ["handled"]
    assert "no_response" not in [e.fields["reason"] for e in rig.events.named("case.escalated")]


@pytest.mark.parametrize("max_attempts", [1, 3, 6])
async def test_never_responds_is_escalated_after_max_and_family_told_twice(max_attempts):
    rig = Rig(MemoryStore(), DissuasionConfig(max_attempts=max_attempts))
    await rig.trigger(tier="medium")
    await rig.run_until(300.0 * (max_attempts + 5))
    assert len(rig.flash.to(VICTIM)) == max_attempts
    assert len(rig.caller.calls) == max_attempts
    escalated = rig.events.named("case.escalated")
    assert [(e.fields["reason"], e.fields["at"] - DAY0) for e in escalated] == [("no_response", 300.0 * max_attempts)]
    case = await rig.store.get_case(escalated[0].fields["case_id"])
    assert case.state == "escalated"
    for contact in FAMILY:
        texts = [s[1] for s in rig.flash.to(contact)]
        # Their own template, naming the relative by the tail of the number only: on the first attempt
        # and on escalation.
        assert texts == [TEMPLATES.render("police_impersonation", "family", VICTIM)] * 2
        assert "尾号0001" in texts[0]
        assert VICTIM not in texts[0]
    when = [
        (e.fields["contact"], e.fields["when"], e.fields["at"] - DAY0) for e in rig.events.named("case.family_warned")
    ]
    assert sorted(when) == sorted(
        [(c, "first", 0.0) for c in FAMILY] + [(c, "escalation", 300.0 * max_attempts) for c in FAMILY]
    )


async def test_family_acknowledging_does_not_handle_the_victims_case():
    rig = Rig(MemoryStore())
    await rig.trigger()
    await rig.run_until(0)
    family_id = rig.flash.to(FAMILY[0])[0][3]
    assert not await rig.engine.flash_acknowledged(family_id, rig.clock)
    assert not await rig.engine.flash_acknowledged("ffff0000", rig.clock)
    assert (await rig.store.open_case_of(VICTIM)) is not None


@pytest.mark.parametrize(
    "second",
    [
        ("medium", "police_impersonation"),
        ("high", "investment"),
        ("low", "loan"),
    ],
)
@pytest.mark.parametrize("second_at", [0.0, 10.0, 299.0, 450.0])
async def test_a_second_trigger_does_not_double_the_attempts(second, second_at):
    rig = Rig(MemoryStore(), DissuasionConfig(max_attempts=4))
    await rig.trigger(tier="medium")
    await rig.run_until(second_at, step=1.0 if second_at < 20 else 30.0)
    for _ in range(3):
        await rig.trigger(tier=second[0], fraud_type=second[1], at=second_at)
    await rig.run_until(3000.0, start=(second_at // 30 + 1) * 30)
    assert _attempt_times(rig) == [0.0, 300.0, 600.0, 900.0]
    assert len(rig.flash.to(VICTIM)) == 4
    assert len(rig.caller.calls) == 4
    assert rig.names().count("case.opened") == 1
    assert rig.names().count("case.updated") == 3
    case = await rig.store.get_case(rig.events.named("case.opened")[0].fields["case_id"])
    assert case.tier == ("high" if second[0] == "high" else "medium")
    assert case.fraud_types == tuple(dict.fromkeys(("police_impersonation", second[1])))


async def test_high_risk_escalates_at_once_and_needs_the_key_press():
    rig = Rig(MemoryStore())
    await rig.trigger(tier="high")
    [early] = rig.events.named("case.escalated")
    assert early.fields["reason"] == "high_risk"
    assert early.fields["final"] is False
    assert early.fields["state"] == "open"
    await rig.run_until(0)
    case_id = early.fields["case_id"]
    assert rig.caller.calls == [(VICTIM, case_id, True)]
    assert not await rig.engine.call_answered(case_id, rig.clock, confirmed=False)
    assert rig.names().count("case.call_unconfirmed") == 1
    await rig.run_until(300)
    assert len(rig.caller.calls) == 2  # answering without the key press keeps the loop going
    assert await rig.engine.call_answered(case_id, rig.clock, confirmed=True)
    assert (await rig.store.get_case(case_id)).state == "handled"


async def test_a_case_raised_to_high_escalates_once():
    rig = Rig(MemoryStore())
    await rig.trigger(tier="low")
    await rig.trigger(tier="high", at=5.0)
    await rig.trigger(tier="high", at=6.0)
    assert [e.fields["reason"] for e in rig.events.named("case.escalated")] == ["high_risk"]


@pytest.mark.parametrize(
    ("quiet", "local_hour", "tier", "called"),
    [
        (QuietHours(22 * 60, 7 * 60), 23, "low", False),
        (QuietHours(22 * 60, 7 * 60), 3, "medium", False),
        (QuietHours(22 * 60, 7 * 60), 3, "high", True),
        (QuietHours(22 * 60, 7 * 60), 7, "low", True),
        (QuietHours(22 * 60, 7 * 60), 21, "low", True),
        (QuietHours(13 * 60, 14 * 60), 13, "low", False),
        (QuietHours(13 * 60, 14 * 60), 14, "low", True),
    ],
)
async def test_quiet_hours_flash_without_call_then_wait_for_morning(quiet, local_hour, tier, called):
    rig = Rig(MemoryStore(), DissuasionConfig(quiet_hours=quiet))
    at = (local_hour - 8) % 24 * 3600.0 + 60  # local time is UTC+8
    rig.clock = DAY0 + at
    await rig.trigger(tier=tier, at=at)
    await rig.engine.tick(rig.clock)
    assert len(rig.flash.to(VICTIM)) == 1
    assert len(rig.caller.calls) == (1 if called else 0)
    [attempt] = rig.events.named("case.attempt")
    assert attempt.fields["call"] == ("placed" if called else "quiet_hours")
    if not called:
        end_local = quiet.end // 60
        assert (attempt.fields["next_due"] - DAY0) % 86400 == (end_local - 8) % 24 * 3600.0
    else:
        assert attempt.fields["next_due"] == rig.clock + 300.0


async def test_per_subscriber_cap_defers_to_the_next_day():
    rig = Rig(MemoryStore(), DissuasionConfig(max_attempts=10, max_attempts_per_day=3))
    await rig.trigger(tier="low")
    await rig.run_until(86400.0 + 550, step=60.0)
    assert _attempt_times(rig) == [0.0, 300.0, 600.0, 86400.0, 86700.0]


async def test_opt_outs():
    rig = Rig(MemoryStore(), DissuasionConfig(opt_out=frozenset({VICTIM, FAMILY[1]})))
    await rig.trigger(tier="medium")
    [ignored] = rig.events.named("dissuasion.trigger_ignored")
    assert ignored.fields["reason"] == "opted_out"
    assert await rig.store.open_case_of(VICTIM) is None
    await rig.trigger(tier="high")
    await rig.run_until(900)
    # No robot for them, but people are sent; the family contact who did not opt out is told.
    assert rig.flash.to(VICTIM) == []
    assert rig.caller.calls == []
    [escalated] = rig.events.named("case.escalated")
    assert (escalated.fields["reason"], escalated.fields["state"]) == ("opted_out", "escalated")
    assert len(rig.flash.to(FAMILY[0])) == 1
    assert rig.flash.to(FAMILY[1]) == []


@pytest.mark.parametrize("expires_in", [-3600.0, -1.0, 0.0])
async def test_expired_triggers_are_ignored_with_the_reason(expires_in):
    rig = Rig(MemoryStore())
    await rig.trigger(tier="high", at=100.0, expires_at=DAY0 + 100.0 + expires_in, reference="r-1")
    [ignored] = rig.events.named("dissuasion.trigger_ignored")
    assert (ignored.fields["reason"], ignored.fields["reference"]) == ("expired", "r-1")
    assert await rig.store.open_case_of(VICTIM) is None
    await rig.trigger(tier="low", at=100.0, expires_at=DAY0 + 101.0)
    assert await rig.store.open_case_of(VICTIM) is not None


async def test_every_transition_is_timestamped_on_the_injected_clock():
    rig = Rig(MemoryStore(), DissuasionConfig(max_attempts=2))
    await rig.trigger(tier="low", at=0.0)
    await rig.trigger(tier="medium", at=12.5)
    await rig.run_until(1000.0, step=25.0, start=25.0)
    got = [(e.name, e.fields["at"] - DAY0) for e in rig.events.events if e.name.startswith("case.")]
    assert got == [
        ("case.opened", 0.0),
        ("case.updated", 12.5),
        ("case.family_warned", 25.0),
        ("case.family_warned", 25.0),
        ("case.attempt", 25.0),
        ("case.attempt", 325.0),
        ("case.escalated", 625.0),
        ("case.family_warned", 625.0),
        ("case.family_warned", 625.0),
    ]
    case = await rig.store.get_case(rig.events.named("case.opened")[0].fields["case_id"])
    assert [(t.event, t.at - DAY0) for t in case.transitions if t.event != "claimed"] == [
        ("opened", 0.0),
        ("updated", 12.5),
        ("family_warned", 25.0),
        ("family_warned", 25.0),
        ("flashed", 25.0),
        ("attempt", 25.0),
        ("flashed", 325.0),
        ("attempt", 325.0),
        ("family_warned", 625.0),
        ("family_warned", 625.0),
        ("escalated", 625.0),
    ]


async def test_two_engines_on_one_store_drive_each_case_exactly_once(shared_store):
    config = DissuasionConfig(batch=4)
    a, b = Rig(shared_store(), config, instance="gw-a"), Rig(shared_store(), config, instance="gw-b")
    subscribers = [f"86139{i:08d}" for i in range(30)]
    for i, sub in enumerate(subscribers):
        rig = (a, b)[i % 2]
        await rig.engine.trigger(Trigger(sub, "low", "loan", "centre"), DAY0 + i)
    for t in range(0, 1000, 20):
        await asyncio.gather(a.engine.tick(DAY0 + t), b.engine.tick(DAY0 + t))
    sent = a.flash.sent + b.flash.sent
    for sub in subscribers:
        assert len([s for s in sent if s[0] == sub]) == 4  # due at ~0, 300, 600, 900
    assert len(a.caller.calls) + len(b.caller.calls) == 4 * len(subscribers)
    assert a.flash.sent
    assert b.flash.sent
    await a.store.close()
    await b.store.close()


async def test_restart_resumes_every_open_case_on_its_schedule(shared_store):
    first = Rig(shared_store(), instance="gw")
    for i in range(5):
        await first.engine.trigger(Trigger(f"8613800000{i:03d}", "medium", "investment", "centre"), DAY0 + i)
    await first.run_until(300.0 + 4, step=1.0)
    acked_id = first.flash.sent[-1][3]
    acked_case = first.flash.sent[-1][2]
    await first.store.close()  # the process is gone

    second = Rig(shared_store(), instance="gw")
    second.clock = DAY0 + 500.0
    assert await second.engine.tick(second.clock) == 0  # nothing is due before its time
    # An acknowledgement of a flash the previous process sent still finds its case.
    assert await second.engine.flash_acknowledged(acked_id, second.clock)
    await second.run_until(604.0, step=1.0, start=501.0)
    assert sorted(e.fields["at"] - DAY0 for e in second.events.named("case.attempt")) == [600.0 + i for i in range(4)]
    assert all(e.fields["attempt"] == 3 for e in second.events.named("case.attempt"))
    assert (await second.store.get_case(acked_case)).state == "handled"
    await second.store.close()


async def test_a_case_claimed_by_a_crashed_instance_is_taken_over_after_its_lease(shared_store):
    crashed = shared_store()
    rig = Rig(shared_store(), DissuasionConfig(lease=60.0), instance="gw-b")
    await rig.trigger(tier="low")
    assert len(await crashed.claim_due("gw-a", DAY0, DAY0 + 60.0)) == 1  # then kill -9
    assert await rig.engine.tick(DAY0 + 59.0) == 0
    assert await rig.engine.tick(DAY0 + 60.0) == 1
    assert len(rig.flash.to(VICTIM)) == 1
    await crashed.close()
    await rig.store.close()


async def test_run_loop_on_an_injected_clock():
    rig = Rig(MemoryStore(), DissuasionConfig(max_attempts=3, poll_interval=10.0))
    await rig.trigger(tier="low")
    stop = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        rig.clock += seconds
        if rig.clock - DAY0 > 1200:
            stop.set()

    await rig.engine.run(lambda: rig.clock, fake_sleep, stop)
    assert _attempt_times(rig) == [0.0, 300.0, 600.0]
    assert [e.fields["at"] - DAY0 for e in rig.events.named("case.escalated")] == [900.0]


async def test_run_loop_sends_each_attempt_when_it_falls_due_not_at_the_next_poll(shared_store):
    store = shared_store()
    # An interval that is no multiple of the poll interval: polling alone would send at 300 and 600.
    rig = Rig(store, DissuasionConfig(interval=250.0, max_attempts=3, poll_interval=60.0))
    await rig.trigger(tier="low")
    stop = asyncio.Event()
    naps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        naps.append(seconds)
        rig.clock += seconds
        if rig.clock - DAY0 > 1000:
            stop.set()

    await rig.engine.run(lambda: rig.clock, fake_sleep, stop)
    assert _attempt_times(rig) == [0.0, 250.0, 500.0]
    assert [e.fields["at"] - DAY0 for e in rig.events.named("case.escalated")] == [750.0]
    assert max(naps) == 60.0  # still looks at the poll interval for cases opened elsewhere
    await store.close()


@pytest.mark.parametrize("gap", [0.0, 0.01])
async def test_cases_falling_due_a_millisecond_apart_are_driven_together_within_the_tick_gap(gap):
    rig = Rig(MemoryStore(), DissuasionConfig(tick_gap=gap, poll_interval=60.0))
    due = {f"86139{i:08d}": DAY0 + 1.0 + i / 1000 for i in range(40)}
    for subscriber, at in due.items():
        await rig.engine.trigger(Trigger(subscriber, "low", "loan", "centre"), at)
    stop = asyncio.Event()

    async def fake_sleep(seconds: float) -> None:
        rig.clock += seconds
        if rig.clock > DAY0 + 2.0:
            stop.set()

    await rig.engine.run(lambda: rig.clock, fake_sleep, stop)
    sent = {e.fields["subscriber"]: e.fields["at"] for e in rig.events.named("case.attempt")}
    assert sent.keys() == due.keys()
    lags = [sent[s] - due[s] for s in due]
    assert min(lags) >= 0.0
    assert max(lags) <= gap + 1e-6
    ticks = len(set(sent.values()))
    # one look at the store per due time, or one per gap: forty due times in 39 ms, four or five gaps
    assert ticks == 40 if gap == 0 else ticks <= 5


async def test_a_new_case_wakes_the_sleeping_loop():
    rig = Rig(MemoryStore(), DissuasionConfig(poll_interval=60.0))
    naps: asyncio.Queue[float] = asyncio.Queue()

    async def fake_sleep(seconds: float) -> None:
        await naps.put(seconds)
        await asyncio.Event().wait()  # the clock does not move: only a wake-up ends this nap

    loop = asyncio.get_running_loop().create_task(rig.engine.run(lambda: rig.clock, fake_sleep))
    assert await naps.get() == 60.0  # nothing open: it sleeps the poll interval
    rig.clock = DAY0 + 5.0
    await rig.trigger(tier="low", at=5.0)
    assert await asyncio.wait_for(naps.get(), timeout=10) == 60.0  # woke, drove the case, sleeps again
    assert _attempt_times(rig) == [5.0]
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop


@pytest.mark.parametrize("turns", range(8))
async def test_the_loop_stops_when_cancelled_whatever_it_is_doing(turns):
    rig = Rig(MemoryStore(), DissuasionConfig(poll_interval=60.0))

    async def short_sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    loop = asyncio.get_running_loop().create_task(rig.engine.run(lambda: rig.clock, short_sleep))
    for _ in range(turns):
        await asyncio.sleep(0)
    loop.cancel()  # the gateway stopping
    done, _ = await asyncio.wait({loop}, timeout=5)
    assert loop in done
    assert loop.cancelled()


async def test_a_failing_flash_or_call_still_counts_and_the_loop_goes_on():
    rig = Rig(MemoryStore())

    async def broken(*args, **kwargs):
        raise ConnectionError("SMSC bind down")

    rig.engine.flash.send_flash = broken  # type: ignore[method-assign]
    rig.engine.caller.call = broken  # type: ignore[method-assign]
    await rig.trigger(tier="low")
    await rig.run_until(400)
    attempts = rig.events.named("case.attempt")
    assert [(e.fields["flash_message_id"], e.fields["call"]) for e in attempts] == [("", "failed")] * 2


_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["trigger", "ack", "answer", "confirm", "tick"]),
        st.integers(min_value=0, max_value=2),  # which subscriber
        st.sampled_from(["low", "medium", "high"]),
        st.integers(min_value=1, max_value=400),  # seconds since the previous step
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(_STEPS)
async def test_any_interleaving_keeps_the_schedule_and_the_limits(steps):
    config = DissuasionConfig(interval=300.0, max_attempts=3)
    rig = Rig(MemoryStore(), config)
    subscribers = [f"86139000000{i:02d}" for i in range(3)]
    now = DAY0
    for action, who, tier, gap in steps:
        now += gap
        rig.clock = now
        sub = subscribers[who]
        if action == "trigger":
            await rig.engine.trigger(Trigger(sub, tier, "loan", "centre", family=("8613700000000",)), now)
        elif action == "ack" and (sent := rig.flash.to(sub)):
            await rig.engine.flash_acknowledged(sent[-1][3], now)
        elif action in ("answer", "confirm") and (case := await rig.store.open_case_of(sub)) is not None:
            await rig.engine.call_answered(case.id, now, confirmed=action == "confirm")
        await rig.engine.tick(now)
    by_case: dict[str, list[float]] = {}
    for event in rig.events.named("case.attempt"):
        by_case.setdefault(event.fields["case_id"], []).append(event.fields["at"])
    for case_id, times in by_case.items():
        case = await rig.store.get_case(case_id)
        assert len(times) == case.attempts <= config.max_attempts
        assert all(b - a >= config.interval for a, b in itertools.pairwise(times))
        assert len([s for s in rig.flash.sent if s[2] == case_id and s[0] == case.subscriber]) == case.attempts
        ended = [t.at for t in case.transitions if t.event in ("handled", "escalated")]
        assert all(at <= min(ended, default=float("inf")) for at in times)
    for sub in subscribers:
        open_ids = [c.id for c in await rig.store.open_cases() if c.subscriber == sub]
        assert len(open_ids) <= 1


@pytest.mark.parametrize("tier", ["extreme", "", "HIGH"])
async def test_an_unknown_tier_is_ignored_with_the_reason(tier):
    rig = Rig(MemoryStore())
    await rig.trigger(tier=tier)
    assert [e.fields["reason"] for e in rig.events.named("dissuasion.trigger_ignored")] == ["bad_tier"]
    assert await rig.store.open_case_of(VICTIM) is None


async def test_a_family_contact_named_later_is_warned_when_named_and_on_escalation():
    rig = Rig(MemoryStore(), DissuasionConfig(max_attempts=2))
    await rig.trigger(family=())
    await rig.run_until(0)
    await rig.trigger(family=(FAMILY[0],), at=100.0)
    await rig.trigger(family=(FAMILY[0],), at=200.0)  # named again: not warned twice
    await rig.run_until(1000.0, start=300.0)
    warned = [(e.fields["when"], e.fields["at"] - DAY0) for e in rig.events.named("case.family_warned")]
    assert warned == [("first", 100.0), ("escalation", 600.0)]


async def test_closing_a_case_stops_it_and_says_so():
    rig = Rig(MemoryStore())
    await rig.trigger()
    await rig.run_until(0)
    case = await rig.store.open_case_of(VICTIM)
    await rig.engine.close_case(case.id, DAY0 + 50.0, detail="operator: wrong number")
    await rig.run_until(2000.0, start=300.0)
    assert len(rig.flash.to(VICTIM)) == 1
    [closed] = rig.events.named("case.closed")
    assert (closed.fields["state"], closed.fields["at"], closed.fields["detail"]) == (
        "closed",
        DAY0 + 50.0,
        "operator: wrong number",
    )
    # A late acknowledgement of the old flash changes nothing.
    assert not await rig.engine.flash_acknowledged(rig.flash.to(VICTIM)[0][3], DAY0 + 60.0)


async def test_a_slow_smsc_answer_for_one_case_does_not_hold_back_the_others():
    rig = Rig(MemoryStore())
    release = asyncio.Event()
    others_sent = asyncio.Event()
    real = rig.flash.send_flash

    async def slow_for_the_first(recipient: str, message: str, case_id: str) -> str | None:
        if recipient == "8613900000000":
            await release.wait()
        else:
            others_sent.set()
        return await real(recipient, message, case_id)

    rig.engine.flash.send_flash = slow_for_the_first  # type: ignore[method-assign]
    for i in range(3):
        await rig.engine.trigger(Trigger(f"861390000000{i}", "low", "loan", "centre"), DAY0 + i)
    tick = asyncio.ensure_future(rig.engine.tick(DAY0 + 10))
    await asyncio.wait_for(others_sent.wait(), 5)
    assert [s[0] for s in rig.flash.sent] == ["8613900000001", "8613900000002"]
    release.set()
    assert await tick == 3
    assert len(rig.flash.sent) == 3


class Interleaved:
    """The store as seen from one of several processes: before each call the others get to run."""

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name: str):
        attr = getattr(self._store, name)
        if not asyncio.iscoroutinefunction(attr):
            return attr

        async def after_the_others(*args, **kwargs):
            await asyncio.sleep(0)
            return await attr(*args, **kwargs)

        return after_the_others


@pytest.mark.parametrize("engines", [2, 4])
async def test_engines_raising_a_case_to_high_at_the_same_moment_escalate_it_once(shared_store, engines):
    rigs = [Rig(Interleaved(shared_store()), instance=f"gw-{n}") for n in range(engines)]
    await rigs[0].trigger(tier="low")
    await asyncio.gather(*(rig.trigger(tier="high", at=5.0) for rig in rigs))
    await asyncio.gather(*(rig.trigger(tier="high", at=6.0) for rig in rigs))
    escalated = [e for rig in rigs for e in rig.events.named("case.escalated")]
    assert [(e.fields["reason"], e.fields["final"], e.fields["tier"]) for e in escalated] == [
        ("high_risk", False, "high")
    ]
    case = await rigs[0].store.open_case_of(VICTIM)
    assert [t.event for t in case.transitions].count("high_risk") == 1
    for rig in rigs:
        await rig.store.close()


class Killed(BaseException):
    """The process dies here (kill -9): nothing after this point runs, nothing is cleaned up."""


class Dying:
    """A store handle whose process is killed just before or just after one call."""

    def __init__(self, store, when: str = "", call: str = "", event: str = "") -> None:
        self._store, self.when, self.call, self.event = store, when, call, event
        self.armed = False

    def __getattr__(self, name: str):
        attr = getattr(self._store, name)
        if name != self.call or not self.armed:
            return attr

        async def then_killed(*args, **kwargs):
            if self.event and args[1] != self.event:
                return await attr(*args, **kwargs)
            if self.when == "before":
                raise Killed
            await attr(*args, **kwargs)
            raise Killed

        return then_killed


class DyingFlash(FakeFlash):
    def __init__(self, when: str) -> None:
        super().__init__()
        self.when = when

    async def send_flash(self, recipient: str, message: str, case_id: str) -> str | None:
        if self.when == "before":
            raise Killed
        await super().send_flash(recipient, message, case_id)
        raise Killed  # accepted by the SMSC, and the process died before it heard so


class DyingCaller(FakeCaller):
    async def call(self, callee: str, case_id: str, *, confirm: bool) -> None:
        await super().call(callee, case_id, confirm=confirm)
        raise Killed  # placed, ringing, and the process dies with the call


# Where the process dies within an attempt, and what each person gets once more than the attempts
# made because of it: (victim flashes, each family contact's flashes on the first attempt, calls).
KILL_POINTS = {
    "before the flash is sent": (0, 0, 0),
    "after the flash is sent": (1, 0, 0),
    "after every flash, before it is written down": (1, 1, 0),
    "after the flash is written down": (0, 0, 0),
    "after the call is placed": (0, 0, 1),
    "after the attempt is recorded": (0, 0, 0),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
@pytest.mark.parametrize("killed_on", [1, 2])
@pytest.mark.parametrize("restarted_as", ["gw-a", "gw-b"])
async def test_killed_in_the_middle_of_an_attempt_the_schedule_goes_on_with_at_most_one_repeat(
    shared_store, point, killed_on, restarted_as
):
    config = DissuasionConfig(lease=60.0)
    handle = shared_store()
    store = {
        "after every flash, before it is written down": Dying(handle, "before", "note", "flashed"),
        "after the flash is written down": Dying(handle, "after", "note", "flashed"),
        "after the attempt is recorded": Dying(handle, "after", "record_attempt"),
    }.get(point, Dying(handle))
    first = Rig(store, config, instance="gw-a")
    await first.trigger(tier="medium")
    earlier = (FakeFlash(), FakeCaller())
    if killed_on == 2:
        first.engine.flash, first.engine.caller = earlier
        await first.run_until(0)
    if point == "before the flash is sent":
        first.flash = first.engine.flash = DyingFlash("before")
    elif point == "after the flash is sent":
        first.flash = first.engine.flash = DyingFlash("after")
    elif point == "after the call is placed":
        first.caller = first.engine.caller = DyingCaller()
    killed_at = 300.0 * (killed_on - 1)
    store.armed = True
    with pytest.raises(Killed):
        await first.engine.tick(DAY0 + killed_at)
    # Restarted (or another instance): it finds the case once the dead one's lease has lapsed.
    second = Rig(shared_store(), config, instance=restarted_as)
    second.clock = DAY0 + killed_at + 60.0
    resumed = point != "after the attempt is recorded"
    resumed_at = killed_at + 60.0 if resumed else killed_at
    await second.run_until(resumed_at + 300.0 * (3 - killed_on), step=10.0)
    # The person reads the third warning: handled, through the instance that sent it.
    case = await second.store.open_case_of(VICTIM)
    assert case is not None
    assert case.attempts == 3
    assert await second.engine.flash_acknowledged(second.flash.to(VICTIM)[-1][3], second.clock)
    await second.run_until(3000.0)

    extra_victim, extra_family, extra_calls = KILL_POINTS[point]
    flashes = earlier[0].sent + first.flash.sent + second.flash.sent
    calls = earlier[1].calls + first.caller.calls + second.caller.calls
    assert len([f for f in flashes if f[0] == VICTIM]) == 3 + extra_victim
    for contact in FAMILY:
        assert len([f for f in flashes if f[0] == contact]) == 1 + (extra_family if killed_on == 1 else 0)
    assert len(calls) == 3 + extra_calls
    # The bound: one death repeats one kind of message at most, to each person at most once.
    assert extra_victim + extra_calls <= 1
    case = await second.store.get_case(case.id)
    assert case.state == "handled"
    attempts = [t for t in case.transitions if t.event == "attempt"]
    assert [t.detail.split()[0] for t in attempts] == ["1", "2", "3"]  # none lost, none counted twice
    # The attempt the dead process was making is finished by the next one, and says so.
    assert [("resumed" in t.detail) for t in attempts] == [n == killed_on and resumed for n in (1, 2, 3)]
    events = first.events.named("case.attempt") + second.events.named("case.attempt")
    # (An event still to be published when the process died is lost with it; the store has the record.)
    published = [n for n in (1, 2, 3) if resumed or n != killed_on]
    assert [(e.fields["attempt"], e.fields["resumed"]) for e in events] == [(n, n == killed_on) for n in published]
    # And the schedule goes on from there, an interval apart.
    times = [t.at - DAY0 for t in attempts]
    assert times[killed_on - 1] == resumed_at
    assert times[killed_on:] == [resumed_at + 300.0 * n for n in range(1, 4 - killed_on)]
    await second.store.close()
    await handle.close()


async def test_killed_while_escalating_the_family_is_warned_and_the_case_escalated_by_the_next_instance(shared_store):
    config = DissuasionConfig(max_attempts=1, lease=60.0)
    handle = shared_store()
    store = Dying(handle, "before", "transition")
    first = Rig(store, config, instance="gw-a")
    await first.trigger(tier="low")
    await first.run_until(0)
    store.armed = True
    with pytest.raises(Killed):
        await first.engine.tick(DAY0 + 300.0)  # the family was flashed, the escalation not yet recorded
    second = Rig(shared_store(), config, instance="gw-b")
    await second.run_until(1000.0, start=360.0)
    for contact in FAMILY:
        # the first attempt's, the dead instance's escalation flash, and the one repeated
        assert len(first.flash.to(contact) + second.flash.to(contact)) == 3
    assert [(e.fields["reason"], e.fields["at"] - DAY0) for e in second.events.named("case.escalated")] == [
        ("no_response", 360.0)
    ]
    assert [e.fields["when"] for e in second.events.named("case.family_warned")] == ["escalation"] * len(FAMILY)
    case = await second.store.get_case(second.events.named("case.escalated")[0].fields["case_id"])
    assert case.state == "escalated"
    await second.store.close()
    await handle.close()


async def test_family_warnings_receipts_and_call_outcomes_are_on_the_timeline():
    rig = Rig(MemoryStore())
    await rig.trigger(tier="medium", at=0.0)
    await rig.run_until(0.0)
    case = await rig.store.open_case_of(VICTIM)
    flash_id = rig.flash.to(VICTIM)[0][3]
    await rig.engine.flash_receipt(flash_id, "dissuasion:" + case.id, DAY0 + 3.0)
    await rig.engine.call_ended(case.id, DAY0 + 20.0, "no_answer", 487)
    case = await rig.store.get_case(case.id)
    noted = [
        (t.event, t.at - DAY0, t.detail)
        for t in case.transitions
        if t.event in ("family_warned", "flash_delivered", "robot_call")
    ]
    assert noted == [
        ("family_warned", 0.0, f"{FAMILY[0]} {rig.flash.to(FAMILY[0])[0][3]} first"),
        ("family_warned", 0.0, f"{FAMILY[1]} {rig.flash.to(FAMILY[1])[0][3]} first"),
        ("flash_delivered", 3.0, flash_id),
        ("robot_call", 20.0, "no_answer 487"),
    ]
    # Once handled, a late receipt still goes on the timeline, and the case stays handled.
    assert await rig.engine.flash_acknowledged(flash_id, DAY0 + 30.0)
    await rig.engine.flash_receipt(flash_id, "dissuasion:" + case.id, DAY0 + 40.0)
    after = await rig.store.get_case(case.id)
    assert [(t.event, t.detail) for t in after.transitions[-2:]] == [
        ("handled", "flash_ack"),
        ("flash_delivered", flash_id),
    ]
    assert after.state == "handled"


async def test_the_robot_call_ringing_is_on_the_timeline():
    rig = Rig(MemoryStore())
    await rig.trigger(tier="medium", family=())
    await rig.run_until(0.0)
    case = await rig.store.open_case_of(VICTIM)
    await rig.engine.call_ringing(case.id, DAY0 + 4.0, 180)
    await rig.engine.call_ended(case.id, DAY0 + 34.0, "no_answer", 487)
    after = await rig.store.get_case(case.id)
    assert [(t.event, t.at - DAY0, t.detail) for t in after.transitions if t.event.startswith("robot_")] == [
        ("robot_ringing", 4.0, "180"),
        ("robot_call", 34.0, "no_answer 487"),
    ]
    assert (after.state, after.due_at) == ("open", DAY0 + 300.0)


async def test_flashes_and_calls_in_flight_when_a_case_is_escalated_still_reach_its_timeline():
    rig = Rig(MemoryStore(), DissuasionConfig(max_attempts=1))
    await rig.trigger(tier="medium")
    await rig.run_until(300.0)
    [escalated] = rig.events.named("case.escalated")
    case = await rig.store.get_case(escalated.fields["case_id"])
    assert case.state == "escalated"
    flash_id = rig.flash.to(VICTIM)[0][3]
    family_id = rig.flash.to(FAMILY[0])[0][3]
    await rig.engine.flash_receipt(flash_id, "dissuasion:" + case.id, DAY0 + 301.0)
    await rig.engine.call_ringing(case.id, DAY0 + 302.0, 183)
    await rig.engine.call_ended(case.id, DAY0 + 310.0, "answered", 200)
    # The person reads the warning at last: shown, but the case stays with the people called in.
    assert not await rig.engine.flash_acknowledged(str(int(flash_id, 16)), DAY0 + 320.0)
    assert not await rig.engine.flash_acknowledged(family_id, DAY0 + 321.0)
    after = await rig.store.get_case(case.id)
    assert (after.state, after.due_at) == ("escalated", None)
    assert [(t.event, t.at - DAY0, t.detail) for t in after.transitions[len(case.transitions) :]] == [
        ("flash_delivered", 301.0, flash_id),
        ("robot_ringing", 302.0, "183"),
        ("robot_call", 310.0, "answered 200"),
        ("flash_acknowledged", 320.0, str(int(flash_id, 16))),
        ("family_acknowledged", 321.0, family_id),
    ]
    [acknowledged] = rig.events.named("case.acknowledged")
    assert (acknowledged.fields["case_id"], acknowledged.fields["state"]) == (case.id, "escalated")
    assert rig.events.named("case.handled") == []
    # Closed by the desk, the case still takes the last receipt of the escalation's family warning.
    await rig.engine.desk(case.id, "closed", DAY0 + 400.0, "wang", "reached_by_phone")
    await rig.engine.flash_receipt(family_id, "dissuasion-family:" + case.id, DAY0 + 401.0)
    closed = await rig.store.get_case(case.id)
    assert (closed.state, closed.transitions[-1].event) == ("closed", "flash_delivered")


async def test_an_acknowledgement_arriving_during_the_attempt_ends_it_quietly():
    """A quick reader acknowledges the flash before the engine has written the attempt down: the case is
    handled, the robot does not call someone who already read the warning, and nothing is logged as a
    failure."""
    rig = Rig(MemoryStore())

    class ReadAtOnce(FakeFlash):
        async def send_flash(self, recipient: str, message: str, case_id: str) -> str | None:
            message_id = await super().send_flash(recipient, message, case_id)
            if recipient == VICTIM:
                rig.engine.store.remember_message(message_id, "dissuasion:" + case_id, rig.clock)
                assert await rig.engine.flash_acknowledged(message_id, rig.clock)
            return message_id

    rig.flash = rig.engine.flash = ReadAtOnce()
    await rig.trigger(tier="low", family=())
    with structlog.testing.capture_logs() as logs:
        await rig.run_until(10 * 300.0)
    case = (await rig.store.all_cases())[0]
    assert case.state == "handled"
    assert rig.caller.calls == []
    assert len(rig.flash.to(VICTIM)) == 1
    assert [e["event"] for e in logs if e["log_level"] in ("warning", "error")] == []


@pytest.mark.parametrize("state", ["open", "escalated"])
async def test_an_acknowledgement_the_smsc_repeats_is_recorded_once(state):
    """The SMSC sends the same deliver_sm acknowledgement for the same flash twice (a retry, or two
    binds): the case's timeline and the events tell of it once."""
    rig = Rig(MemoryStore(), DissuasionConfig(max_attempts=1))
    await rig.trigger(tier="medium")
    await rig.run_until(300.0 if state == "escalated" else 0.0)
    case = (await rig.store.all_cases())[0]
    assert case.state == state
    flash_id, family_id = rig.flash.to(VICTIM)[0][3], rig.flash.to(FAMILY[0])[0][3]
    for at in (320.0, 321.0):
        await rig.engine.flash_acknowledged(flash_id, DAY0 + at)
        await rig.engine.flash_acknowledged(family_id, DAY0 + at)
    after = await rig.store.get_case(case.id)
    read = [(t.event, t.at - DAY0, t.detail) for t in after.transitions[len(case.transitions) :]]
    if state == "open":
        assert read == [("handled", 320.0, "flash_ack"), ("family_acknowledged", 320.0, family_id)]
        assert len(rig.events.named("case.handled")) == 1
    else:
        assert read == [("flash_acknowledged", 320.0, flash_id), ("family_acknowledged", 320.0, family_id)]
        assert len(rig.events.named("case.acknowledged")) == 1


async def test_an_instruction_reference_shaped_like_an_acknowledgement_does_not_swallow_it():
    """Instruction references and acknowledgements are held in the same store: a centre's reference
    that happens to read like an acknowledgement's must not make the real one look repeated."""
    rig = Rig(MemoryStore(), DissuasionConfig(max_attempts=1))
    await rig.trigger(tier="medium")
    await rig.run_until(0.0)
    case = (await rig.store.all_cases())[0]
    flash_id = rig.flash.to(VICTIM)[0][3]
    owner = await rig.store.route_owner(flash_id, DAY0 + 10.0)
    assert owner is not None
    for taken in (f"ack:{owner}:{flash_id}", f"ack:{owner}:{canonical_message_id(flash_id)}"):
        assert re.fullmatch(REFERENCE, taken)
        assert await rig.store.claim_reference(taken, DAY0 + 10.0, DAY0 + 86_400.0)
    assert await rig.engine.flash_acknowledged(flash_id, DAY0 + 20.0)
    assert (await rig.store.get_case(case.id)).state == "handled"
