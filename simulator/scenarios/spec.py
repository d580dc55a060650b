"""One declarative description of the scenario format, in the rules' spec nodes.

The loader checks a scenario's structure by walking these nodes with the rules' validator (every
problem, each at ``file:line:col``), and :func:`json_schema` turns the same nodes into the JSON Schema
committed as ``simulator/scenarios/scenario.schema.json`` for editors; a test keeps the two equal.
Checks that need several values at once (shares adding up to 1, a window inside the run, categories the
rule packs know) are the loader's.
"""

from __future__ import annotations

import json
from typing import Any

from rules import spec as rules_spec
from rules.spec import Bool, Enum, Field, Int, ListOf, Node, Number, Object, OneOf, Str
from simulator.scenarios import model
from simulator.scenarios.expectations import EXPECTATIONS

NAME = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
#: ``90``, ``"30s"``, ``"15m"``, ``"24h"``, ``"1h30m"``, ``"250ms"``.
DURATION_PATTERN = r"^(?:[0-9]+(?:\.[0-9]+)?(?:h|m|s|ms))+$"
DIGITS = r"^\+?[0-9]{1,15}$"
#: The largest town a scenario may describe, and the most items one stream may hold: a bound on memory.
MAX_SUBSCRIBERS = 10_000_000
MAX_ITEMS = 1_000_000
#: Simulated time is bounded to a week so that a typo (24000h) cannot make a run that never ends.
MAX_DURATION_S = 7 * 86400

#: Fraud categories a scenario can attribute traffic to: every one the rule format knows except the
#: allow-list category (official) and the catch-all (other).
FRAUD_CATEGORIES = tuple(c for c in rules_spec.CATEGORIES if c not in ("official", "other"))

_DURATION_OPTIONS: tuple[Node, ...] = (
    Number(minimum=0, maximum=MAX_DURATION_S, description="seconds"),
    Str(pattern=DURATION_PATTERN, what="a duration such as 30s, 15m, 24h or 1h30m"),
)


def _duration(description: str) -> OneOf:
    return OneOf(options=_DURATION_OPTIONS, description=description)


def _delay(description: str) -> OneOf:
    """A fixed delay, or [shortest, longest] drawn uniformly."""
    span = ListOf(item=_duration("a duration"), min_items=2, max_items=2, description="[shortest, longest]")
    return OneOf(options=(*_DURATION_OPTIONS, span), description=description)


def _probability(description: str) -> Number:
    return Number(minimum=0, maximum=1, description=description)


def _count(description: str) -> Int:
    return Int(minimum=0, maximum=MAX_ITEMS, description=description)


WINDOW_FIELDS = (
    Field("start", _duration("when the stream starts (default 0)")),
    Field("end", _duration("when it ends (default: the run's end)")),
    Field(
        "pattern",
        Enum(
            values=model.PATTERNS,
            description="even: spread evenly; day: more by day than at night; burst: most around the middle",
        ),
    ),
)

PROFILE = Object(
    fields=(
        Field("name", Str(pattern=NAME, what="a profile name (lower case, digits, . _ -)"), True),
        Field("share", _probability("share of the population with this profile; shares add up to 1"), True),
        Field(
            "calls",
            Object(
                fields=(
                    Field("answer", _probability("probability of answering an ordinary call"), True),
                    Field(
                        "answer_verified",
                        _probability("probability of answering when the handset shows 反诈名片 (default: answer)"),
                    ),
                    Field("ignores_unknown", Bool(description="calls from numbers not in the contacts ring out")),
                    Field("delay", _delay("ringing before answering")),
                ),
                description="how the person treats a ringing phone",
            ),
            True,
        ),
        Field(
            "flash",
            Object(
                fields=(
                    Field("acknowledge", _probability("probability of reading and acknowledging a flash"), True),
                    Field("delay", _delay("before acknowledging")),
                ),
                description="how the person treats a flash warning (闪信)",
            ),
            True,
        ),
        Field(
            "script",
            Object(
                fields=(
                    Field("falls_for", _probability("probability of following a fraud script unwarned"), True),
                    Field("falls_for_warned", _probability("the same once a warning reached them (default 0)")),
                ),
                description="how likely the person is to be defrauded",
            ),
            True,
        ),
    ),
    description="a behaviour profile",
)

POPULATION = Object(
    fields=(
        Field("count", Int(minimum=1, maximum=MAX_SUBSCRIBERS, description="subscribers in the town"), True),
        Field(
            "numbers",
            Object(
                fields=(
                    Field("prefix", Str(pattern=r"^[0-9]{1,14}$", what="a prefix of digits (quote it)"), True),
                    Field("length", Int(minimum=5, maximum=15, description="digits of a whole number"), True),
                    Field("first", Int(minimum=0, description="sequence number of the first subscriber")),
                ),
                description="the number plan: prefix, then a sequence number zero-padded to length digits",
            ),
            True,
        ),
        Field("family_contacts", _probability("share of subscribers with a 亲情号 who is warned too")),
        Field("profiles", ListOf(item=PROFILE, min_items=1), True),
    ),
    description="who lives in the town",
)

LEGITIMATE_SMS = Object(
    fields=(
        Field("kind", Enum(values=model.SMS_KINDS, description="who sends them"), True),
        Field("count", _count("messages"), True),
        *WINDOW_FIELDS,
    ),
    description="legitimate SMS of one kind",
)

