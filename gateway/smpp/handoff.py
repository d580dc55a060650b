"""Deliveries for an ESME bound to another gateway on the same Redis store.

Several gateways (worker processes, or hosts) each bind to the SMSC, and an ESME's binds land on any
of them: its transmitter on one, its receiver on another. The SMSC sends a receipt on the bind that
submitted the message, so the gateway that gets it may hold no receiving bind of the ESME. This
module hands such a delivery to a gateway that does, and brings that ESME's answer back:

- Each gateway advertises the system_ids it holds a receiving bind of, in one sorted set per
  system_id (``<prefix>:receivers:<system_id>``, member the gateway's instance name, score the time
  its advertisement lapses). It advertises at once when a bind comes or goes, and again every
  ``lease / 3`` seconds, so that a gateway that died drops out within ``lease`` seconds.
- A delivery no local bind can take is published on the channel of a gateway that advertises the
  ESME (``<prefix>:handoff:<instance>``), as the PDU's bytes; that gateway relays it to the ESME and
  publishes the ESME's response on the asking gateway's channel. The asking gateway answers the
  SMSC with it: ESME_ROK reaches the SMSC only after the ESME said so, as for a local bind.
- Nothing is queued in Redis: if no gateway answers within ``timeout`` (it died, or Redis is away)
  the SMSC is told ESME_RX_T_APPN and retries later, as when a lone gateway has no receiving bind.
  A gateway is tried only if the publish reached a subscriber; after a timeout no other is tried,
  since the first may still have delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from gateway.logs import get_logger
from gateway.smpp.connection import ConnectionGone, ResponseTimeout
from gateway.smpp.esme_server import EsmeRegistry
from gateway.tasks import cancel_and_wait
from protocols.smpp.codec import decode, encode
from protocols.smpp.constants import CommandStatus
from protocols.smpp.pdu import DataSm, DeliverSm, Pdu, response_to

log = get_logger("afgw.handoff")


class DeliveryHandoff:
    def __init__(
        self,
        client: aioredis.Redis,
        prefix: str,
        instance: str,
        registry: EsmeRegistry,
        *,
        clock: Callable[[], float],
        timeout: float = 10.0,
        lease: float = 30.0,
    ) -> None:
        self.redis = client
        self.p = prefix + ":"
        #: This gateway's name among those on the store (host:pid): unique across hosts and restarts.
        self.instance = instance
        self.registry = registry
        self.clock = clock
        self.timeout = timeout
        self.lease = lease
        self._pending: dict[str, asyncio.Future[Pdu]] = {}
        #: The system_ids this gateway last advertised as receiving here.
        self.advertised: set[str] = set()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._relays: set[asyncio.Task[None]] = set()
        self._pubsub: Any = None
        self._stopping = False

    def _channel(self, instance: str) -> str:
        return f"{self.p}handoff:{instance}"

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub()
        try:
            await self._pubsub.subscribe(self._channel(self.instance))
        except (aioredis.RedisError, OSError) as exc:
            # The gateway starts without its store (and says so on /readyz); the listener subscribes
            # once Redis answers.
            log.warning("handoff.subscribe_failed", error=str(exc))
        self.registry.on_change = self._wake.set
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen()), loop.create_task(self._advertise_loop())]

    async def stop(self) -> None:
        self.registry.on_change = None
        # The advertiser is told to finish rather than cancelled: redis-py's pipeline does not always
        # let a cancel through while a write is under way, and the stop would wait for it forever.
        self._stopping = True
        self._wake.set()
        listener, advertiser = self._tasks or (None, None)
        await cancel_and_wait(listener)
        if advertiser is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await advertiser
        for relay in list(self._relays):
            await cancel_and_wait(relay)
        with contextlib.suppress(aioredis.RedisError, OSError):
            await self._withdraw(self.advertised)
        if self._pubsub is not None:
            with contextlib.suppress(aioredis.RedisError, OSError):
                await self._pubsub.aclose()

    # --- who receives where ------------------------------------------------------------------------

    async def _advertise_loop(self) -> None:
        while not self._stopping:
            try:
                await self.advertise()
            except (aioredis.RedisError, OSError) as exc:
                log.warning("handoff.advertise_failed", error=str(exc))
            self._wake.clear()
            if self._stopping:
                break
            # asyncio.timeout, not wait_for: on 3.11 wait_for may swallow a cancel that meets a wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.lease / 3):
                    await self._wake.wait()

    async def advertise(self) -> None:
        """Write which ESMEs this gateway can deliver to now, and withdraw the others."""
        receiving = self.registry.receiving()
        until = self.clock() + self.lease
        pipe = self.redis.pipeline(transaction=False)
        for system_id in receiving:
            pipe.zadd(self.p + "receivers:" + system_id, {self.instance: until})
        for system_id in self.advertised - receiving:
            pipe.zrem(self.p + "receivers:" + system_id, self.instance)
        await pipe.execute()
        self.advertised = receiving

    async def _withdraw(self, system_ids: set[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for system_id in system_ids:
            pipe.zrem(self.p + "receivers:" + system_id, self.instance)
        await pipe.execute()

    # --- asking -------------------------------------------------------------------------------------

    async def deliver(self, system_id: str, pdu: Pdu) -> Pdu | None:
        """The response of ``system_id``'s ESME, through another gateway; None when none could ask it."""
        try:
            peers = await self.redis.zrangebyscore(self.p + "receivers:" + system_id, repr(self.clock()), "+inf")
        except (aioredis.RedisError, OSError) as exc:
            log.warning("handoff.store_unavailable", error=str(exc))
            return None
        for peer in peers:
            if peer == self.instance:
                continue
            token = uuid.uuid4().hex
            future: asyncio.Future[Pdu] = asyncio.get_running_loop().create_future()
            self._pending[token] = future
            message = {"kind": "deliver", "token": token, "reply_to": self.instance, "system_id": system_id}
            message["pdu"] = encode(pdu).hex()
            try:
                if not await self.redis.publish(self._channel(str(peer)), json.dumps(message)):
                    continue  # nobody listens there any more: its advertisement has not lapsed yet
                async with asyncio.timeout(self.timeout):
                    return await future
            except (aioredis.RedisError, OSError, TimeoutError) as exc:
                log.warning("handoff.no_answer", peer=peer, system_id=system_id, error=type(exc).__name__)
                return None
            finally:
                self._pending.pop(token, None)
        return None

    # --- answering ----------------------------------------------------------------------------------

    async def _listen(self) -> None:
        while True:
            try:
                if not self._pubsub.subscribed:
                    await self._pubsub.subscribe(self._channel(self.instance))
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except (aioredis.RedisError, OSError) as exc:
                log.warning("handoff.listen_failed", error=str(exc))
                await asyncio.sleep(1.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            try:
                doc = json.loads(message["data"])
                pdu = decode(bytes.fromhex(doc["pdu"]))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("handoff.bad_message", error=str(exc))
                continue
            if doc.get("kind") == "reply":
                future = self._pending.get(str(doc.get("token")))
                if future is not None and not future.done():
                    future.set_result(pdu)
            elif doc.get("kind") == "deliver" and isinstance(pdu, DeliverSm | DataSm):
                relay = asyncio.get_running_loop().create_task(self._relay(doc, pdu))
                self._relays.add(relay)
                relay.add_done_callback(self._relays.discard)

    async def _relay(self, doc: dict[str, Any], pdu: DeliverSm | DataSm) -> None:
        target = self.registry.receiver(str(doc.get("system_id")))
        resp: Pdu
        if target is None:
            resp = response_to(pdu, CommandStatus.ESME_RX_T_APPN)
        else:
            try:
                resp = await target.request(pdu)
            except (ConnectionGone, ResponseTimeout):
                resp = response_to(pdu, CommandStatus.ESME_RX_T_APPN)
        reply = {"kind": "reply", "token": doc.get("token"), "pdu": encode(resp).hex()}
        try:
            await self.redis.publish(self._channel(str(doc.get("reply_to"))), json.dumps(reply))
        except (aioredis.RedisError, OSError) as exc:
            log.warning("handoff.reply_failed", error=str(exc))
