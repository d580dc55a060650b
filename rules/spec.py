"""One declarative description of the rule format.

The structural validator (:mod:`rules.validate`) walks these nodes over the located YAML tree, and
:func:`json_schema` turns the same nodes into the JSON Schema shipped as ``rules/schema/rule.schema.json``
for editors. A field added here is therefore checked, documented and autocompleted at once; a test keeps
the committed schema equal to the generated one.

Selections use Sigma's ``field|operator|modifier`` keys. Their fields, operators and modifiers are a
closed registry (:data:`FIELDS`), never free text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# --- the words of the format ------------------------------------------------------------------------

ACTIONS = ("pass", "tag", "warn", "block", "label")
#: Decision precedence, strongest first.
PRECEDENCE = ("block", "warn", "tag", "label", "pass")
RISKS = ("low", "medium", "high")
CHANNELS = ("sms", "call", "both")
MESSAGE_CHANNELS = ("sms", "call")
ORIGINS = ("domestic", "international")
#: STIR/SHAKEN attestation levels (RFC 8588) of a call whose PASSporT the gateway verified for its calling
#: number; a message or call without such proof has none ("").
ATTESTATIONS = ("A", "B", "C")
STATUSES = ("stable", "test", "experimental", "deprecated")
CATEGORIES = (
    "order_brushing",  # 刷单返利
    "investment",  # 虚假投资理财
    "loan",  # 虚假网络贷款
    "customer_service",  # 冒充电商物流客服
    "police_impersonation",  # 冒充公检法
    "acquaintance_impersonation",  # 冒充熟人、领导
    "credit_repair",  # 虚假征信
    "game_trade",  # 网络游戏虚假交易
    "romance",  # 婚恋交友、杀猪盘
    "prize",  # 中奖、积分兑换
    "courier_claim",  # 快递丢件理赔
    "sextortion",  # 裸聊敲诈
    "ticketing",  # 机票改签退票、票务
    "social_insurance",  # 社保、医保、ETC
    "judicial_customs",  # 法院传票、海关
    "international",  # 境外来电、境外短信
    "spoofing",  # 仿冒号码、受保护的发送方与品牌
    "phishing",  # 钓鱼链接
    "gambling",
    "official",  # 官方来源放行
    "other",
)

#: Scores and thresholds stay within this magnitude, so that one typo cannot swamp every other rule.
SCORE_LIMIT = 1000
#: The decisions a score total can reach, weakest first.
SCORED_ACTIONS = ("tag", "warn", "block")

#: What ``sender.kind`` tells apart (virtual operators: the 170/171/162/165/167 ranges).
SENDER_KINDS = ("service_106", "short_code", "mobile", "virtual_operator", "international", "other")
#: Kinds of contact handle ``contact.handle|kind`` selects.
HANDLE_KINDS = ("qq", "wechat", "telegram")

RULE_ID = r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
CLOCK = r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$"
ISO_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?$"
#: Words that cannot name a selection, list or macro, because the condition language uses them.
RESERVED = frozenset({"and", "or", "not", "of", "all", "any", "them"})


# --- nodes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    description: str = field(default="", kw_only=True)


@dataclass(frozen=True)
class Str(Node):
    pattern: str | None = None
    #: What a value matching ``pattern`` is, for messages ("a rule id").
    what: str = "a string"
    min_length: int = 0


@dataclass(frozen=True)
class Enum(Node):
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bool(Node):
    pass


@dataclass(frozen=True)
class Int(Node):
    minimum: int | None = None
    maximum: int | None = None


@dataclass(frozen=True)
class Number(Node):
    exclusive_minimum: float | None = None
    maximum: float | None = None
    minimum: float | None = None


@dataclass(frozen=True)
class ListOf(Node):
    item: Node = field(default_factory=Node)
    min_items: int = 0
    max_items: int | None = None


@dataclass(frozen=True)
class Field:
    name: str
    node: Node
    required: bool = False


@dataclass(frozen=True)
class When:
    """A constraint on an object that depends on the value of one of its fields.

    When ``field`` is (or, with ``negate``, is not) one of ``values``: every name in ``require`` must be
    given and none in ``forbid`` may be.
    """

    field: str
    values: tuple[str, ...]
    negate: bool = False
    require: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()

    def applies(self, value: object) -> bool:
        return (value in self.values) != self.negate


@dataclass(frozen=True)
class Object(Node):
    fields: tuple[Field, ...] = ()
    when: tuple[When, ...] = ()
    #: Unknown keys are errors unless this is set (scan input ignores extra keys).
    open: bool = False
    #: Other keys, matching ``extra_keys``, are allowed with values of this kind (a detection's selections).
    extra: Node | None = None
    extra_keys: str = IDENTIFIER
    #: At least one of these fields must be given (a rule needs an action, a score, or both).
    one_required: tuple[str, ...] = ()
    #: At least one field must be given.
    min_properties: int = 0

    def get(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None


@dataclass(frozen=True)
class MapOf(Node):
    """A mapping from names (matching ``key_pattern``) to values of one kind."""

    value: Node = field(default_factory=Node)
    key_pattern: str = IDENTIFIER
    #: When given, the only names allowed (instead of any matching ``key_pattern``).
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class OneOf(Node):
    """One of several shapes, told apart by the YAML kind of the value (scalar, list, mapping)."""

    options: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Ref(Node):
    """A named definition (``$defs`` in the schema), so that shapes are written once."""

    name: str = ""


@dataclass(frozen=True)
class SelectionMap(Node):
    """A Sigma selection: ``field|operator|modifier: value`` keys, all of which must hold."""


# --- selectors ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operator:
    name: str
    description: str
    #: The node for one value; ``many`` allows a list of them (any must match) and ``{list: name}``.
    value: Node
    many: bool = True


@dataclass(frozen=True)
class SelectorField:
    name: str
    description: str
    operators: tuple[Operator, ...]  # the first is the default when the key names none
    modifiers: tuple[tuple[str, str], ...] = ()  # (name, description)

    def operator(self, name: str) -> Operator | None:
        for op in self.operators:
            if op.name == name:
                return op
        return None

    @property
    def default(self) -> Operator:
        return self.operators[0]


_TEXT_VALUE = Str(min_length=1, what="a non-empty string")
_NUMBER_VALUE = Str(min_length=1, what="a number or sender id (quote it)")

TEXT_VIEWS = (
    ("raw", "match the text exactly as received, not normalised (use nocase to ignore ASCII case)"),
    ("squeezed", "match the normalised text with every space, punctuation mark and symbol removed"),
    (
        "homophone",
        "match the squeezed text with every hanzi replaced by one representative of its toneless pinyin, "
        "near-homophones merged (zh/z, ch/c, sh/s, n/l, -ng/-n), so 按全账护 matches 安全帐户",
    ),
)
#: The modifiers that choose a view; a key names at most one.
VIEW_MODIFIERS = tuple(name for name, _ in TEXT_VIEWS)

FIELDS: dict[str, SelectorField] = {
    f.name: f
    for f in (
        SelectorField(
            "text",
            "The message text. Matched on the normalised view (NFKC, no format characters, casefolded, "
            "simplified Chinese) unless raw, squeezed or homophone is given; literals are normalised the same way.",
            (
                Operator("contains", "the text contains the keyword", _TEXT_VALUE),
                Operator("startswith", "the text starts with it", _TEXT_VALUE),
                Operator("endswith", "the text ends with it", _TEXT_VALUE),
                Operator("re", "a regular expression (Hyperscan/PCRE syntax) found in the text", _TEXT_VALUE),
            ),
            (
                *TEXT_VIEWS,
                ("nocase", "ignore case (the normalised and squeezed views are casefolded already)"),
                (
                    "word",
                    "a keyword that starts or ends with an ASCII letter or digit matches only as a whole token "
                    "there: not inside a longer word, a number, a URL or an e-mail address (vx, not vivo or "
                    "vx.example.com); normalised or raw view only",
                ),
                ("all", "every value must match, not just one"),
            ),
        ),
        SelectorField(
            "domain",
            "Domains of the URLs found in the text, after de-obfuscation (h t t p, [.], 点com, 。).",
            (
                Operator("suffix", "a domain is this one or under it (example.com matches a.example.com)", _TEXT_VALUE),
                Operator("contains", "a domain contains the string", _TEXT_VALUE),
                Operator("re", "a regular expression matching a domain (^ and $ anchor one domain)", _TEXT_VALUE),
                Operator("exists", "the text has (true) or has no (false) URL", Bool(), many=False),
            ),
            (("all", "every value must match, not just one"),),
        ),
        *(
            SelectorField(
                name,
                desc,
                (
                    Operator("equals", "exactly this", _NUMBER_VALUE),
                    Operator("startswith", "starts with this prefix", _NUMBER_VALUE),
                    Operator("endswith", "ends with this suffix", _NUMBER_VALUE),
                    Operator("exists", "is present and non-empty (true) or absent (false)", Bool(), many=False),
                ),
            )
            for name, desc in (
                ("from", "The calling number or SMS source address."),
                ("to", "The called number or SMS destination address."),
                ("sender_id", "The alphanumeric sender id, when the channel carries one."),
            )
        ),
        SelectorField(
            "origin",
            "Where the message or call entered the network.",
            (Operator("equals", "one of", Enum(values=ORIGINS)),),
        ),
        SelectorField(
            "attestation",
            "The STIR/SHAKEN attestation of a call whose PASSporT the gateway verified for its calling number: "
            "A (the carrier vouches for the caller's right to the number), B or C. An SMS, and a call with no "
            "Identity header or one that failed verification, has none.",
            (
                Operator("equals", "one of", Enum(values=ATTESTATIONS)),
                Operator(
                    "exists", "the call was verified at any level (true) or not at all (false)", Bool(), many=False
                ),
            ),
        ),
        SelectorField(
            "time",
            "Local time of day of the message (start inclusive, end exclusive; may wrap midnight).",
            (
                Operator(
                    "between",
                    "[start, end] as HH:MM",
                    ListOf(item=Str(pattern=CLOCK, what="a time of day HH:MM"), min_items=2, max_items=2),
                    many=False,
                ),
            ),
        ),
        SelectorField(
            "velocity",
            "Rate of messages or calls on this channel from one source (src) or to one destination (dst), "
            "counting this one, like Suricata's detection_filter.",
            (
                Operator(
                    "count",
                    "at least count messages within seconds",
                    Object(
                        fields=(
                            Field(
                                "by", Enum(values=("src", "dst"), description="track by source or destination"), True
                            ),
                            Field("count", Int(minimum=1, maximum=10000, description="threshold"), True),
                            Field("within", Number(exclusive_minimum=0, maximum=86400, description="seconds"), True),
                        )
                    ),
                    many=False,
                ),
            ),
        ),
    )
}


_IS = Operator("is", "the signal is present (true) or absent (false)", Bool(), many=False)
_AT_LEAST = Operator(
    "at_least", "some value found is at least this", Number(minimum=0, description="a number"), many=False
)
SIGNALS: dict[str, SelectorField] = {
    f.name: f
    for f in (
        SelectorField(
            "url.ip_literal", "A URL's host is an IP address (http://1.2.3.4/..., 1.2.3.4:8080/...).", (_IS,)
        ),
        SelectorField("url.shortener", "A URL is on a public link shortener (t.cn, dwz.cn, bit.ly ...).", (_IS,)),
        SelectorField(
            "url.tld_rare",
            "A URL's top-level domain is one that abuse reports name often or that is newly cheap "
            "(.top, .xyz, .vip ...).",
            (_IS,),
        ),
        SelectorField("url.punycode", "A URL's host has an internationalised (xn--) label.", (_IS,)),
        SelectorField(
            "url.brand_lookalike",
            "A URL's host imitates a bank, payment app, courier or carrier of the brand list (a look-alike "
            "character or one edit away, or the name inside another label) without being its official domain.",
            (_IS, Operator("brand", "the brand imitated is one of these (names of the brand list)", _TEXT_VALUE)),
        ),
        SelectorField(
            "contact.handle",
            "A QQ, WeChat or Telegram id in the text (QQ 12345678, 微信/vx/V: abc123, t.me/x, @x), or a bare +V "
            "/ 加Q; aliases count as tokens only, never inside a longer word or a URL.",
            (_IS, Operator("kind", "a handle of one of these kinds", Enum(values=HANDLE_KINDS))),
        ),
        SelectorField(
            "money.amount",
            "An amount of money in the text (¥500, 3000元, 5万元, 2w块), in yuan.",
            (_IS, _AT_LEAST),
        ),
        SelectorField("money.percent", "A percentage in the text (15%, 百分之三十 in digits).", (_IS, _AT_LEAST)),
        SelectorField(
            "phone.in_text", "A phone number in the text (a mobile, a landline with its area code, 400-).", (_IS,)
        ),
        SelectorField(
            "sender.kind",
            "What kind of number sent the message: service_106 (106 ports), short_code (95xxx, 96xxx, 12xxx), "
            "mobile, virtual_operator (170/171/162/165/167), international, other.",
            (Operator("equals", "one of", Enum(values=SENDER_KINDS)),),
        ),
        SelectorField(
            "reminder.official",
            "The text is an official anti-fraud reminder by its content: a signature (【XX公安】, 【XX银行】, "
            "国家反诈中心 ...) and warning words (谨防, 警惕, 不要相信, 切勿, 请勿 ...), with no contact handle "
            "and no suspicious link (IP, shortener, look-alike, punycode).",
            (_IS,),
        ),
    )
}
FIELDS.update(SIGNALS)


def split_key(key: str) -> tuple[str, list[str]]:
    """``"text|contains|squeezed"`` -> ``("text", ["contains", "squeezed"])``."""
    name, *mods = key.split("|")
    return name, mods


def parse_key(key: str) -> tuple[SelectorField, Operator, frozenset[str]] | None:
    """Field, operator and modifiers of a well-formed selection key; None for any other key."""
    name, mods = split_key(key)
    selector = FIELDS.get(name)
    if selector is None:
        return None
    op = selector.default
    if mods and (named := selector.operator(mods[0])) is not None:
        op = named
        mods = mods[1:]
    allowed = {m for m, _ in selector.modifiers}
    chosen = frozenset(mods)
    if len(chosen) != len(mods) or not chosen <= allowed or len(chosen & set(VIEW_MODIFIERS)) > 1:
        return None
    return selector, op, chosen


# --- the rule format ----------------------------------------------------------------------------------

LIST_REF = Object(
    fields=(Field("list", Str(pattern=IDENTIFIER, what="a list name"), True),),
    description="the values of a shared list",
)

SELECTION = OneOf(
    options=(
        SelectionMap(description="every key must hold"),
        ListOf(item=SelectionMap(), min_items=1, description="any of these mappings must hold"),
    ),
    description="a named selection",
)

MESSAGE = Object(
    fields=(
        Field("channel", Enum(values=MESSAGE_CHANNELS, description="sms (default) or call")),
        Field("from", Str(description="source address or calling number")),
        Field("to", Str(description="destination address or called number")),
        Field("text", Str(description="message text; empty for calls")),
        Field("origin", Enum(values=ORIGINS, description="domestic (default) or international")),
        Field("sender_id", Str(description="alphanumeric sender id, if any")),
        Field(
            "attestation",
            Enum(
                values=(*ATTESTATIONS, ""),
                description="attestation of the verified PASSporT for the calling number: A, B, C; empty (default) "
                "when unverified or an SMS",
            ),
        ),
        Field(
            "now",
            OneOf(
                options=(Number(), Str(pattern=ISO_TIME, what="an ISO 8601 date and time")),
                description="epoch seconds or ISO 8601 (local time when no offset); default 2024-06-03T10:00",
            ),
        ),
    ),
    description="a message or call",
)

TEST_CASE = Object(
    fields=(
        *MESSAGE.fields,
        Field("repeat", Int(minimum=1, maximum=10000, description="send it this many times (for velocity)")),
        Field("interval", Number(exclusive_minimum=0, description="seconds between repeats (default 1)")),
        Field(
            "expect",
            Object(
                fields=(Field("action", Enum(values=ACTIONS), True),),
                description="also check the whole rule set's decision",
            ),
        ),
    ),
    description="a whole message object and what to expect of it",
)

RULE = Object(
    fields=(
        Field("id", Str(pattern=RULE_ID, what="a rule id (lower case, digits, . _ -)"), True),
        Field("title", Str(min_length=1), True),
        Field("description", Str()),
        Field("status", Enum(values=STATUSES)),
        Field("author", Str()),
        Field("references", ListOf(item=Str())),
        Field("tags", ListOf(item=Str())),
        Field("category", Enum(values=CATEGORIES), True),
        Field("risk", Enum(values=RISKS)),
        Field("channel", Enum(values=CHANNELS), True),
        Field(
            "detection",
            Object(
                fields=(
                    Field(
                        "condition",
                        Str(min_length=1, description="e.g. sel_a and not filter_b, 1 of sel_*"),
                        True,
                    ),
                ),
                extra=Ref(name="selection"),
                description="named selections and the condition that combines them",
            ),
            True,
        ),
        Field(
            "action",
            Enum(values=ACTIONS, description="what the rule does alone; a rule with a score may leave it out"),
        ),
        Field(
            "score",
            Number(
                minimum=-SCORE_LIMIT,
                maximum=SCORE_LIMIT,
                description="evidence points added to the total of the rule's category when it matches "
                "(negative for evidence of a legitimate message); the pack's scoring thresholds turn totals "
                "into tag, warn or block",
            ),
        ),
        Field("template", Str(pattern=IDENTIFIER, what="a template name", description="warning template to use")),
        Field("label", Str(min_length=1, description="label shown on the handset, e.g. 境外来电")),
        Field("dissuade", Bool(description="hand the recipient to the dissuasion engine")),
        Field(
            "overrides",
            ListOf(item=Str(min_length=1), min_items=1, description="rule ids or categories this allow rule cancels"),
        ),
        Field(
            "tests",
            Object(
                fields=(
                    Field("match", ListOf(item=Ref(name="test_case"))),
                    Field("no_match", ListOf(item=Ref(name="test_case"))),
                ),
            ),
        ),
    ),
    when=(
        When("action", ("pass",), negate=True, require=("risk",), forbid=("overrides",)),
        When("action", ("label",), require=("label",)),
        When("action", ("pass", "label"), forbid=("score",)),
    ),
    one_required=("action", "score"),
    description="one rule",
)

THRESHOLDS = Object(
    fields=tuple(
        Field(
            name,
            Number(exclusive_minimum=0, maximum=SCORE_LIMIT, description=f"a total of at least this means {name}"),
        )
        for name in SCORED_ACTIONS
    ),
    min_properties=1,
    description="score totals at which a category's evidence tags, warns or blocks (each optional)",
)

PACK = Object(
    fields=(
        Field("pack", Str(pattern=IDENTIFIER, what="a pack name")),
        Field("description", Str()),
        Field(
            "scoring",
            MapOf(
                value=THRESHOLDS,
                keys=("default", *CATEGORIES),
                description="per category (or default, for the others): the thresholds its score total is "
                "held to; rules without a score ignore them",
            ),
        ),
        Field(
            "lists",
            MapOf(value=ListOf(item=Str(min_length=1), min_items=1), description="shared lists of values"),
        ),
        Field("macros", MapOf(value=Ref(name="selection"), description="shared named selections")),
        Field("rules", ListOf(item=Ref(name="rule"))),
    ),
    description="a rule pack: shared lists, macros and rules",
)

DEFINITIONS: dict[str, Node] = {
    "selection": SELECTION,
    "list_ref": LIST_REF,
    "test_case": TEST_CASE,
    "rule": RULE,
}


def resolve(node: Node) -> Node:
    return DEFINITIONS[node.name] if isinstance(node, Ref) else node


# --- JSON Schema --------------------------------------------------------------------------------------

SCHEMA_ID = "https://afgw.invalid/rules/rule.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a rule pack file."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "afgw rule pack",
    }
    schema.update(_schema(PACK))
    schema["$defs"] = {name: _schema(node) for name, node in sorted(DEFINITIONS.items())}
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n"


def _schema(node: Node) -> dict[str, Any]:
    out: dict[str, Any] = {"description": node.description} if node.description else {}
    if isinstance(node, Ref):
        return {"$ref": f"#/$defs/{node.name}", **out}
    if isinstance(node, Str):
        out["type"] = "string"
        if node.pattern:
            out["pattern"] = node.pattern
        if node.min_length:
            out["minLength"] = node.min_length
    elif isinstance(node, Enum):
        out["enum"] = list(node.values)
    elif isinstance(node, Bool):
        out["type"] = "boolean"
    elif isinstance(node, Int):
        out["type"] = "integer"
        if node.minimum is not None:
            out["minimum"] = node.minimum
        if node.maximum is not None:
            out["maximum"] = node.maximum
    elif isinstance(node, Number):
        out["type"] = "number"
        if node.exclusive_minimum is not None:
            out["exclusiveMinimum"] = node.exclusive_minimum
        if node.maximum is not None:
            out["maximum"] = node.maximum
        if node.minimum is not None:
            out["minimum"] = node.minimum
    elif isinstance(node, ListOf):
        out["type"] = "array"
        out["items"] = _schema(node.item)
        if node.min_items:
            out["minItems"] = node.min_items
        if node.max_items is not None:
            out["maxItems"] = node.max_items
    elif isinstance(node, Object):
        out.update(_object_schema(node))
    elif isinstance(node, MapOf):
        out["type"] = "object"
        out["propertyNames"] = {"enum": list(node.keys)} if node.keys else _names(node.key_pattern)
        out["additionalProperties"] = _schema(node.value)
    elif isinstance(node, OneOf):
        out["oneOf"] = [_schema(option) for option in node.options]
    elif isinstance(node, SelectionMap):
        out.update(_selection_schema())
    else:  # pragma: no cover - every node kind is handled above
        raise TypeError(node)
    return out


def _object_schema(node: Object) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": {f.name: _schema(f.node) for f in node.fields}}
    required = [f.name for f in node.fields if f.required]
    if required:
        out["required"] = required
    if node.extra is not None:
        out["propertyNames"] = {"anyOf": [{"enum": [f.name for f in node.fields]}, _names(node.extra_keys)]}
        out["additionalProperties"] = _schema(node.extra)
    elif not node.open:
        out["additionalProperties"] = False
    if node.min_properties:
        out["minProperties"] = node.min_properties
    all_of = [_when_schema(w) for w in node.when]
    if node.one_required:
        all_of.append({"anyOf": [{"required": [name]} for name in node.one_required]})
    if all_of:
        out["allOf"] = all_of
    return out


def _names(pattern: str) -> dict[str, Any]:
    return {"pattern": pattern, "not": {"enum": sorted(RESERVED)}}


def _when_schema(when: When) -> dict[str, Any]:
    test: dict[str, Any] = {"enum": list(when.values)}
    then: dict[str, Any] = {}
    if when.require:
        then["required"] = list(when.require)
    if when.forbid:
        then["not"] = {"anyOf": [{"required": [name]} for name in when.forbid]}
    return {
        "if": {"properties": {when.field: {"not": test} if when.negate else test}, "required": [when.field]},
        "then": then,
    }


def _value_schema(op: Operator) -> dict[str, Any]:
    one = _schema(op.value)
    if not op.many:
        return one
    ref = {"$ref": "#/$defs/list_ref"}
    return {"anyOf": [one, ref, {"type": "array", "minItems": 1, "items": {"anyOf": [one, ref]}}]}


def _selection_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    patterns: dict[str, Any] = {}
    for f in FIELDS.values():
        mods = [name for name, _ in f.modifiers]
        for op in f.operators:
            key = f.name if op is f.default else f"{f.name}|{op.name}"
            properties[key] = {"description": f"{f.description} Operator {op.name}: {op.description}."}
            properties[key].update(_value_schema(op))
            words = [re.escape(m) for m in mods]
            if op is f.default:
                # the default operator may be named or left out; modifiers in any order
                head = f"{re.escape(f.name)}(?:\\|{re.escape(op.name)})?"
            else:
                head = f"{re.escape(f.name)}\\|{re.escape(op.name)}"
            tail = f"(?:\\|(?:{'|'.join(words)}))*" if words else ""
            patterns[f"^{head}{tail}$"] = _value_schema(op)
    return {
        "type": "object",
        "minProperties": 1,
        "properties": properties,
        "patternProperties": patterns,
        "additionalProperties": False,
    }
