"""A small world around one real gateway for the dissuasion tests, everything on loopback.

- the gateway in this process: its SMPP side bound to the simulated SMSC, its SIP registrar and
  proxy with the anti-fraud centre's labels, the robot caller, its SQLite store in the test's
  directory, events and instructions on a mosquitto of the test's own (free port);
- people with behaviour profiles (one seeded :class:`Population`), each holding a handset that
  registers with the gateway; the SMSC shows them their flashes and sends their acknowledgements;
- the anti-fraud centre's desk on MQTT, sending instructions and following the cases;
- one :class:`ManualClock`, the gateway's wall clock and the people's: a test moves it on by the
  5-minute interval and the next attempt falls due; the people's delays fall in the same steps.

The robot's own waits (ring timeout, message, confirmation) run on the event loop: they are kept
to a second or two so that a call that nobody answers ends quickly in real time.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.app import Gateway
from gateway.config import EventsConfig, MqttEventsConfig, StoreConfig
from gateway.dissuasion import templates
from gateway.dissuasion.engine import DissuasionConfig
from gateway.dissuasion.robot_call import RobotCallConfig
from gateway.store.base import Case, StateStore
from simulator.behaviour import Population, Profile
from simulator.centre_mqtt import CaseView, CentreDesk, CentreView
from simulator.clock import ManualClock
from simulator.handset import Handset
from simulator.smsc import SimulatedSmsc, StoredSms
from tests.e2e.labels_harness import LabelsPki
from tests.e2e.sip_harness import TRUNK_HOST, sip_config
from tests.e2e.smpp_harness import make_config
from tests.gateway.events.mqtt_broker import Broker

INTERVAL = 300.0
MAX_ATTEMPTS = 3
LABEL = "公安反诈专号"
TEMPLATES = templates.load(templates.DEFAULT_PATH)
ROBOT = RobotCallConfig(bind=TRUNK_HOST, ring_timeout=1.0, message_time=0.05, confirm_timeout=3.0)


@dataclass
class World:
    gw: Gateway
    clock: ManualClock
    people: Population
    smsc: SimulatedSmsc
    desk: CentreDesk
    handsets: dict[str, Handset] = field(default_factory=dict)

    @property
    def store(self) -> StateStore:
        store: Any = self.gw.store
        return store  # type: ignore[no-any-return]

    def flashes(self, number: str) -> list[StoredSms]:
        return [sms for sms in self.smsc.inbox(number) if sms.flash]

    async def until(self, predicate: Callable[[CentreView], bool], within: float = 15.0) -> CentreView:
        return await self.desk.until(predicate, within)

    async def until_case(
        self, subscriber: str, predicate: Callable[[CaseView], bool], within: float = 15.0
    ) -> CaseView:
        """Wait until the centre's view of ``subscriber``'s case satisfies ``predicate``; that view."""

        def holds(view: CentreView) -> bool:
            case = view.case_of(subscriber)
            return case is not None and predicate(case)

        view = await self.until(holds, within)
        case = view.case_of(subscriber)
        assert case is not None
        return case

    async def case_of(self, subscriber: str) -> Case:
        [case] = [c for c in await self.store.all_cases() if c.subscriber == subscriber]
        return case

    async def step(self, seconds: float) -> None:
        """Move the clock on, then give the loop a turn so that what fell due starts."""
        self.clock.advance(seconds)
        await asyncio.sleep(0)


@contextlib.asynccontextmanager
async def world(
    pki: LabelsPki,
    tmp_path: Path,
    people: dict[str, Profile],
    *,
    seed: int = 1,
    robot: RobotCallConfig = ROBOT,
    max_attempts: int = MAX_ATTEMPTS,
    **overrides: Any,
) -> AsyncIterator[World]:
    """``overrides``: more of the gateway's configuration (``http``, ``rules``)."""
    broker = Broker(tmp_path)
    await broker.start()
    clock = ManualClock(float(pki.now))
    population = Population(seed, clock)
    smsc = SimulatedSmsc(system_id="afgw", password="secret", people=population)
    await smsc.start("127.0.0.1", 0)
    passwords = {number: f"pw-{number[-4:]}" for number in people}
    sip = replace(sip_config(auth=True, users=tuple(passwords.items())), labels=pki.labels)
    dissuasion = DissuasionConfig(
        interval=INTERVAL,
        max_attempts=max_attempts,
        lease=60.0,
        poll_interval=0.02,
        templates=TEMPLATES,
        robot_call=robot,
    )
    mqtt = MqttEventsConfig(port=broker.port, client_id="gw-test", backoff_initial=0.05, backoff_max=0.5)
    config = replace(
        make_config(smsc.port),
        sip=sip,
        store=StoreConfig(backend="sqlite", data_dir=str(tmp_path)),
        events=EventsConfig(mqtt=mqtt),
        dissuasion=dissuasion,
        **overrides,
    )
    desk = CentreDesk(port=broker.port, clock=clock)
    gw = Gateway(config, clock=clock)
    the_world: World | None = None
    try:
        await desk.start()  # subscribed before the gateway says anything
        await gw.start()
        assert gw.smpp is not None
        assert gw.sip is not None
        assert gw.instructions is not None
        await asyncio.wait_for(gw.smpp.pool.up.wait(), 10)
        await asyncio.wait_for(gw.instructions.connected.wait(), 10)
        the_world = World(gw, clock, population, smsc, desk)
        for number, profile in people.items():
            person = population.add(number, profile)
            handset = Handset(number, ("127.0.0.1", gw.sip.udp_port), password=passwords[number], person=person)
            the_world.handsets[number] = handset
            await handset.start()
            assert (await handset.register(3600)).status == 200
        yield the_world
    finally:
        if the_world is not None:
            for handset in the_world.handsets.values():
                await handset.stop()
        await gw.stop()
        await desk.stop()
        await smsc.stop()
        await broker.stop()
