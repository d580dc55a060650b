"""The condition language that combines a rule's named selections.

    condition := expr
    expr      := term ("or" term)*
    term      := factor ("and" factor)*
    factor    := "not" factor | "(" expr ")" | quantifier | NAME
    quantifier:= (INTEGER | "all" | "any") "of" (PATTERN | "them")

``NAME`` is a selection of the rule or a shared macro; ``PATTERN`` is a name with ``*``/``?`` wildcards
over the rule's own selections (``1 of sel_*``, ``2 of sel_invest_*``, ``all of them``). ``not`` binds
tighter than ``and``, which binds tighter than ``or``.

A parsed condition is a small tree. It is compiled into nested closures (never ``eval``), and can also be
evaluated in three-valued logic, which the compiler uses to find the rules that can only be true when one
of their patterns matched.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

Ctx = TypeVar("Ctx")


class ConditionError(ValueError):
    def __init__(self, message: str, position: int, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position  # 0-based offset into the condition text
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    position: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Quantifier:
    count: int | None  # None means all
    names: tuple[str, ...]  # the selections the pattern named, resolved at parse time
    pattern: str
    position: int


Expr = Name | Not | And | Or | Quantifier

_TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|(?P<word>[A-Za-z0-9_*?]+)|(?P<bad>\S))")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_PATTERN = re.compile(r"[A-Za-z0-9_*?]+$")


def _tokens(text: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        if m.group("bad") is not None:
            start = m.start("bad")
            raise ConditionError(
                f"unexpected {m.group('bad')!r} in condition",
                start,
                "use and, or, not, parentheses and N of pattern",
            )
        kind = "paren" if m.group("paren") is not None else "word"
        out.append((m.group(kind), m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, selections: Sequence[str], known: Callable[[str], bool]) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0
        self.selections = selections
        self.known = known

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def position(self) -> int:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else len(self.text)

    def take(self) -> tuple[str, int]:
        if self.i >= len(self.tokens):
            raise ConditionError("condition ends too early", len(self.text), "something is missing at the end")
        token = self.tokens[self.i]
        self.i += 1
        return token

    def parse(self) -> Expr:
        if not self.tokens:
            raise ConditionError("empty condition", 0)
        expr = self.expr()
        if self.i < len(self.tokens):
            word, pos = self.tokens[self.i]
            raise ConditionError(f"unexpected {word!r}", pos, "join selections with and / or")
        return expr

    def expr(self) -> Expr:
        operands = [self.term()]
        while self.peek() == "or":
            self.take()
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def term(self) -> Expr:
        operands = [self.factor()]
        while self.peek() == "and":
            self.take()
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def factor(self) -> Expr:
        word, pos = self.take()
        if word == "not":
            return Not(self.factor())
        if word == "(":
            inner = self.expr()
            if self.peek() != ")":
                raise ConditionError("missing ')'", self.position(), f"to close the '(' at column {pos + 1}")
            self.take()
            return inner
        if word == ")":
            raise ConditionError("unexpected ')'", pos)
        if self.peek() == "of":
            return self.quantifier(word, pos)
        if word in {"and", "or", "of", "all", "any", "them"}:
            raise ConditionError(f"expected a selection name, found {word!r}", pos)
        if not _IDENT.match(word):
            raise ConditionError(f"{word!r} is not a selection name", pos, "wildcards need N of / all of")
        if not self.known(word):
            hint = fnmatch.filter(self.selections, word[:3] + "*")
            raise ConditionError(
                f"unknown selection or macro {word!r}",
                pos,
                f"selections here: {', '.join(self.selections)}" if not hint else f"did you mean {hint[0]!r}?",
            )
        return Name(word, pos)

    def quantifier(self, word: str, pos: int) -> Expr:
        self.take()  # "of"
        if word == "all":
            count: int | None = None
        elif word == "any":
            count = 1
        elif word.isdigit():
            count = int(word)
            if count < 1:
                raise ConditionError("a count of 0 is always true", pos, "use 1 of ... or remove it")
        else:
            raise ConditionError(f"expected a number, all or any before 'of', found {word!r}", pos)
        target, tpos = self.take()
        if target == "them":
            names = tuple(self.selections)
        elif _PATTERN.match(target):
            names = tuple(n for n in self.selections if fnmatch.fnmatchcase(n, target))
        else:
            raise ConditionError(f"expected a name pattern or them after 'of', found {target!r}", tpos)
        if not names:
            raise ConditionError(f"{target!r} matches no selection of this rule", tpos)
        if count is not None and count > len(names):
            raise ConditionError(
                f"{count} of {target} can never be true: it matches only {len(names)} selection(s)", pos
            )
        return Quantifier(count, names, target, pos)


def parse(text: str, selections: Sequence[str], known: Callable[[str], bool] | None = None) -> Expr:
    """Parse ``text``; names must be among ``selections`` or accepted by ``known`` (macros)."""
    names = set(selections)
    return _Parser(text, selections, known or names.__contains__).parse()


def names(expr: Expr) -> set[str]:
    """Every selection or macro name the condition uses."""
    if isinstance(expr, Name):
        return {expr.name}
    if isinstance(expr, Not):
        return names(expr.operand)
    if isinstance(expr, And | Or):
        return set().union(*(names(e) for e in expr.operands))
    return set(expr.names)


def compile_condition(expr: Expr, predicates: Mapping[str, Callable[[Ctx], bool]]) -> Callable[[Ctx], bool]:
    """Nested closures that evaluate ``expr`` on a context, short-circuiting like Python's own operators."""
    if isinstance(expr, Name):
        return predicates[expr.name]
    if isinstance(expr, Not):
        inner = compile_condition(expr.operand, predicates)
        return lambda ctx: not inner(ctx)
    if isinstance(expr, And):
        return all_of([compile_condition(e, predicates) for e in expr.operands])
    if isinstance(expr, Or):
        return any_of([compile_condition(e, predicates) for e in expr.operands])
    preds = [predicates[n] for n in expr.names]
    need = len(preds) if expr.count is None else expr.count
    if need == 1:
        return any_of(preds)
    if need == len(preds):
        return all_of(preds)

    def at_least(ctx: Ctx) -> bool:
        hits = 0
        left = len(preds)
        for p in preds:
            left -= 1
            if p(ctx):
                hits += 1
                if hits >= need:
                    return True
            elif hits + left < need:
                return False
        return False

    return at_least


