"""The development corpus: committed files are what the generator makes, its size and spread meet the
issue's floor, the split keeps a message and its variants together, and the evasions do what they say."""

from __future__ import annotations

import importlib.util
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rules import evaluation
from rules.homophones import fold_squeezed
from rules.normalise import normalise, squeeze

HERE = Path(__file__).resolve().parents[2] / "corpus"


def _generator() -> Any:
    """corpus/generate.py, loaded by path: the corpus is data with its script, not an installed package."""
    spec = importlib.util.spec_from_file_location("corpus.generate", HERE / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


generate: Any = _generator()
evasion = sys.modules["corpus.evasion"]
ISSUE_FRAUD = {
    "order_brushing", "investment", "loan", "customer_service", "police_impersonation",
    "acquaintance_impersonation", "credit_repair", "game_trade", "romance", "prize", "courier_claim",
    "sextortion", "ticketing", "social_insurance", "judicial_customs", "phishing",
}  # fmt: skip
ISSUE_HAM = {
    "verification_code", "bank_notice", "courier_notice", "ecommerce_notice", "carrier_notice",
    "marketing_106", "antifraud_reminder", "government_notice", "chat_money", "travel_notice",
}  # fmt: skip


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict[str, object]]]:
    return {name: [json.loads(x) for x in (HERE / f"{name}.jsonl").open(encoding="utf-8")] for name in ("dev", "test")}


def test_the_committed_files_are_the_generated_ones() -> None:
    dev, test = generate.split()
    assert (HERE / "dev.jsonl").read_text("utf-8") == generate.render(dev), "run python corpus/generate.py"
    assert (HERE / "test.jsonl").read_text("utf-8") == generate.render(test), "run python corpus/generate.py"


def test_every_line_is_a_valid_eval_line() -> None:
    for name in ("dev", "test"):
        with (HERE / f"{name}.jsonl").open(encoding="utf-8") as f:
            samples = evaluation.read_corpus(f, name)
        assert len(samples) > 2000


def test_size_and_spread(rows: dict[str, list[dict[str, object]]]) -> None:
    everything = rows["dev"] + rows["test"]
    fraud = Counter(r["category"] for r in everything if r["label"] == "fraud")
    ham = Counter(r["category"] for r in everything if r["label"] == "ham")
    assert sum(fraud.values()) >= 2000
    assert sum(ham.values()) >= 2000
    assert set(fraud) == ISSUE_FRAUD
    assert set(ham) == ISSUE_HAM
    assert min(fraud.values()) >= 120
    assert min(ham.values()) >= 200
    for name in ("dev", "test"):  # both halves cover every category
        assert {r["category"] for r in rows[name]} == ISSUE_FRAUD | ISSUE_HAM


def test_no_message_twice(rows: dict[str, list[dict[str, object]]]) -> None:
    texts = [r["text"] for r in rows["dev"] + rows["test"]]
    assert len(texts) == len(set(texts))


def test_a_message_and_its_variants_share_a_split() -> None:
    where: dict[int, set[str]] = {}
    _, test = generate.split()
    test_texts = {r["text"] for r in test}
    for group, record in generate.records():
        where.setdefault(group, set()).add("test" if record["text"] in test_texts else "dev")
    assert all(len(splits) == 1 for splits in where.values())
    assert 0.4 < sum(splits == {"test"} for splits in where.values()) / len(where) < 0.6


def test_the_supplement_goes_to_dev_only(
    rows: dict[str, list[dict[str, object]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the hand-written supplement for the families caught least is for tuning: the test split must stay
    # exactly what the first blocks make, or its figures stop being comparable
    extra = [r for r in rows["dev"] if "set:extra" in r["tags"]]  # type: ignore[operator]
    assert not any("set:extra" in r["tags"] for r in rows["test"])  # type: ignore[operator]
    assert sum(r["label"] == "fraud" for r in extra) >= 400
    assert sum(r["label"] == "ham" for r in extra) >= 100
    _, with_supplement = generate.split()
    monkeypatch.setattr(generate, "extra_records", lambda seen: iter(()))
    dev_alone, test_alone = generate.split()
    assert test_alone == with_supplement
    assert len(dev_alone) == len(rows["dev"]) - len(extra)


def test_fraud_is_varied_beyond_its_fills(rows: dict[str, list[dict[str, object]]]) -> None:
    # with every digit, Latin letter and name slot's value blanked, most base messages still differ
    names = "|".join(sorted({*generate.SURNAMES}, key=len))
    for category in ISSUE_FRAUD:
        base = [
            r["text"]
            for r in rows["dev"] + rows["test"]
            if r["category"] == category and "evasion:none" in r["tags"]  # type: ignore[operator]
        ]
        shapes = {re.sub(rf"[0-9A-Za-z.,:/@+¥%_\-\[\]]+|(?:{names})\w?", "#", str(t)) for t in base}
        assert len(shapes) >= 0.6 * len(base), category


def test_voices_and_evasions_are_all_there(rows: dict[str, list[dict[str, object]]]) -> None:
    tags = Counter(t for r in rows["dev"] + rows["test"] if r["label"] == "fraud" for t in r["tags"])  # type: ignore[attr-defined]
    for voice in ("terse", "standard", "script"):
        assert tags[f"voice:{voice}"] >= 200
    for name in evasion.EVASIONS:
        assert tags[f"evasion:{name}"] >= 80, name


def test_reminders_quote_fraud_scripts(rows: dict[str, list[dict[str, object]]]) -> None:
    reminders = [str(r["text"]) for r in rows["dev"] + rows["test"] if r["category"] == "antifraud_reminder"]
    assert all("“" in t or "：" in t for t in reminders)
    words = ("安全账户", "佣金", "征信", "验证码", "保证金", "解冻", "退款")
    assert sum(any(w in normalise(t) for w in words) for t in reminders) >= 20


SAMPLE = "请将资金转入安全账户，下载APP联系客服vx123456"


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    ("name", "undone_by"),
    [
        ("traditional", normalise),
        ("full_width", normalise),
        ("zero_width", normalise),
        ("spacing", squeeze),
        ("emoji", squeeze),
        ("homophone", lambda t: fold_squeezed(squeeze(t))),
    ],
)
def test_each_evasion_changes_the_text_and_its_view_undoes_it(seed: int, name: str, undone_by: object) -> None:
    varied = evasion.EVASIONS[name](SAMPLE, random.Random(seed))
    assert varied != SAMPLE
    assert callable(undone_by)
    assert undone_by(varied) == undone_by(SAMPLE)


@pytest.mark.parametrize("seed", range(5))
def test_lookalikes_survive_normalisation(seed: int) -> None:
    varied = evasion.lookalikes(SAMPLE, random.Random(seed))
    assert varied != SAMPLE
    assert normalise(varied) != normalise(SAMPLE)  # Cyrillic о is not o: a job for the structural selectors


def test_the_shipped_packs_hold_todays_figures_on_the_test_split(capsys: pytest.CaptureFixture[str]) -> None:
    # a floor, not a goal: the figures of the packs tuned on dev (corpus/README.md), less a small margin;
    # raise these as the packs improve, so that no change to the packs can lose ground unnoticed
    from gateway.cli import main

    code = main(
        [
            *("rules", "eval", str(HERE / "test.jsonl"), "--limit", "1"),
            *("--min-catch", "0.98", "--max-ham-blocked", "0.004", "--max-ham-touched", "0.005"),
            *("--min-category-catch", "0.92"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out.splitlines()[-3:]
    assert "catch rate 98.44%  ham blocked 0.17%  ham touched 0.17%" in out
