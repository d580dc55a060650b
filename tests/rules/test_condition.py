"""The condition language: every form, precedence, quantifiers, three-valued gating, errors."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from rules import condition as cond

NAMES = ["sel_a", "sel_b", "sel_invest_x", "sel_invest_y", "sel_invest_z", "filter_official"]


def truth(text: str, known: Callable[[str], bool] | None = None) -> Callable[[dict[str, bool]], bool]:
    expr = cond.parse(text, NAMES, known)
    names = cond.names(expr)
    predicates = {n: (lambda ctx, n=n: ctx[n]) for n in names}
    return cond.compile_condition(expr, predicates)


def assignments() -> list[dict[str, bool]]:
    return [dict(zip(NAMES, bits, strict=True)) for bits in itertools.product((False, True), repeat=len(NAMES))]


def invest(v: dict[str, bool]) -> int:
    return sum(v[n] for n in ("sel_invest_x", "sel_invest_y", "sel_invest_z"))


@pytest.mark.parametrize(
    ("text", "reference"),
    [
        ("sel_a", lambda v: v["sel_a"]),
        ("not sel_a", lambda v: not v["sel_a"]),
        ("sel_a and sel_b", lambda v: v["sel_a"] and v["sel_b"]),
        ("sel_a or sel_b", lambda v: v["sel_a"] or v["sel_b"]),
        ("sel_a and not filter_official", lambda v: v["sel_a"] and not v["filter_official"]),
        # not binds tighter than and, and tighter than or
        ("sel_a or sel_b and not sel_a", lambda v: v["sel_a"] or (v["sel_b"] and not v["sel_a"])),
        ("not sel_a and sel_b", lambda v: (not v["sel_a"]) and v["sel_b"]),
        ("(sel_a or sel_b) and not sel_a", lambda v: (v["sel_a"] or v["sel_b"]) and not v["sel_a"]),
        ("not (sel_a or sel_b)", lambda v: not (v["sel_a"] or v["sel_b"])),
        ("not not sel_a", lambda v: v["sel_a"]),
        ("sel_a and sel_b and filter_official", lambda v: v["sel_a"] and v["sel_b"] and v["filter_official"]),
        ("sel_a or sel_b or filter_official", lambda v: v["sel_a"] or v["sel_b"] or v["filter_official"]),
        ("1 of sel_*", lambda v: any(v[n] for n in NAMES if n.startswith("sel_"))),
        ("any of sel_invest_*", lambda v: invest(v) >= 1),
        ("2 of sel_invest_*", lambda v: invest(v) >= 2),
        ("all of sel_invest_*", lambda v: invest(v) == 3),
        ("3 of sel_invest_?", lambda v: invest(v) == 3),
        ("1 of them", lambda v: any(v.values())),
        ("all of them", lambda v: all(v.values())),
        ("2 of sel_invest_* and not filter_official", lambda v: invest(v) >= 2 and not v["filter_official"]),
        ("(1 of sel_a) or (all of sel_b)", lambda v: v["sel_a"] or v["sel_b"]),
    ],
)
def test_every_form_against_a_reference(text: str, reference: Callable[[dict[str, bool]], bool]) -> None:
    compiled = truth(text)
    for values in assignments():
        assert compiled(values) == reference(values), (text, values)


def test_macros_are_names_the_caller_knows() -> None:
    compiled = truth("sel_a and has_link", known=lambda n: n in NAMES or n == "has_link")
    assert compiled({"sel_a": True, "has_link": True})
    assert not compiled({"sel_a": True, "has_link": False})


def test_quantifiers_cover_only_the_rules_own_selections() -> None:
    expr = cond.parse("1 of sel_*", NAMES, lambda n: True)
    assert isinstance(expr, cond.Quantifier)
    assert expr.names == ("sel_a", "sel_b", "sel_invest_x", "sel_invest_y", "sel_invest_z")


def test_n_of_stops_as_soon_as_it_knows() -> None:
    calls: list[str] = []

    def pred(name: str, value: bool) -> Callable[[object], bool]:
        def p(ctx: object) -> bool:
            calls.append(name)
            return value

        return p

    expr = cond.parse("2 of sel_invest_*", NAMES)
    compiled = cond.compile_condition(
        expr, {"sel_invest_x": pred("x", True), "sel_invest_y": pred("y", True), "sel_invest_z": pred("z", True)}
    )
    assert compiled(None)
    assert calls == ["x", "y"]
    calls.clear()
    compiled = cond.compile_condition(
        expr, {"sel_invest_x": pred("x", False), "sel_invest_y": pred("y", False), "sel_invest_z": pred("z", True)}
    )
    assert not compiled(None)
    assert calls == ["x", "y"]  # two false of three: two can no longer be reached


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("sel_a", {"sel_a": False}, False),
        ("not sel_a", {"sel_a": False}, True),
        ("sel_a and sel_b", {"sel_a": False, "sel_b": None}, False),
        ("sel_a or sel_b", {"sel_a": False, "sel_b": None}, None),
        ("sel_a and not sel_b", {"sel_a": None, "sel_b": False}, None),
        ("sel_a or sel_b", {"sel_a": True, "sel_b": None}, True),
        ("2 of sel_invest_*", {"sel_invest_x": False, "sel_invest_y": False, "sel_invest_z": None}, False),
        ("2 of sel_invest_*", {"sel_invest_x": True, "sel_invest_y": None, "sel_invest_z": None}, None),
        ("all of sel_invest_*", {"sel_invest_x": True, "sel_invest_y": True, "sel_invest_z": True}, True),
    ],
)
def test_three_valued_evaluation(text: str, values: dict[str, bool | None], expected: bool | None) -> None:
    assert cond.evaluate3(cond.parse(text, NAMES), values) is expected


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("", 0, "empty condition"),
        ("sel_a and", 9, "condition ends too early"),
        ("sel_a sel_b", 6, "unexpected 'sel_b'"),
        ("sel_a && sel_b", 6, "unexpected '&'"),
        ("(sel_a", 6, "missing ')'"),
        ("sel_a)", 5, "unexpected ')'"),
        ("and sel_a", 0, "expected a selection name, found 'and'"),
        ("sel_*", 0, "'sel_*' is not a selection name"),
        ("sel_c", 0, "unknown selection or macro 'sel_c'"),
        ("4 of sel_invest_*", 0, "can never be true"),
        ("1 of nothing_*", 5, "matches no selection"),
        ("x of sel_*", 0, "expected a number, all or any before 'of'"),
        ("1 of (sel_a)", 5, "expected a name pattern or them after 'of'"),
    ],
)
def test_errors_carry_the_offset(text: str, position: int, message: str) -> None:
    with pytest.raises(cond.ConditionError) as info:
        cond.parse(text, NAMES)
    assert message in info.value.message
    assert info.value.position == position


def test_names_lists_everything_used() -> None:
    expr = cond.parse("(sel_a or 2 of sel_invest_*) and not filter_official", NAMES)
    assert cond.names(expr) == {"sel_a", "sel_invest_x", "sel_invest_y", "sel_invest_z", "filter_official"}
