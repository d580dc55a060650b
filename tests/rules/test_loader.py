"""Loading and validation: every problem of a file in one pass, each at its exact file:line:col with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

import rules
from rules.loader import load_collecting


def pos(text: str, needle: str, nth: int = 0) -> str:
    """``line:col`` (1-based) of the nth occurrence of ``needle`` in ``text``."""
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    col = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"{line}:{col}"


def errors_of(tmp_path: Path, text: str, name: str = "f.yaml") -> list[str]:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return [str(e) for e in rules.check([path])]


def only(errors: list[str], fragment: str) -> str:
    found = [e for e in errors if fragment in e]
    assert len(found) == 1, (fragment, errors)
    return found[0]


QUOTE = "'"

GOOD = """\
rules:
  - id: t.good
    title: good
    category: other
    risk: low
    channel: sms
    detection:
      sel:
        text: 安全账户
      condition: sel
    action: tag
"""


def test_a_good_file_has_no_errors(tmp_path: Path) -> None:
    assert errors_of(tmp_path, GOOD) == []


def test_structural_errors_are_all_reported_with_locations_and_hints(tmp_path: Path) -> None:
    text = """\
rules:
  - id: t.one
    titel: typo
    category: investmnt
    risk: 3
    channel: sms
    dissuade: yes
    detection:
      sel:
        from: 12381
        text|contians: x
      condition: sel
    action: block
"""
    errors = errors_of(tmp_path, text)
    path = str(tmp_path / "f.yaml")
    titel = only(errors, "unknown field 'titel'")
    assert titel.startswith(f"{path}:{pos(text, 'titel')}: ")
    assert "did you mean 'title'?" in titel
    missing = only(errors, "missing required field 'title'")
    assert missing.startswith(f"{path}:{pos(text, 'id: t.one')}: ")
    category = only(errors, "category: expected one of")
    assert category.startswith(f"{path}:{pos(text, 'investmnt')}: ")
    assert "did you mean 'investment'?" in category
    assert only(errors, "risk: expected one of").startswith(f"{path}:{pos(text, '3')}: ")
    dissuade = only(errors, "dissuade: expected true or false")
    assert dissuade.startswith(f"{path}:{pos(text, 'yes')}: ")
    assert "YAML 1.1" in dissuade
    number = only(errors, "from: expected")
    assert number.startswith(f"{path}:{pos(text, '12381')}: ")
    assert "quote it, as in '12381'" in number
    modifier = only(errors, "unknown operator or modifier 'contians'")
    assert modifier.startswith(f"{path}:{pos(text, 'text|contians')}: ")
    assert "did you mean 'contains'?" in modifier
    # sorted by position
    lines = [int(e[len(path) + 1 :].split(":")[0]) for e in errors]
    assert lines == sorted(lines)


def test_duplicate_keys_are_errors_in_the_same_pass(tmp_path: Path) -> None:
    text = GOOD.replace("    risk: low\n", "    risk: low\n    risk: high\n").replace("title: good", "title: 12")
    errors = errors_of(tmp_path, text)
    dup = only(errors, "duplicate key 'risk'")
    assert dup.startswith(f"{tmp_path / 'f.yaml'}:{pos(text, 'risk: high')}: ")
    assert "first given at line 5" in dup
    assert only(errors, "title: expected").startswith(f"{tmp_path / 'f.yaml'}:{pos(text, '12')}: ")


def test_yaml_11_words_stay_strings_where_strings_are_expected(build: object, tmp_path: Path) -> None:
    # `no`, `on`, `off`, `y` are keywords here, not booleans: YAML 1.2 scalars.
    text = GOOD.replace("text: 安全账户", "text|raw: [no, on, off, y]")
    path = tmp_path / "f.yaml"
    path.write_text(text, "utf-8")
    engine = rules.Engine(rules.build([path]))
    assert engine.evaluate(rules.Message(text="say no")).rules == ("t.good",)
    assert engine.evaluate(rules.Message(text="nothing")).rules == ("t.good",)  # 'no' in 'nothing'
    assert engine.evaluate(rules.Message(text="yes")).rules == ("t.good",)  # 'y' in 'yes'
    assert engine.evaluate(rules.Message(text="abc")).rules == ()


def test_true_where_a_keyword_is_expected_asks_for_quotes(tmp_path: Path) -> None:
    text = GOOD.replace("text: 安全账户", "text: [true, 安全]")
    error = only(errors_of(tmp_path, text), "expected a non-empty string, got True")
    assert error.startswith(f"{tmp_path / 'f.yaml'}:{pos(text, 'true')}: ")
    assert "quote it, as in 'true'" in error


def test_unknown_references_are_reported_where_they_are_made(tmp_path: Path) -> None:
    text = """\
