"""Run a scenario against an embedded gateway or one running on its own, and return its report."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

from gateway.capture import CaptureConfig
from gateway.config import GatewayConfig
from simulator.centre_mqtt import CentreDesk
from simulator.report import Report
from simulator.run.player import Progress, Run
from simulator.run.world import embedded, external
from simulator.scenarios import Scenario

__all__ = ["run_embedded", "run_external"]

#: Seconds a gateway that is starting (or reconnecting with back-off) has to bind to the simulated SMSC.
BIND_WAIT = 120.0


async def run_embedded(
    scenario: Scenario,
    *,
    scale: float = 1.0,
    progress: Progress | None = None,
    capture: CaptureConfig | None = None,
) -> Report:
    """``afgw demo``: the shipped gateway in this process, on loopback (``capture``: recording its
    SMPP and SIP traffic in a pcap file)."""
    run = Run(scenario, scale=scale, progress=progress)
    smsc = await run.start_smsc("127.0.0.1", 0, "afgw", "secret")
    try:
        async with embedded(run.plan.callees, run.clock, run.view.apply, smsc.port, capture=capture) as world:
            assert world.gateway is not None
            assert world.gateway.smpp is not None
            await asyncio.wait_for(world.gateway.smpp.pool.up.wait(), 10)
            return await run.play(world)
    finally:
        await smsc.stop()


async def run_external(
    scenario: Scenario, config: GatewayConfig, *, scale: float = 1.0, progress: Progress | None = None
) -> Report:
    """``afgw simulate``: the simulator around a gateway that runs as its own process.

    It listens where the gateway's configuration says its SMSC is, binds to the gateway's SMPP port as
    its ESMEs, calls from its trusted trunk address and registers the handsets that will ring. The
    anti-fraud centre's instructions go over the broker the configuration names, and its events come
    back the same way; without a broker, events are read from the gateway's JSON Lines log at the end
    and instructions cannot be sent (the report says so)."""
    run = Run(scenario, scale=scale, progress=progress)
    world = external(config)
    smsc = await run.start_smsc(
        world.smsc_listen[0], world.smsc_listen[1], world.smsc_account.system_id, world.smsc_account.password
    )
    desk: CentreDesk | None = None
    mqtt = config.events.mqtt
    jsonl = config.events.jsonl
    # Events already in the log are an earlier run's.
    offset = await asyncio.to_thread(_size, Path(jsonl.path)) if jsonl is not None else 0
    try:
        try:
            await asyncio.wait_for(smsc.receiver_bound.wait(), BIND_WAIT)
        except TimeoutError:
            raise TimeoutError(
                f"the gateway did not bind to the simulated SMSC at {smsc.host}:{smsc.port} within {BIND_WAIT:g} s"
            ) from None
        if mqtt is not None:
            desk = CentreDesk(mqtt.host, mqtt.port, clock=run.clock)
            desk.view = run.view
            await desk.start()

            async def instruct(payload: bytes) -> None:
                assert desk is not None
                await desk.publish(payload)

            world.instruct = instruct
            world.notes.append(f"instructions and events over MQTT at {mqtt.host}:{mqtt.port}")
        else:
            world.notes.append("no MQTT broker configured: no instructions sent; events read from the JSON Lines log")
        report = await run.play(world)
    finally:
        if desk is not None:
            await desk.stop()
        await smsc.stop()
    if mqtt is None and jsonl is not None:
        _read_events(Path(jsonl.path), offset, run)
        # The dissuasion figures come from the events: count them again now that they are in.
        from simulator.run.player import _dissuasion

        _dissuasion(report, run.view)
    return report


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _read_events(path: Path, offset: int, run: Run) -> None:
    with contextlib.suppress(FileNotFoundError), path.open("rb") as f:
        f.seek(offset)
        for line in f:
            with contextlib.suppress(ValueError):
                run.view.apply(json.loads(line))
