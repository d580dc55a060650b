"""What the overview shows, read from the gateway's own counts and the store at each update.

Interceptions per minute are the growth of the decision counts over the last minute (since the
console started, in its first minute): the counts themselves only ever rise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from gateway.metrics import GatewayMetrics
from gateway.store.base import ESCALATED, OPEN, TIERS, Case, tier_rank

MINUTE = 60.0
#: Decisions that stop or change what the subscriber gets; ``pass`` is not an interception.
INTERCEPTING = frozenset({"block", "warn", "tag", "label"})


def in_queue(case: Case) -> bool:
    """High-risk cases handed to people, and cases escalated once the robot ran out of attempts."""
    return case.state == ESCALATED or (case.state == OPEN and any(t.event == "high_risk" for t in case.transitions))


def response(case: Case) -> tuple[str, float] | None:
    """The person's own answer to the warnings as the timeline holds it: ``("acknowledged", at)`` for
    a flash read, else ``("answered", at)`` for a robot call picked up. On an escalated case it came
    after the escalation (before, it would have handled the case): the case stays with the people
    called in, and the officer must see that the person heard the warning after all."""
    acknowledged = [t.at for t in case.transitions if t.event == "flash_acknowledged"]
    if acknowledged:
        return "acknowledged", acknowledged[0]
    answered = [t.at for t in case.transitions if t.event == "robot_call" and _picked_up(t.detail)]
    return ("answered", answered[0]) if answered else None


def _picked_up(detail: str) -> bool:
    return detail.partition(" ")[0] in ("answered", "confirmed")


def waiting_since(case: Case) -> float:
    for t in case.transitions:
        if t.event in ("high_risk", ESCALATED):
            return t.at
    return case.opened_at


def queue_order(cases: list[Case]) -> list[Case]:
    """The queue: highest risk first, then the longest waiting."""
    return sorted((c for c in cases if in_queue(c)), key=lambda c: (-tier_rank(c.tier), waiting_since(c)))


class Overview:
    def __init__(self, metrics: GatewayMetrics | None, clock: Callable[[], float]) -> None:
        self.metrics, self.clock = metrics, clock
        self._history: deque[tuple[float, dict[str, float]]] = deque()
        self._history.append((clock(), self._decisions()))

    def _decisions(self) -> dict[str, float]:
        if self.metrics is None:
            return {}
        counts: dict[str, float] = {}
        for (_channel, action, category), value in self.metrics.decisions.collect_values():
            if action in INTERCEPTING:
                key = f"{category}|{action}"
                counts[key] = counts.get(key, 0.0) + value
        return counts

    def _gauges(self) -> dict[str, float]:
        found = {"afgw_smsc_binds": 0.0, "afgw_sip_registrations": 0.0}
        if self.metrics is None:
            return found
        for source in self.metrics.sources():
            for family in source():
                if family.name in found:
                    found[family.name] = sum(sample.value for sample in family.samples)
        return found

    def per_minute(self) -> dict[str, float]:
        now, counts = self.clock(), self._decisions()
        history = self._history
        history.append((now, counts))
        while len(history) > 1 and history[1][0] <= now - MINUTE:
            history.popleft()
        base = history[0][1]
        return {key: value - base.get(key, 0.0) for key, value in sorted(counts.items()) if value > base.get(key, 0.0)}

    async def snapshot(self, cases: list[Case]) -> dict[str, Any]:
        labels: dict[str, float] = {}
        if self.metrics is not None:
            for (result, cause), value in self.metrics.label_verifications.collect_values():
                key = "verified" if result == "verified" else f"rejected|{cause}"
                labels[key] = labels.get(key, 0.0) + value
        open_cases = [c for c in cases if c.state == OPEN]
        gauges = self._gauges()
        interceptions = self.per_minute()
        return {
            "interceptions": [
                {"category": key.split("|")[0], "action": key.split("|")[1], "count": int(value)}
                for key, value in interceptions.items()
            ],
            "interceptions_total": int(sum(interceptions.values())),
            "labels": [
                {"result": key.split("|")[0], "cause": key.partition("|")[2], "count": int(value)}
                for key, value in sorted(labels.items())
            ],
            "open_by_tier": {tier: sum(c.tier == tier for c in open_cases) for tier in TIERS},
            "queue": sum(in_queue(c) for c in cases),
            "smsc_binds": int(gauges["afgw_smsc_binds"]),
            "sip_registrations": int(gauges["afgw_sip_registrations"]),
        }