FRAUD_SMS = Object(
    fields=(
        Field("campaign", Str(pattern=NAME, what="a campaign name (lower case, digits, . _ -)"), True),
        Field("category", Enum(values=FRAUD_CATEGORIES, description="the fraud type"), True),
        Field("count", _count("messages"), True),
        Field("sender", Enum(values=model.SENDER_KINDS, description="kind of number it comes from")),
        Field("evasions", ListOf(item=Enum(values=model.EVASIONS), description="tricks against keyword filters")),
        Field("evasion_share", _probability("share of texts using one of the evasions (default 1 if any given)")),
        *WINDOW_FIELDS,
    ),
    description="a fraud SMS campaign",
)

LEGITIMATE_CALLS = Object(
    fields=(
        Field("count", _count("calls"), True),
        Field("international_share", _probability("share placed from abroad (family overseas, business)")),
        *WINDOW_FIELDS,
    ),
    description="ordinary calls between people",
)

FRAUD_CALLS = Object(
    fields=(
        Field("campaign", Str(pattern=NAME, what="a campaign name (lower case, digits, . _ -)"), True),
        Field("category", Enum(values=FRAUD_CATEGORIES, description="what the caller pretends"), True),
        Field("count", _count("calls"), True),
        Field("origin", Enum(values=model.ORIGINS, description="where the call enters the network")),
        Field(
            "caller_id",
            Enum(values=model.CALLER_ID_SPOOFS, description="the number the From header shows (default none)"),
        ),
        *WINDOW_FIELDS,
    ),
    description="a fraud call campaign",
)

SPOOFED_LABELS = Object(
    fields=(
        Field(
            "kinds",
            OneOf(
                options=(
                    Enum(values=("all",)),
                    ListOf(item=Enum(values=model.SPOOF_KINDS), min_items=1),
                ),
                description="all, or the families of tricks to try",
            ),
            True,
        ),
        Field("per_kind", Int(minimum=1, maximum=MAX_ITEMS, description="attempts of each family"), True),
        *WINDOW_FIELDS,
    ),
    description="calls that present 反诈名片 without the anti-fraud centre's proof",
)

VERIFIED_CALLS = Object(
    fields=(
        Field("count", _count("calls"), True),
        Field("number", Str(pattern=DIGITS, what="an authorised number (quote it)", description="default 96110")),
        *WINDOW_FIELDS,
    ),
    description="genuine, signed calls from the anti-fraud centre",
)

INSTRUCTIONS = Object(
    fields=(
        Field("count", _count("instructions, one subscriber each"), True),
        Field(
            "risk",
            rules_spec.MapOf(
                value=_probability("share of instructions at this risk"),
                keys=model.RISKS,
                description="share of instructions at each risk; adds up to 1",
            ),
            True,
        ),
        Field("categories", ListOf(item=Enum(values=FRAUD_CATEGORIES), min_items=1), True),
        *WINDOW_FIELDS,
    ),
    description="anti-fraud centre instructions to dissuade subscribers at risk",
)

TRAFFIC = Object(
    fields=(
        Field(
            "sms",
            Object(
                fields=(
                    Field("legitimate", ListOf(item=LEGITIMATE_SMS)),
                    Field("fraud", ListOf(item=FRAUD_SMS)),
                ),
            ),
        ),
        Field(
            "calls",
            Object(
                fields=(
                    Field("legitimate", LEGITIMATE_CALLS),
                    Field("fraud", ListOf(item=FRAUD_CALLS)),
                    Field("spoofed_labels", SPOOFED_LABELS),
                    Field("verified", VERIFIED_CALLS),
                ),
            ),
        ),
        Field("instructions", INSTRUCTIONS),
    ),
    min_properties=1,
    description="what reaches the town over simulated time",
)


def _expectation_node(kind: str, description: str) -> Node:
    if kind == "flag":
        return Bool(description=description)
    if kind == "percent_min":
        return Number(minimum=0, maximum=100, description=description)
    return Number(minimum=0, description=description)


EXPECTATIONS_NODE = Object(
    fields=tuple(Field(e.name, _expectation_node(e.kind, e.description)) for e in EXPECTATIONS.values()),
    description="what the run must achieve; the exit code is 0 only when every one holds",
)

SCENARIO = Object(
    fields=(
        Field("scenario", Str(pattern=NAME, what="a scenario name (lower case, digits, . _ -)"), True),
        Field("description", Str(min_length=1), True),
        Field("seed", Int(minimum=0, description="the same seed gives the same run"), True),
        Field("duration", _duration("simulated time"), True),
        Field(
            "time_speed",
            Number(exclusive_minimum=0, maximum=1_000_000, description="simulated seconds per real second, at most"),
            True,
        ),
        Field("sample_handsets", Int(minimum=0, maximum=50, description="handset timelines in the report")),
        Field("population", POPULATION, True),
        Field("traffic", TRAFFIC, True),
        Field("expectations", EXPECTATIONS_NODE),
    ),
    description="a simulator scenario",
)

SCHEMA_ID = "https://afgw.invalid/simulator/scenario.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "afgw simulator scenario",
    }
    # The rules' schema writer handles every node kind; scenarios use no named definitions ($ref).
    schema.update(rules_spec._schema(SCENARIO))
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"