lists:
  wechat: [微信, 薇信]
macros:
  has_link:
    domain|exists: true
rules:
  - id: t.refs
    title: refs
    category: other
    risk: low
    channel: sms
    detection:
      sel:
        text: {list: wechta}
      condition: sel and has_lnk
    action: tag
  - id: t.allow
    title: allow
    category: official
    channel: sms
    detection:
      sel:
        from: "12381"
      condition: sel
    action: pass
    overrides: [t.refs, t.nope, investmnt]
"""
    errors = errors_of(tmp_path, text)
    path = str(tmp_path / "f.yaml")
    lst = only(errors, "unknown list 'wechta'")
    assert lst.startswith(f"{path}:{pos(text, 'wechta')}: ")
    assert "did you mean 'wechat'?" in lst
    macro = only(errors, "unknown selection or macro 'has_lnk'")
    assert macro.startswith(f"{path}:{pos(text, 'has_lnk')}: ")
    override = only(errors, "unknown rule or category 't.nope'")
    assert override.startswith(f"{path}:{pos(text, 't.nope')}: ")
    category = only(errors, "unknown rule or category 'investmnt'")
    assert "did you mean 'investment'?" in category


def test_duplicate_ids_across_files_name_the_first(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, "utf-8")
    (tmp_path / "b.yaml").write_text(GOOD, "utf-8")
    errors = [str(e) for e in rules.check([tmp_path])]
    assert len(errors) == 1
    assert errors[0].startswith(f"{tmp_path / 'b.yaml'}:{pos(GOOD, 't.good')}: duplicate rule id 't.good'")
    assert f"first defined at {tmp_path / 'a.yaml'}:2:9" in errors[0]


def test_duplicate_lists_and_macros_across_files(tmp_path: Path) -> None:
    shared = "lists:\n  l: [a]\nmacros:\n  m:\n    text: a\n"
    (tmp_path / "a.yaml").write_text(shared, "utf-8")
    (tmp_path / "b.yaml").write_text(shared, "utf-8")
    errors = [str(e) for e in rules.check([tmp_path])]
    assert any(e.startswith(f"{tmp_path / 'b.yaml'}:2:3: list 'l' is defined twice") for e in errors)
    assert any(e.startswith(f"{tmp_path / 'b.yaml'}:4:3: macro 'm' is defined twice") for e in errors)


@pytest.mark.parametrize(
    ("condition", "needle", "message"),
    [
        ("sel and", "and", "condition ends too early"),
        ("sel and (sel or", "or", "condition ends too early"),
        ("sel sel", "sel", "unexpected 'sel'"),
        ("sel & sel", "&", "unexpected '&'"),
        ("(sel", "(", "missing ')'"),
        ("sel)", ")", "unexpected ')'"),
        ("3 of sel*", "3", "can never be true"),
        ("1 of foo*", "foo*", "matches no selection"),
        ("0 of sel*", "0", "a count of 0 is always true"),
        ("sel and nope", "nope", "unknown selection or macro 'nope'"),
    ],
)
def test_condition_errors_point_at_the_token(tmp_path: Path, condition: str, needle: str, message: str) -> None:
    text = GOOD.replace("condition: sel", f'condition: "{condition}"').replace("      sel:\n", "      sel:\n", 1)
    errors = errors_of(tmp_path, text)
    error = only(errors, message)
    start = text.index(f'"{condition}"') + 1
    if message in ("condition ends too early", "missing ')'"):
        offset = len(condition)
    else:
        offset = condition.index(needle, 1 if needle == "sel" else 0) if needle in condition else 0
    line = text.count("\n", 0, start) + 1
    col = start - (text.rfind("\n", 0, start) + 1) + 1 + offset
    assert error.startswith(f"{tmp_path / 'f.yaml'}:{line}:{col}: condition: "), error


def test_unused_selection_and_macro_name_clash(tmp_path: Path) -> None:
    text = "macros:\n  sel:\n    text: a\n" + GOOD.replace(
        "      condition: sel", "      other:\n        text: b\n      condition: sel"
    )
    errors = errors_of(tmp_path, text)
    assert only(errors, "selection 'other' is not used").startswith(f"{tmp_path / 'f.yaml'}:{pos(text, 'other:')}: ")
    assert only(errors, "has the name of a shared macro").startswith(f"{tmp_path / 'f.yaml'}:{pos(text, 'sel:', 1)}: ")


@pytest.mark.parametrize(
    ("replace", "message"),
    [
        ("    risk: low\n", "action: tag needs the field 'risk'"),
        ("    action: tag\n", "missing required field 'action'"),
    ],
)
def test_required_fields(tmp_path: Path, replace: str, message: str) -> None:
    errors = errors_of(tmp_path, GOOD.replace(replace, ""))
    assert only(errors, message).startswith(f"{tmp_path / 'f.yaml'}:2:5: ")


def test_conditional_fields(tmp_path: Path) -> None:
    text = GOOD.replace("action: tag", "action: label\n    overrides: [t.good]")
    errors = errors_of(tmp_path, text)
    assert only(errors, "needs the field 'label'").startswith(f"{tmp_path / 'f.yaml'}:2:5: ")
    assert only(errors, "'overrides' is not allowed with action: label").startswith(
        f"{tmp_path / 'f.yaml'}:{pos(text, 'overrides')}: "
    )


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("txt", "unknown field 'txt'"),
        ("text|squeezed|re", "the operator 're' must follow the field"),
        ("text|raw|squeezed", "raw and squeezed are two views"),
        ("text|squeezed|homophone", "squeezed and homophone are two views"),
        ("text|homophone|raw", "raw and homophone are two views"),
        ("text|nocase|nocase", "modifier 'nocase' given twice"),
        ("from|squeezed", "unknown operator or modifier 'squeezed' for from"),
    ],
)
def test_selector_key_errors(tmp_path: Path, key: str, message: str) -> None:
    text = GOOD.replace("text: 安全账户", f"{key}: x")
    error = only(errors_of(tmp_path, text), message)
    assert error.startswith(f"{tmp_path / 'f.yaml'}:{pos(text, key)}: ")


@pytest.mark.parametrize(
    ("selector", "value", "needle", "message", "hint"),
    [
        ("text|squeezed", "'--'", "'--'", "is empty in the squeezed view", None),
        ("text", '"\\u200b"', '"', "is empty in the normalised view", None),
        ("text|re", "'[A-Z]+'", "'[A-Z]", "'A' in '[A-Z]+' never matches the normalised view", "add |nocase"),
        ("text|re", "'帳戶'", "'帳", "'帳' in '帳戶' never matches the normalised view", "write '账' instead"),
        ("text|re|squeezed", "'a b'", "'a b'", "' ' in 'a b' never matches the squeezed view", None),
        ("text|re|homophone", "'a b'", "'a b'", "' ' in 'a b' never matches the homophone view", None),
        ("text|re|homophone", "'安，全'", "'安", "'，' in '安，全' never matches the homophone view", None),
        ("text|homophone", "'--'", "'--'", "is empty in the homophone view", None),
        ("domain", "'not a domain'", "'not", "is not a domain name", "example.com"),
        ("time", "['10:00', '10:00']", "['10", "is empty", None),
        ("time", "['25:00', '10:00']", "'25", "is not a time of day HH:MM", None),
        ("velocity", "{by: src, count: 0, within: 60}", "0,", "must be at least 1", None),
        ("velocity", "{by: source, count: 3, within: 60}", "source", "expected one of src, dst", "did you mean 'src'?"),
    ],
)
def test_value_errors(tmp_path: Path, selector: str, value: str, needle: str, message: str, hint: str | None) -> None:
    text = GOOD.replace("text: 安全账户", f"{selector}: {value}")
    error = only(errors_of(tmp_path, text), message)
    assert error.startswith(f"{tmp_path / 'f.yaml'}:{pos(text, needle)}: "), error
    if hint:
        assert hint in error


def test_regex_the_matcher_cannot_compile_is_traced_to_its_value(tmp_path: Path) -> None:
    text = GOOD.replace("text: 安全账户", "text|re: ['ok+', '(a)\\1', 'a*', '(abc']")
    errors = errors_of(tmp_path, text)
    path = str(tmp_path / "f.yaml")
    backref = only(errors, "Back-references are unsupported")
    assert backref.startswith(f"{path}:{pos(text, QUOTE + '(a)')}: t.good: text|re: ")
    assert "no backreferences" in backref
    assert only(errors, "matches empty buffer").startswith(f"{path}:{pos(text, QUOTE + 'a*')}: ")
    assert only(errors, "Missing close parenthesis").startswith(f"{path}:{pos(text, QUOTE + '(abc')}: ")
    assert len(errors) == 3


def test_regex_from_a_shared_list_is_traced_to_the_list(tmp_path: Path) -> None:
    text = "lists:\n  bad: ['x(y']\n" + GOOD.replace("text: 安全账户", "text|re: {list: bad}")
    error = only(errors_of(tmp_path, text), "Missing close parenthesis")
    assert error.startswith(f"{tmp_path / 'f.yaml'}:2:9: ")


def test_test_cases_are_validated(tmp_path: Path) -> None:
    text = GOOD + "    tests:\n      match:\n        - {from: 12381, channel: fax, now: '2024-13-01T00:00'}\n"
    errors = errors_of(tmp_path, text)
    assert only(errors, "from: expected").startswith(f"{tmp_path / 'f.yaml'}:{pos(text, '12381')}: ")
    assert only(errors, "channel: expected one of sms, call").startswith(f"{tmp_path / 'f.yaml'}:{pos(text, 'fax')}")


def test_an_attestation_is_checked_where_it_is_written(tmp_path: Path) -> None:
    text = GOOD + "    tests:\n      match:\n        - {channel: call, from: '95588', attestation: verified}\n"
    error = only(errors_of(tmp_path, text), 'attestation: expected one of A, B, C, ""')
    assert error.startswith(f"{tmp_path / 'f.yaml'}:{pos(text, 'verified')}: ")
    text = GOOD.replace("text: 安全账户", "attestation: D")
    error = only(errors_of(tmp_path, text), "sel.attestation: expected one of A, B, C,")
    assert error.startswith(f"{tmp_path / 'f.yaml'}:{pos(text, 'D', text.count('D') - 1)}: ")


def test_invalid_yaml_and_missing_files(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "rules:\n  - id: [x\n")
    assert len(errors) == 1
    assert errors[0].startswith(f"{tmp_path / 'f.yaml'}:")
    assert "invalid YAML" in errors[0]
    missing = [str(e) for e in rules.check([tmp_path / "nope.yaml"])]
    assert missing == [f"{tmp_path / 'nope.yaml'}:1:1: no such file or directory"]


def test_a_pack_must_be_a_mapping(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, "- just\n- a list\n")
    assert errors == [f"{tmp_path / 'f.yaml'}:1:1: a rule pack is a mapping with lists, macros and rules"]


def test_every_error_of_a_file_in_one_pass(tmp_path: Path) -> None:
    text = """\