# The message path calls these for every rule it evaluates: plain loops and small lambdas, because a
# generator in all()/any() costs an object and a frame per call.


def all_of(preds: Sequence[Callable[[Ctx], bool]]) -> Callable[[Ctx], bool]:
    """A predicate true when every one of ``preds`` is, tried in order until one is false."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda ctx: a(ctx) and b(ctx)
    if len(preds) == 3:
        a, b, c = preds
        return lambda ctx: a(ctx) and b(ctx) and c(ctx)
    parts = tuple(preds)

    def every(ctx: Ctx) -> bool:
        for p in parts:  # noqa: SIM110 (no generator: see above)
            if not p(ctx):
                return False
        return True

    return every


def any_of(preds: Sequence[Callable[[Ctx], bool]]) -> Callable[[Ctx], bool]:
    """A predicate true when one of ``preds`` is, tried in order until one is true."""
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda ctx: a(ctx) or b(ctx)
    if len(preds) == 3:
        a, b, c = preds
        return lambda ctx: a(ctx) or b(ctx) or c(ctx)
    parts = tuple(preds)

    def some(ctx: Ctx) -> bool:
        for p in parts:  # noqa: SIM110 (no generator: see above)
            if p(ctx):
                return True
        return False

    return some


def evaluate3(expr: Expr, values: Mapping[str, bool | None]) -> bool | None:
    """Kleene three-valued evaluation: None stands for unknown."""
    if isinstance(expr, Name):
        return values[expr.name]
    if isinstance(expr, Not):
        v = evaluate3(expr.operand, values)
        return None if v is None else not v
    if isinstance(expr, And | Or):
        results = [evaluate3(e, values) for e in expr.operands]
        decisive = isinstance(expr, Or)  # True decides an or, False decides an and
        if decisive in results:
            return decisive
        return None if None in results else not decisive
    results = [values[n] for n in expr.names]
    need = len(results) if expr.count is None else expr.count
    true = results.count(True)
    unknown = results.count(None)
    if true >= need:
        return True
    if true + unknown < need:
        return False
    return None
