"""A scenario's expectations measured against a run's report: which held, which failed, and the exit code.

Each expectation the scenario format accepts (:data:`simulator.scenarios.expectations.EXPECTATIONS`) has
one measurement here; a test keeps the two lists equal, so that no accepted expectation goes unchecked.
A share of nothing (no fraud sent, no case opened) is not 100%: such an expectation fails, saying so,
because it proved nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from simulator.report import ExpectationResult, Report
from simulator.scenarios.expectations import EXPECTATIONS


def _share(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


#: name -> what the report shows for it: a percentage (None when nothing was measured), a count, or a flag.
MEASURES: dict[str, Callable[[Report], float | bool | None]] = {
    "sms_fraud_caught_min_percent": lambda r: _share(r.sms.fraud_caught, r.sms.fraud_total),
    "call_fraud_caught_min_percent": lambda r: _share(r.calls.fraud_caught, r.calls.fraud_total),
    "ham_sms_blocked_max": lambda r: r.sms.ham_blocked,
    "ham_calls_blocked_max": lambda r: r.calls.ham_blocked,
    "sms_all_delivered": lambda r: (
        r.sms.submitted > 0 and r.sms.delivered == r.sms.passed + r.sms.tagged + r.sms.warned
    ),
    "every_spoof_rejected": lambda r: r.calls.spoof_attempts > 0 and r.calls.spoof_rejected == r.calls.spoof_attempts,
    "verified_labels_min_percent": lambda r: _share(r.calls.verified_labels_shown, r.calls.verified_total),
    "every_case_handled_or_escalated": lambda r: r.dissuasion.cases > 0 and r.dissuasion.open == 0,
    "dissuasion_success_min_percent": lambda r: _share(r.dissuasion.handled, r.dissuasion.cases),
    "median_time_to_handle_max_s": lambda r: r.dissuasion.median_time_to_handle_s if r.dissuasion.handled else None,
    "smpp_p99_max_ms": lambda r: r.smpp_latency.percentile(0.99) if r.smpp_latency.samples_ms else None,
    "invite_p99_max_ms": lambda r: r.invite_latency.percentile(0.99) if r.invite_latency.samples_ms else None,
}

_UNITS = {"percent_min": "%", "count_max": "", "ms_max": " ms", "seconds_max": " s"}


def evaluate(expectations: Mapping[str, float | bool], report: Report) -> list[ExpectationResult]:
    """One result per expectation, in the order the scenario gave them."""
    results = []
    for name, wanted in expectations.items():
        spec = EXPECTATIONS[name]
        observed = MEASURES[name](report)
        if spec.kind == "flag":
            held = bool(observed) == bool(wanted)
            results.append(
                ExpectationResult(name, spec.description, "yes" if wanted else "no", "yes" if observed else "no", held)
            )
            continue
        unit = _UNITS[spec.kind]
        bound = "at least" if spec.kind == "percent_min" else "at most"
        if observed is None:
            results.append(
                ExpectationResult(name, spec.description, f"{bound} {wanted:g}{unit}", "nothing measured", False)
            )
            continue
        value = float(observed)
        held = value >= float(wanted) if spec.kind == "percent_min" else value <= float(wanted)
        shown = f"{value:.1f}{unit}" if spec.kind == "percent_min" else f"{value:g}{unit}"
        results.append(ExpectationResult(name, spec.description, f"{bound} {wanted:g}{unit}", shown, held))
    return results


def exit_code(results: list[ExpectationResult]) -> int:
    """0 when every expectation held, 1 otherwise."""
    return 0 if all(r.held for r in results) else 1
