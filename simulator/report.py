"""The demo and simulation report: every figure counted from what crossed the sockets, in one model.

The runner fills a :class:`Report`; :mod:`simulator.report_text` prints it for a carrier engineer,
:meth:`Report.to_dict` gives the JSON that DESIGN.md's "Demo report JSON keys" promise (``sms.*``,
``calls.*``, ``dissuasion.*``, ``latency_ms.*``; more keys are added beside them, none removed), and
:mod:`simulator.report_html` draws the self-contained page.

The figures hold together, and :func:`inconsistencies` says where they do not: every SMS gets exactly
one outcome (passed, tagged, warned or blocked), and so does every call (passed, labelled, warned or
blocked); the rows of each by-category table add up to the channel's totals; fraud plus legitimate is
everything; the spoof table adds up to the spoof figures; the interceptions over time add up to what was
tagged, warned or blocked; the dissuasion funnel never widens.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

#: What a handset timeline entry records (see :class:`TimelineEntry`).
EntryKind = Literal[
    "call_ringing",  # a call rang: label (display name) and whether the verified mark showed
    "call_answered",
    "call_missed",  # rang out, refused or hung up before answering
    "flash",  # a class-0 warning popped up; text holds what it said
    "flash_acknowledged",
    "sms",  # an SMS arrived as sent
    "sms_tagged",  # an SMS arrived with the gateway's warning prefix
    "sms_blocked",  # an SMS for this handset the gateway blocked: it never arrived
    "family_warning",  # the person's family contact (detail: their number) was warned
]
ENTRY_KINDS: tuple[str, ...] = get_args(EntryKind)
SmsOutcome = Literal["passed", "tagged", "warned", "blocked"]
CallOutcome = Literal["passed", "labelled", "warned", "blocked"]


@dataclass(slots=True)
class OutcomeRow:
    """How the gateway decided about one category's messages or calls (legitimate kinds are rows too)."""

    name: str
    fraud: bool
    passed: int = 0
    tagged: int = 0  # SMS only
    labelled: int = 0  # calls only: an informational label such as 境外来电, nothing else
    warned: int = 0
    blocked: int = 0

    @property
    def total(self) -> int:
        return self.passed + self.tagged + self.labelled + self.warned + self.blocked

    @property
    def caught(self) -> int:
        """Blocked, warned or tagged: what DESIGN.md counts as caught."""
        return self.tagged + self.warned + self.blocked


@dataclass(slots=True)
class SmsFigures:
    submitted: int = 0
    delivered: int = 0
    passed: int = 0
    tagged: int = 0
    warned: int = 0
    blocked: int = 0
    fraud_total: int = 0
    fraud_caught: int = 0
    ham_total: int = 0
    ham_blocked: int = 0
    flash_warnings: int = 0


@dataclass(slots=True)
class CallFigures:
    total: int = 0
    passed: int = 0
    labelled: int = 0
    warned: int = 0
    blocked: int = 0
    fraud_total: int = 0
    fraud_caught: int = 0
    ham_total: int = 0
    ham_blocked: int = 0
    #: Genuine anti-fraud centre calls placed, and those whose handset showed 反诈名片.
    verified_total: int = 0
    verified_labels_shown: int = 0
    spoof_attempts: int = 0
    spoof_rejected: int = 0


@dataclass(slots=True)
class SpoofRow:
    """One way of faking the label, and every answer the gateway gave to it (``"438 Invalid Identity"``)."""

    kind: str
    answers: dict[str, int] = field(default_factory=dict)
    #: Attempts whose handset rang with the verified mark (a failure of the gateway).
    label_shown: int = 0

    @property
    def attempts(self) -> int:
        return sum(self.answers.values())

    @property
    def rejected(self) -> int:
        return sum(n for answer, n in self.answers.items() if not answer.startswith(("1", "2")))


