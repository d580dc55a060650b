"""What changes when one configuration runs as several worker processes.

Every worker runs the whole gateway on the same ports (SO_REUSEPORT: the kernel spreads SIP datagrams,
SIP/TCP connections and SMPP connections over the workers by a hash of the peer's address), binds to
the SMSC on its own (the SMSC sees N times ``smsc.binds`` binds), and keeps what must be shared in
Redis. What each worker writes alone gets its own name: the pcap capture and the JSON Lines event
log gain ``.w<index>`` before their extension, and the MQTT client id gains ``-w<index>`` (a broker
disconnects the older of two clients with one id).

Only ``store.backend: redis`` may run as several workers. With SQLite or memory, registrations,
receipt routes and the PASSporT replay claims would stay in each process: a handset registered
through one worker would be unknown to the others, a receipt for a message another worker relayed
would find no route, and a PASSporT could be replayed to a sibling. Ports must be fixed too: with
port 0 each worker would listen on a port of its own.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from gateway.config import ConfigError, GatewayConfig, WorkerRole


def check_workers(config: GatewayConfig, count: int) -> None:
    """Raise ConfigError when ``config`` cannot run as ``count`` workers, saying why."""
    if count <= 1:
        return
    errors = []
    source = config.source
    if config.store.backend != "redis":
        errors.append(
            f"{source}: --workers {count} needs store.backend: redis; with {config.store.backend} "
            "registrations, receipt routes and PASSporT claims would stay inside each worker"
        )
    ports = [("smpp.listen.port", config.smpp.listen.port)]
    if config.sip is not None:
        ports += [
            ("sip.listen.udp_port", config.sip.listen.udp_port),
            ("sip.listen.tcp_port", config.sip.listen.tcp_port),
        ]
    for name, port in ports:
        if port == 0:
            errors.append(f"{source}: --workers {count} needs a fixed {name} (0 would give each worker its own)")
    if config.sip is not None and (first := config.sip.listen.worker_udp_port):
        errors += _worker_udp_port_errors(source, count, first, config.sip.listen.udp_port)
    if errors:
        raise ConfigError(errors)


def as_worker(config: GatewayConfig, index: int, count: int) -> GatewayConfig:
    """``config`` for worker ``index`` of ``count``: shared ports, its own files and client id."""
    events = config.events
    if events.jsonl is not None:
        events = replace(events, jsonl=replace(events.jsonl, path=_own_file(events.jsonl.path, index)))
    if events.mqtt is not None:
        events = replace(events, mqtt=replace(events.mqtt, client_id=f"{events.mqtt.client_id}-w{index}"))
    capture = config.capture
    if capture is not None:
        capture = replace(capture, pcap=_own_file(capture.pcap, index))
    sip = config.sip
    if sip is not None and sip.listen.worker_udp_port:
        sip = replace(sip, listen=replace(sip.listen, worker_udp_port=sip.listen.worker_udp_port + index))
    return replace(config, events=events, capture=capture, sip=sip, worker=WorkerRole(index, count))


def _worker_udp_port_errors(source: str, count: int, first: int, shared: int) -> list[str]:
    """Why the workers' own UDP ports ``first`` .. ``first + count - 1`` cannot be, if they cannot."""
    last = first + count - 1
    span = f"sip.listen.worker_udp_port {first} gives --workers {count} the ports {first}..{last}"
    if last > 65535:
        return [f"{source}: {span}, past 65535"]
    if first <= shared <= last:
        return [f"{source}: {span}, which take in sip.listen.udp_port {shared}, the port they share"]
    return []


def _own_file(path: str, index: int) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}.w{index}{p.suffix}"))
