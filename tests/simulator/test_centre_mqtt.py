"""The anti-fraud centre's desk: instructions in the published form, and the cases it follows from the
gateway's events (a QoS 1 repeat counted once)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import aiomqtt
import jsonschema

from simulator.centre_mqtt import CentreDesk, CentreView

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "gateway" / "dissuasion" / "instruction.schema.json").read_text(encoding="utf-8")
)


def _event(name: str, at: float, **fields: Any) -> dict[str, Any]:
    base = {"case_id": "7", "subscriber": "8613800000001", "state": "open", "tier": "high", "attempts": 0}
    return {"schema": 1, "event": name, "at": at, "fields": {**base, **fields}}


def test_the_view_follows_a_case_from_its_events() -> None:
    view = CentreView()
    view.apply(_event("case.opened", 10.0, reference="FZ-1"))
    view.apply(_event("case.escalated", 10.0, reason="high_risk", final=False))
    view.apply(_event("case.attempt", 10.0, attempts=1, attempt=1, call="placed", flash_message_id="1A"))
    view.apply(
        _event("case.family_warned", 10.0, attempts=1, contact="8613800000002", when="first", flash_message_id="1B")
    )
    view.apply(
        {"schema": 1, "event": "case.robot_call", "at": 12.0, "fields": {"case_id": "7", "outcome": "unconfirmed"}}
    )
    view.apply(_event("case.call_unconfirmed", 12.0, attempts=1))
    view.apply(_event("instruction.accepted", 10.0))
    case = view.case_of("8613800000001")
    assert case is not None
    # High risk is escalated to people at once and the robot goes on: still open.
    assert (case.state, case.reference, case.opened_at, case.escalated) == ("open", "FZ-1", 10.0, True)
    assert (case.attempt_log, case.family_warned) == ([(1, "placed")], [("8613800000002", "first")])
    assert (case.robot_calls, case.unconfirmed_answers) == (["unconfirmed"], 1)
    view.apply(_event("case.handled", 300.0, state="handled", attempts=2, how="call_confirmed"))
    assert (case.state, case.handled_how, case.handled_at, case.attempts) == ("handled", "call_confirmed", 300.0, 2)
    assert view.summary() == {"opened": 1, "handled": 1, "escalated": 1, "errors": 0}
    view.apply({**_event("case.opened", 20.0, reference="FZ-2"), "fields": {"case_id": "8", "subscriber": "1002"}})
    assert view.figures() == {
        "cases": 2,
        "handled": 1,
        "escalated": 1,
        "success_rate": 0.5,
        "flash_sent": 2,
        "calls_placed": 1,
        "family_notified": 1,
        "median_attempts": 1.0,
        "median_time_to_handle_s": 290.0,
    }
    assert len(view.named("case.attempt")) == 1
    assert len(view.events) == 9


def test_instructions_follow_the_published_schema() -> None:
    desk = CentreDesk(reference_prefix="AFC")
    plain = desk.instruction("8613800000001", "low", "刷单返利")
    full = desk.instruction(
        "+8613800000001", "high", "冒充公检法", family=["8613800000002"], expires_at="2026-12-07T00:00:00Z"
    )
    for doc in (plain, full):
        jsonschema.validate(doc, SCHEMA)
    assert (plain["reference"], full["reference"]) == ("AFC-000001", "AFC-000002")
    assert "family" not in plain


async def test_the_desk_sends_on_the_instruction_topic_and_counts_a_repeated_event_once(tmp_path: Path) -> None:
    from tests.gateway.events.mqtt_broker import Broker

    broker = Broker(tmp_path)
    await broker.start()
    try:
        async with (
            aiomqtt.Client("127.0.0.1", broker.port, identifier="gateway-side") as gateway,
            CentreDesk(port=broker.port) as desk,
        ):
            await gateway.subscribe("afgw/v1/instructions", qos=1)
            reference = await desk.instruct("8613800000001", "medium", "虚假投资理财")
            async for message in gateway.messages:
                received = json.loads(message.payload)  # type: ignore[arg-type]
                break
            opened = json.dumps(_event("case.opened", 5.0, reference=reference))
            for _ in range(2):  # a QoS 1 redelivery: the same payload again
                await gateway.publish("afgw/v1/events/case.opened", opened, qos=1)
            error = {"schema": 1, "error": "bad_number", "reference": "X-1", "field": "subscriber"}
            await gateway.publish("afgw/v1/instructions/errors", json.dumps(error), qos=1)
            await gateway.publish(
                "afgw/v1/events/case.handled", json.dumps(_event("case.handled", 9.0, state="handled"))
            )
            view = await desk.until(lambda v: v.summary()["handled"] == 1 and len(v.errors) == 1)
    finally:
        await broker.stop(signal.SIGKILL)
    assert received["reference"] == reference
    assert (received["subscriber"], received["tier"], received["fraud_type"]) == (
        "8613800000001",
        "medium",
        "虚假投资理财",
    )
    assert view.duplicates == 1
    assert len(view.named("case.opened")) == 1
    assert view.error_for("X-1") == error
    case = view.case_of("8613800000001")
    assert case is not None
    assert (case.reference, case.state) == (reference, "handled")
