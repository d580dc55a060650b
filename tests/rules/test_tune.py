"""``afgw rules tune``: scores fitted on tiny corpora whose right answers are known, as a patch that applies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import rules

PACK = """\
scoring:
  loan: {{tag: {tag}, warn: {warn}, block: {block}}}
rules:
  - id: loan.fee
    title: an unfreezing fee
    category: loan
    channel: sms
    score: 1
    detection:
      sel: {{text: 解冻费}}
      condition: sel
  - id: loan.word
    title: the word loan
    category: loan
    channel: sms
    score: 1
    detection:
      sel: {{text: 贷款}}
      condition: sel
  - id: loan.instant
    title: instant payout
    category: loan
    channel: sms
    score: 4
    detection:
      sel: {{text: 秒到}}
      condition: sel
  - id: loan.repay
    title: a repayment
    category: loan
    channel: sms
    score: 3
    detection:
      sel: {{text: 还款}}
      condition: sel
  - id: loan.apr
    title: an APR, without a score yet
    category: loan
    channel: sms
    action: tag
    risk: low
    detection:
      sel: {{text: 年化}}
      condition: sel
"""

# loan.fee: only ever fraud. loan.word and loan.instant: each alone ham, together fraud. loan.repay: ham.
CORPUS = (
    [("先交解冻费才能放款", "fraud")] * 10
    + [("贷款咨询请来柜台", "ham")] * 10
    + [("工资秒到账", "ham")] * 10
    + [("无抵押贷款秒到", "fraud")] * 10
    + [("本月还款提醒", "ham")] * 10
    + [("年化利率3%的贷款秒到", "fraud")] * 4
    + [("你好", "ham")] * 30
)


def write(tmp_path: Path, scale: float) -> tuple[Path, Path]:
    pack = tmp_path / "loan.yaml"
    pack.write_text(PACK.format(tag=2 * scale, warn=5 * scale, block=8 * scale), "utf-8")
    corpus = tmp_path / "dev.jsonl"
    lines = [json.dumps({"text": t, "label": label, "category": "loan"}, ensure_ascii=False) for t, label in CORPUS]
    corpus.write_text("\n".join(lines) + "\n", "utf-8")
    return pack, corpus


def afgw(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "rules", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


def suggested(stdout: str) -> dict[str, float]:
    out = {}
    for line in stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) == 5 and parts[0].startswith("loan."):
            out[parts[0]] = float(parts[2])
    return out


@pytest.mark.parametrize("scale", [1, 10])
def test_tune_finds_the_known_scores_and_the_patch_applies(tmp_path, scale):
    pack, _ = write(tmp_path, scale)
    proc = afgw(tmp_path, "tune", "dev.jsonl", "--rules", "loan.yaml", "--diff", "tune.patch")
    assert proc.returncode == 0, proc.stderr
    scores = suggested(proc.stdout)
    warn = 5 * scale
    assert scores["loan.fee"] >= warn  # always fraud: acts alone
    assert scores["loan.word"] < warn  # fraud only together ...
    assert scores["loan.instant"] < warn
    assert scores["loan.word"] + scores["loan.instant"] >= warn  # ... and together it warns
    assert scores["loan.repay"] <= 0  # only on legitimate messages
    assert "loan.apr" not in scores  # no score: left alone without --all-rules
    applied = subprocess.run(["patch", "-p0", "-i", "tune.patch"], cwd=tmp_path, capture_output=True, text=True)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    engine = rules.Engine(rules.build([pack]))
    for text, label in set(CORPUS):
        caught = engine.evaluate(rules.Message(text=text)).action.value in ("warn", "block")
        assert caught == (label == "fraud"), text


def test_all_rules_adds_a_score_line_to_rules_without_one(tmp_path):
    write(tmp_path, 1)
    proc = afgw(tmp_path, "tune", "dev.jsonl", "--rules", "loan.yaml", "--all-rules")
    assert proc.returncode == 0, proc.stderr
    assert "loan.apr" in suggested(proc.stdout)
    assert "--- loan.yaml\n+++ loan.yaml\n" in proc.stdout
    added = [line for line in proc.stdout.splitlines() if line.startswith("+    score: ")]
    assert len(added) == 5


def test_tune_without_scored_rules_says_so(tmp_path):
    (tmp_path / "p.yaml").write_text(
        "rules:\n  - {id: a, title: a, category: loan, channel: sms, action: tag, risk: low,"
        " detection: {sel: {text: x}, condition: sel}}\n",
        "utf-8",
    )
    (tmp_path / "c.jsonl").write_text('{"text": "x", "label": "fraud", "category": "loan"}\n', "utf-8")
    proc = afgw(tmp_path, "tune", "c.jsonl", "--rules", "p.yaml")
    assert proc.returncode == 0
    assert "no rule to tune" in proc.stderr


def test_tune_rejects_a_bad_corpus_line(tmp_path):
    write(tmp_path, 1)
    (tmp_path / "bad.jsonl").write_text('{"text": "x", "label": "spam", "category": "loan"}\n', "utf-8")
    proc = afgw(tmp_path, "tune", "bad.jsonl", "--rules", "loan.yaml")
    assert proc.returncode == 2
    assert proc.stderr.startswith("bad.jsonl:1: 'label' must be fraud or ham")