pack: demo
lists:
  and: [x]
rules:
  - id: Bad_Id
    title: t
    category: other
    risk: low
    channel: sms
    detection:
      sel:
        text|re: '(x'
      condition: sel
    action: tag
  - id: t.two
    title: t
    category: other
    risk: extreme
    channel: fax
    detection:
      sel:
        origin: abroad
      condition: sel or
    action: tag
"""
    errors = errors_of(tmp_path, text)
    path = str(tmp_path / "f.yaml")
    expected = [
        (pos(text, "and:"), "lists.and: 'and' is a word of the condition language"),
        (pos(text, "Bad_Id"), "rule Bad_Id.id: 'Bad_Id' is not a rule id"),
        (pos(text, "'(x'"), "Bad_Id: text|re: '(x' cannot be compiled: Missing close parenthesis"),
        (pos(text, "extreme"), "rule t.two.risk: expected one of low, medium, high"),
        (pos(text, "fax"), "rule t.two.channel: expected one of sms, call, both"),
        (pos(text, "abroad"), "rule t.two.sel.origin: expected one of domestic, international"),
        (
            f"{pos(text, 'sel or')[:-2]}{int(pos(text, 'sel or').split(':')[1]) + 6}",
            "condition: condition ends too early",
        ),
    ]
    assert len(errors) == len(expected), errors
    for error, (where, message) in zip(errors, expected, strict=True):
        assert error.startswith(f"{path}:{where}: {message}"), (error, where, message)


def test_load_collecting_builds_what_it_can(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(GOOD + GOOD.replace("rules:\n", "").replace("t.good", "t.bad").replace("risk: low", "risk: x"))
    collection, errors = load_collecting([path])
    # the bad rule is still built (its patterns get checked when compiling); the error keeps it from use
    assert [r.id for r in collection.rules] == ["t.good", "t.bad"]
    assert [str(e).split(": ", 1)[1] for e in errors] == [
        "rule t.bad.risk: expected one of low, medium, high, got 'x' (hint: allowed: low, medium, high)"
    ]
    with pytest.raises(rules.SourceErrors):
        rules.build([path])
