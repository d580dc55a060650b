"""Events to an MQTT broker: topic ``<prefix>/<event name>``, QoS 1, JSON with a ``schema`` version.

``emit`` only appends to a bounded buffer and never waits: a broker outage must not slow down or
stop a message or a call. A background task publishes the buffer in order, each event removed only
once the broker acknowledged it (PUBACK), so an event is delivered at least once; an event in flight
when the connection broke is sent again after reconnecting (a consumer may see it twice). When the
buffer is full, new events are dropped and counted (``dropped``, logged every 1,000). The task
reconnects with exponential backoff between ``backoff_initial`` and ``backoff_max`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import aiomqtt

from gateway.events.wire import event_json
from gateway.logs import get_logger
from gateway.tasks import cancel_and_wait

log = get_logger("afgw.events")


class MqttEvents:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        topic_prefix: str = "afgw/v1/events",
        client_id: str = "afgw",
        username: str | None = None,
        password: str | None = None,
        buffer: int = 10_000,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        publish_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host, self.port = host, port
        self.topic_prefix = topic_prefix.rstrip("/")
        self.client_id = client_id
        self._username, self._password = username, password
        self.bound = buffer
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.publish_timeout = publish_timeout
        self._clock = clock
        self._buffer: deque[tuple[str, str]] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.published = 0
        self.dropped = 0
        self.reconnects = 0

    def __len__(self) -> int:
        return len(self._buffer)

    def emit(self, name: str, /, **fields: Any) -> None:
        if len(self._buffer) >= self.bound:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("events.dropped", dropped=self.dropped, buffered=len(self._buffer), event_name=name)
            return
        self._buffer.append((f"{self.topic_prefix}/{name}", event_json(name, self._clock(), fields, self.client_id)))
        self._drained.clear()
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, drain: float = 2.0) -> None:
        """Give the buffer ``drain`` seconds to go out, then stop."""
        if self._buffer and self.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), drain)
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        delay = self.backoff_initial
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.client_id,
                    username=self._username,
                    password=self._password,
                    timeout=self.publish_timeout,
                ) as client:
                    self.connected = True
                    delay = self.backoff_initial
                    log.info("events.mqtt_connected", host=self.host, port=self.port, buffered=len(self._buffer))
                    await self._publish_forever(client)
            except (aiomqtt.MqttError, OSError) as exc:
                if self.connected:
                    log.warning("events.mqtt_disconnected", error=str(exc), buffered=len(self._buffer))
                self.connected = False
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max)

    async def _publish_forever(self, client: aiomqtt.Client) -> None:
        while True:
            if not self._buffer:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            topic, payload = self._buffer[0]
            await client.publish(topic, payload, qos=1, timeout=self.publish_timeout)
            # Only now, acknowledged, does it leave the buffer: a break before the PUBACK resends it.
            self._buffer.popleft()
            self.published += 1
