"""The expectations a scenario may set: a closed list, each with what its threshold means.

The scenario format (:mod:`simulator.scenarios.spec`) takes its ``expectations`` fields from here, and
the report's evaluator (:mod:`simulator.report_expectations`) measures each against a run, so that a
name cannot be accepted in a file and then ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: percent: a share of 0..100 that must be reached; count / ms / seconds: a ceiling; flag: true demands it.
Kind = Literal["percent_min", "count_max", "ms_max", "seconds_max", "flag"]


@dataclass(frozen=True, slots=True)
class Expectation:
    name: str
    kind: Kind
    description: str


EXPECTATIONS: dict[str, Expectation] = {
    e.name: e
    for e in (
        Expectation(
            "sms_fraud_caught_min_percent", "percent_min", "fraud SMS blocked, warned or tagged, in % of fraud SMS"
        ),
        Expectation(
            "call_fraud_caught_min_percent", "percent_min", "fraud calls blocked or warned, in % of fraud calls"
        ),
        Expectation("ham_sms_blocked_max", "count_max", "legitimate SMS blocked, at most"),
        Expectation("ham_calls_blocked_max", "count_max", "legitimate calls blocked, at most"),
        Expectation("sms_all_delivered", "flag", "every SMS the gateway let through reached its handset"),
        Expectation("every_spoof_rejected", "flag", "every call presenting 反诈名片 without proof was rejected"),
        Expectation(
            "verified_labels_min_percent",
            "percent_min",
            "genuine anti-fraud centre calls whose handset showed 反诈名片, in % of those calls",
        ),
        Expectation("every_case_handled_or_escalated", "flag", "no dissuasion case left open at the end"),
        Expectation(
            "dissuasion_success_min_percent", "percent_min", "dissuasion cases handled (not escalated), in % of cases"
        ),
        Expectation("median_time_to_handle_max_s", "seconds_max", "median simulated time from case to handled"),
        Expectation("smpp_p99_max_ms", "ms_max", "99th percentile submit_sm -> submit_sm_resp latency"),
        Expectation("invite_p99_max_ms", "ms_max", "99th percentile INVITE -> first answer latency"),
    )
}
