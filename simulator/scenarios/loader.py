"""Strict loading of scenario files: every problem reported at once, each as ``file:line:col: message``.

Two stages, as for the rules: the structure is checked against :data:`spec.SCENARIO` by the rules'
validator (unknown fields with a "did you mean", types, ranges), then the checks that need several values
at once: profile and risk shares add up to 1, windows lie inside the run, number plans hold the town,
names are unique, fraud SMS categories are ones the shipped rule packs have SMS rules for, and an
expectation is only set when the scenario sends the traffic it is about (one that could not fail would
only look reassuring).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from rules.validate import Validator
from rules.yaml_source import LocatedDict, LocatedList, Location, SourceError, SourceErrors, load_text
from simulator.scenarios import model, spec

__all__ = ["SHIPPED_DIR", "load", "loads", "parse_duration", "shipped"]

SHIPPED_DIR = Path(__file__).parent
#: A scenario file larger than this is refused before parsing.
MAX_FILE_BYTES = 1_000_000
_SHARE_TOLERANCE = 1e-6
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DEFAULT_DELAY = {"calls": model.Delay(5.0, 5.0), "flash": model.Delay(30.0, 30.0)}
#: Expectations and the traffic without which they could not fail.
_NEEDS: dict[str, tuple[str, str]] = {
    "sms_fraud_caught_min_percent": ("fraud_sms", "fraud SMS (traffic.sms.fraud)"),
    "call_fraud_caught_min_percent": ("fraud_calls", "fraud calls (traffic.calls.fraud)"),
    "ham_sms_blocked_max": ("legitimate_sms", "legitimate SMS (traffic.sms.legitimate)"),
    "ham_calls_blocked_max": ("legitimate_calls", "legitimate calls (traffic.calls.legitimate)"),
    "sms_all_delivered": ("sms", "SMS"),
    "every_spoof_rejected": ("spoofed_labels", "spoofed label calls (traffic.calls.spoofed_labels)"),
    "verified_labels_min_percent": ("verified_calls", "verified calls (traffic.calls.verified)"),
    "every_case_handled_or_escalated": ("instructions", "instructions (traffic.instructions)"),
    "dissuasion_success_min_percent": ("instructions", "instructions (traffic.instructions)"),
    "median_time_to_handle_max_s": ("instructions", "instructions (traffic.instructions)"),
    "smpp_p99_max_ms": ("sms", "SMS"),
    "invite_p99_max_ms": ("calls", "calls"),
}


def parse_duration(value: float | int | str) -> float:
    """Seconds from ``90``, ``"30s"``, ``"15m"``, ``"24h"``, ``"1h30m"`` or ``"250ms"``."""
    if isinstance(value, int | float):
        return float(value)
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(value))


def load(path: str | Path) -> model.Scenario:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise _fail(Location(str(p), 1, 1), f"larger than {MAX_FILE_BYTES} bytes; a scenario is a short file")
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(Location(str(p), 1, 1), f"cannot read: {exc}") from None
    return loads(text, str(p))


def loads(text: str, path: str = "<string>") -> model.Scenario:
    """Parse and check one scenario; raises SourceErrors listing every problem, sorted by position."""
    errors: list[SourceError] = []
    doc = load_text(text, path, collect=errors)
    if not isinstance(doc, LocatedDict):
        errors.append(SourceError(Location(path, 1, 1), "a scenario is a mapping (scenario, population, traffic ...)"))
        raise SourceErrors(errors)
    validator = Validator()
    validator.check(spec.SCENARIO, doc, doc.location, "")
    errors.extend(validator.errors)
    if errors:
        raise SourceErrors(_sorted(errors))
    _drop_empty(doc)
    builder = _Builder(path)
    scenario = builder.scenario(doc)
    if builder.errors:
        raise SourceErrors(_sorted(builder.errors))
    return scenario


def shipped() -> dict[str, Path]:
    """The scenarios shipped with the simulator, by name (the file's stem)."""
    return {p.stem: p for p in sorted(SHIPPED_DIR.glob("*.yaml"))}


@cache
def sms_categories_in_packs() -> frozenset[str]:
    """Categories the shipped rule packs have at least one SMS rule for."""
    import rules

    collection = rules.load([rules.DEFAULT_PACKS])
    return frozenset(r.category for r in collection.rules if r.channel in ("sms", "both"))


def _drop_empty(tree: Any) -> None:
    """Forget optional fields written with no value (``end:``), so that their defaults apply.

    The validator has reported every required field left empty, so what remains is optional."""
    if isinstance(tree, LocatedDict):
        for key in [k for k, v in tree.items() if v is None]:
            del tree[key]
        for value in tree.values():
            _drop_empty(value)
    elif isinstance(tree, LocatedList):
        for item in tree:
            _drop_empty(item)


def _fail(where: Location, message: str) -> SourceErrors:
    return SourceErrors([SourceError(where, message)])


def _sorted(errors: Iterable[SourceError]) -> list[SourceError]:
    return sorted(errors, key=lambda e: (e.location.line, e.location.column))


class _Builder:
    """Builds the model from a structurally valid tree, collecting the cross-field problems."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[SourceError] = []
        self.duration = 0.0

    def error(self, where: Location, message: str) -> None:
        self.errors.append(SourceError(where, message))

    def scenario(self, doc: LocatedDict) -> model.Scenario:
        self.duration = parse_duration(doc["duration"])
        if self.duration <= 0:
            self.error(doc.where("duration"), "duration: a run must last longer than 0 seconds")
        population = self.population(doc["population"])
        traffic = self.traffic(doc["traffic"])
        expectations = dict(doc.get("expectations") or {})
        self.check_expectations(doc.get("expectations"), traffic)
        sample = int(doc.get("sample_handsets", 4))
        if sample > population.count:
            self.error(doc.where("sample_handsets"), f"sample_handsets: the town has only {population.count}")
        return model.Scenario(
            name=doc["scenario"],
            description=doc["description"],
            seed=doc["seed"],
            duration=self.duration,
            time_speed=float(doc["time_speed"]),
            population=population,
            traffic=traffic,
            expectations=expectations,
            sample_handsets=sample,
            source=self.path,
        )

    # --- population ---------------------------------------------------------------------------------

    def population(self, raw: LocatedDict) -> model.Population:
        plan_raw = raw["numbers"]
        plan = model.NumberPlan(plan_raw["prefix"], plan_raw["length"], plan_raw.get("first", 0))
        if len(plan.prefix) >= plan.length:
            self.error(
                plan_raw.where("prefix"), f"population.numbers.prefix: leaves no digits for {plan.length}-digit numbers"
            )
        elif plan.capacity < raw["count"]:
            self.error(
                raw.where("count"),
                f"population.count: {raw['count']} subscribers do not fit the number plan "
                f"({plan.capacity} numbers after first)",
            )
        profiles_raw: LocatedList = raw["profiles"]
        profiles = tuple(self.profile(p, f"population.profiles[{i}]") for i, p in enumerate(profiles_raw))
        self.unique((p.name for p in profiles), profiles_raw, "population.profiles", "profile")
        total = sum(p.share for p in profiles)
        if abs(total - 1.0) > _SHARE_TOLERANCE:
            self.error(raw.where("profiles"), f"population.profiles: the shares add up to {total:g}, not 1")
        return model.Population(
            count=raw["count"],
            numbers=plan,
            family_contacts=float(raw.get("family_contacts", 0.0)),
            profiles=profiles,
        )

    def profile(self, raw: LocatedDict, path: str) -> model.Profile:
        calls, flash, script = raw["calls"], raw["flash"], raw["script"]
        return model.Profile(
            name=raw["name"],
            share=float(raw["share"]),
            calls=model.CallHabits(
                answer=float(calls["answer"]),
                answer_verified=float(calls.get("answer_verified", calls["answer"])),
                ignores_unknown=bool(calls.get("ignores_unknown", False)),
                delay=self.delay(calls, "calls", f"{path}.calls"),
            ),
            flash=model.FlashHabits(
                acknowledge=float(flash["acknowledge"]), delay=self.delay(flash, "flash", f"{path}.flash")
            ),
            script=model.ScriptHabits(
                falls_for=float(script["falls_for"]), falls_for_warned=float(script.get("falls_for_warned", 0.0))
            ),
        )

    def delay(self, raw: LocatedDict, section: str, path: str) -> model.Delay:
        value = raw.get("delay")
        if value is None:
            return _DEFAULT_DELAY[section]
        if isinstance(value, LocatedList):
            low, high = parse_duration(value[0]), parse_duration(value[1])
            if low > high:
                self.error(raw.where("delay"), f"{path}.delay: [{value[0]}, {value[1]}] is longest first")
            return model.Delay(low, high)
        seconds = parse_duration(value)
        return model.Delay(seconds, seconds)

    def unique(self, names: Iterable[str], items: LocatedList, path: str, what: str) -> None:
        seen: set[str] = set()
        for i, name in enumerate(names):
            if name in seen:
                self.error(items.where(i), f"{path}[{i}]: the {what} name {name!r} is given twice")
            seen.add(name)

    # --- traffic ------------------------------------------------------------------------------------

    def window(self, raw: LocatedDict, path: str) -> model.Window:
        start = parse_duration(raw.get("start", 0))
        end = parse_duration(raw["end"]) if "end" in raw else self.duration
        if start >= end:
            self.error(
                raw.where("start"), f"{path}.start: the stream starts ({start:g} s) at or after it ends ({end:g} s)"
            )
        if end > self.duration:
            self.error(raw.where("end"), f"{path}.end: {end:g} s is after the run ends ({self.duration:g} s)")
        return model.Window(start, end, raw.get("pattern", "even"))

    def traffic(self, raw: LocatedDict) -> model.Traffic:
        sms: Any = raw.get("sms") or LocatedDict()
        calls: Any = raw.get("calls") or LocatedDict()
        legitimate_sms = tuple(
            model.LegitimateSms(s["kind"], s["count"], self.window(s, f"traffic.sms.legitimate[{i}]"))
            for i, s in enumerate(sms.get("legitimate") or ())
        )
        fraud_sms = tuple(self.fraud_sms(c, f"traffic.sms.fraud[{i}]") for i, c in enumerate(sms.get("fraud") or ()))
        if sms.get("fraud"):
            self.unique((c.name for c in fraud_sms), sms["fraud"], "traffic.sms.fraud", "campaign")
        fraud_calls = tuple(
            model.FraudCallCampaign(
                name=c["campaign"],
                category=c["category"],
                count=c["count"],
                window=self.window(c, f"traffic.calls.fraud[{i}]"),
                origin=c.get("origin", "domestic"),
                caller_id=c.get("caller_id", "none"),
            )
            for i, c in enumerate(calls.get("fraud") or ())
        )
        if calls.get("fraud"):
            self.unique((c.name for c in fraud_calls), calls["fraud"], "traffic.calls.fraud", "campaign")
        legit_calls_raw = calls.get("legitimate")
        legitimate_calls = (
            model.LegitimateCalls(
                count=legit_calls_raw["count"],
                window=self.window(legit_calls_raw, "traffic.calls.legitimate"),
                international_share=float(legit_calls_raw.get("international_share", 0.0)),
            )
            if legit_calls_raw
            else None
        )
        spoof_raw = calls.get("spoofed_labels")
        spoofed = None
        if spoof_raw:
            kinds = spoof_raw["kinds"]
            spoofed = model.SpoofAttack(
                kinds=model.SPOOF_KINDS if kinds == "all" else tuple(dict.fromkeys(kinds)),
                per_kind=spoof_raw["per_kind"],
                window=self.window(spoof_raw, "traffic.calls.spoofed_labels"),
            )
        verified_raw = calls.get("verified")
        verified = (
            model.VerifiedCalls(
                verified_raw["count"],
                self.window(verified_raw, "traffic.calls.verified"),
                verified_raw.get("number", "96110"),
            )
            if verified_raw
            else None
        )
        instructions = self.instructions(raw["instructions"]) if raw.get("instructions") else None
        return model.Traffic(
            legitimate_sms=legitimate_sms,
            fraud_sms=fraud_sms,
            legitimate_calls=legitimate_calls,
            fraud_calls=fraud_calls,
            spoofed_labels=spoofed,
            verified_calls=verified,
            instructions=instructions,
        )

    def fraud_sms(self, raw: LocatedDict, path: str) -> model.FraudSmsCampaign:
        evasions = tuple(raw.get("evasions") or ())
        if "evasion_share" in raw and not evasions:
            self.error(raw.where_key("evasion_share"), f"{path}.evasion_share: no evasions are listed to use")
        if raw["category"] not in sms_categories_in_packs():
            self.error(
                raw.where("category"),
                f"{path}.category: the shipped rule packs have no SMS rule for {raw['category']!r}; "
                "nothing could catch this campaign",
            )
        return model.FraudSmsCampaign(
            name=raw["campaign"],
            category=raw["category"],
            count=raw["count"],
            window=self.window(raw, path),
            sender=raw.get("sender", "mobile"),
            evasion_share=float(raw.get("evasion_share", 1.0 if evasions else 0.0)),
            evasions=evasions,
        )

    def instructions(self, raw: LocatedDict) -> model.Instructions:
        risk: LocatedDict = raw["risk"]
        total = sum(float(v) for v in risk.values())
        if abs(total - 1.0) > _SHARE_TOLERANCE:
            self.error(raw.where("risk"), f"traffic.instructions.risk: the shares add up to {total:g}, not 1")
        return model.Instructions(
            count=raw["count"],
            window=self.window(raw, "traffic.instructions"),
            risk=tuple((name, float(share)) for name, share in risk.items()),
            categories=tuple(dict.fromkeys(raw["categories"])),
        )

    # --- expectations -------------------------------------------------------------------------------

    def check_expectations(self, raw: LocatedDict | None, traffic: model.Traffic) -> None:
        if not raw:
            return
        present = {
            "fraud_sms": sum(c.count for c in traffic.fraud_sms) > 0,
            "legitimate_sms": sum(s.count for s in traffic.legitimate_sms) > 0,
            "sms": traffic.sms_count > 0,
            "fraud_calls": sum(c.count for c in traffic.fraud_calls) > 0,
            "legitimate_calls": bool(traffic.legitimate_calls and traffic.legitimate_calls.count),
            "spoofed_labels": traffic.spoofed_labels is not None,
            "verified_calls": bool(traffic.verified_calls and traffic.verified_calls.count),
            "instructions": traffic.instruction_count > 0,
            "calls": traffic.call_count > 0,
        }
        for name, value in raw.items():
            needed, what = _NEEDS[name]
            path = f"expectations.{name}"
            if value is False:
                self.error(raw.where(name), f"{path}: false asks for nothing; leave the expectation out")
            elif not present[needed]:
                self.error(raw.where_key(name), f"{path}: the scenario sends no {what}, so this could not fail")
