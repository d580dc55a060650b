"""``afgw rules check | test | explain | scan``: output and exit codes, and the scan contract byte for byte."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

import rules
from gateway.cli import main
from tests.rules.helpers import rule_yaml

BAD = """\
rules:
  - id: t.bad
    title: bad
    category: other
    risk: extreme
    channel: sms
    detection:
      sel:
        text: x
      condition: sel and nope
    action: tag
"""

FAILING = "rules:\n" + rule_yaml(
    "sel:\n  text: 退款\ncondition: sel",
    rule_id="t.refund",
    extra="""
    tests:
      match:
        - {text: "办理退款"}
        - {text: "办理理赔"}
      no_match:
        - {text: "退款已到账"}
        - {text: "您好"}
    """,
)


@pytest.fixture(autouse=True)
def shipped_packs_compiled_once(packs: rules.RuleSet, monkeypatch: pytest.MonkeyPatch) -> None:
    """A command given no rule files builds the shipped packs; here it gets the suite's compiled copy (a
    RuleSet never changes once built) instead of compiling them again for each run. Rule files named on
    the command line are built as usual."""
    real = rules.build

    def build(paths: Iterable[str | Path]) -> rules.RuleSet:
        paths = list(paths)
        return packs if paths == [rules.DEFAULT_PACKS] else real(paths)

    monkeypatch.setattr(rules, "build", build)


def run(argv: list[str], capsys: pytest.CaptureFixture[str], stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        old = sys.stdin
        sys.stdin = io.StringIO(stdin)
    try:
        code = main(argv)
    finally:
        if stdin is not None:
            sys.stdin = old
    out, err = capsys.readouterr()
    return code, out, err


def test_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["rules", "check", "rules/packs"], capsys)
    assert code == 0
    assert out.startswith(f"ok: {len(list(Path('rules/packs').glob('*.yaml')))} file(s)")


def test_check_prints_every_error_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, "utf-8")
    code, out, _ = run(["rules", "check", str(path)], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith(f"{path}:5:11: rule t.bad.risk: expected one of low, medium, high")
    assert lines[1].startswith(f"{path}:10:26: condition: unknown selection or macro 'nope'")
    assert lines[2] == "2 errors in 1 file(s)"


def test_test_passes_on_the_shipped_packs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["rules", "test", "rules/packs"], capsys)
    assert code == 0
    last = out.splitlines()[-1]
    passed, failed = last.split(", ")
    assert failed == "0 failed"
    assert int(passed.split()[0]) >= 8 * 15
    assert "FAILED" not in out


def test_test_names_each_failure_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(FAILING, "utf-8")
    code, out, _ = run(["rules", "test", str(path)], capsys)
    assert code == 1
    lines = out.splitlines()
    assert lines[-1] == "2 passed, 2 failed"
    failures = [line for line in lines if line.startswith("FAILED")]
    text = path.read_text()
    match_line = text[: text.index("办理理赔")].count("\n") + 1
    no_match_line = text[: text.index("退款已到账")].count("\n") + 1
    assert failures[0].startswith(f"FAILED t.refund {path}:{match_line}:11 match[1]: not matched: condition 'sel'")
    assert "sel=false" in failures[0]
    assert failures[1].startswith(f"FAILED t.refund {path}:{no_match_line}:11 no_match[0]: matched, but should not:")
    assert "sel: text '退款' on normalised '退款'" in failures[1]


def test_test_exits_1_when_the_rules_do_not_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, "utf-8")
    code, out, _ = run(["rules", "test", str(path)], capsys)
    assert code == 1
    assert f"{path}:5:11:" in out
    assert out.splitlines()[-1] == "the rules did not load; no test ran"


def test_explain_shows_rule_view_and_substring(capsys: pytest.CaptureFixture[str]) -> None:
    text = "您涉嫌洗錢，請將資金轉入安 全 帳\u200b戶"
    code, out, _ = run(
        ["rules", "explain", "--channel", "sms", "--from", "17012345678", "--to", "1380", "--text", text], capsys
    )
    assert code == 0
    assert out.startswith("verdict: block  risk: high  category: police_impersonation")
    assert "police.safe-account  block high" in out
    assert "sel_account: text|contains|squeezed '安全账户' on squeezed[" in out
    assert "'安全账户'" in out
    assert "squeezed:   '您涉嫌洗钱请将资金转入安全账户'" in out


def test_explain_json_and_overridden_rules(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, _ = run(
        ["rules", "explain", "--from", "12381", "--text", "【国家反诈中心】警惕安全账户诈骗", "--json"], capsys
    )
    assert code == 0
    record = json.loads(out)
    assert record["action"] == "pass"
    assert record["rules"] == ["allow.antifraud-official"]
    assert "police.safe-account" in record["overridden"]  # with the evidence rules on its words
    assert {m["view"] for m in record["matches"]} >= {"squeezed", "fields"}


SCAN_IN = (
    '{"channel": "sms", "from": "17012345678", "to": "13800000001", "text": "请转入安全账户", "origin": "domestic"}\n'
    '{"channel": "call", "from": "+85261234567", "to": "13800000001", "text": "", "origin": "international", "x": 1}\n'
    "\n"
    '{"channel": "sms", "from": "10690000", "to": "13800000001", "text": "您的验证码是123456", "origin": "domestic"}\n'
    '{"channel": "sms", "from": "12381", "to": "13800000001", "text": "警惕安全账户诈骗", "origin": "domestic"}\n'
)
SCAN_OUT = (
    '{"action": "block", "risk": "high", "rules": ["police.ev.demand", "cs.ev.demand", "credit.ev.demand", '
    '"phish.ev.topic", "police.safe-account"], "category": "police_impersonation"}\n'
    '{"action": "label", "risk": "low", "rules": ["intl.call-label"], "category": "international"}\n'
    '{"action": "pass", "risk": "none", "rules": [], "category": null}\n'
    '{"action": "pass", "risk": "none", "rules": ["allow.antifraud-official"], "category": null}\n'
)


def test_scan_is_byte_exact(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["rules", "scan"], capsys, stdin=SCAN_IN)
    assert (code, out, err) == (0, SCAN_OUT, "")


def test_scan_reads_a_calls_attestation(capsys: pytest.CaptureFixture[str]) -> None:
    lines = [
        '{"channel": "call", "from": "95588", "to": "13800000001"}',
        '{"channel": "call", "from": "95588", "to": "13800000001", "attestation": "A"}',
    ]
    code, out, err = run(["rules", "scan"], capsys, stdin="\n".join(lines) + "\n")
    assert (code, err) == (0, "")
    assert out == (
        '{"action": "warn", "risk": "medium", "rules": ["protect.service-number-call-unproven"], '
        '"category": "spoofing"}\n'
        '{"action": "pass", "risk": "none", "rules": [], "category": null}\n'
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "stdin:2: not JSON: Expecting value at column 1"),
        ("[1, 2]", "stdin:2: expected a JSON object, got list"),
        ('{"channel": "fax"}', "stdin:2: 'channel' must be one of sms, call, not 'fax'"),
        ('{"text": 5}', "stdin:2: 'text' must be a string, not int"),
        ('{"origin": "mars"}', "stdin:2: 'origin' must be one of domestic, international, not 'mars'"),
        ('{"attestation": "a"}', "stdin:2: 'attestation' must be one of A, B, C or empty, not 'a'"),
    ],
)
def test_scan_stops_at_a_bad_line(capsys: pytest.CaptureFixture[str], line: str, problem: str) -> None:
    first = SCAN_IN.splitlines()[0]
    code, out, err = run(["rules", "scan"], capsys, stdin=f"{first}\n{line}\n{first}\n")
    assert code == 2
    assert out == SCAN_OUT.splitlines(keepends=True)[0]
    assert err.startswith(problem)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"chanel": "call", "from": "95566"}', "unknown key 'chanel' (did you mean 'channel'?)"),
        ('{"text": "x", "form": "95566"}', "unknown key 'form' (did you mean 'from'?)"),
        ('{"Text": "安全账户"}', "unknown key 'Text' (did you mean 'text'?)"),
        ('{"orgin": "international"}', "unknown key 'orgin' (did you mean 'origin'?)"),
        ('{"sender": "x"}', "unknown key 'sender' (did you mean 'sender_id'?)"),
        ('{"From": "95566"}', "unknown key 'From' (did you mean 'from'?)"),
        ('{"CHANNEL": "call"}', "unknown key 'CHANNEL' (did you mean 'channel'?)"),
        ('{"too": "13800000001"}', "unknown key 'too' (did you mean 'to'?)"),
        ('{"channel": "call", "atestation": "A"}', "unknown key 'atestation' (did you mean 'attestation'?)"),
        (
            '{"chanel": "sms", "text": 5}',
            "unknown key 'chanel' (did you mean 'channel'?); 'text' must be a string, not int",
        ),
    ],
)
def test_scan_refuses_a_key_it_does_not_know(capsys: pytest.CaptureFixture[str], line: str, problem: str) -> None:
    first = SCAN_IN.splitlines()[0]
    code, out, err = run(["rules", "scan"], capsys, stdin=f"{first}\n{line}\n{first}\n")
    assert (code, out, err) == (2, SCAN_OUT.splitlines(keepends=True)[0], f"stdin:2: {problem}\n")


@pytest.mark.parametrize("extra", ['"id": 7', '"label": "fraud"', '"category": null', '"row": 3', '"expect": "x"'])
def test_scan_ignores_extra_keys_that_misspell_nothing(capsys: pytest.CaptureFixture[str], extra: str) -> None:
    first = SCAN_IN.splitlines()[0]
    code, out, err = run(["rules", "scan"], capsys, stdin=first[:-1] + f", {extra}}}\n")
    assert (code, out, err) == (0, SCAN_OUT.splitlines(keepends=True)[0], "")


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"text": "x",', "Expecting property name enclosed in double quotes at the end of the line"),
        ('{"text": "x"', "Expecting ',' delimiter at the end of the line"),
        ('{"text" "x"}', "Expecting ':' delimiter at column 9"),
        ("not json", "Expecting value at column 1"),
        ('{"text": "x"} {}', "Extra data at column 15"),
        ("{'text': 'x'}", "Expecting property name enclosed in double quotes at column 2"),
    ],
)
def test_scan_names_the_line_of_bad_json_once(capsys: pytest.CaptureFixture[str], line: str, problem: str) -> None:
    first = SCAN_IN.splitlines()[0]
    code, out, err = run(["rules", "scan"], capsys, stdin=f"{first}\n\n{line}\n{first}\n")
    assert (code, out, err) == (2, SCAN_OUT.splitlines(keepends=True)[0], f"stdin:3: not JSON: {problem}\n")
    assert " line " not in err  # the decoder's own "line 2 column 1 (char 12)" is not repeated


def test_scan_with_other_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(FAILING, "utf-8")
    code, out, _ = run(
        ["rules", "scan", "--rules", str(path)], capsys, stdin='{"text": "退款"}\n{"text": "安全账户"}\n'
    )
    assert code == 0
    assert out == (
        '{"action": "block", "risk": "high", "rules": ["t.refund"], "category": "other"}\n'
        '{"action": "pass", "risk": "none", "rules": [], "category": null}\n'
    )


def test_scan_with_bad_rules_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, "utf-8")
    code, out, err = run(["rules", "scan", "--rules", str(path)], capsys, stdin="{}\n")
    assert (code, out) == (1, "")
    assert f"{path}:5:11:" in err


def test_scan_as_a_process_is_byte_exact() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "rules", "scan"],
        input=SCAN_IN.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == SCAN_OUT.encode()
