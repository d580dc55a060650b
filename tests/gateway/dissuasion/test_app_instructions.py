"""The gateway as configured with a broker: the centre's instructions reach whatever takes triggers."""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import replace

import aiomqtt

from gateway.app import Gateway
from gateway.config import EventsConfig, MqttEventsConfig
from gateway.dissuasion.triggers import Trigger
from gateway.store import MemoryStore, SqliteStore
from tests.e2e.smpp_harness import eventually, make_config
from tests.gateway.events.mqtt_broker import Broker


class RecordingSink:
    def __init__(self) -> None:
        self.triggers: list[Trigger] = []

    async def trigger(self, trigger: Trigger, now: float) -> None:
        self.triggers.append(trigger)


async def test_an_instruction_through_the_configured_broker_reaches_the_engine_and_is_an_event(smsc, tmp_path):
    broker = Broker(tmp_path)
    await broker.start()
    sink = RecordingSink()
    config = replace(
        make_config(smsc.port),
        events=EventsConfig(
            mqtt=MqttEventsConfig(
                port=broker.port,
                client_id="gw-1",
                instructions_topic="op/in",
                instruction_errors_topic="op/in/errors",
                backoff_initial=0.05,
            )
        ),
    )
    instruction = {
        "schema": 1,
        "reference": "FZ-7",
        "subscriber": "8613800000001",
        "tier": "medium",
        "fraud_type": "刷单返利",
    }
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="centre") as centre:
            await centre.subscribe("afgw/v1/events/#", qos=1)
            await centre.subscribe("op/in/errors", qos=1)
            gw = Gateway(config, triggers=sink)
            await gw.start()
            try:
                assert gw.instructions is not None
                await asyncio.wait_for(gw.instructions.connected.wait(), 10)
                await centre.publish("op/in", json.dumps(instruction, ensure_ascii=False), qos=1)
                await centre.publish("op/in", '{"schema": 1}', qos=1)
                seen = {}
                async for message in centre.messages:
                    seen[str(message.topic)] = json.loads(message.payload)
                    if len(seen) == 3:
                        break
                await eventually(lambda: len(sink.triggers) == 1)
            finally:
                await gw.stop()
    finally:
        await broker.stop(signal.SIGKILL)
    assert [(t.reference, t.tier, t.fraud_type, t.source) for t in sink.triggers] == [
        ("FZ-7", "medium", "刷单返利", "centre")
    ]
    assert seen["afgw/v1/events/instruction.accepted"]["fields"]["reference"] == "FZ-7"
    assert seen["afgw/v1/events/instruction.rejected"]["fields"]["error"] == "missing_field"
    assert seen["op/in/errors"]["error"] == "missing_field"


async def test_without_an_engine_an_instruction_opens_a_case_in_the_store(smsc, tmp_path):
    broker = Broker(tmp_path)
    await broker.start()
    store = MemoryStore()
    config = replace(make_config(smsc.port), events=EventsConfig(mqtt=MqttEventsConfig(port=broker.port)))
    instruction = {"schema": 1, "reference": "FZ-8", "subscriber": "8613800000005", "tier": "low", "fraud_type": "loan"}
    again = dict(instruction, reference="FZ-9", tier="high", fraud_type="investment")
    try:
        async with (
            aiomqtt.Client("127.0.0.1", broker.port) as centre,
            Gateway(config, store=store, clock=lambda: 1000.0) as gw,
        ):
            assert gw.instructions is not None
            await asyncio.wait_for(gw.instructions.connected.wait(), 10)
            await centre.publish("afgw/v1/instructions", json.dumps(instruction), qos=1)
            await eventually(lambda: len(gw.events.named("case.opened")) == 1)  # type: ignore[attr-defined]
            await centre.publish("afgw/v1/instructions", json.dumps(again), qos=1)
            await eventually(lambda: len(gw.events.named("case.updated")) == 1)  # type: ignore[attr-defined]
    finally:
        await broker.stop(signal.SIGKILL)
    case = await store.open_case_of("8613800000005")
    assert case is not None
    assert (case.tier, case.fraud_types, case.due_at) == ("high", ("loan", "investment"), 1000.0)
    assert len(await store.all_cases()) == 1


async def test_an_instruction_sent_again_after_a_restart_is_not_followed_again(smsc, tmp_path):
    broker = Broker(tmp_path)
    await broker.start()
    config = replace(make_config(smsc.port), events=EventsConfig(mqtt=MqttEventsConfig(port=broker.port)))
    instruction = {"schema": 1, "reference": "FZ-5", "subscriber": "8613800000006", "tier": "low", "fraud_type": "loan"}
    other = dict(instruction, reference="FZ-6", tier="medium")
    try:
        for run in ("first", "restarted"):
            store = SqliteStore(tmp_path / "afgw.db")
            async with (
                aiomqtt.Client("127.0.0.1", broker.port) as centre,
                Gateway(config, store=store, clock=lambda: 1000.0) as gw,
            ):
                assert gw.instructions is not None
                await asyncio.wait_for(gw.instructions.connected.wait(), 10)
                await centre.publish("afgw/v1/instructions", json.dumps(instruction), qos=1)
                if run == "restarted":
                    await eventually(lambda: gw.instructions is not None and gw.instructions.duplicates == 1)
                    # One that was never seen still goes through, after the repeat.
                    await centre.publish("afgw/v1/instructions", json.dumps(other), qos=1)
                    await eventually(lambda: len(gw.events.named("case.updated")) == 1)  # type: ignore[attr-defined]
                else:
                    await eventually(lambda: len(gw.events.named("case.opened")) == 1)  # type: ignore[attr-defined]
            await store.close()
    finally:
        await broker.stop(signal.SIGKILL)
    store = SqliteStore(tmp_path / "afgw.db")
    [case] = await store.all_cases()
    assert [(t.event, t.detail) for t in case.transitions] == [("opened", "low loan"), ("updated", "medium")]
    await store.close()


def test_a_store_without_cases_takes_no_instructions():
    class RoutesOnly:
        def remember_message(self, message_id: str, system_id: str, now: float) -> None: ...
        def owner_of(self, message_id: str, now: float) -> str | None:
            return None

        def audit(self, record: object) -> None: ...

    config = replace(make_config(1), events=EventsConfig(mqtt=MqttEventsConfig()))
    assert Gateway(config, store=RoutesOnly()).instructions is None  # type: ignore[arg-type]