@dataclass(slots=True)
class DissuasionFigures:
    cases: int = 0
    handled: int = 0
    escalated: int = 0
    flash_sent: int = 0
    calls_placed: int = 0
    family_notified: int = 0
    #: Cases handled on the 1st, 2nd ... attempt: {attempt: cases}.
    handled_on_attempt: dict[int, int] = field(default_factory=dict)
    #: Simulated seconds from the case to its handling, one per handled case.
    times_to_handle_s: list[float] = field(default_factory=list)
    #: The funnel, widest first: (stage, cases), e.g. opened, reached, acknowledged, handled.
    funnel: list[tuple[str, int]] = field(default_factory=list)

    @property
    def open(self) -> int:
        return self.cases - self.handled - self.escalated

    @property
    def success_rate(self) -> float:
        return round(self.handled / self.cases, 4) if self.cases else 0.0

    @property
    def median_attempts(self) -> float:
        attempts = [a for a, n in self.handled_on_attempt.items() for _ in range(n)]
        return float(statistics.median(attempts)) if attempts else 0.0

    @property
    def median_time_to_handle_s(self) -> float:
        return round(statistics.median(self.times_to_handle_s), 1) if self.times_to_handle_s else 0.0


@dataclass(slots=True)
class LatencySeries:
    """Latencies measured by the peer that sent the request, in milliseconds."""

    samples_ms: list[float] = field(default_factory=list)

    def percentile(self, q: float) -> float:
        if not self.samples_ms:
            return 0.0
        ordered = sorted(self.samples_ms)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    def histogram(self, buckets: int = 20) -> list[tuple[float, int]]:
        """(upper bound in ms, count) over logarithmic buckets from the fastest to the slowest sample."""
        if not self.samples_ms:
            return []
        low, high = max(min(self.samples_ms), 0.001), max(self.samples_ms)
        if high <= low:
            return [(round(high, 3), len(self.samples_ms))]
        ratio = (high / low) ** (1 / buckets)
        bounds = [low * ratio ** (i + 1) for i in range(buckets)]
        bounds[-1] = high
        counts = [0] * buckets
        for sample in self.samples_ms:
            counts[next(i for i, bound in enumerate(bounds) if sample <= bound)] += 1
        return [(round(b, 3), n) for b, n in zip(bounds, counts, strict=True)]


