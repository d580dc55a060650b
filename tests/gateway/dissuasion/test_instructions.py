"""The anti-fraud centre's instructions: the versioned form, its faults, and the intake on a real mosquitto."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import aiomqtt
import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.dissuasion.instructions import (
    SCHEMA,
    InstructionError,
    InstructionIntake,
    parse_instruction,
)
from gateway.dissuasion.triggers import Trigger
from gateway.store import SqliteStore
from gateway.store.memory import MemoryReferences
from gateway.store.redis_store import RedisStore
from tests.conftest import require_peer
from tests.gateway.events.mqtt_broker import Broker

SCHEMA_FILE = Path(__file__).parents[3] / "gateway" / "dissuasion" / "instruction.schema.json"
NOW = 1_796_558_400.0  # 2026-12-06T12:00:00Z
GOOD: dict[str, Any] = {
    "schema": 1,
    "reference": "FZ-2026-0001",
    "subscriber": "8613800000001",
    "tier": "high",
    "fraud_type": "冒充公检法",
    "family": ["8613800000002"],
    "expires_at": "2026-12-07T00:00:00Z",
}


class RecordingSink:
    def __init__(self, fail: bool = False) -> None:
        self.triggers: list[Trigger] = []
        self.fail = fail

    async def trigger(self, trigger: Trigger, now: float) -> None:
        if self.fail:
            raise RuntimeError("store unavailable")
        self.triggers.append(trigger)


def encode(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def with_(**changes: Any) -> dict[str, Any]:
    doc = dict(GOOD)
    for key, value in changes.items():
        if value is _DROP:
            doc.pop(key)
        else:
            doc[key] = value
    return doc


_DROP = object()


def test_a_valid_instruction_is_one_centre_trigger():
    trigger = parse_instruction(encode(GOOD), NOW)
    assert trigger == Trigger(
        subscriber="8613800000001",
        tier="high",
        fraud_type="冒充公检法",
        source="centre",
        reference="FZ-2026-0001",
        family=("8613800000002",),
        expires_at=1_796_601_600.0,
        detail="centre instruction FZ-2026-0001",
    )


@pytest.mark.parametrize(
    ("expires_at", "epoch"),
    [(1_796_601_600, 1_796_601_600.0), (1796601600.5, 1796601600.5), ("2026-12-07T08:00:00+08:00", 1_796_601_600.0)],
)
def test_expiry_is_epoch_seconds_or_iso_8601(expires_at, epoch):
    assert parse_instruction(encode(with_(expires_at=expires_at)), NOW).expires_at == epoch


def test_family_and_expiry_may_be_left_out():
    trigger = parse_instruction(encode(with_(family=_DROP, expires_at=_DROP)), NOW)
    assert (trigger.family, trigger.expires_at) == ((), None)


FAULTS = [
    (b"{not json", "bad_json", None, None),
    (b"\xff\xfe", "bad_json", None, None),
    (b'{"schema": 1, "schema": 1}', "bad_json", "schema", None),
    (b"[1, 2]", "not_object", None, None),
    (encode(with_(reference=_DROP)), "missing_field", "reference", None),
    (encode(with_(subscriber=_DROP)), "missing_field", "subscriber", "FZ-2026-0001"),
    (encode(with_(tier=_DROP)), "missing_field", "tier", "FZ-2026-0001"),
    (encode(with_(schema=_DROP)), "missing_field", "schema", "FZ-2026-0001"),
    (encode(with_(victim="8613800000001")), "unknown_field", "victim", "FZ-2026-0001"),
    (encode(with_(subscriber=8613800000001)), "wrong_type", "subscriber", "FZ-2026-0001"),
    (encode(with_(tier=3)), "wrong_type", "tier", "FZ-2026-0001"),
    (encode(with_(family="8613800000002")), "wrong_type", "family", "FZ-2026-0001"),
    (encode(with_(family=[8613800000002])), "wrong_type", "family", "FZ-2026-0001"),
    (encode(with_(expires_at=True)), "wrong_type", "expires_at", "FZ-2026-0001"),
    (encode(with_(reference=7)), "wrong_type", "reference", None),
    (encode(with_(subscriber="138-0000-0001")), "bad_number", "subscriber", "FZ-2026-0001"),
    (encode(with_(subscriber="")), "bad_number", "subscriber", "FZ-2026-0001"),
    (encode(with_(family=["110x"])), "bad_number", "family", "FZ-2026-0001"),
    (encode(with_(expires_at=-5)), "bad_number", "expires_at", "FZ-2026-0001"),
    (
        b'{"schema":1,"reference":"R","subscriber":"8613800000001","tier":"low","fraud_type":"x","expires_at":NaN}',
        "bad_number",
        None,
        None,
    ),
    (encode(with_(tier="critical")), "unknown_tier", "tier", "FZ-2026-0001"),
    (encode(with_(tier="HIGH")), "unknown_tier", "tier", "FZ-2026-0001"),
    (encode(with_(schema=2)), "unknown_schema", None, "FZ-2026-0001"),
    (encode(with_(schema="1")), "unknown_schema", None, "FZ-2026-0001"),
    (encode(with_(schema=True)), "unknown_schema", None, "FZ-2026-0001"),
    (encode(with_(fraud_type="")), "bad_value", "fraud_type", "FZ-2026-0001"),
    (encode(with_(reference="has space")), "bad_value", "reference", None),
    (encode(with_(expires_at="tomorrow")), "bad_value", "expires_at", "FZ-2026-0001"),
    (encode(with_(expires_at="2026-12-07T00:00:00")), "bad_value", "expires_at", "FZ-2026-0001"),
    (encode(with_(family=["1380000000" + str(n) for n in range(6)])), "bad_value", "family", "FZ-2026-0001"),
    (encode(with_(expires_at=NOW - 1)), "expired", "expires_at", "FZ-2026-0001"),
    (encode(with_(fraud_type="x" * 5000)), "too_large", None, None),
]


@pytest.mark.parametrize(("payload", "code", "field", "reference"), FAULTS)
def test_each_fault_is_named_with_its_field_and_the_reference(payload, code, field, reference):
    with pytest.raises(InstructionError) as caught:
        parse_instruction(payload, NOW)
    assert (caught.value.code, caught.value.field or None, caught.value.reference) == (code, field, reference)
    answer = json.loads(caught.value.to_json(NOW))
    assert answer["schema"] == 1
    assert answer["error"] == code
    assert answer["reference"] == reference
    assert answer["message"]


def test_the_committed_schema_file_is_the_one_the_parser_checks():
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == SCHEMA
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def _schema_accepts(doc: Any) -> bool:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))).is_valid(doc)


def _parser_accepts(doc: Any) -> bool:
    try:
        # Before epoch zero, so that no expiry the form allows has passed: time, not form, decides that.
        parse_instruction(encode(doc), -1.0, max_bytes=1 << 20)
    except InstructionError:
        return False
    return True


@pytest.mark.parametrize(
    ("payload", "code", "field", "reference"),
    [
        f
        for f in FAULTS
        if f[1] not in {"bad_json", "too_large", "expired", "bad_number"} or f[2] in {"subscriber", "family"}
    ],
)
def test_the_schema_file_refuses_what_the_parser_refuses(payload, code, field, reference):
    assert not _schema_accepts(json.loads(payload))


def _values() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 10**10),
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from(["low", "medium", "high", "8613800000001", "+85212345678", "x", "", "2026-12-07T00:00:00Z"]),
        st.sampled_from(["2026-13-01T00:00:00Z", "2026-12-07 23:59:60+08:00", "2026-12-07T00:00"]),
        st.text(max_size=8),
        st.lists(st.sampled_from(["8613800000002", "12", "abc", 5]), max_size=6),
    )


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*SCHEMA["properties"], "extra"]),
        _values(),
    ).map(lambda changes: {**GOOD, **changes}),
    st.sets(st.sampled_from(list(GOOD))),
)
def test_the_parser_and_the_schema_file_agree(doc, dropped):
    for key in dropped:
        doc.pop(key, None)
    assert _parser_accepts(doc) == _schema_accepts(doc), doc


def test_a_date_that_does_not_exist_is_the_one_thing_only_the_parser_sees():
    # A pattern cannot know the length of February; the schema file says so in its description.
    doc = with_(expires_at="2027-02-30T00:00:00Z")
    assert _schema_accepts(doc)
    with pytest.raises(InstructionError, match="not ISO 8601") as caught:
        parse_instruction(encode(doc), NOW)
    assert caught.value.code == "bad_value"


async def test_references_in_memory_are_bounded_and_shed_the_lapsed():
    memory = MemoryReferences(capacity=3)
    for n, ref in enumerate(["a", "b", "c"]):
        assert await memory.claim_reference(ref, now=float(n), until=100.0 + n)
    assert not await memory.claim_reference("a", now=50.0, until=150.0)
    assert await memory.claim_reference("d", now=50.0, until=150.0)  # full: the oldest, a, goes
    assert len(memory) == 3
    assert await memory.claim_reference("a", now=51.0, until=151.0)
    # Lapsed ones go as new ones come, before the bound is reached.
    for n in range(10):
        await memory.hold_reference(f"x{n}", now=1000.0, until=2000.0)
    assert len(memory) == 3


async def test_a_duplicate_reference_is_one_trigger_and_a_failed_one_is_not_remembered():
    sink = RecordingSink()
    intake = InstructionIntake(sink, clock=lambda: NOW)
    first = await intake.handle(encode(GOOD))
    again = await intake.handle(encode(with_(tier="low")))
    assert first.trigger is not None
    assert again.duplicate
    assert len(sink.triggers) == 1
    sink.fail = True
    failed = await intake.handle(encode(with_(reference="FZ-2")))
    assert failed.error is not None
    assert (failed.error.code, failed.error.reference) == ("internal", "FZ-2")
    sink.fail = False
    assert (await intake.handle(encode(with_(reference="FZ-2")))).trigger is not None
    assert [t.reference for t in sink.triggers] == ["FZ-2026-0001", "FZ-2"]


@pytest.fixture
def redis_url(tmp_path):
    from tests.gateway.store.redis_server import start_redis

    proc, port = start_redis(tmp_path)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


async def test_a_repeat_after_a_restart_is_ignored_until_the_retention_ends(tmp_path):
    sink = RecordingSink()
    clock = [NOW]
    store = SqliteStore(tmp_path / "afgw.db")
    first = InstructionIntake(sink, references=store, retention=86_400.0, clock=lambda: clock[0])
    assert (await first.handle(encode(GOOD))).trigger is not None
    await store.close()  # the gateway is gone

    store = SqliteStore(tmp_path / "afgw.db")
    restarted = InstructionIntake(sink, references=store, retention=86_400.0, clock=lambda: clock[0])
    clock[0] = NOW + 3600.0
    assert (await restarted.handle(encode(with_(tier="low")))).duplicate
    clock[0] = NOW + 86_400.0
    assert not (await restarted.handle(encode(with_(expires_at=_DROP)))).duplicate
    assert [(t.reference, t.tier) for t in sink.triggers] == [("FZ-2026-0001", "high")] * 2
    await store.close()


async def test_two_gateways_on_one_redis_act_on_an_instruction_once(redis_url):
    sink = RecordingSink()
    stores = [RedisStore(redis_url, prefix="afgw-refs") for _ in range(2)]
    intakes = [InstructionIntake(sink, references=s, clock=lambda: NOW) for s in stores]
    # Both are subscribed: the same instruction reaches each of them at once.
    outcomes = await asyncio.gather(*(intake.handle(encode(GOOD)) for intake in intakes))
    assert sorted(o.duplicate for o in outcomes) == [False, True]
    assert (await intakes[0].handle(encode(GOOD))).duplicate
    assert (await intakes[1].handle(encode(GOOD))).duplicate
    assert len(sink.triggers) == 1
    for s in stores:
        await s.close()


async def test_an_instruction_whose_gateway_died_before_acting_is_new_once_the_claim_lapses(tmp_path):
    sink = RecordingSink()
    store = SqliteStore(tmp_path / "afgw.db")
    # Claimed, and then the process was killed before the engine had the trigger.
    assert await store.claim_reference("FZ-2026-0001", NOW, NOW + 60.0)
    clock = [NOW + 30.0]
    intake = InstructionIntake(sink, references=store, claim_hold=60.0, clock=lambda: clock[0])
    assert (await intake.handle(encode(GOOD))).duplicate
    clock[0] = NOW + 60.0
    assert (await intake.handle(encode(GOOD))).trigger is not None
    assert len(sink.triggers) == 1
    await store.close()


async def test_a_store_that_cannot_be_asked_is_an_internal_error_not_a_crash():
    class Away:
        async def claim_reference(self, reference: str, now: float, until: float) -> bool:
            raise ConnectionError("store away")

        async def hold_reference(self, reference: str, now: float, until: float) -> None: ...
        async def drop_reference(self, reference: str) -> None: ...

    sink = RecordingSink()
    outcome = await InstructionIntake(sink, references=Away(), clock=lambda: NOW).handle(encode(GOOD))
    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.reference) == ("internal", "FZ-2026-0001")
    assert sink.triggers == []


# --- against a real mosquitto, with the lines an operator types -------------------------------------------


@pytest.fixture
async def broker(tmp_path):
    b = Broker(tmp_path)
    await b.start()
    yield b
    if b.proc is not None and b.proc.returncode is None:
        await b.stop(signal.SIGKILL)


def mosquitto_pub(port: int, topic: str, message: str) -> None:
    program = require_peer("mosquitto_pub")
    subprocess.run(
        [program, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-t", topic, "-m", message], check=True, timeout=10
    )


async def wait_for(predicate, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    pytest.fail("condition not reached")


async def test_instructions_over_mosquitto_errors_answered_duplicates_once_and_the_intake_survives(broker):
    sink = RecordingSink()
    intake = InstructionIntake(sink, "127.0.0.1", broker.port, clock=lambda: NOW)
    errors: list[dict[str, Any]] = []
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="centre") as centre:
        await centre.subscribe("afgw/v1/instructions/errors", qos=1)
        await intake.start()
        await asyncio.wait_for(intake.connected.wait(), 10)
        good = json.dumps(GOOD, ensure_ascii=False)
        bad = [
            "{oops",
            json.dumps(with_(tier="critical")),
            json.dumps(with_(schema=9, reference="FZ-9")),
            json.dumps(with_(subscriber=_DROP, reference="FZ-10")),
            "x" * 5000,
        ]
        await asyncio.to_thread(mosquitto_pub, broker.port, "afgw/v1/instructions", good)
        for payload in bad:
            await asyncio.to_thread(mosquitto_pub, broker.port, "afgw/v1/instructions", payload)
        await asyncio.to_thread(mosquitto_pub, broker.port, "afgw/v1/instructions", good)
        async for message in centre.messages:
            errors.append(json.loads(message.payload))
            if len(errors) == len(bad):
                break
        await wait_for(lambda: intake.duplicates == 1)
        second = json.dumps(with_(reference="FZ-2026-0002", subscriber="+8613900000009", tier="low"))
        await asyncio.to_thread(mosquitto_pub, broker.port, "afgw/v1/instructions", second)
        await wait_for(lambda: len(sink.triggers) == 2)
    await intake.stop()
    assert [(e["error"], e["reference"]) for e in errors] == [
        ("bad_json", None),
        ("unknown_tier", "FZ-2026-0001"),
        ("unknown_schema", "FZ-9"),
        ("missing_field", "FZ-10"),
        ("too_large", None),
    ]
    assert errors[1]["field"] == "tier"
    assert "critical" in errors[1]["message"]
    assert [(t.reference, t.subscriber, t.tier) for t in sink.triggers] == [
        ("FZ-2026-0001", "8613800000001", "high"),
        ("FZ-2026-0002", "+8613900000009", "low"),
    ]


async def test_topics_are_configurable(broker):
    sink = RecordingSink()
    intake = InstructionIntake(
        sink, "127.0.0.1", broker.port, topic="centre/in", error_topic="centre/in/err", clock=lambda: NOW
    )
    async with aiomqtt.Client("127.0.0.1", broker.port) as centre:
        await centre.subscribe("centre/in/err", qos=1)
        await intake.start()
        await asyncio.wait_for(intake.connected.wait(), 10)
        await asyncio.to_thread(mosquitto_pub, broker.port, "centre/in", "null")
        message = await asyncio.wait_for(anext(centre.messages), 10)
        await asyncio.to_thread(mosquitto_pub, broker.port, "centre/in", json.dumps(GOOD))
        await wait_for(lambda: len(sink.triggers) == 1)
    await intake.stop()
    assert json.loads(message.payload)["error"] == "not_object"


async def test_the_intake_reconnects_after_the_broker_goes_away(broker):
    sink = RecordingSink()
    intake = InstructionIntake(sink, "127.0.0.1", broker.port, backoff_initial=0.05, backoff_max=0.2, clock=lambda: NOW)
    await intake.start()
    await asyncio.wait_for(intake.connected.wait(), 10)
    await broker.stop(signal.SIGKILL)
    await wait_for(lambda: not intake.connected.is_set())
    await asyncio.sleep(0.5)  # several attempts fail while it is down, without stopping the intake
    assert intake.reconnects >= 2
    await broker.start()
    await asyncio.wait_for(intake.connected.wait(), 10)
    await asyncio.to_thread(mosquitto_pub, broker.port, "afgw/v1/instructions", json.dumps(GOOD))
    await wait_for(lambda: len(sink.triggers) == 1)
    await intake.stop()
