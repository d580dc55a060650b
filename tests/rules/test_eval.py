"""``afgw rules eval``: figures on small hand-made corpora whose answers are known, thresholds, strict input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main
from tests.rules.helpers import rule_yaml

RULES = "rules:\n" + "".join(
    (
        rule_yaml("sel:\n  text: 安全账户\ncondition: sel", rule_id="t.safe", category="police_impersonation"),
        rule_yaml(
            "sel:\n  text: 退款\ncondition: sel",
            rule_id="t.refund",
            action="warn",
            risk="medium",
            category="customer_service",
        ),
        rule_yaml("sel:\n  text: 验证码\ncondition: sel", rule_id="t.code", action="tag", risk="low"),
    )
)


def line(text: str, label: str, category: str, **extra: object) -> str:
    return json.dumps(
        {
            "text": text,
            "from": "10690000",
            "to": "13800000001",
            "channel": "sms",
            "label": label,
            "category": category,
            **extra,
        },
        ensure_ascii=False,
    )


# 3 fraud (2 caught), 4 ham (1 blocked, 3 touched); 4 caught of which 2 fraud.
CORPUS = [
    line("请把钱转入安全账户", "fraud", "police_impersonation", tags=["plain"]),
    line("请配合调查，不要告诉家人", "fraud", "police_impersonation"),
    line("您的订单可办理退款", "fraud", "customer_service", tags=["plain"]),
    line("您的验证码是1234", "ham", "verification_code"),
    line("退款已到账", "ham", "shop_notice"),
    line("反诈提醒：所谓安全账户都是骗局", "ham", "anti_fraud_reminder"),
    line("晚上一起吃饭", "ham", "chat"),
]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES, "utf-8")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("\n".join(CORPUS) + "\n", "utf-8")
    return rules_file, corpus


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_overall_figures(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rules_file, corpus = files
    code, out, _ = run(["rules", "eval", str(corpus), "--rules", str(rules_file)], capsys)
    assert code == 0
    assert "7 messages: 3 fraud, 4 ham" in out
    assert "catch rate 66.67%  ham blocked 25.00%  ham touched 75.00%" in out
    assert "precision 50.00%  recall 66.67%  F1 57.14%" in out


def test_per_category_tables(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    rules_file, corpus = files
    _, out, _ = run(["rules", "eval", str(corpus), "--rules", str(rules_file)], capsys)
    lines = out.splitlines()
    police = next(x for x in lines if x.strip().startswith("police_impersonation ")).split()
    # n, caught, blocked, precision (1 of the 2 verdicts naming it is police fraud), recall, F1
    assert police[1:] == ["2", "50.00%", "50.00%", "50.00%", "50.00%", "50.00%"]
    service = next(x for x in lines if x.strip().startswith("customer_service ")).split()
    assert service[1:] == ["1", "100.00%", "0.00%", "50.00%", "100.00%", "66.67%"]
    reminder = next(x for x in lines if x.strip().startswith("anti_fraud_reminder ")).split()
    assert reminder[1:] == ["1", "100.00%", "100.00%"]
    code = next(x for x in lines if x.strip().startswith("verification_code ")).split()
    assert code[1:] == ["1", "0.00%", "100.00%"]
    assert "  plain                       fraud      2  100.00%" in lines


def test_misses_and_false_positives_name_the_rules(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    rules_file, corpus = files
    _, out, _ = run(["rules", "eval", str(corpus), "--rules", str(rules_file)], capsys)
    misses = out.split("\nmisses: ")[1].split("\nfalse positives: ")[0]
    assert misses.startswith("1\n")
    assert f"{corpus}:2 fraud/police_impersonation: pass -  '请配合调查，不要告诉家人'" in misses
    fps = out.split("\nfalse positives: ")[1]
    assert fps.startswith("3\n")
    # the blocked one first, with the rule, selection, pattern and view that made it
    first, second = fps.splitlines()[1:3]
    assert first.startswith(f"  {corpus}:6 ham/anti_fraud_reminder: block police_impersonation")
    assert second == "      t.safe sel: text '安全账户' on normalised '安全账户'"


def test_confusion_table_and_json(files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules_file, corpus = files
    out_file = tmp_path / "report.json"
    code, _, _ = run(["rules", "eval", str(corpus), "--rules", str(rules_file), "--json", str(out_file)], capsys)
    assert code == 0
    report = json.loads(out_file.read_text("utf-8"))
    assert report["summary"] == {
        "messages": 7,
        "fraud": 3,
        "ham": 4,
        "catch_rate": 0.666667,
        "ham_blocked": 0.25,
        "ham_touched": 0.75,
        "precision": 0.5,
        "recall": 0.666667,
        "f1": 0.571429,
    }
    assert report["confusion"]["police_impersonation"] == {
        "customer_service": 0,
        "police_impersonation": 1,
        "(not caught)": 1,
    }
    assert report["confusion"]["shop_notice"] == {"customer_service": 1, "police_impersonation": 0, "(not caught)": 0}
    assert [m["where"] for m in report["misses"]] == [f"{corpus}:2"]
    assert report["false_positives"][0]["rules"] == ["t.safe"]
    assert report["failed"] == []


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("--min-catch", "0.7", "catch rate 66.67% is below 70.00%"),
        ("--max-ham-blocked", "0.2", "ham blocked 25.00% is above 20.00%"),
        ("--max-ham-touched", "0.5", "ham touched 75.00% is above 50.00%"),
        ("--min-precision", "0.6", "precision 50.00% is below 60.00%"),
        ("--min-f1", "0.6", "F1 57.14% is below 60.00%"),
        ("--min-category-catch", "0.6", "catch rate of police_impersonation 50.00% is below 60.00%"),
    ],
)
def test_thresholds_fail_ci(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], option: str, value: str, problem: str
) -> None:
    rules_file, corpus = files
    code, out, _ = run(["rules", "eval", str(corpus), "--rules", str(rules_file), option, value], capsys)
    assert code == 3
    assert out.splitlines()[-1] == f"FAILED: {problem}"


@pytest.mark.parametrize(
    ("option", "value"),
    [("--min-catch", "0.66"), ("--max-ham-blocked", "0.25"), ("--max-ham-touched", "0.75"), ("--min-f1", "0.57")],
)
def test_thresholds_met(files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], option: str, value: str) -> None:
    rules_file, corpus = files
    code, out, _ = run(["rules", "eval", str(corpus), "--rules", str(rules_file), option, value], capsys)
    assert code == 0
    assert "FAILED" not in out


def test_a_corpus_without_fraud_cannot_pass_a_catch_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "ham.jsonl"
    corpus.write_text(line("晚上一起吃饭", "ham", "chat") + "\n", "utf-8")
    code, out, _ = run(["rules", "eval", str(corpus), "--min-catch", "0.9"], capsys)
    assert code == 3
    assert "catch rate -  ham blocked 0.00%" in out
    assert out.splitlines()[-1] == "FAILED: catch rate - is below 90.00%"


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ('{"text": "x", "label": "fraud", "category": "loan", "lable": "ham"}', "unknown key 'lable'"),
        ('{"text": "x", "label": "spam", "category": "loan"}', "'label' must be fraud or ham, not 'spam'"),
        ('{"text": "x", "label": "ham"}', "missing 'category'"),
        ('{"text": 5, "label": "ham", "category": "chat"}', "'text' must be a string, not int"),
        ('{"text": "x", "label": "ham", "category": "chat", "channel": "fax"}', "'channel' must be one of sms, call"),
        ('{"text": "x", "label": "ham", "category": "chat", "tags": "a"}', "'tags' must be a list of strings"),
        (
            '{"text": "", "label": "ham", "category": "bank", "channel": "call", "attestation": "D"}',
            "'attestation' must be one of A, B, C or empty, not 'D'",
        ),
        ('["text"]', "expected a JSON object, got list"),
        ('{"text": "x", ', "not JSON: "),
    ],
)
def test_bad_lines_are_named_by_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str, problem: str
) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(line("晚上一起吃饭", "ham", "chat") + "\n\n" + bad + "\n", "utf-8")
    code, out, err = run(["rules", "eval", str(corpus)], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith(f"{corpus}:3: {problem}")


def test_progress_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "long.jsonl"
    corpus.write_text("".join(line(f"消息{i}", "ham", "chat") + "\n" for i in range(2500)), "utf-8")
    code, out, err = run(["rules", "eval", str(corpus), "--limit", "1"], capsys)
    assert code == 0
    assert err.splitlines() == ["eval: 1000/2500 messages", "eval: 2000/2500 messages", "eval: 2500/2500 messages"]
    assert "eval:" not in out


def test_each_message_has_its_own_velocity(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a rate rule must not fire because many corpus lines share a sender
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        "rules:\n" + rule_yaml("rate:\n  velocity|count: {by: src, count: 3, within: 60}\ncondition: rate"), "utf-8"
    )
    corpus = tmp_path / "c.jsonl"
    corpus.write_text("".join(line(f"消息{i}", "ham", "chat") + "\n" for i in range(5)), "utf-8")
    code, out, _ = run(["rules", "eval", str(corpus), "--rules", str(rules_file)], capsys)
    assert code == 0
    assert "ham touched 0.00%" in out
