"""The gateway's configuration: typed, checked as a whole, every problem reported as file:line:col."""

from __future__ import annotations

import errno
import ipaddress
import os
import re
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gateway.campaigns import CampaignConfig
from gateway.capture.config import MIN_PCAP_SIZE, CaptureConfig
from gateway.dissuasion import templates as dissuasion_templates
from gateway.dissuasion.engine import DissuasionConfig, QuietHours
from gateway.dissuasion.robot_call import RobotCallConfig
from gateway.dissuasion.scoring import ScoringConfig
from gateway.labels import LabelsConfig, LabelsError, load_labels, open_trust
from gateway.tls import TlsConfig
from gateway.tls import parse as parse_tls
from protocols.sip.digest import canonical_algorithm
from rules.yaml_source import LocatedDict, Location, Reader, SourceErrors, load_text

BIND_TYPES = frozenset({"transmitter", "receiver", "transceiver"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """The configuration cannot be used; ``errors`` lists each problem as ``file:line:col: message``."""

    def __init__(self, errors: list[str]) -> None:
        # Two checks can find the same fault (a required field is missing for the key list and for its
        # value); it is one problem to the person reading, so it is said once.
        errors = list(dict.fromkeys(errors))
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class Listen:
    host: str = "127.0.0.1"
    port: int = 2775


@dataclass(frozen=True, slots=True)
class EsmeAccount:
    system_id: str
    password: str = field(repr=False)
    allowed_networks: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"),)
    bind_types: frozenset[str] = BIND_TYPES
    max_binds: int = 4
    throughput: float = 100.0  # messages per second, over all binds of the account
    window: int = 10
    #: Destination prefixes of mobile-originated messages that this account receives.
    mo_prefixes: tuple[str, ...] = ()
    #: Reserved sender ids (12381, 96110, ...) and signatures (【国家反诈中心】, ...) this account may use.
    authorised_senders: tuple[str, ...] = ()
    authorised_signatures: tuple[str, ...] = ()

    def allows(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.allowed_networks)


@dataclass(frozen=True, slots=True)
class SmscPeer:
    host: str = "127.0.0.1"
    port: int = 2776
    system_id: str = "afgw"
    password: str = field(default="", repr=False)
    system_type: str = ""
    binds: int = 2
    bind_type: str = "transceiver"
    window: int = 100
    reconnect_initial: float = 0.5
    reconnect_max: float = 30.0
    #: None: plain TCP. Otherwise the SMSC's certificate is verified, and a failure is a failed bind.
    tls: TlsConfig | None = None


@dataclass(frozen=True, slots=True)
class SmppConfig:
    listen: Listen = Listen()
    #: A second ESME listener, over TLS (None: none); ``tls`` holds its certificate and client checks.
    tls_listen: Listen | None = None
    tls: TlsConfig | None = None
    accounts: tuple[EsmeAccount, ...] = ()
    smsc: SmscPeer = SmscPeer()
    max_pdu_size: int = 7424
    enquire_link_interval: float = 30.0
    response_timeout: float = 10.0
    session_init_timeout: float = 10.0
    #: How long a submit may wait for a free slot towards the SMSC before ESME_RTHROTTLED.
    queue_timeout: float = 1.0
    #: How long message ids are remembered to route receipts back.
    receipt_ttl: float = 72 * 3600.0
    receipt_max_entries: int = 1_000_000
    #: The parts of a long message are held, unanswered, until all are in (the message is then decided
    #: whole) or this many seconds after the first; then what arrived is decided on and later parts
    #: one by one, so an ESME that waits for each answer before the next part is delayed only once.
    concat_hold: float = 0.25
    #: Bounds on what is held: messages per account, and parts over all (beyond: ESME_RTHROTTLED).
    concat_max_held_per_account: int = 100
    concat_max_held_parts: int = 10_000
    #: Sender ids and signatures only authorised accounts may use; anyone else is refused.
    reserved_senders: tuple[str, ...] = ("12381", "96110")
    reserved_signatures: tuple[str, ...] = ("【国家反诈中心】", "【反诈名片】", "【公安反诈专号】")
    #: ESME connections open at once, in total and from one address; more are closed at once.
    max_connections: int = 512
    max_connections_per_address: int = 64
    #: PDUs a connection may send before its bind is answered; more close it.
    unbound_pdus: int = 10
    #: Bind attempts (answered or not) per second and in a burst, from one address and for one system_id;
    #: past them a bind is answered ESME_RBINDFAIL at once. A successful bind gives its token back.
    bind_rate: float = 1.0
    bind_burst: int = 10
    bind_rate_per_system_id: float = 2.0
    bind_burst_per_system_id: int = 20
    #: Octets of replies a peer may leave unread before the gateway stops reading from it, and seconds
    #: they may stay unread before the connection is aborted.
    output_buffer: int = 1 << 20
    output_deadline: float = 10.0
    #: Refusals of a flood (throttled binds, connections over a cap, PDUs answered with an error) are
    #: logged once, then as one line per this many seconds with their count.
    refusal_log_interval: float = 10.0
    #: On SIGTERM: seconds the submits already taken may take to get the SMSC's answers, and the ESMEs
    #: to answer their unbind, before the connections are closed anyway.
    drain_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class SipListen:
    host: str = "127.0.0.1"
    udp_port: int = 5060
    tcp_port: int = 5060
    #: None: no TLS listener; ``SipConfig.tls`` holds its certificate and client checks.
    tls_port: int | None = None
    #: Under ``afgw run --workers N``: the UDP port of worker 0's own socket, worker i's being this plus
    #: i (what a worker relays leaves from its own port, for the answers to come back to it); 0: a port
    #: the system picks, logged in ``sip.listening``. Each worker's configuration holds its own port.
    worker_udp_port: int = 0


@dataclass(frozen=True, slots=True)
class SipUser:
    """A handset account: the user part of its address of record and its digest password."""

    user: str
    password: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class RegistrarConfig:
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    #: Digest authentication (RFC 3261 22, qop=auth; RFC 2617 MD5, RFC 8760 SHA-256) for handsets.
    auth: bool = False
    #: The algorithms challenged with, one challenge each, in order of preference. MD5 alone by
    #: default: Debian's baresip 1.0 (libre 1.1) gives up on any SHA-256 challenge, even after an
    #: MD5 one, and sipp 3.6 on a SHA-256 one listed first.
    digest_algorithms: tuple[str, ...] = ("MD5",)
    #: The digest realm; the SIP domain when empty.
    realm: str = ""
    #: Seconds a nonce stays fresh; an older one is answered with a new challenge marked stale.
    nonce_ttl: int = 300
    users: tuple[SipUser, ...] = ()
    #: Bounds on the location service: addresses of record, and contacts per address of record.
    max_aors: int = 100_000
    max_contacts: int = 10


@dataclass(frozen=True, slots=True)
class SipRateLimit:
    """Per-source-address limits on requests from untrusted sources (token bucket per IP)."""

    rate: float = 50.0  # requests per second, sustained
    burst: float = 100.0
    #: Past ``rate`` requests are answered 503 with Retry-After; past this many per second they are
    #: dropped without an answer (answering a flood would amplify it).
    hard_limit: float = 200.0
    retry_after: int = 5
    max_sources: int = 65536
    #: Whether trusted peers (trunks) are limited too; a carrier's own trunks usually are not.
    limit_trusted: bool = False


#: Vendor headers that carry a caller name or label for the handset to show; removed from every request
#: towards handsets, like P-Asserted-Identity, P-Preferred-Identity, Call-Info and Identity (always).
DEFAULT_STRIP_HEADERS = (
    "X-Caller-Label",
    "X-Caller-Name",
    "X-Caller-ID-Name",
    "X-Display-Name",
    "X-Verstat",
    "Remote-Party-ID",
)
UNVERIFIED_AUTHORISED = frozenset({"reject", "deliver"})


@dataclass(frozen=True, slots=True)
class SipStir:
    """Verified caller labels (反诈名片) on the SIP side; which numbers and texts are in ``labels``."""

    #: A call from an authorised number whose Identity is missing or fails never shows a label:
    #: "reject" refuses it (428, 436, 437, 438 or 403 with an RFC 9410 Reason), "deliver" lets it ring
    #: unlabelled. A call that shows a protected label without proof is refused either way.
    unverified_authorised: str = "reject"
    strip_headers: tuple[str, ...] = DEFAULT_STRIP_HEADERS
    #: On a verified label call, also write the label as the From display name (URI and tag kept):
    #: many SIP phones (baresip, Linphone) show only From, never P-Asserted-Identity.
    label_in_from: bool = True


@dataclass(frozen=True, slots=True)
class SipConfig:
    listen: SipListen = SipListen()
    #: The domain this gateway is the registrar and proxy for (Request-URI hosts it owns, besides the
    #: addresses it listens on).
    domain: str = "127.0.0.1"
    #: Source addresses of the trunk side: they may place calls without authenticating.
    trusted_peers: tuple[Network, ...] = ()
    registrar: RegistrarConfig = RegistrarConfig()
    rate_limit: SipRateLimit = SipRateLimit()
    #: Bounds that keep a peer from exhausting memory.
    max_transactions: int = 100_000
    #: Retry-After (seconds) on the 503 that answers a request past ``max_transactions``.
    overload_retry_after: int = 5
    max_dialogs: int = 100_000
    #: Seconds a confirmed dialog is remembered without traffic before it is forgotten.
    dialog_timeout: float = 4 * 3600.0
    max_tcp_connections: int = 1024
    #: TCP connections one source address may hold at once (a carrier NAT puts many handsets behind
    #: one address; a slowloris attacker opens as many as it is let).
    max_tcp_per_source: int = 64
    #: Seconds a TCP connection is closed after, when it was opened, or began a message, and has not
    #: completed one since (slowloris). The connection of a registered handset is never idle-closed.
    tcp_message_timeout: float = 10.0
    tcp_idle_timeout: float = 600.0
    #: RFC 3261 T1 (seconds): the base of every retransmission and transaction timer.
    t1: float = 0.5
    #: On SIGTERM: seconds the transactions under way may take to reach their final answer.
    drain_timeout: float = 10.0
    #: config/labels.yaml, loaded (None: no label is ever verified, shown or protected).
    labels: LabelsConfig | None = None
    labels_path: Path | None = None
    stir: SipStir = SipStir()
    tls: TlsConfig | None = None
    #: Over TLS, the trunk side is whoever presents a verified client certificate naming one of these
    #: (common name or DNS subjectAltName), instead of trusted_peers' addresses.
    tls_trunk_names: frozenset[str] = frozenset()

    def is_trusted(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted_peers)


@dataclass(frozen=True, slots=True)
class RulesConfig:
    """Where the fraud rules come from and what their verdicts say to people."""

    #: Rule files and directories; empty means the packs shipped with the gateway.
    packs: tuple[str, ...] = ()
    #: Seconds between checks of the rule files for changes (SIGHUP reloads at once); 0 disables polling.
    reload_interval: float = 2.0
    #: Put before the text of a message the rules tag.
    tag_prefix: str = "【疑似诈骗】"
    #: Shown on the handset for a call the rules tag or warn about.
    call_tag: str = "疑似诈骗"
    #: The sender of flash warnings, their templates by name or fraud category ("default" for the rest),
    #: and the least time between two warnings to one person.
    warning_sender: str = "12381"
    warning_templates: tuple[tuple[str, str], ...] = ()
    warning_interval: float = 300.0
    #: Campaign detection (near-duplicates sent to many); None: off.
    campaigns: CampaignConfig | None = None


STORE_BACKENDS = frozenset({"memory", "sqlite", "redis"})
#: Relative to the configuration file.
DEFAULT_DATA_DIR = "data"


@dataclass(frozen=True, slots=True)
class StoreConfig:
    """Where durable state lives: receipt routes, audit trail, risk scores, registrations, cases."""

    #: memory (forgotten on restart), sqlite (one gateway) or redis (several gateways share it).
    backend: str = "memory"
    #: The SQLite file; by default afgw.db in ``data_dir``.
    path: str = ""
    data_dir: str = DEFAULT_DATA_DIR
    #: synchronous=FULL for SQLite: a commit also survives the machine losing power.
    durable: bool = False
    #: Not in repr: a URL may carry a password (redis://:secret@host); better give it as ``password*``.
    redis_url: str = field(default="redis://127.0.0.1:6379/0", repr=False)
    redis_password: str = field(default="", repr=False)
    #: Prefix of every Redis key, so that several gateways (or tests) may share one database.
    redis_prefix: str = "afgw"

    @property
    def sqlite_path(self) -> str:
        return self.path or str(Path(self.data_dir) / "afgw.db")


@dataclass(frozen=True, slots=True)
class JsonlEventsConfig:
    path: str
    max_bytes: int = 100 * 1024 * 1024
    keep: int = 5
    #: fsync after every N events; 0 leaves writing back to the OS.
    fsync_every: int = 0


@dataclass(frozen=True, slots=True)
class MqttEventsConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = "afgw/v1/events"
    client_id: str = "afgw"
    username: str = ""
    password: str = field(default="", repr=False)
    #: Events kept while the broker is unreachable; beyond that they are counted as dropped.
    buffer: int = 10_000
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: The anti-fraud centre's instructions in, and the answers to those that cannot be followed.
    instructions_topic: str = "afgw/v1/instructions"
    instruction_errors_topic: str = "afgw/v1/instructions/errors"
    instruction_max_bytes: int = 4096
    #: References remembered in memory, when the store keeps no references (no cases either).
    instruction_references: int = 100_000
    #: Seconds a reference is kept in the store after its instruction was acted on: a repeat within
    #: them is ignored, after a restart and by every gateway on the store.
    instruction_retention: float = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class EventsConfig:
    #: None: no local event log.
    jsonl: JsonlEventsConfig | None = None
    #: None: no broker.
    mqtt: MqttEventsConfig | None = None


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The HTTP endpoint: /metrics, /healthz, /readyz (and the operator console)."""

    #: Loopback by default: metrics name accounts and rules, and only the carrier's own scraper needs them.
    host: str = "127.0.0.1"
    port: int = 8080
    #: None: no operator console on the endpoint.
    console: ConsoleConfig | None = None


@dataclass(frozen=True, slots=True)
class ConsoleAccountConfig:
    name: str
    role: str  # viewer, agent or admin
    password_hash: str  # scrypt$N$r$p$salt$key, from `afgw console passwd`


@dataclass(frozen=True, slots=True)
class ConsoleConfig:
    """``http.console``: the anti-fraud desk's accounts and how long a login lasts."""

    accounts: tuple[ConsoleAccountConfig, ...] = ()
    session_minutes: float = 480.0
    #: A login unused this long ends too (the live overview's refresh is no use).
    idle_minutes: float = 480.0
    #: Logins one account may hold at once; a further one ends its oldest.
    sessions_per_account: int = 10
    #: Failed logins allowed per account and per source address within ``throttle_window`` seconds.
    max_failed_logins: int = 5
    throttle_window: float = 300.0
    #: Seconds between two updates of the live overview.
    refresh_seconds: float = 2.0


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """This process is worker ``index`` of ``count`` under ``afgw run --workers``: it shares the listening
    ports with its siblings (SO_REUSEPORT) and names itself apart from them where names must differ."""

    index: int
    count: int


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    smpp: SmppConfig = SmppConfig()
    #: None: the SIP side is not started.
    sip: SipConfig | None = None
    #: None: messages and calls pass uninspected.
    rules: RulesConfig | None = None
    #: Built without a file (tests, the demo): in memory. A configuration file's default is SQLite.
    store: StoreConfig = StoreConfig()
    events: EventsConfig = EventsConfig()
    #: None: no dissuasion engine.
    dissuasion: DissuasionConfig | None = None
    #: dissuasion.scoring: the gateway's own risk scores.
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    #: None: no pcap capture of the gateway's traffic.
    capture: CaptureConfig | None = None
    #: None: no HTTP endpoint.
    http: HttpConfig | None = None
    #: None: the only process; else one of the workers ``afgw run --workers N`` started.
    worker: WorkerRole | None = None
    source: str = "<defaults>"


def rule_count(cfg: RulesConfig) -> int:
    """Load and compile the rule packs ``cfg`` names (the shipped ones when none): how many rules."""
    import rules as rule_engine  # the compiler is heavy: loaded only by those who check or run rules

    paths: list[str | Path] = list(cfg.packs) or [rule_engine.DEFAULT_PACKS]
    try:
        return len(rule_engine.build(paths))
    except rule_engine.SourceErrors as exc:
        raise ConfigError([str(e) for e in exc.errors]) from None


def load(path: str | Path, *, check_rules: bool = False) -> GatewayConfig:
    """Read and check a gateway.yaml; raises ConfigError listing every problem found. With
    ``check_rules`` the rule packs are compiled too (the gateway otherwise does so as it starts)."""
    _base_dir.set(Path(path).parent)
    reader = Reader()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        # Nothing was read, so there is no line or column to point at, and errno's wording is noise.
        raise ConfigError([f"cannot read {path}: {_why(exc)}"]) from None
    except UnicodeDecodeError as exc:
        data = exc.object
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ConfigError([f"{path}:{line}:{column}: not UTF-8 text"]) from None
    try:
        doc = load_text(text, str(path), collect=reader.errors)
    except SourceErrors as exc:
        raise ConfigError([str(e) for e in exc.errors]) from None
    if doc is None:
        doc = LocatedDict()
        doc.location = Location(str(path), 1, 1)
        doc.key_locations, doc.value_locations = {}, {}
    if not isinstance(doc, LocatedDict):
        raise ConfigError([f"{path}:1:1: the configuration must be a mapping of sections"])
    reader.keys(doc, {"smpp", "sip", "rules", "store", "events", "dissuasion", "capture", "http"})
    smpp_section = reader.mapping(doc, "smpp")
    smpp = _smpp(reader, smpp_section, Path(path).parent) if smpp_section is not None else SmppConfig()
    sip_section = reader.mapping(doc, "sip")
    sip = _sip(reader, sip_section, Path(path).parent) if sip_section is not None else None
    rules_section = reader.mapping(doc, "rules")
    rules = _rules(reader, rules_section, Path(path).parent) if rules_section is not None else None
    base = Path(path).parent
    store_section = reader.mapping(doc, "store")
    store = _store(reader, store_section, base) if store_section is not None else _default_store(base)
    events_section = reader.mapping(doc, "events")
    events = _events(reader, events_section, base) if events_section is not None else EventsConfig()
    scoring = ScoringConfig()
    dissuasion = None
    if (dissuasion_section := reader.mapping(doc, "dissuasion")) is not None:
        dissuasion = _dissuasion(reader, dissuasion_section, base)
        if (section := reader.mapping(dissuasion_section, "scoring")) is not None:
            scoring = _scoring(reader, section)
    capture_section = reader.mapping(doc, "capture")
    capture = _capture(reader, capture_section, base) if capture_section is not None else None
    http_section = reader.mapping(doc, "http")
    http = _http(reader, http_section) if http_section is not None else None
    # Every problem in one pass: the companion files (labels, templates, rule packs) are checked even
    # when gateway.yaml itself has errors, as far as what they depend on could be read.
    errors: list[str] = []
    try:
        reader.check()
    except SourceErrors as exc:
        errors.extend(str(e) for e in exc.errors)
    if sip is not None and sip.labels_path is not None:
        try:
            sip = replace(sip, labels=_labels(sip.labels_path))
        except ConfigError as exc:
            errors.extend(exc.errors)
    if dissuasion is not None:
        try:
            _check_robot_call(dissuasion, sip)
        except ConfigError as exc:
            errors.extend(exc.errors)
        try:
            dissuasion = replace(dissuasion, templates=dissuasion_templates.load(dissuasion.templates_path))
        except SourceErrors as exc:
            errors.extend(str(e) for e in exc.errors)
    if check_rules and rules is not None:
        try:
            rule_count(rules)
        except ConfigError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ConfigError(errors)
    return GatewayConfig(
        smpp=smpp,
        sip=sip,
        rules=rules,
        store=store,
        events=events,
        dissuasion=dissuasion,
        scoring=scoring,
        capture=capture,
        http=http,
        source=str(path),
    )


def _console(reader: Reader, d: LocatedDict) -> ConsoleConfig:
    from gateway.web.console.auth import ROLES, check_hash

    reader.keys(
        d,
        {
            "accounts",
            "session_minutes",
            "idle_minutes",
            "sessions_per_account",
            "max_failed_logins",
            "throttle_window",
            "refresh_seconds",
        },
    )
    defaults = ConsoleConfig()
    accounts: list[ConsoleAccountConfig] = []
    seen: set[str] = set()
    for item, where in reader.items(d, "accounts"):
        if not isinstance(item, LocatedDict):
            reader.error(where, "each account must be a mapping of name, role and password_hash")
            continue
        reader.keys(item, {"name", "role", "password_hash"}, required=("name", "role", "password_hash"))
        name = reader.get(item, "name", str, "")
        role = reader.get(item, "role", str, "viewer")
        hashed = reader.get(item, "password_hash", str, "")
        if name and not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", name):
            reader.error(item.where("name"), f"name: {name!r} must be 1 to 32 letters, digits, '_', '.' or '-'")
        if name in seen:
            reader.error(item.where("name"), f"duplicate console account {name!r}")
        seen.add(name)
        if role not in ROLES:
            reader.error(item.where("role"), f"role: {role!r} is not one of {', '.join(ROLES)}")
        if "password_hash" in item and (problem := check_hash(hashed)) is not None:
            reader.error(item.where("password_hash"), f"password_hash: {problem}")
        accounts.append(ConsoleAccountConfig(name, role, hashed))
    return ConsoleConfig(
        accounts=tuple(accounts),
        session_minutes=_positive(reader, d, "session_minutes", float, defaults.session_minutes),
        idle_minutes=_positive(reader, d, "idle_minutes", float, defaults.idle_minutes),
        sessions_per_account=_positive(reader, d, "sessions_per_account", int, defaults.sessions_per_account),
        max_failed_logins=_positive(reader, d, "max_failed_logins", int, defaults.max_failed_logins),
        throttle_window=_positive(reader, d, "throttle_window", float, defaults.throttle_window),
        refresh_seconds=_positive(reader, d, "refresh_seconds", float, defaults.refresh_seconds),
    )


def _http(reader: Reader, d: LocatedDict) -> HttpConfig:
    reader.keys(d, {"host", "port", "console"})
    defaults = HttpConfig()
    host = reader.get(d, "host", str, defaults.host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        reader.error(d.where("host"), f"host: {host!r} is not an IP address", "e.g. 127.0.0.1")
        host = defaults.host
    section = reader.mapping(d, "console")
    console = _console(reader, section) if section is not None else None
    return HttpConfig(host=host, port=_port(reader, d, "port", defaults.port), console=console)


def _relative(base: Path, value: str) -> str:
    return value if not value or Path(value).is_absolute() else str(base / value)


def _default_store(base: Path) -> StoreConfig:
    return StoreConfig(backend="sqlite", data_dir=_relative(base, DEFAULT_DATA_DIR))


def _store(reader: Reader, d: LocatedDict, base: Path) -> StoreConfig:
    reader.keys(d, {"backend", "path", "data_dir", "durable", "redis_url", "redis_prefix", *SECRET_KEYS})
    defaults = StoreConfig()
    backend = reader.get(d, "backend", str, "sqlite")
    if backend not in STORE_BACKENDS:
        reader.error(d.where("backend"), f"backend: {backend!r} is not one of {', '.join(sorted(STORE_BACKENDS))}")
        backend = "sqlite"
    url = reader.get(d, "redis_url", str, defaults.redis_url)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        reader.error(d.where("redis_url"), f"redis_url: {url!r} is not a redis://, rediss:// or unix:// URL")
    prefix = reader.get(d, "redis_prefix", str, defaults.redis_prefix)
    if not prefix or ":" in prefix:
        reader.error(d.where("redis_prefix"), "redis_prefix: must be non-empty, without ':'")
    return StoreConfig(
        backend=backend,
        path=_relative(base, reader.get(d, "path", str, "")),
        data_dir=_relative(base, reader.get(d, "data_dir", str, defaults.data_dir)),
        durable=reader.get(d, "durable", bool, defaults.durable),
        redis_url=url,
        redis_password=_password(reader, d, "store", max_octets=None),
        redis_prefix=prefix,
    )


def _events(reader: Reader, d: LocatedDict, base: Path) -> EventsConfig:
    reader.keys(d, {"jsonl", "mqtt"})
    jsonl = mqtt = None
    if (j := reader.mapping(d, "jsonl")) is not None:
        reader.keys(j, {"path", "max_bytes", "keep", "fsync_every"}, required=("path",))
        jd = JsonlEventsConfig(path="")
        fsync_every = reader.get(j, "fsync_every", int, jd.fsync_every)
        if fsync_every < 0:
            reader.error(j.where("fsync_every"), "fsync_every: must be 0 (never) or more")
        keep = reader.get(j, "keep", int, jd.keep)
        if keep < 0:
            reader.error(j.where("keep"), "keep: must be 0 or more")
        jsonl = JsonlEventsConfig(
            path=_relative(base, reader.get(j, "path", str, "")),
            max_bytes=_positive(reader, j, "max_bytes", int, jd.max_bytes),
            keep=keep,
            fsync_every=fsync_every,
        )
    if (m := reader.mapping(d, "mqtt")) is not None:
        reader.keys(
            m,
            {
                "host",
                "port",
                "topic_prefix",
                "client_id",
                "username",
                *SECRET_KEYS,
                "buffer",
                "backoff_initial",
                "backoff_max",
                "instructions_topic",
                "instruction_errors_topic",
                "instruction_max_bytes",
                "instruction_references",
                "instruction_retention",
            },
        )
        md = MqttEventsConfig()
        topics = {}
        for key in ("topic_prefix", "instructions_topic", "instruction_errors_topic"):
            topic = topics[key] = reader.get(m, key, str, getattr(md, key))
            if not topic.strip("/") or any(c in topic for c in "+#\x00"):
                reader.error(m.where(key), f"{key}: {topic!r} is not a topic (no wildcards + or #)")
        prefix = topics["topic_prefix"]
        mqtt = MqttEventsConfig(
            host=reader.get(m, "host", str, md.host),
            port=_port(reader, m, "port", md.port),
            topic_prefix=prefix,
            client_id=reader.get(m, "client_id", str, md.client_id),
            username=reader.get(m, "username", str, md.username),
            password=_password(reader, m, "mqtt", max_octets=None),
            buffer=_positive(reader, m, "buffer", int, md.buffer),
            backoff_initial=_positive(reader, m, "backoff_initial", float, md.backoff_initial),
            backoff_max=_positive(reader, m, "backoff_max", float, md.backoff_max),
            instructions_topic=topics["instructions_topic"],
            instruction_errors_topic=topics["instruction_errors_topic"],
            instruction_max_bytes=_positive(reader, m, "instruction_max_bytes", int, md.instruction_max_bytes),
            instruction_references=_positive(reader, m, "instruction_references", int, md.instruction_references),
            instruction_retention=_positive(reader, m, "instruction_retention", float, md.instruction_retention),
        )
    return EventsConfig(jsonl=jsonl, mqtt=mqtt)


def _capture(reader: Reader, d: LocatedDict, base: Path) -> CaptureConfig:
    reader.keys(d, {"pcap", "pcap_size", "pcap_count"}, required=("pcap",))
    defaults = CaptureConfig(pcap="")
    pcap = reader.get(d, "pcap", str, "")
    if "pcap" in d and not pcap:
        reader.error(d.where("pcap"), "pcap: must name a file")
    size = reader.get(d, "pcap_size", float, defaults.pcap_size)
    if size < MIN_PCAP_SIZE:
        reader.error(d.where("pcap_size"), f"pcap_size: {size:g} MB is less than {MIN_PCAP_SIZE:g} MB")
        size = defaults.pcap_size
    return CaptureConfig(
        pcap=_relative(base, pcap),
        pcap_size=size,
        pcap_count=_positive(reader, d, "pcap_count", int, defaults.pcap_count),
    )


_POINTS = ("sms_warned", "sms_blocked", "call_flagged", "call_listed", "international", "dissuade")


def _scoring(reader: Reader, d: LocatedDict) -> ScoringConfig:
    reader.keys(d, {"half_life", "thresholds", "points", "feed", "listed_numbers"})
    defaults = ScoringConfig()
    thresholds = dict(defaults.thresholds)
    if (section := reader.mapping(d, "thresholds")) is not None:
        reader.keys(section, set(thresholds))
        thresholds = {tier: _positive(reader, section, tier, float, least) for tier, least in thresholds.items()}
        if not thresholds["low"] < thresholds["medium"] < thresholds["high"]:
            reader.error(section.location, "thresholds: need low < medium < high")
    worth = {key: getattr(defaults, key) for key in _POINTS}
    if (section := reader.mapping(d, "points")) is not None:
        reader.keys(section, set(_POINTS))
        for key in _POINTS:
            worth[key] = reader.get(section, key, float, worth[key])
            if worth[key] < 0:
                reader.error(section.where(key), f"{key}: must be 0 or more")
    feed = [item for item, where in reader.items(d, "feed") if _text_item(reader, item, where, "feed")]
    listed = []
    for item, where in reader.items(d, "listed_numbers"):
        if not isinstance(item, str) or not re.fullmatch(r"\+?[0-9]{3,20}", item):
            reader.error(where, f"listed_numbers: {item!r} is not a phone number", 'quote it: "+8613800000001"')
        else:
            listed.append(item)
    return ScoringConfig(
        half_life=_positive(reader, d, "half_life", float, defaults.half_life),
        thresholds=tuple(thresholds.items()),
        feed=tuple(feed),
        listed_numbers=tuple(listed),
        **worth,
    )


def _text_item(reader: Reader, item: Any, where: Location, key: str) -> bool:
    if isinstance(item, str) and item:
        return True
    reader.error(where, f"{key}: {item!r} is not a rule id or category")
    return False


_WHY = {
    errno.ENOENT: "no such file",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "it is a directory",
    errno.ENOTDIR: "a part of the path is not a directory",
    errno.ELOOP: "too many symbolic links",
    errno.ENAMETOOLONG: "the name is too long",
}


def _dissuasion(reader: Reader, d: LocatedDict, base: Path) -> DissuasionConfig:
    allowed = {"interval", "max_attempts", "lease", "poll_interval", "tick_gap", "batch", "quiet_hours"}
    reader.keys(d, allowed | {"max_attempts_per_day", "opt_out", "templates", "scoring", "robot_call"})
    dd = DissuasionConfig()
    interval = _positive(reader, d, "interval", float, dd.interval)
    lease = _positive(reader, d, "lease", float, dd.lease)
    if lease >= interval:
        reader.error(d.where("lease"), f"lease: {lease} s must be shorter than the interval ({interval} s)")
    per_day = reader.get(d, "max_attempts_per_day", int, dd.max_attempts_per_day)
    if per_day < 0:
        reader.error(d.where("max_attempts_per_day"), "max_attempts_per_day: must be 0 (no cap) or more")
    tick_gap = reader.get(d, "tick_gap", float, dd.tick_gap)
    if not 0 <= tick_gap <= 1:
        reader.error(d.where("tick_gap"), f"tick_gap: {tick_gap} s must be from 0 to 1 (it adds to every lag)")
        tick_gap = dd.tick_gap
    quiet = None
    if (q := reader.mapping(d, "quiet_hours")) is not None:
        reader.keys(q, {"start", "end", "utc_offset"}, required=("start", "end"))
        offset = reader.get(q, "utc_offset", float, 8.0)
        if not -14 <= offset <= 14:
            reader.error(q.where("utc_offset"), f"utc_offset: {offset} hours is not a time zone")
        quiet = QuietHours(_clock_time(reader, q, "start"), _clock_time(reader, q, "end"), offset)
    robot = None
    if (r := reader.mapping(d, "robot_call")) is not None:
        robot = _robot_call(reader, r)
    return DissuasionConfig(
        interval=interval,
        max_attempts=_positive(reader, d, "max_attempts", int, dd.max_attempts),
        lease=lease,
        poll_interval=_positive(reader, d, "poll_interval", float, dd.poll_interval),
        tick_gap=tick_gap,
        batch=_positive(reader, d, "batch", int, dd.batch),
        quiet_hours=quiet,
        max_attempts_per_day=max(per_day, 0),
        opt_out=frozenset(_strings(reader, d, "opt_out", ())),
        templates_path=_relative(base, reader.get(d, "templates", str, str(dissuasion_templates.DEFAULT_PATH))),
        robot_call=robot,
        robot_call_at=str(r.location) if r is not None else "",
    )


def _robot_call(reader: Reader, r: LocatedDict) -> RobotCallConfig:
    reader.keys(r, {"number", "bind", "ring_timeout", "message_time", "confirm_timeout", "confirm_key"})
    dr = RobotCallConfig()
    # 96110 unquoted is a YAML integer: a number either way.
    number = str(r["number"]) if isinstance(r.get("number"), int) else reader.get(r, "number", str, dr.number)
    if not number.lstrip("+").isdigit():
        reader.error(r.where("number"), f"number: {number!r} is not a phone number")
    bind = reader.get(r, "bind", str, dr.bind)
    try:
        if not ipaddress.ip_address(bind).is_loopback:
            reader.error(r.where("bind"), f"bind: {bind} is not a loopback address")
    except ValueError:
        reader.error(r.where("bind"), f"bind: {bind!r} is not an IP address")
    raw_key = r.get("confirm_key")
    key = str(raw_key) if isinstance(raw_key, int) else reader.get(r, "confirm_key", str, dr.confirm_key)
    if len(key) != 1 or key not in "0123456789*#":
        reader.error(r.where("confirm_key"), f"confirm_key: {key!r} is not one key of a keypad (0-9, *, #)")
    return RobotCallConfig(
        number=number,
        bind=bind,
        ring_timeout=_positive(reader, r, "ring_timeout", float, dr.ring_timeout),
        message_time=_positive(reader, r, "message_time", float, dr.message_time),
        confirm_timeout=_positive(reader, r, "confirm_timeout", float, dr.confirm_timeout),
        confirm_key=key,
    )


def _check_robot_call(dissuasion: DissuasionConfig, sip: SipConfig | None) -> None:
    """The robot calls through the gateway's own SIP side, signed with the centre's key from labels.yaml."""
    robot, where = dissuasion.robot_call, dissuasion.robot_call_at
    if robot is None:
        return
    if sip is None or sip.labels is None:
        raise ConfigError([f"{where}: robot_call needs the sip section with its labels file (the centre's key)"])
    if sip.labels.signing_key is None or sip.labels.signing_x5u is None:
        raise ConfigError([f"{where}: robot_call needs signing.key and signing.x5u in {sip.labels.source}"])
    if not sip.is_trusted(robot.bind):
        raise ConfigError([f"{where}: bind: {robot.bind} is not in sip.trusted_peers: no label"])


def _clock_time(reader: Reader, d: LocatedDict, key: str) -> int:
    """``HH:MM`` as minutes after midnight."""
    value = reader.get(d, key, str, "00:00")
    hours, _, minutes = value.partition(":")
    if hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60 and len(minutes) == 2:
        return int(hours) * 60 + int(minutes)
    reader.error(d.where(key), f"{key}: {value!r} is not a time of day HH:MM", "quote it: '22:00'")
    return 0


def _why(exc: OSError) -> str:
    if exc.errno in _WHY:
        return _WHY[exc.errno]
    return (exc.strerror or type(exc).__name__).lower()


def _labels(path: Path) -> LabelsConfig:
    """The labels file and the trust files it names, checked now rather than at the first call."""
    try:
        labels = load_labels(path)
        open_trust(labels)
    except LabelsError as exc:
        raise ConfigError(exc.errors) from None
    return labels


def _rules(reader: Reader, d: LocatedDict, base: Path) -> RulesConfig:
    reader.keys(d, {"packs", "reload_interval", "tag_prefix", "call_tag", "warnings", "campaigns"})
    defaults = RulesConfig()
    packs = []
    for item, where in reader.items(d, "packs"):
        if not isinstance(item, str):
            reader.error(where, f"packs: expected a path, got {item!r}")
            continue
        path = Path(item) if Path(item).is_absolute() else base / item
        if not path.exists():
            reader.error(where, f"packs: {item!r} does not exist (paths are relative to this file)")
        packs.append(str(path))
    interval = reader.get(d, "reload_interval", float, defaults.reload_interval)
    if interval < 0:
        reader.error(d.where("reload_interval"), "reload_interval: must be 0 (off) or more")
    sender, templates, warning_interval = defaults.warning_sender, [], defaults.warning_interval
    if (warnings := reader.mapping(d, "warnings")) is not None:
        reader.keys(warnings, {"sender", "templates", "min_interval"})
        sender = reader.get(warnings, "sender", str, sender)
        warning_interval = reader.get(warnings, "min_interval", float, warning_interval)
        if (section := reader.mapping(warnings, "templates")) is not None:
            for name in section:
                text = reader.get(section, name, str, "")
                if text:
                    templates.append((name, text))
    return RulesConfig(
        packs=tuple(packs),
        reload_interval=interval,
        tag_prefix=reader.get(d, "tag_prefix", str, defaults.tag_prefix),
        call_tag=reader.get(d, "call_tag", str, defaults.call_tag),
        warning_sender=sender,
        warning_templates=tuple(templates),
        warning_interval=warning_interval,
        campaigns=_campaigns(reader, c) if (c := reader.mapping(d, "campaigns")) is not None else None,
    )


_CAMPAIGN_ACTIONS = ("tag", "warn", "block")


def _campaigns(reader: Reader, d: LocatedDict) -> CampaignConfig:
    reader.keys(
        d,
        {
            "window",
            "recipients",
            "similarity",
            "score",
            "action",
            "needs_evidence",
            "category",
            "allow_senders",
            "max_clusters",
        },
    )
    dc = CampaignConfig()
    similarity = reader.get(d, "similarity", float, dc.similarity)
    if not 0 < similarity <= 1:
        reader.error(d.where("similarity"), f"similarity: {similarity} is not a share between 0 (excluded) and 1")
    recipients = _positive(reader, d, "recipients", int, dc.recipients)
    if recipients > 10_000:
        reader.error(d.where("recipients"), f"recipients: at most 10000 (a cluster keeps that many), got {recipients}")
    action = d.get("action", dc.action)
    if action is not None and action not in _CAMPAIGN_ACTIONS:
        reader.error(d.where("action"), f"action: {action!r} is not one of tag, warn, block (or null)")
        action = dc.action
    score = reader.get(d, "score", float, dc.score)
    if not 0 <= score <= 1000:
        reader.error(d.where("score"), f"score: {score} is not between 0 and 1000")
    return CampaignConfig(
        window=_positive(reader, d, "window", float, dc.window),
        recipients=recipients,
        similarity=similarity,
        score=score,
        action=action,
        needs_evidence=reader.get(d, "needs_evidence", bool, dc.needs_evidence),
        category=reader.get(d, "category", str, dc.category),
        allow_senders=_strings(reader, d, "allow_senders", dc.allow_senders),
        max_clusters=_positive(reader, d, "max_clusters", int, dc.max_clusters),
    )


def _positive(reader: Reader, d: LocatedDict, key: str, kind: type, default: Any) -> Any:
    value = reader.get(d, key, kind, default)
    if value is not None and value <= 0:
        reader.error(d.where(key), f"{key}: must be greater than zero, got {value}")
        return default
    return value


def _port(reader: Reader, d: LocatedDict, key: str, default: int, what: str = "TCP port") -> int:
    value: int = reader.get(d, key, int, default)
    if not 0 <= value <= 65535:
        reader.error(d.where(key), f"{key}: {value} is not a {what} (0..65535)")
        return default
    return value


#: Where a password may come from: written inline, or (better: the file then holds no secret) read from an
#: environment variable or a file. The same three keys everywhere a secret is configured.
SECRET_KEYS = ("password", "password_env", "password_file")
#: The directory of the configuration file being read: ``password_file`` paths are relative to it.
_base_dir: ContextVar[Path] = ContextVar("_base_dir", default=Path("."))
#: Bounds what a password file may hold (a secret, not a document).
_MAX_SECRET_FILE = 4096


def _has_secret(d: LocatedDict) -> bool:
    return any(key in d for key in SECRET_KEYS)


def _password(reader: Reader, d: LocatedDict, what: str, max_octets: int | None = 8) -> str:
    """A password given inline, or read from the environment variable ``password_env`` names or from the
    file ``password_file`` names (one trailing newline dropped). Errors never quote the secret."""
    given = [key for key in SECRET_KEYS if key in d]
    if len(given) > 1:
        reader.error(d.where(given[1]), f"{what}: give one of {', '.join(SECRET_KEYS)}, not {' and '.join(given)}")
    if not given:
        return ""
    key = given[0]
    value: str | None
    if key == "password_env":
        name = reader.get(d, "password_env", str, "")
        value = os.environ.get(name or "")
        if value is None:
            reader.error(d.where("password_env"), f"{what}: environment variable {name!r} is not set")
            return ""
    elif key == "password_file":
        name = reader.get(d, "password_file", str, "")
        path = Path(_relative(_base_dir.get(), name)) if name else None
        try:
            if path is None:
                raise FileNotFoundError(errno.ENOENT, "empty path")
            with path.open("rb") as f:
                raw = f.read(_MAX_SECRET_FILE + 1)
        except OSError as exc:
            reader.error(d.where("password_file"), f"{what}: cannot read password_file {name!r}: {_why(exc)}")
            return ""
        if len(raw) > _MAX_SECRET_FILE:
            reader.error(d.where("password_file"), f"{what}: password_file {name!r} is over {_MAX_SECRET_FILE} octets")
            return ""
        try:
            value = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
        except UnicodeDecodeError:
            reader.error(d.where("password_file"), f"{what}: password_file {name!r} is not UTF-8 text")
            return ""
    else:
        value = reader.get(d, "password", str)
    where = d.where(key)
    if value is not None and max_octets is not None and len(value.encode("latin-1", "replace")) > max_octets:
        reader.error(where, f"{what}: SMPP passwords are at most {max_octets} octets")
    return value or ""


def _smpp(reader: Reader, d: LocatedDict, base: Path) -> SmppConfig:
    reader.keys(
        d,
        {
            "listen",
            "tls_listen",
            "accounts",
            "smsc",
            "max_pdu_size",
            "enquire_link_interval",
            "response_timeout",
            "session_init_timeout",
            "queue_timeout",
            "receipt_ttl",
            "receipt_max_entries",
            "concat_hold",
            "concat_max_held_per_account",
            "concat_max_held_parts",
            "reserved_senders",
            "reserved_signatures",
            *_SMPP_LIMITS,
        },
    )
    defaults = SmppConfig()
    listen = defaults.listen
    if (section := reader.mapping(d, "listen")) is not None:
        reader.keys(section, {"host", "port"})
        listen = Listen(reader.get(section, "host", str, "127.0.0.1"), _port(reader, section, "port", 2775))
    accounts: list[EsmeAccount] = []
    seen: dict[str, Location] = {}
    for item, where in reader.items(d, "accounts"):
        if not isinstance(item, LocatedDict):
            reader.error(where, "each account must be a mapping")
            continue
        account = _account(reader, item)
        if account is None:
            continue
        if account.system_id in seen:
            reader.error(
                where,
                f"duplicate account {account.system_id!r}",
                f"first at line {seen[account.system_id].line}",
            )
        seen[account.system_id] = where
        accounts.append(account)
    tls_listen, tls = None, None
    if (section := reader.mapping(d, "tls_listen")) is not None:
        tls = parse_tls(reader, section, base, listener=True, extra=frozenset({"host", "port"}))
        tls_listen = Listen(reader.get(section, "host", str, "127.0.0.1"), _port(reader, section, "port", 3550))
    smsc = defaults.smsc
    if (section := reader.mapping(d, "smsc")) is not None:
        smsc = _smsc(reader, section, base)
    max_pdu = _positive(reader, d, "max_pdu_size", int, defaults.max_pdu_size)
    if max_pdu < 16 or max_pdu > 1 << 20:
        reader.error(d.where("max_pdu_size"), "max_pdu_size: must be between 16 and 1048576")
        max_pdu = defaults.max_pdu_size
    return SmppConfig(
        listen=listen,
        tls_listen=tls_listen,
        tls=tls,
        accounts=tuple(accounts),
        smsc=smsc,
        max_pdu_size=max_pdu,
        enquire_link_interval=_positive(reader, d, "enquire_link_interval", float, defaults.enquire_link_interval),
        response_timeout=_positive(reader, d, "response_timeout", float, defaults.response_timeout),
        session_init_timeout=_positive(reader, d, "session_init_timeout", float, defaults.session_init_timeout),
        queue_timeout=_positive(reader, d, "queue_timeout", float, defaults.queue_timeout),
        receipt_ttl=_positive(reader, d, "receipt_ttl", float, defaults.receipt_ttl),
        receipt_max_entries=_positive(reader, d, "receipt_max_entries", int, defaults.receipt_max_entries),
        concat_hold=_positive(reader, d, "concat_hold", float, defaults.concat_hold),
        concat_max_held_per_account=_positive(
            reader, d, "concat_max_held_per_account", int, defaults.concat_max_held_per_account
        ),
        concat_max_held_parts=_positive(reader, d, "concat_max_held_parts", int, defaults.concat_max_held_parts),
        reserved_senders=_strings(reader, d, "reserved_senders", defaults.reserved_senders),
        reserved_signatures=_strings(reader, d, "reserved_signatures", defaults.reserved_signatures),
        **_smpp_limits(reader, d, defaults),
    )


_SMPP_LIMITS: dict[str, type] = {
    "max_connections": int,
    "max_connections_per_address": int,
    "unbound_pdus": int,
    "bind_rate": float,
    "bind_burst": int,
    "bind_rate_per_system_id": float,
    "bind_burst_per_system_id": int,
    "output_buffer": int,
    "output_deadline": float,
    "refusal_log_interval": float,
    "drain_timeout": float,
}


def _smpp_limits(reader: Reader, d: LocatedDict, defaults: SmppConfig) -> dict[str, Any]:
    values = {key: _positive(reader, d, key, kind, getattr(defaults, key)) for key, kind in _SMPP_LIMITS.items()}
    init = reader.get(d, "session_init_timeout", float, defaults.session_init_timeout)
    for key in ("bind_rate", "bind_rate_per_system_id"):
        # A bucket refills one token in 1/rate seconds: slower than session_init_timeout, an honest ESME
        # throttled by someone else's guesses would stay locked out longer than it may wait to bind.
        if init and values[key] * init < 1.0 and key in d:
            reader.error(d.where(key), f"{key}: must be at least 1/session_init_timeout ({1.0 / init:g}) per second")
            values[key] = max(getattr(defaults, key), 1.0 / init)
    return values


def _account(reader: Reader, d: LocatedDict) -> EsmeAccount | None:
    reader.keys(
        d,
        {
            "system_id",
            *SECRET_KEYS,
            "allowed_networks",
            "bind_types",
            "max_binds",
            "throughput",
            "window",
            "mo_prefixes",
            "authorised_senders",
            "authorised_signatures",
        },
        required=("system_id",),
    )
    system_id = reader.get(d, "system_id", str)
    if system_id is None:
        return None
    if len(system_id.encode("latin-1", "replace")) > 15:
        reader.error(d.where("system_id"), "system_id: SMPP system ids are at most 15 octets")
    if not _has_secret(d):
        reader.error(d.location, f"account {system_id!r}: give password, password_env or password_file")
    password = _password(reader, d, f"account {system_id!r}")
    networks: list[Network] = []
    for item, where in reader.items(d, "allowed_networks"):
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            reader.error(where, f"allowed_networks: {item!r} is not an address or network", "e.g. 10.0.0.0/8")
    bind_types: set[str] = set()
    for item, where in reader.items(d, "bind_types"):
        if item not in BIND_TYPES:
            reader.error(where, f"bind_types: {item!r} is not one of {', '.join(sorted(BIND_TYPES))}")
        else:
            bind_types.add(item)
    defaults = EsmeAccount(system_id="", password="")
    return EsmeAccount(
        system_id=system_id,
        password=password,
        allowed_networks=tuple(networks) if "allowed_networks" in d else defaults.allowed_networks,
        bind_types=frozenset(bind_types) if "bind_types" in d else defaults.bind_types,
        max_binds=_positive(reader, d, "max_binds", int, defaults.max_binds),
        throughput=_positive(reader, d, "throughput", float, defaults.throughput),
        window=_positive(reader, d, "window", int, defaults.window),
        mo_prefixes=_strings(reader, d, "mo_prefixes", ()),
        authorised_senders=_strings(reader, d, "authorised_senders", ()),
        authorised_signatures=_strings(reader, d, "authorised_signatures", ()),
    )


def _strings(reader: Reader, d: LocatedDict, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A list of strings; numbers are refused, since YAML would drop their leading zeros and '+'."""
    if key not in d:
        return default
    values: list[str] = []
    for item, where in reader.items(d, key):
        if not isinstance(item, str):
            reader.error(where, f"{key}: expected a string, got {item!r}", f"quote it: '{item}'")
        else:
            values.append(item)
    return tuple(values)


def _smsc(reader: Reader, d: LocatedDict, base: Path) -> SmscPeer:
    reader.keys(
        d,
        {
            "host",
            "port",
            "system_id",
            *SECRET_KEYS,
            "system_type",
            "binds",
            "bind_type",
            "window",
            "reconnect_initial",
            "reconnect_max",
            "tls",
        },
    )
    defaults = SmscPeer()
    tls = None
    if (section := reader.mapping(d, "tls")) is not None:
        tls = parse_tls(reader, section, base, listener=False)
    bind_type = reader.get(d, "bind_type", str, defaults.bind_type)
    if bind_type not in BIND_TYPES:
        reader.error(d.where("bind_type"), f"bind_type: {bind_type!r} is not one of {', '.join(sorted(BIND_TYPES))}")
        bind_type = defaults.bind_type
    return SmscPeer(
        host=reader.get(d, "host", str, defaults.host),
        port=_port(reader, d, "port", defaults.port),
        system_id=reader.get(d, "system_id", str, defaults.system_id),
        password=_password(reader, d, "smsc"),
        system_type=reader.get(d, "system_type", str, defaults.system_type),
        binds=_positive(reader, d, "binds", int, defaults.binds),
        bind_type=bind_type,
        window=_positive(reader, d, "window", int, defaults.window),
        reconnect_initial=_positive(reader, d, "reconnect_initial", float, defaults.reconnect_initial),
        reconnect_max=_positive(reader, d, "reconnect_max", float, defaults.reconnect_max),
        tls=tls,
    )


# --- sip ------------------------------------------------------------------------------------------


def _networks(reader: Reader, d: LocatedDict, key: str) -> tuple[Network, ...]:
    networks: list[Network] = []
    for item, where in reader.items(d, key):
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            reader.error(where, f"{key}: {item!r} is not an address or network", "e.g. 192.0.2.10 or 10.0.0.0/8")
    return tuple(networks)


def _sip(reader: Reader, d: LocatedDict, base: Path) -> SipConfig:
    reader.keys(
        d,
        {
            "labels",
            "stir",
            "listen",
            "tls",
            "domain",
            "trusted_peers",
            "registrar",
            "rate_limit",
            "max_transactions",
            "overload_retry_after",
            "max_dialogs",
            "dialog_timeout",
            "max_tcp_connections",
            "max_tcp_per_source",
            "tcp_message_timeout",
            "tcp_idle_timeout",
            "t1",
            "drain_timeout",
        },
    )
    defaults = SipConfig()
    listen = defaults.listen
    if (section := reader.mapping(d, "listen")) is not None:
        reader.keys(section, {"host", "udp_port", "tcp_port", "tls_port", "worker_udp_port"})
        listen = SipListen(
            host=reader.get(section, "host", str, defaults.listen.host),
            udp_port=_port(reader, section, "udp_port", defaults.listen.udp_port, "UDP port"),
            tcp_port=_port(reader, section, "tcp_port", defaults.listen.tcp_port),
            tls_port=_port(reader, section, "tls_port", 5061) if "tls_port" in section else None,
            worker_udp_port=_port(reader, section, "worker_udp_port", 0, "UDP port"),
        )
        try:
            ipaddress.ip_address(listen.host)
        except ValueError:
            reader.error(section.where("host"), f"host: {listen.host!r} is not an IP address", "e.g. 127.0.0.1")
    registrar = defaults.registrar
    if (section := reader.mapping(d, "registrar")) is not None:
        registrar = _registrar(reader, section)
    rate_limit = defaults.rate_limit
    if (section := reader.mapping(d, "rate_limit")) is not None:
        rate_limit = _sip_rate_limit(reader, section)
    labels_path = None
    if (name := reader.get(d, "labels", str, None)) is not None:
        labels_path = base / name
        if not labels_path.is_file():
            reader.error(d.where("labels"), f"labels: {labels_path} is not a file", "e.g. labels: labels.yaml")
            labels_path = None
    stir = defaults.stir
    if (section := reader.mapping(d, "stir")) is not None:
        stir = _sip_stir(reader, section)
    tls, trunk_names = None, frozenset[str]()
    if (section := reader.mapping(d, "tls")) is not None:
        tls = parse_tls(reader, section, base, listener=True, extra=frozenset({"trunk_names"}))
        trunk_names = frozenset(_strings(reader, section, "trunk_names", ()))
        if trunk_names and not tls.ca_file:
            reader.error(section.where("trunk_names"), "trunk_names: needs ca_file, to verify the certificates")
        if listen.tls_port is None:
            reader.error(d.where_key("tls"), "tls: give listen.tls_port too (5061 is the SIPS port)")
    elif listen.tls_port is not None:
        reader.error(d.where("listen"), "listen.tls_port: give the tls section too (cert_file, key_file)")
    return SipConfig(
        listen=listen,
        domain=reader.get(d, "domain", str, defaults.domain),
        trusted_peers=_networks(reader, d, "trusted_peers"),
        registrar=registrar,
        rate_limit=rate_limit,
        max_transactions=_positive(reader, d, "max_transactions", int, defaults.max_transactions),
        overload_retry_after=_positive(reader, d, "overload_retry_after", int, defaults.overload_retry_after),
        max_dialogs=_positive(reader, d, "max_dialogs", int, defaults.max_dialogs),
        dialog_timeout=_positive(reader, d, "dialog_timeout", float, defaults.dialog_timeout),
        max_tcp_connections=_positive(reader, d, "max_tcp_connections", int, defaults.max_tcp_connections),
        max_tcp_per_source=_positive(reader, d, "max_tcp_per_source", int, defaults.max_tcp_per_source),
        tcp_message_timeout=_positive(reader, d, "tcp_message_timeout", float, defaults.tcp_message_timeout),
        tcp_idle_timeout=_positive(reader, d, "tcp_idle_timeout", float, defaults.tcp_idle_timeout),
        t1=_positive(reader, d, "t1", float, defaults.t1),
        drain_timeout=_positive(reader, d, "drain_timeout", float, defaults.drain_timeout),
        labels_path=labels_path,
        stir=stir,
        tls=tls,
        tls_trunk_names=trunk_names,
    )


def _sip_stir(reader: Reader, d: LocatedDict) -> SipStir:
    reader.keys(d, {"unverified_authorised", "strip_headers", "label_in_from"})
    defaults = SipStir()
    policy = reader.get(d, "unverified_authorised", str, defaults.unverified_authorised)
    if policy not in UNVERIFIED_AUTHORISED:
        reader.error(
            d.where("unverified_authorised"), f"unverified_authorised: {policy!r} is not one of deliver, reject"
        )
        policy = "reject"  # fail closed
    headers: list[str] = []
    for item, where in reader.items(d, "strip_headers"):
        if not isinstance(item, str) or not item or any(c in item for c in ": \t\r\n"):
            reader.error(where, f"strip_headers: {item!r} is not a header name")
        else:
            headers.append(item)
    return SipStir(
        unverified_authorised=policy,
        strip_headers=tuple(headers) if "strip_headers" in d else defaults.strip_headers,
        label_in_from=reader.get(d, "label_in_from", bool, defaults.label_in_from),
    )


def _registrar(reader: Reader, d: LocatedDict) -> RegistrarConfig:
    reader.keys(
        d,
        {
            "min_expires",
            "max_expires",
            "default_expires",
            "auth",
            "realm",
            "nonce_ttl",
            "digest_algorithms",
            "users",
            "max_aors",
            "max_contacts",
        },
    )
    defaults = RegistrarConfig()
    auth_word = reader.get(d, "auth", str, "off")
    if auth_word not in ("on", "off"):
        reader.error(d.where("auth"), f"auth: {auth_word!r} is not one of on, off")
        auth_word = "on"  # fail closed
    min_expires = _positive(reader, d, "min_expires", int, defaults.min_expires)
    max_expires = _positive(reader, d, "max_expires", int, defaults.max_expires)
    default_expires = _positive(reader, d, "default_expires", int, defaults.default_expires)
    if not min_expires <= default_expires <= max_expires:
        reader.error(d.location, "registrar: need min_expires <= default_expires <= max_expires")
    algorithms: list[str] = []
    listed = reader.items(d, "digest_algorithms")
    for item, where in listed:
        canonical = canonical_algorithm(item) if isinstance(item, str) else None
        if canonical is None:
            reader.error(where, f"digest_algorithms: {item!r} is not one of SHA-256, MD5")
        elif canonical in algorithms:
            reader.error(where, f"digest_algorithms: {canonical} is listed twice")
        else:
            algorithms.append(canonical)
    if "digest_algorithms" in d and not listed:
        reader.error(d.where("digest_algorithms"), "digest_algorithms: name at least one of SHA-256, MD5")
    users: list[SipUser] = []
    seen: dict[str, Location] = {}
    for item, where in reader.items(d, "users"):
        if not isinstance(item, LocatedDict):
            reader.error(where, "each user must be a mapping")
            continue
        reader.keys(item, {"user", *SECRET_KEYS}, required=("user",))
        name = reader.get(item, "user", str)
        if name is None:
            continue
        if name in seen:
            reader.error(where, f"duplicate user {name!r}", f"first at line {seen[name].line}")
        seen[name] = where
        if auth_word == "on" and not _has_secret(item):
            reader.error(item.location, f"user {name!r}: give password, password_env or password_file (auth is on)")
        users.append(SipUser(name, _password(reader, item, f"user {name!r}", max_octets=None)))
    return RegistrarConfig(
        min_expires=min_expires,
        max_expires=max_expires,
        default_expires=default_expires,
        auth=auth_word == "on",
        realm=reader.get(d, "realm", str, defaults.realm),
        nonce_ttl=_positive(reader, d, "nonce_ttl", int, defaults.nonce_ttl),
        digest_algorithms=tuple(algorithms) or defaults.digest_algorithms,
        users=tuple(users),
        max_aors=_positive(reader, d, "max_aors", int, defaults.max_aors),
        max_contacts=_positive(reader, d, "max_contacts", int, defaults.max_contacts),
    )


def _sip_rate_limit(reader: Reader, d: LocatedDict) -> SipRateLimit:
    reader.keys(d, {"rate", "burst", "hard_limit", "retry_after", "max_sources", "limit_trusted"})
    defaults = SipRateLimit()
    rate = _positive(reader, d, "rate", float, defaults.rate)
    hard = _positive(reader, d, "hard_limit", float, max(defaults.hard_limit, rate))
    if hard < rate:
        reader.error(d.where("hard_limit"), "hard_limit: must be at least rate")
        hard = rate
    return SipRateLimit(
        rate=rate,
        burst=_positive(reader, d, "burst", float, max(defaults.burst, rate)),
        hard_limit=hard,
        retry_after=_positive(reader, d, "retry_after", int, defaults.retry_after),
        max_sources=_positive(reader, d, "max_sources", int, defaults.max_sources),
        limit_trusted=reader.get(d, "limit_trusted", bool, defaults.limit_trusted),
    )


def describe(config: GatewayConfig) -> list[str]:
    """What ``config`` sets up, one line per part, for ``afgw config check``; never a secret."""
    smpp = config.smpp
    accounts = ", ".join(a.system_id for a in smpp.accounts) or "none"
    lines = [
        f"smpp: ESMEs on {smpp.listen.host}:{smpp.listen.port}, accounts: {accounts}",
        f"smsc: {smpp.smsc.host}:{smpp.smsc.port} as {smpp.smsc.system_id!r}, "
        f"{smpp.smsc.binds} {smpp.smsc.bind_type} binds",
    ]
    sip = config.sip
    if sip is None:
        lines.append("sip: off")
    else:
        listen = sip.listen
        lines.append(
            f"sip: {listen.host} udp {listen.udp_port} tcp {listen.tcp_port}"
            + (f" (workers' own udp from {listen.worker_udp_port})" if listen.worker_udp_port else "")
            + f", domain {sip.domain}, "
            f"{len(sip.registrar.users)} handset users, registrar auth {'on' if sip.registrar.auth else 'off'}"
        )
        labels = sip.labels
        lines.append(f"labels: {len(labels.labels)} numbers from {labels.source}" if labels else "labels: none")
    if config.rules is None:
        lines.append("rules: off")
    else:
        packs = ", ".join(config.rules.packs) or "the shipped packs"
        lines.append(f"rules: {rule_count(config.rules)} rules from {packs}")
        lines.append(f"warnings: {len(config.rules.warning_templates)} templates, sender {config.rules.warning_sender}")
    store = config.store
    where = {"sqlite": store.sqlite_path, "redis": _without_password(store.redis_url), "memory": "in memory"}
    lines.append(f"store: {store.backend} ({where[store.backend]})")
    events = [f"jsonl {config.events.jsonl.path}"] if config.events.jsonl else []
    if (m := config.events.mqtt) is not None:
        events.append(f"mqtt {m.host}:{m.port} {m.topic_prefix}")
    lines.append(f"events: {', '.join(events) or 'log only'}")
    lines.append("dissuasion: on" if config.dissuasion is not None else "dissuasion: off")
    lines.append(f"capture: {config.capture.pcap}" if config.capture is not None else "capture: off")
    lines.append("http: not configured")
    return lines


def _without_password(url: str) -> str:
    """``url`` with any password in it replaced by ***."""
    return re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)
