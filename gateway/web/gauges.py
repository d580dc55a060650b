"""What the gateway's parts hold right now, read when ``/metrics`` is scraped: binds, registrations,
windows and queues, the broker's link, the open cases. Nothing here runs on the message path.

Each ``*_source`` returns a :data:`gateway.metrics.Source` for :meth:`GatewayMetrics.add_source`.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import Metric

from gateway.config import SmppConfig
from gateway.events.mqtt import MqttEvents
from gateway.metrics import GatewayMetrics, Source, counter, gauge, labelled_gauge
from gateway.sip.proxy import SipProxy
from gateway.smpp.proxy import SmppProxy
from gateway.store import StateStore


def smpp_source(proxy: SmppProxy, config: SmppConfig) -> Source:
    accounts = [account.system_id for account in config.accounts]

    def collect() -> Iterator[Metric]:
        binds = proxy.registry.counts()
        yield labelled_gauge(
            "afgw_esme_binds",
            "ESME sessions bound now, by account.",
            ("system_id",),
            # Configured accounts only: a system_id is a label only once an account of that name exists.
            (((system_id,), float(binds.get(system_id, 0))) for system_id in accounts),
        )
        pool = proxy.pool
        yield gauge("afgw_smsc_binds", "Binds to the SMSC that are up now.", pool.bound_count)
        yield gauge("afgw_smsc_binds_configured", "Binds to the SMSC the gateway keeps up.", pool.peer.binds)
        yield gauge(
            "afgw_smsc_window_in_use",
            "Requests sent to the SMSC and not answered yet, over all binds.",
            pool.window_in_use,
        )
        yield gauge(
            "afgw_smsc_window_size", "Requests the binds that are up may have unanswered at once.",
            pool.bound_count * pool.peer.window,
        )  # fmt: skip
        yield gauge("afgw_smsc_queued_requests", "Requests waiting for room in an SMSC bind's window.", pool.queued)
        yield gauge(
            "afgw_smpp_concat_held_parts",
            "Parts of long messages held until their message is complete.",
            proxy.concat.held_parts,
        )

    return collect


def sip_source(proxy: SipProxy) -> Source:
    def collect() -> Iterator[Metric]:
        yield gauge("afgw_sip_registrations", "Addresses of record with a registered contact.", len(proxy.location))
        yield labelled_gauge(
            "afgw_sip_transactions",
            "SIP transactions in progress, server side and client side.",
            ("side",),
            ((("server",), float(len(proxy._server))), (("client",), float(len(proxy.forwarder)))),
        )
        yield gauge("afgw_sip_dialogs", "SIP dialogs the proxy remembers.", len(proxy.dialogs))
        stored = proxy.stored_registrations
        if stored is not None:
            yield gauge(
                "afgw_sip_registration_writes_pending",
                "Registration changes not yet written to the store.",
                stored.queued - stored.done,
            )

    return collect


def broker_source(mqtt: MqttEvents) -> Source:
    def collect() -> Iterator[Metric]:
        yield gauge(
            "afgw_broker_connected", "1 while the MQTT broker connection is up.", 1.0 if mqtt.connected else 0.0
        )
        yield gauge("afgw_broker_buffered_events", "Events waiting to be published to the broker.", len(mqtt))
        yield counter("afgw_broker_published_events_total", "Events the broker acknowledged.", mqtt.published)
        yield counter("afgw_broker_dropped_events_total", "Events dropped because the buffer was full.", mqtt.dropped)
        yield counter("afgw_broker_errors_total", "Connections to the broker that failed or broke.", mqtt.reconnects)

    return collect


class OpenCases:
    """Open dissuasion cases by tier and state, counted from the store before each scrape."""

    def __init__(self, store: StateStore, metrics: GatewayMetrics) -> None:
        self.store = store
        self.metrics = metrics
        self.counts: Tally[tuple[str, str]] = Tally()

    async def refresh(self) -> None:
        try:
            cases = await self.store.open_cases()
        except Exception:  # the store's errors differ by backend; the rest of the scrape still answers
            self.metrics.store_errors.inc(("open_cases",))
            return
        self.counts = Tally((case.tier, case.state) for case in cases)

    def collect(self) -> Iterator[Metric]:
        yield labelled_gauge(
            "afgw_dissuasion_open_cases",
            "Dissuasion cases not closed or handled, by risk tier and state.",
            ("tier", "state"),
            ((labels, float(n)) for labels, n in self.counts.items()),
        )


def store_errors(store: Any, proxy: SipProxy | None) -> list[tuple[tuple[str, ...], float]]:
    """Errors the store's background writers counted (attributes they may not have are read as 0)."""
    found: list[tuple[tuple[str, ...], float]] = [(("write",), float(getattr(store, "write_errors", 0)))]
    if proxy is not None and proxy.stored_registrations is not None:
        found.append((("registration_write",), float(proxy.stored_registrations.errors)))
    return found
