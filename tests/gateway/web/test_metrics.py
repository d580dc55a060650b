"""What /metrics says for what a peer can choose: labels stay within closed sets, however many values come."""

from __future__ import annotations

import random

from prometheus_client import generate_latest

from gateway.metrics import GatewayMetrics
from protocols.smpp.constants import CommandId, CommandStatus
from tests.gateway.web.scrape import Scrape


def exposed(metrics: GatewayMetrics) -> Scrape:
    return Scrape(generate_latest(metrics.registry).decode())


def test_smpp_commands_and_statuses_outside_smpp_are_counted_as_other_in_few_series() -> None:
    metrics = GatewayMetrics()
    rng = random.Random(7)
    for _ in range(5000):  # a peer choosing command ids and statuses at will
        metrics.smpp_esme.pdu_received(rng.randrange(1 << 32), rng.randrange(1 << 32))
    metrics.smpp_esme.pdu_received(CommandId.SUBMIT_SM, 0)
    metrics.smpp_esme.pdu_sent(CommandId.SUBMIT_SM_RESP, CommandStatus.ESME_RTHROTTLED)
    metrics.smpp_esme.pdu_sent(CommandId.SUBMIT_SM_RESP, 0x0400)  # vendor-specific: not in SMPP 3.4
    scrape = exposed(metrics)
    pdus = "afgw_smpp_pdus_total"
    assert scrape.value(pdus, peer="esme", direction="received", command="submit_sm", status="ESME_ROK") == 1
    assert scrape.value(pdus, peer="esme", direction="received", command="other", status="other") > 4900
    assert scrape.value(pdus, peer="esme", direction="sent", command="submit_sm_resp", status="ESME_RTHROTTLED") == 1
    assert scrape.value(pdus, peer="esme", direction="sent", command="submit_sm_resp", status="other") == 1
    series = [key for key in scrape.samples if key[0] == pdus]
    assert len(series) < 60  # a handful of known names hit by chance, not thousands
    assert len(metrics.smpp_esme.received) < 60


def test_sip_methods_outside_the_known_ones_are_other_and_codes_carry_their_class() -> None:
    metrics = GatewayMetrics()
    for method in ("INVITE", "SCAN-ME", "invite", "X" * 200):
        metrics.sip.request_received(method)
    metrics.sip.response_received(180)
    metrics.sip.message_sent(b"SIP/2.0 428 Use Identity Header\r\nVia: x\r\n\r\n")
    metrics.sip.message_sent(b"BYE sip:8613800000001@127.0.0.1 SIP/2.0\r\n\r\n")
    metrics.sip.message_sent(b"FOO sip:a@b SIP/2.0\r\n\r\n")
    scrape = exposed(metrics)
    requests, responses = "afgw_sip_requests_total", "afgw_sip_responses_total"
    # Methods are case-sensitive (RFC 3261 7.1): "invite" is not INVITE.
    assert scrape.by(requests, "method") == {"INVITE": 1, "BYE": 1, "other": 4}
    assert scrape.value(requests, direction="received", method="INVITE") == 1
    assert scrape.value(requests, direction="sent", method="BYE") == 1
    assert scrape.value(responses, direction="received", code="180", **{"class": "1xx"}) == 1
    assert scrape.value(responses, direction="sent", code="428", **{"class": "4xx"}) == 1


def test_label_rejections_are_counted_by_the_reason_cause() -> None:
    metrics = GatewayMetrics()
    metrics.label_rejected('STIR;cause=438;text="Invalid Identity Header"')
    metrics.label_rejected('STIR;cause=428;text="Use Identity Header"')
    metrics.label_rejected("garbled")
    metrics.label_verified()
    scrape = exposed(metrics)
    assert scrape.by("afgw_label_verifications_total", "cause") == {"438": 1, "428": 1, "other": 1, "none": 1}


def test_case_events_count_transitions_by_tier_and_attempts_by_outcome() -> None:
    metrics = GatewayMetrics()
    tally = metrics.event_tally
    tally.emit("case.opened", case_id="1", subscriber="8613800000001", tier="high", state="open")
    tally.emit("case.attempt", case_id="1", tier="high", flash_message_id="1A", call="placed")
    tally.emit("case.attempt", case_id="1", tier="high", flash_message_id="", call="quiet_hours")
    tally.emit("case.family_warned", case_id="1", contact="8613900000002", flash_message_id="1B")
    tally.emit("case.handled", case_id="1", tier="high", how="flash_ack")
    tally.emit("case.opened", case_id="2", tier="8613800000003")  # a tier that is no tier
    scrape = exposed(metrics)
    transitions = "afgw_dissuasion_case_transitions_total"
    assert scrape.value(transitions, transition="opened", tier="high") == 1
    assert scrape.value(transitions, transition="opened", tier="other") == 1
    assert scrape.value(transitions, transition="handled", tier="high") == 1
    assert scrape.value("afgw_dissuasion_attempts_total", flash="sent", call="placed") == 1
    assert scrape.value("afgw_dissuasion_attempts_total", flash="failed", call="quiet_hours") == 1
    assert scrape.by("afgw_flash_warnings_total", "purpose") == {"dissuasion": 1, "family": 1}
    assert scrape.value("afgw_events_total", event="case.attempt") == 2
    # Numbers never become labels.
    assert "8613800000001" not in scrape.text
    assert "8613800000003" not in scrape.text


def test_a_latency_lands_in_its_bucket_and_the_buckets_are_cumulative() -> None:
    metrics = GatewayMetrics()
    for seconds in (0.0004, 0.003, 0.003, 12.0):
        metrics.smpp_latency.observe(seconds)
    scrape = exposed(metrics)
    name = "afgw_smpp_submit_seconds"
    assert scrape.value(f"{name}_bucket", le="0.0005") == 1
    assert scrape.value(f"{name}_bucket", le="0.005") == 3
    assert scrape.value(f"{name}_bucket", le="10.0") == 3
    assert scrape.value(f"{name}_bucket", le="+Inf") == 4
    assert scrape.value(f"{name}_count") == 4
    assert abs(scrape.value(f"{name}_sum") - 12.0064) < 1e-9


def test_two_gateways_own_two_registries() -> None:
    one, other = GatewayMetrics(), GatewayMetrics()
    one.decisions.inc(("sms", "block", "police_impersonation"))
    assert exposed(other).total("afgw_rule_decisions_total") == 0
    assert one.registry is not other.registry
