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


def test_without_a_taker_of_triggers_no_instruction_is_read():
    config = replace(make_config(1), events=EventsConfig(mqtt=MqttEventsConfig()))
    assert Gateway(config).instructions is None
