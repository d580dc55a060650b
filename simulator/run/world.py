"""Where the simulator plays: the addresses of the gateway it drives and what it must play around it.

Two ways to get one:

- :func:`embedded` (``afgw demo``): a real :class:`~gateway.app.Gateway` in this process on loopback,
  built from the shipped config/gateway.yaml (its rules, warning texts, dissuasion templates and
  scoring) with its ports, accounts and store replaced: SQLite in a temporary directory, the
  anti-fraud centre's keys created there (``afgw keys init``) and config/labels.yaml pointed at them,
  the robot caller on, and every event read from the gateway's own event sink. Without a broker the
  centre's instructions go in through the intake the MQTT subscription feeds
  (:meth:`InstructionIntake.handle`).
- :func:`external` (``afgw simulate``): a gateway running as its own process, described by its
  gateway.yaml: the simulator binds as its ESMEs, listens as its SMSC, calls from its trusted trunk
  address, registers handsets, and talks to the centre's broker when the file names one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import rules as rule_engine
from gateway import config as gwconfig
from gateway.app import Gateway
from gateway.capture import CaptureConfig
from gateway.config import (
    EsmeAccount,
    EventsConfig,
    GatewayConfig,
    Listen,
    RegistrarConfig,
    SipConfig,
    SipListen,
    SipRateLimit,
    SipUser,
    SmscPeer,
    StoreConfig,
)
from gateway.dissuasion.instructions import InstructionIntake
from gateway.dissuasion.robot_call import RobotCallConfig, SipRobotCaller
from gateway.events.wire import event_json
from gateway.keys import init_keys
from gateway.labels import LabelsConfig, build_registry, load_labels
from gateway.reload import rule_paths
from gateway.store import SqliteStore
from protocols.stir import Signer
from simulator.spoofer import rogue_signer

__all__ = ["Account", "EventFeed", "World", "embedded", "external"]

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = ROOT / "config" / "gateway.yaml"
SHIPPED_LABELS = ROOT / "config" / "labels.yaml"
CENTRE_X5U = "https://stir.afc.example.cn/shaken/signer.pem"
ROGUE_X5U = "https://stir.afc-example.cn/shaken/signer.pem"
TRUNK_HOST = "127.0.0.2"
#: Simulated seconds per real second while a robot call rings (see :mod:`simulator.run.player`): the
#: robot's real-time waits are set so that they last as long, in simulated time, as the shipped ones.
ROBOT_PACE = 250.0
SHIPPED_ROBOT = RobotCallConfig()


@dataclass(frozen=True, slots=True)
class Account:
    system_id: str
    password: str


class EventFeed:
    """An event sink that hands each event, in its wire form, to ``consumer`` (the centre's view)."""

    def __init__(self, consumer: Callable[[dict[str, Any]], None], clock: Callable[[], float]) -> None:
        self.consumer = consumer
        self.clock = clock

    def emit(self, name: str, /, **fields: Any) -> None:
        self.consumer(json.loads(event_json(name, float(fields.get("at", self.clock())), fields)))


@dataclass
class World:
    smpp: tuple[str, int]
    #: ESME accounts by role: services (banks, carriers, shops), p2p (other networks), bulk (platforms).
    accounts: dict[str, Account]
    smsc_listen: tuple[str, int]
    smsc_account: Account
    sip: tuple[str, int]
    domain: str
    trunk_host: str
    #: Handset passwords by number (empty when the registrar does not ask for any).
    passwords: dict[str, str]
    labels: LabelsConfig
    centre_signer: Signer
    rogue: Signer
    tag_prefix: str
    call_tag: str
    warning_sender: str
    #: What a handset shows for a call the rules warn about: the call tag, or a warning rule's own label
    #: (疑似冒用服务号码); any other label (境外来电) is informational.
    call_warnings: frozenset[str]
    #: The texts of the gateway's warnings about a message or call (rules.warnings.templates), as the
    #: start of what a handset shows: a flash that starts so is a warning, not a dissuasion attempt.
    warning_texts: tuple[str, ...]
    #: The clock the centre signs its calls with: the gateway's (embedded: the simulation's own; a
    #: gateway on its own keeps real time, and a PASSporT's iat must be fresh by it).
    signing_clock: Callable[[], float] = time.time
    #: Real seconds to wait after the last item for the gateway's own timers (dissuasion attempts
    #: on its wall clock) to finish what the run opened.
    drain_s: float = 0.0
    #: The robot's calls in progress, when the gateway is in this process (None: not seen).
    robot_calls: Callable[[], int] | None = None
    #: How instructions reach the gateway; None: they cannot (no broker, not embedded).
    instruct: Callable[[bytes], Awaitable[None]] | None = None
    #: What the report says about the channels it used (no broker: instructions in-process ...).
    notes: list[str] = field(default_factory=list)
    gateway: Gateway | None = None


def _pki(directory: Path, now: float) -> tuple[LabelsConfig, Signer]:
    """The centre's keys (as ``afgw keys init`` makes them) and a labels.yaml that uses them."""
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    stir = directory / "stir"
    shipped = load_labels(SHIPPED_LABELS)
    init_keys(stir, build_registry(shipped), CENTRE_X5U, now=when)
    rogue, rogue_pem, _ = rogue_signer(build_registry(shipped), ROGUE_X5U, now=when)
    (stir / "rogue-signer.pem").write_bytes(rogue_pem)
    text = SHIPPED_LABELS.read_text(encoding="utf-8").replace("../var/stir/", "stir/")
    text = text.replace(
        "  directory: stir/store\n", f"  directory: stir/store\n  files:\n    {ROGUE_X5U}: stir/rogue-signer.pem\n"
    )
    path = directory / "labels.yaml"
    path.write_text(text, encoding="utf-8")
    return load_labels(path), rogue


@contextlib.asynccontextmanager
async def embedded(
    callees: set[str],
    clock: Callable[[], float],
    events: Callable[[dict[str, Any]], None],
    smsc_port: int,
    *,
    capture: CaptureConfig | None = None,
) -> AsyncIterator[World]:
    """The shipped gateway on loopback around the simulated SMSC at ``smsc_port``."""
    with tempfile.TemporaryDirectory(prefix="afgw-demo-") as tmp:
        directory = Path(tmp)
        labels, rogue = _pki(directory, clock())
        shipped = gwconfig.load(SHIPPED_CONFIG)
        accounts = {
            role: Account(role, f"{role[:4]}pw{i}") for i, role in enumerate(("services", "p2p", "bulk"), start=1)
        }
        passwords = {number: f"pw{number[-6:]}" for number in sorted(callees)}
        smpp = replace(
            shipped.smpp,
            listen=Listen("127.0.0.1", 0),
            accounts=tuple(
                EsmeAccount(system_id=a.system_id, password=a.password, window=50, throughput=100_000)
                for a in accounts.values()
            ),
            smsc=SmscPeer(
                host="127.0.0.1", port=smsc_port, system_id="afgw", password="secret", binds=2, reconnect_initial=0.05
            ),
        )
        sip = SipConfig(
            listen=SipListen("127.0.0.1", 0, 0),
            domain="127.0.0.1",
            trusted_peers=(ipaddress.ip_network(TRUNK_HOST),),
            registrar=RegistrarConfig(auth=True, users=tuple(SipUser(n, p) for n, p in passwords.items())),
            # The town's handsets all register from 127.0.0.1: the per-address limits are the trunk's.
            rate_limit=SipRateLimit(rate=100_000, burst=100_000, hard_limit=200_000),
            labels=labels,
        )
        robot = RobotCallConfig(
            bind=TRUNK_HOST,
            ring_timeout=SHIPPED_ROBOT.ring_timeout / ROBOT_PACE,
            message_time=SHIPPED_ROBOT.message_time / ROBOT_PACE,
            confirm_timeout=SHIPPED_ROBOT.confirm_timeout / ROBOT_PACE,
        )
        assert shipped.dissuasion is not None
        assert shipped.rules is not None
        config: GatewayConfig = replace(
            shipped,
            smpp=smpp,
            sip=sip,
            rules=replace(shipped.rules, reload_interval=0),
            store=StoreConfig(backend="sqlite", data_dir=str(directory)),
            events=EventsConfig(),
            # a look for due cases every 5 ms: under a minute of the clock at the default scenario's pace
            dissuasion=replace(shipped.dissuasion, robot_call=robot, poll_interval=0.005),
            capture=capture,
            http=None,
            source="<demo>",
        )
        gw = Gateway(config, clock=clock, events=EventFeed(events, clock))
        await gw.start()
        try:
            assert gw.sip is not None
            assert gw.smpp is not None
            assert gw.triggers is not None
            assert isinstance(gw.store, SqliteStore)
            intake = InstructionIntake(gw.triggers, events=gw.events, clock=clock, references=gw.store)

            async def instruct(payload: bytes) -> None:
                await intake.handle(payload)

            yield World(
                smpp=("127.0.0.1", gw.smpp.server.port),
                accounts=accounts,
                smsc_listen=("127.0.0.1", smsc_port),
                smsc_account=Account("afgw", "secret"),
                sip=("127.0.0.1", gw.sip.udp_port),
                domain="127.0.0.1",
                trunk_host=TRUNK_HOST,
                passwords=passwords,
                labels=labels,
                centre_signer=_signer(labels),
                rogue=rogue,
                tag_prefix=config.rules.tag_prefix if config.rules else "",
                call_tag=config.rules.call_tag if config.rules else "",
                call_warnings=_call_warnings(config, gw.rules.engine.ruleset if gw.rules else None),
                warning_sender=config.rules.warning_sender if config.rules else "12381",
                warning_texts=_warning_texts(config),
                instruct=instruct,
                signing_clock=clock,
                robot_calls=_in_progress(gw.robot),
                notes=[
                    "gateway in this process on loopback; SQLite in a temporary directory",
                    "no MQTT broker configured: the centre's instructions went in through the gateway's "
                    "instruction intake in-process, and its events were read from its event sink",
                ],
                gateway=gw,
            )
        finally:
            await gw.stop()


def _in_progress(robot: SipRobotCaller | None) -> Callable[[], int] | None:
    if robot is None:
        return None
    return lambda: robot.in_progress


def _call_warnings(config: GatewayConfig, ruleset: rule_engine.RuleSet | None) -> frozenset[str]:
    """The call tag and the labels of the warn rules for calls, from the gateway's rule set (loaded from
    its configuration when it runs elsewhere)."""
    if config.rules is None:
        return frozenset()
    if ruleset is None:
        ruleset = rule_engine.build(rule_paths(config))
    labels = {
        r.rule.label
        for r in ruleset.rules
        if r.rule.action == "warn" and r.rule.channel in ("call", "both") and r.rule.label
    }
    return frozenset({config.rules.call_tag, *labels})


def _warning_texts(config: GatewayConfig) -> tuple[str, ...]:
    templates = config.rules.warning_templates if config.rules else ()
    return tuple(text.split("{category}", 1)[0] for _, text in templates)


def _signer(labels: LabelsConfig) -> Signer:
    from gateway.labels import load_signer

    return load_signer(labels)


def external(config: GatewayConfig, *, roles: dict[str, str] | None = None) -> World:
    """What the simulator needs to play around the gateway that ``config`` describes."""
    if config.sip is None or config.sip.labels is None:  # checked again below, for the type checker
        raise ValueError(f"{config.source}: the simulator needs a sip section with labels (the centre's keys)")
    accounts = {a.system_id: Account(a.system_id, a.password) for a in config.smpp.accounts}
    chosen = roles or {}
    by_role: dict[str, Account] = {}
    names = list(accounts)
    for i, role in enumerate(("services", "p2p", "bulk")):
        name = chosen.get(role) or (role if role in accounts else names[min(i, len(names) - 1)])
        by_role[role] = accounts[name]
    sip = config.sip
    labels = sip.labels
    assert labels is not None
    trunk = next((str(net.network_address) for net in sip.trusted_peers), "127.0.0.2")
    listen_host = "127.0.0.1" if sip.listen.host in ("0.0.0.0", "::", "") else sip.listen.host
    rules = config.rules
    return World(
        smpp=(
            "127.0.0.1" if config.smpp.listen.host in ("0.0.0.0", "::", "") else config.smpp.listen.host,
            config.smpp.listen.port,
        ),
        accounts=by_role,
        smsc_listen=(config.smpp.smsc.host, config.smpp.smsc.port),
        smsc_account=Account(config.smpp.smsc.system_id, config.smpp.smsc.password),
        sip=(listen_host, sip.listen.udp_port),
        domain=sip.domain,
        trunk_host=trunk,
        passwords={u.user: u.password for u in sip.registrar.users} if sip.registrar.auth else {},
        labels=labels,
        centre_signer=_signer(labels),
        rogue=rogue_signer(build_registry(labels), ROGUE_X5U)[0],
        tag_prefix=rules.tag_prefix if rules else "【疑似诈骗】",
        call_tag=rules.call_tag if rules else "疑似诈骗",
        call_warnings=_call_warnings(config, None),
        warning_sender=rules.warning_sender if rules else "12381",
        warning_texts=_warning_texts(config),
        drain_s=_drain(config),
        notes=[f"gateway running separately, as {config.source} describes it"],
    )


def _drain(config: GatewayConfig) -> float:
    """Real seconds a case opened at the end may need on the gateway's own clock (at most 2 minutes)."""
    d = config.dissuasion
    if d is None:
        return 0.0
    ring = d.robot_call.ring_timeout + d.robot_call.message_time if d.robot_call else 0.0
    return min(120.0, d.interval * (d.max_attempts + 1) + ring + 1.0)
