"""Events to a real mosquitto: QoS 1 on afgw/v1/events/<name>, surviving a broker outage."""

from __future__ import annotations

import asyncio
import json
import signal

import aiomqtt
import pytest

from gateway.events import SCHEMA_VERSION
from gateway.events.mqtt import MqttEvents
from tests.gateway.events.mqtt_broker import Broker


@pytest.fixture
async def broker(tmp_path):
    b = Broker(tmp_path)
    await b.start()
    yield b
    if b.proc is not None and b.proc.returncode is None:
        await b.stop(signal.SIGKILL)


async def collect(port: int, want: int, received: list[aiomqtt.Message], ready: asyncio.Event) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier="centre", clean_session=False) as client:
        await client.subscribe("afgw/v1/events/#", qos=1)
        ready.set()
        async for message in client.messages:
            received.append(message)
            if len(received) >= want:
                return


def payloads(received):
    return [json.loads(m.payload) for m in received]


async def test_events_arrive_with_qos_1_on_their_topics(broker):
    received: list[aiomqtt.Message] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(collect(broker.port, 3, received, ready))
    await asyncio.wait_for(ready.wait(), 10)
    events = MqttEvents("127.0.0.1", broker.port, client_id="gw-a", clock=lambda: 7.0)
    await events.start()
    events.emit("sms.blocked", src="10086", text="中奖")
    events.emit("call.label_rejected", status=438)
    events.emit("case.opened", subscriber="8613800000001", tier="high")
    await asyncio.wait_for(listener, 10)
    await events.stop()
    assert [str(m.topic) for m in received] == [
        "afgw/v1/events/sms.blocked",
        "afgw/v1/events/call.label_rejected",
        "afgw/v1/events/case.opened",
    ]
    assert {m.qos for m in received} == {1}
    assert payloads(received)[0] == {
        "schema": SCHEMA_VERSION,
        "event": "sms.blocked",
        "at": 7.0,
        "instance": "gw-a",
        "fields": {"src": "10086", "text": "中奖"},
    }


@pytest.mark.parametrize("prefix", ["operator/afgw/v1/events", "x/"])
async def test_topic_prefix_is_configurable(broker, prefix):
    async with aiomqtt.Client("127.0.0.1", broker.port) as client:
        await client.subscribe("#", qos=1)
        events = MqttEvents("127.0.0.1", broker.port, topic_prefix=prefix)
        await events.start()
        events.emit("case.closed", id="1")
        message = await asyncio.wait_for(anext(client.messages), 10)
        await events.stop()
    assert str(message.topic) == prefix.rstrip("/") + "/case.closed"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
async def test_broker_outage_buffers_then_drops_and_never_blocks(broker, sig):
    # The centre's session exists before the outage, so what is published after it is kept for it.
    ready = asyncio.Event()
    first: list[aiomqtt.Message] = []
    listener = asyncio.create_task(collect(broker.port, 1, first, ready))
    await asyncio.wait_for(ready.wait(), 10)
    events = MqttEvents("127.0.0.1", broker.port, buffer=20, backoff_initial=0.05, backoff_max=0.2, publish_timeout=1.0)
    await events.start()
    events.emit("before", n=-1)
    await asyncio.wait_for(listener, 10)
    if sig == signal.SIGKILL:
        await asyncio.sleep(1.5)  # the broker saves the centre's session every second (autosave_interval)
    await broker.stop(sig)  # the gateway sees its connection die
    for _ in range(100):
        if not events.connected:
            break
        await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for n in range(50):
        events.emit("during", n=n)  # never raises
    assert loop.time() - started < 1.0  # and never waits for the network (a publish times out after 1 s)
    assert events.dropped == 30
    assert len(events) == 20
    await asyncio.sleep(0.5)  # reconnect attempts fail while the broker is down
    assert events.dropped == 30
    await broker.start()
    received: list[aiomqtt.Message] = []
    ready = asyncio.Event()
    await asyncio.wait_for(collect(broker.port, 20, received, ready), 20)
    await events.stop()
    ns = [p["fields"]["n"] for p in payloads(received)]
    # QoS 1 is at least once: an event in flight when the broker went away may come twice.
    assert sorted(set(ns)) == list(range(20))
    assert events.published >= 21
