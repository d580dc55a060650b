"""Databases on the system's libhs (rules/_hs.c, built by ``make compile`` where libhyperscan-dev is
installed) find what the binding's find, and the engine's verdicts do not depend on which it scans."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

import hyperscan
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from rules import native_scan
from rules.compiler import VIEWS
from rules.homophones import fold_squeezed
from rules.normalise import domains, normalise, scrub, squeeze_normalised
from tests.rules.helpers import rule_yaml, sms

pytestmark = pytest.mark.skipif(
    not native_scan.available(), reason="rules/_hs.c is not built: install libhyperscan-dev, then `make compile`"
)
CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "dev.jsonl"
FLAGS = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_SINGLEMATCH


def _hs() -> Any:
    import importlib

    return importlib.import_module("rules._hs")


def test_a_scan_adds_the_ids_that_match_as_the_binding_does() -> None:
    expressions = [b"abc", "安全账户".encode(), rb"b.d", rb"\d{6}"]
    ids = [1, 2, 3, 4]
    ours = _hs().Database(expressions, ids, [FLAGS] * 4)
    theirs = hyperscan.Database()
    theirs.compile(expressions=expressions, ids=ids, flags=[FLAGS] * 4)
    for text in ["xxabcbxd abc", "转到安全账户 482913", "", "nothing here"]:
        found: set[int] = set()
        ours.scan(text.encode(), native_scan.add_to_set(), 0, found)
        expected: set[int] = set()
        theirs.scan(text.encode(), lambda i, a, b, f, c: c.add(i), 0, expected)
        assert found == expected


def test_any_other_callback_is_called_with_the_match_and_can_stop_the_scan() -> None:
    db = _hs().Database([b"a", b"b"], [7, 8], [0, 0])
    calls: list[tuple[int, int, int, int, str]] = []
    db.scan(b"ab", lambda *a: calls.append(a), 0, "ctx")
    assert calls == [(7, 0, 1, 0, "ctx"), (8, 0, 2, 0, "ctx")]
    calls.clear()
    db.scan(b"ab", lambda *a: calls.append(a) or True, 0, "ctx")
    assert calls == [(7, 0, 1, 0, "ctx")]


def test_a_pattern_libhs_refuses_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="parenthesis"):
        _hs().Database([b"(("], [1], [0])


def test_the_rule_set_scans_databases_on_libhs() -> None:
    ruleset = rules.build([rules.DEFAULT_PACKS])
    assert type(ruleset.db_normalised).__module__ == "rules._hs"
    assert all(db is None or type(db).__module__ == "rules._hs" for db in ruleset.deferred_by_index)


def test_verdicts_on_the_corpus_are_those_of_the_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    native = rules.Engine(rules.build([rules.DEFAULT_PACKS]))
    monkeypatch.setattr(native_scan, "_HS", None)
    binding = rules.Engine(rules.build([rules.DEFAULT_PACKS]))
    assert type(binding.ruleset.db_normalised).__module__ != "rules._hs"
    lines = CORPUS.read_text("utf-8").splitlines()[::3]
    flagged = 0
    for line in lines:
        row = json.loads(line)
        message = rules.Message(channel="sms", src=row.get("from") or "10690000", dst="13800000001", text=row["text"])
        ours, theirs = native.evaluate(message), binding.evaluate(message)
        assert (ours.action, ours.rules, ours.category) == (theirs.action, theirs.rules, theirs.category), row
        flagged += ours.action != rules.Action.PASS
    assert flagged > len(lines) // 4  # the packs do act on this corpus: the comparison is not of passes only


def test_word_and_space_classes_are_unicode_on_libhs_as_on_the_binding(build: Any) -> None:
    # \w and \s take hanzi and the ideographic space only with HS_FLAG_UCP: a rule written with them
    # would find nothing in Chinese text on a database compiled without it.
    ruleset = build(
        rule_yaml("sel:\n  text|re: '安全\\w{1,2}账户\\s*转账'\ncondition: sel", rule_id="t.ucp", risk="high")
    )
    assert type(ruleset.db_normalised).__module__ == "rules._hs"
    engine = rules.Engine(ruleset)
    assert engine.evaluate(sms("请把钱转到安全的账户　转账")).rules == ("t.ucp",)
    assert engine.evaluate(sms("请把钱转到安全!!账户转账")).rules == ()


def test_a_database_is_compiled_once_and_keeps_its_patterns() -> None:
    # compiling again would free the database and scratch space that a scan under way (one whose Python
    # callback runs) is still reading
    db = _hs().Database([b"abc"], [1], [0])
    with pytest.raises(RuntimeError, match="compiled once"):
        db.__init__([b"xyz"], [2], [0])
    found: set[int] = set()
    db.scan(b"abc xyz", native_scan.add_to_set(), 0, found)
    assert found == {1}


def test_an_id_or_flags_beyond_an_unsigned_int_is_refused_not_truncated() -> None:
    with pytest.raises(OverflowError):
        _hs().Database([b"a"], [2**32 + 5], [0])
    with pytest.raises(OverflowError):
        _hs().Database([b"a"], [5], [2**32])
    with pytest.raises(OverflowError):
        _hs().Database([b"a"], [-1], [0])


def test_a_callback_can_scan_the_database_it_is_called_from() -> None:
    db = _hs().Database([b"a", b"b"], [1, 2], [0, 0])
    inner: set[int] = set()
    outer: list[int] = []

    def scan_again(pattern_id: int, start: int, end: int, flags: int, context: object) -> None:
        outer.append(pattern_id)
        db.scan(b"ab", native_scan.add_to_set(), 0, inner)

    db.scan(b"ab", scan_again, 0, None)
    assert outer == [1, 2]
    assert inner == {1, 2}


def test_a_thread_scans_a_database_while_another_thread_is_in_its_callback() -> None:
    db = _hs().Database([b"a", b"b"], [1, 2], [0, 0])
    inside, leave = threading.Event(), threading.Event()
    first: list[int] = []

    def wait_in_callback(pattern_id: int, start: int, end: int, flags: int, context: object) -> None:
        first.append(pattern_id)
        inside.set()
        leave.wait(10)  # waits without the GIL: the main thread scans meanwhile

    worker = threading.Thread(target=db.scan, args=(b"a", wait_in_callback, 0, None))
    worker.start()
    try:
        assert inside.wait(10)
        found: set[int] = set()
        db.scan(b"ab", native_scan.add_to_set(), 0, found)
        called: list[int] = []
        db.scan(b"ba", lambda i, *_: called.append(i), 0, None)
    finally:
        leave.set()
        worker.join(10)
    assert found == {1, 2}
    assert called == [2, 1]
    assert first == [1]


def test_other_threads_run_while_a_database_compiles() -> None:
    # a reload compiles the rule set in a worker thread so that the event loop goes on serving
    expressions = [f"w{i}\\d{{2,9}}x[a-z]{{3,}}y{i}".encode() for i in range(400)]
    ticks = 0
    stop = threading.Event()

    def tick() -> None:
        nonlocal ticks
        while not stop.wait(0.001):
            ticks += 1

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        time.sleep(0.01)
        before = ticks
        started = time.perf_counter()
        _hs().Database(expressions, list(range(len(expressions))), [0] * len(expressions))
        took = time.perf_counter() - started
        during = ticks - before
    finally:
        stop.set()
        ticker.join()
    assert took > 0.05  # long enough for the ticker to be seen running, or not
    assert during >= 5


def _resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_two_hundred_thousand_scans_leak_neither_memory_nor_references() -> None:
    hs = _hs()
    db = hs.Database([b"a", "安全".encode(), rb"\d{3}"], [1001, 1002, 1003], [FLAGS] * 3)  # ids beyond the cached ints
    data = "转到安全账户 a 482913".encode()
    add = native_scan.add_to_set()
    refused = [b"((", b"a\0", b"a"]

    def refuse(*match: object) -> None:
        raise LookupError

    def scans() -> None:
        hits: set[int] = set()
        db.scan(data, add, 0, hits)
        db.scan(b"", add, 0, hits)
        db.scan(data, lambda *match: [], 0, None)  # a new object from each call, to be released
        with pytest.raises(LookupError):
            db.scan(data, refuse, 0, hits)
        with pytest.raises(TypeError):
            db.scan(data, add, 0, frozenset())  # not a set: add_to_set is called as a function, and refuses

    def failed_compiles() -> None:
        for expression, pattern_id in zip(refused, (1, 1, 2**40), strict=True):
            with pytest.raises((ValueError, OverflowError)):
                hs.Database([expression], [pattern_id], [0])

    for _ in range(2_000):
        scans()
        failed_compiles()
    watched = (db, data, add, refuse, *refused)
    references = [sys.getrefcount(x) for x in watched]
    before = _resident()
    for _ in range(40_000):  # 200,000 scans
        scans()
    for _ in range(2_000):
        failed_compiles()
    grown = _resident() - before
    assert [sys.getrefcount(x) for x in watched] == references
    assert grown < 1 << 20, f"{grown} bytes more resident after 200,000 scans"


@cache
def _default_pairs() -> list[tuple[str, Any, Any]]:
    """(view, the binding's database, the libhs one) for every database of the shipped packs."""
    ruleset = rules.build([rules.DEFAULT_PACKS])
    pairs = [(view, db, getattr(ruleset, f"db_{view}")) for view, db in ruleset.databases.items()]
    pairs += [
        (view, db, ruleset.deferred_by_index[VIEWS.index(view)]) for view, db in ruleset.deferred_databases.items()
    ]
    assert all(type(ours).__module__ == "rules._hs" for _, _, ours in pairs)
    return pairs


_WORDS = st.sampled_from(
    ["安全账户", "转账", "验证码", "刷单", "vx", "加微信", "http://a.buzz/x", "482913", "退款", " "]
)
_ANY = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(_WORDS, _ANY), max_size=12), st.integers(min_value=1, max_value=3_000))
def test_any_text_finds_the_ids_the_binding_finds(pieces: list[str], times: int) -> None:
    text = scrub("".join(pieces) * times)
    normalised = normalise(text)
    squeezed = squeeze_normalised(normalised)
    data = {
        "raw": text.encode(),
        "normalised": normalised.encode(),
        "squeezed": squeezed.encode(),
        "homophone": fold_squeezed(squeezed).encode(),
        "domains": "\n".join(domains(normalised)).encode(),
    }
    add = native_scan.add_to_set()
    for view, binding, ours in _default_pairs():
        theirs: set[int] = set()
        found: set[int] = set()
        binding.scan(data[view], add, 0, theirs)
        ours.scan(data[view], add, 0, found)
        assert found == theirs, view