@dataclass(slots=True)
class Interceptions:
    """Messages and calls blocked, warned or tagged, by category, per bucket of simulated time."""

    bucket_s: float = 3600.0
    by_category: dict[str, list[int]] = field(default_factory=dict)

    def add(self, category: str, at_s: float, buckets: int) -> None:
        series = self.by_category.setdefault(category, [0] * buckets)
        series[min(buckets - 1, int(at_s // self.bucket_s))] += 1

    @property
    def total(self) -> int:
        return sum(sum(series) for series in self.by_category.values())


@dataclass(slots=True)
class TimelineEntry:
    at_s: float  # simulated seconds from the start of the run
    kind: EntryKind
    text: str = ""  # the SMS or flash text, as the handset showed it
    caller: str = ""  # the number shown, for calls and SMS
    label: str = ""  # the display name a call rang with (e.g. 公安反诈专号)
    verified: bool = False  # the verified mark showed with the label
    detail: str = ""  # e.g. the rule that blocked an SMS, the family contact's number


@dataclass(slots=True)
class HandsetTimeline:
    subscriber: str
    profile: str
    entries: list[TimelineEntry] = field(default_factory=list)


@dataclass(slots=True)
class ExpectationResult:
    name: str
    description: str
    wanted: str  # "at least 90%", "at most 0", "yes"
    observed: str
    held: bool


@dataclass(slots=True)
class Report:
    scenario: str
    seed: int
    duration_s: float
    subscribers: int
    sms: SmsFigures = field(default_factory=SmsFigures)
    calls: CallFigures = field(default_factory=CallFigures)
    dissuasion: DissuasionFigures = field(default_factory=DissuasionFigures)
    smpp_latency: LatencySeries = field(default_factory=LatencySeries)
    invite_latency: LatencySeries = field(default_factory=LatencySeries)
    sms_by_category: list[OutcomeRow] = field(default_factory=list)
    calls_by_category: list[OutcomeRow] = field(default_factory=list)
    spoofs: list[SpoofRow] = field(default_factory=list)
    interceptions: Interceptions = field(default_factory=Interceptions)
    timelines: list[HandsetTimeline] = field(default_factory=list)
    expectations: list[ExpectationResult] = field(default_factory=list)
    #: How the run reached the gateway (in-process or separate, broker or not): said with the figures.
    notes: list[str] = field(default_factory=list)

    # --- counting: each call adds one message or call to every figure it belongs to, so they add up ---

    def count_sms(
        self, category: str, *, fraud: bool, outcome: SmsOutcome, at_s: float, delivered: bool = False
    ) -> None:
        """One SMS the gateway decided about; ``delivered``: its handset received it."""
        sms = self.sms
        sms.submitted += 1
        setattr(sms, outcome, getattr(sms, outcome) + 1)
        sms.delivered += delivered
        _bump(self.sms_by_category, category, fraud, outcome)
        if fraud:
            sms.fraud_total += 1
            sms.fraud_caught += outcome != "passed"
        else:
            sms.ham_total += 1
            sms.ham_blocked += outcome == "blocked"
        if outcome != "passed":
            self.interceptions.add(category, at_s, self.buckets)

    def count_call(self, category: str, *, fraud: bool, outcome: CallOutcome, at_s: float) -> None:
        calls = self.calls
        calls.total += 1
        setattr(calls, outcome, getattr(calls, outcome) + 1)
        _bump(self.calls_by_category, category, fraud, outcome)
        if fraud:
            calls.fraud_total += 1
            calls.fraud_caught += outcome in ("warned", "blocked")
        else:
            calls.ham_total += 1
            calls.ham_blocked += outcome == "blocked"
        if outcome in ("warned", "blocked"):
            self.interceptions.add(category, at_s, self.buckets)

    def count_verified_call(self, *, label_shown: bool, at_s: float, category: str = "anti-fraud centre") -> None:
        """A genuine, signed call from the anti-fraud centre; ``label_shown``: the handset showed 反诈名片."""
        self.calls.verified_total += 1
        self.calls.verified_labels_shown += label_shown
        self.count_call(category, fraud=False, outcome="passed", at_s=at_s)

    def count_spoof(self, kind: str, answer: str, *, at_s: float, label_shown: bool = False) -> None:
        """One attempt to fake the label and the gateway's answer to it (``"438 Invalid Identity Header"``)."""
        row = next((r for r in self.spoofs if r.kind == kind), None)
        if row is None:
            row = SpoofRow(kind)
            self.spoofs.append(row)
        row.answers[answer] = row.answers.get(answer, 0) + 1
        row.label_shown += label_shown
        rejected = not answer.startswith(("1", "2"))
        self.calls.spoof_attempts += 1
        self.calls.spoof_rejected += rejected
        self.count_call("spoofed label", fraud=True, outcome="blocked" if rejected else "passed", at_s=at_s)

    @property
    def buckets(self) -> int:
        return max(1, math.ceil(self.duration_s / self.interceptions.bucket_s))

    @property
    def passed_expectations(self) -> bool:
        return all(e.held for e in self.expectations)

    def latency_ms(self) -> dict[str, float]:
        return {
            "smpp_p50": self.smpp_latency.percentile(0.5),
            "smpp_p99": self.smpp_latency.percentile(0.99),
            "invite_p50": self.invite_latency.percentile(0.5),
            "invite_p99": self.invite_latency.percentile(0.99),
        }

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: DESIGN.md's keys first, then the tables, charts' data and timelines."""
        d = self.dissuasion
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "subscribers": self.subscribers,
            "sms": asdict(self.sms),
            "calls": asdict(self.calls),
            "dissuasion": {
                "cases": d.cases,
                "handled": d.handled,
                "escalated": d.escalated,
                "open": d.open,
                "success_rate": d.success_rate,
                "flash_sent": d.flash_sent,
                "calls_placed": d.calls_placed,
                "family_notified": d.family_notified,
                "median_attempts": d.median_attempts,
                "median_time_to_handle_s": d.median_time_to_handle_s,
                "handled_on_attempt": {str(k): v for k, v in sorted(d.handled_on_attempt.items())},
                "funnel": [{"stage": stage, "cases": n} for stage, n in d.funnel],
            },
            "latency_ms": {
                **self.latency_ms(),
                "smpp_samples": len(self.smpp_latency.samples_ms),
                "invite_samples": len(self.invite_latency.samples_ms),
            },
            "sms_by_category": [_row_dict(r, sms=True) for r in self.sms_by_category],
            "calls_by_category": [_row_dict(r, sms=False) for r in self.calls_by_category],
            "spoofs": [
                {"kind": s.kind, "attempts": s.attempts, "rejected": s.rejected, "answers": dict(s.answers)}
                for s in self.spoofs
            ],
            "interceptions": {"bucket_s": self.interceptions.bucket_s, "by_category": self.interceptions.by_category},
            "timelines": [
                {"subscriber": t.subscriber, "profile": t.profile, "entries": [asdict(e) for e in t.entries]}
                for t in self.timelines
            ],
            "expectations": [asdict(e) for e in self.expectations],
            "notes": list(self.notes),
        }


def _bump(rows: list[OutcomeRow], category: str, fraud: bool, outcome: str) -> None:
    row = next((r for r in rows if r.name == category and r.fraud == fraud), None)
    if row is None:
        row = OutcomeRow(category, fraud)
        rows.append(row)
    setattr(row, outcome, getattr(row, outcome) + 1)


def _row_dict(row: OutcomeRow, *, sms: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"category": row.name, "fraud": row.fraud, "total": row.total, "passed": row.passed}
    out.update({"tagged": row.tagged} if sms else {"labelled": row.labelled})
    out.update({"warned": row.warned, "blocked": row.blocked})
    return out


def totals(rows: Iterable[OutcomeRow], name: str = "total") -> OutcomeRow:
    """One row holding the sums of ``rows`` (the totals line of a table)."""
    total = OutcomeRow(name, fraud=False)
    for row in rows:
        for f in ("passed", "tagged", "labelled", "warned", "blocked"):
            setattr(total, f, getattr(total, f) + getattr(row, f))
    return total


def inconsistencies(report: Report) -> list[str]:
    """Every place where the report's figures do not add up (empty: they all do)."""
    found: list[str] = []

    def same(what: str, left: int, right: int) -> None:
        if left != right:
            found.append(f"{what}: {left} != {right}")

    sms, calls = report.sms, report.calls
    same(
        "sms passed+tagged+warned+blocked vs submitted",
        sms.passed + sms.tagged + sms.warned + sms.blocked,
        sms.submitted,
    )
    same("sms fraud_total+ham_total vs submitted", sms.fraud_total + sms.ham_total, sms.submitted)
    _rows_match(found, "sms_by_category", report.sms_by_category, sms, ("passed", "tagged", "warned", "blocked"))
    sms_fraud = [r for r in report.sms_by_category if r.fraud]
    same("sms_by_category fraud rows vs fraud_total", totals(sms_fraud).total, sms.fraud_total)
    same("sms_by_category fraud caught vs fraud_caught", totals(sms_fraud).caught, sms.fraud_caught)
    same(
        "sms ham blocked by category vs ham_blocked",
        totals(r for r in report.sms_by_category if not r.fraud).blocked,
        sms.ham_blocked,
    )
    if sms.delivered > sms.passed + sms.tagged + sms.warned:
        found.append(f"sms delivered {sms.delivered} exceeds what was let through")

    same(
        "calls passed+labelled+warned+blocked vs total",
        calls.passed + calls.labelled + calls.warned + calls.blocked,
        calls.total,
    )
    _rows_match(
        found, "calls_by_category", report.calls_by_category, calls, ("passed", "labelled", "warned", "blocked")
    )
    call_fraud = [r for r in report.calls_by_category if r.fraud]
    same("calls_by_category fraud rows vs fraud_total", totals(call_fraud).total, calls.fraud_total)
    same("calls_by_category fraud caught vs fraud_caught", totals(call_fraud).caught, calls.fraud_caught)
    same("spoof table attempts vs spoof_attempts", sum(s.attempts for s in report.spoofs), calls.spoof_attempts)
    same("spoof table rejected vs spoof_rejected", sum(s.rejected for s in report.spoofs), calls.spoof_rejected)
    if calls.verified_labels_shown > calls.verified_total:
        found.append("more verified labels shown than genuine centre calls placed")

    caught = sms.tagged + sms.warned + sms.blocked + calls.warned + calls.blocked
    same("interceptions over time vs tagged+warned+blocked", report.interceptions.total, caught)

    d = report.dissuasion
    if d.open < 0:
        found.append(f"dissuasion handled+escalated {d.handled + d.escalated} exceeds cases {d.cases}")
    same("dissuasion handled_on_attempt vs handled", sum(d.handled_on_attempt.values()), d.handled)
    same("dissuasion times_to_handle vs handled", len(d.times_to_handle_s), d.handled)
    widths = [n for _, n in d.funnel]
    if any(later > earlier for earlier, later in itertools.pairwise(widths)):
        found.append(f"dissuasion funnel widens: {d.funnel}")
    return found


def _rows_match(found: list[str], name: str, rows: list[OutcomeRow], figures: object, columns: tuple[str, ...]) -> None:
    total = totals(rows)
    for column in columns:
        mine, theirs = getattr(total, column), getattr(figures, column)
        if mine != theirs:
            found.append(f"{name} {column} column adds up to {mine}, not {theirs}")


#: The top-level keys of :meth:`Report.to_dict` that the scenario and its seed decide: the same seed
#: gives the same values. Latencies, and the dissuasion figures and timelines (a robot call races the
#: person's pick-up in real time), depend on the machine as well.
DETERMINISTIC_KEYS = (
    "scenario",
    "seed",
    "subscribers",
    "sms",
    "calls",
    "sms_by_category",
    "calls_by_category",
    "spoofs",
)


def design_keys() -> Mapping[str, tuple[str, ...]]:
    """DESIGN.md's report keys, section by section: the JSON contract."""
    return {
        "sms": (
            "submitted",
            "delivered",
            "passed",
            "tagged",
            "warned",
            "blocked",
            "fraud_total",
            "fraud_caught",
            "ham_total",
            "ham_blocked",
        ),
        "calls": (
            "total",
            "passed",
            "labelled",
            "warned",
            "blocked",
            "fraud_total",
            "fraud_caught",
            "verified_labels_shown",
            "spoof_attempts",
            "spoof_rejected",
        ),
        "dissuasion": (
            "cases",
            "handled",
            "escalated",
            "success_rate",
            "flash_sent",
            "calls_placed",
            "family_notified",
            "median_attempts",
            "median_time_to_handle_s",
        ),
        "latency_ms": ("smpp_p50", "smpp_p99", "invite_p50", "invite_p99"),
    }


__all__ = [
    "DETERMINISTIC_KEYS",
    "ENTRY_KINDS",
    "CallFigures",
    "DissuasionFigures",
    "ExpectationResult",
    "HandsetTimeline",
    "Interceptions",
    "LatencySeries",
    "OutcomeRow",
    "Report",
    "SmsFigures",
    "SpoofRow",
    "TimelineEntry",
    "design_keys",
    "inconsistencies",
    "totals",
]
