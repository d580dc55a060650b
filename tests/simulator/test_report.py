"""The report: its figures add up, the JSON keeps DESIGN.md's keys, the text and HTML say what happened,
and the expectations decide the exit code."""

from __future__ import annotations

import json
import re

import pytest

from simulator import report_html, report_text
from simulator.report import Report, inconsistencies
from simulator.report_expectations import evaluate, exit_code
from tests.simulator.sample_report import sample_report

#: DESIGN.md, "Demo report JSON keys", as written there.
DESIGN_KEYS = """
sms.{submitted, delivered, passed, tagged, warned, blocked, fraud_total, fraud_caught, ham_total, ham_blocked},
calls.{total, passed, labelled, warned, blocked, fraud_total, fraud_caught, verified_labels_shown,
spoof_attempts, spoof_rejected},
dissuasion.{cases, handled, escalated, success_rate, flash_sent, calls_placed, family_notified,
median_attempts, median_time_to_handle_s},
latency_ms.{smpp_p50, smpp_p99, invite_p50, invite_p99}
"""


def design_keys() -> dict[str, list[str]]:
    return {
        section: [k.strip() for k in keys.split(",")]
        for section, keys in re.findall(r"(\w+)\.\{([^}]*)\}", DESIGN_KEYS.replace("\n", " "))
    }


def test_the_sample_report_adds_up() -> None:
    assert inconsistencies(sample_report()) == []


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda r: setattr(r.sms, "blocked", r.sms.blocked + 1), "sms passed+tagged+warned+blocked vs submitted"),
        (lambda r: setattr(r.sms, "fraud_caught", r.sms.fraud_caught - 1), "fraud caught vs fraud_caught"),
        (lambda r: setattr(r.sms_by_category[0], "passed", r.sms_by_category[0].passed + 1), "sms_by_category passed"),
        (lambda r: setattr(r.calls, "spoof_rejected", r.calls.spoof_rejected - 1), "spoof table rejected"),
        (lambda r: r.interceptions.by_category["loan"].__setitem__(0, 99), "interceptions over time"),
        (lambda r: r.dissuasion.funnel.append(("handled twice", 99)), "funnel widens"),
        (lambda r: setattr(r.dissuasion, "handled", r.dissuasion.handled + 1), "handled_on_attempt vs handled"),
    ],
)
def test_figures_that_do_not_add_up_are_named(damage: object, named: str) -> None:
    report = sample_report()
    damage(report)  # type: ignore[operator]
    assert any(named in problem for problem in inconsistencies(report)), inconsistencies(report)


def test_counting_puts_each_message_in_every_figure_it_belongs_to() -> None:
    report = Report(scenario="t", seed=1, duration_s=7200, subscribers=10)
    report.count_sms("bank", fraud=False, outcome="passed", at_s=10, delivered=True)
    report.count_sms("loan", fraud=True, outcome="blocked", at_s=4000)
    report.count_sms("loan", fraud=True, outcome="passed", at_s=5000, delivered=True)
    report.count_spoof("display_name", "438 Invalid Identity Header", at_s=100)
    report.count_spoof("display_name", "200 OK", at_s=200, label_shown=True)
    report.count_verified_call(label_shown=True, at_s=300)
    assert (report.sms.submitted, report.sms.delivered, report.sms.blocked) == (3, 2, 1)
    assert (report.sms.fraud_total, report.sms.fraud_caught, report.sms.ham_total) == (2, 1, 1)
    assert (report.calls.spoof_attempts, report.calls.spoof_rejected, report.calls.total) == (2, 1, 3)
    assert report.spoofs[0].answers == {"438 Invalid Identity Header": 1, "200 OK": 1}
    assert report.interceptions.by_category == {"loan": [0, 1], "spoofed label": [1, 0]}
    assert inconsistencies(report) == []


def test_the_json_has_every_design_key_and_its_tables_add_up() -> None:
    report = sample_report()
    data = json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    for section, keys in design_keys().items():
        missing = [k for k in keys if k not in data[section]]
        assert missing == [], f"{section}: {missing}"
    assert len(design_keys()) == 4
    for key in ("passed", "tagged", "warned", "blocked"):
        assert sum(row[key] for row in data["sms_by_category"]) == data["sms"][key]
    assert sum(row["total"] for row in data["calls_by_category"]) == data["calls"]["total"]
    assert sum(s["attempts"] for s in data["spoofs"]) == data["calls"]["spoof_attempts"]
    assert data["dissuasion"]["success_rate"] == round(25 / 30, 4)
    assert data["dissuasion"]["median_attempts"] == 1.0
    assert data["timelines"][0]["entries"][3] == {
        "at_s": 36000,
        "kind": "call_ringing",
        "text": "",
        "caller": "96110",
        "label": "公安反诈专号",
        "verified": True,
        "detail": "",
    }


def _table(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title + " "))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("total "))
    return lines[start : end + 1]


def test_the_text_report_aligns_its_columns_and_ends_tables_with_totals() -> None:
    report = sample_report()
    text = report_text.render(report)
    table = _table(text, "SMS")
    header = table[0]
    for column in ("total", "passed", "tagged", "warned", "blocked"):
        end = header.index(column) + len(column)
        for line in table[1:]:
            if set(line) == {"-"}:
                continue
            assert line[end - 1].isdigit(), (column, line)
            assert end == len(line) or line[end] == " ", (column, line)
    totals_line = table[-1].split()
    assert totals_line[:6] == ["total", "400", str(report.sms.passed), "3", "4", "60"]
    assert f"fraud caught          {report.sms.fraud_caught} of {report.sms.fraud_total}" in text
    assert "display_name           3         3  403 Forbidden x2, 438 Invalid Identity Header x1" in text
    assert "10:00:00  call ringing: 公安反诈专号 [verified] (96110)" in text
    assert "09:00:12  never arrived: SMS from 17012345678 blocked by the gateway (police.safe_account)" in text


def test_expectations_decide_the_exit_code() -> None:
    report = sample_report()
    results = evaluate(
        {"sms_fraud_caught_min_percent": 95, "every_spoof_rejected": True, "ham_sms_blocked_max": 0}, report
    )
    assert [(r.name, r.held) for r in results] == [
        ("sms_fraud_caught_min_percent", True),
        ("every_spoof_rejected", True),
        ("ham_sms_blocked_max", True),
    ]
    assert exit_code(results) == 0
    failed = evaluate({"sms_fraud_caught_min_percent": 99, "every_case_handled_or_escalated": True}, report)
    assert [(r.held, r.observed) for r in failed] == [(False, "98.5%"), (False, "no")]
    assert exit_code(failed) == 1
    report.expectations = failed
    assert "FAIL fraud SMS blocked, warned or tagged, in % of fraud SMS: wanted at least 99%, got 98.5%" in (
        report_text.render(report)
    )


def test_a_share_of_nothing_is_not_a_success() -> None:
    empty = Report(scenario="t", seed=1, duration_s=60, subscribers=1)
    [result] = evaluate({"verified_labels_min_percent": 100}, empty)
    assert (result.held, result.observed) == (False, "nothing measured")
    [flag] = evaluate({"every_spoof_rejected": True}, empty)
    assert flag.held is False


def test_the_html_page_fetches_nothing_and_escapes_traffic_text() -> None:
    page = report_html.render(sample_report())
    assert "default-src 'none'" in page
    assert not re.search(r"(?i)\b(?:src|href)\s*=|https?://|@import|url\(|<script|<link", page)
    assert "日结工资&lt;b&gt;" in page
    assert "日结工资<b>" not in page


def test_latency_histograms_hold_every_sample() -> None:
    report = sample_report()
    histogram = report.smpp_latency.histogram()
    assert sum(n for _, n in histogram) == len(report.smpp_latency.samples_ms)
    assert histogram[-1][0] == round(max(report.smpp_latency.samples_ms), 3)


def test_a_run_that_saw_nothing_still_renders() -> None:
    empty = Report(scenario="quiet", seed=3, duration_s=60, subscribers=1)
    text = report_text.render(empty)
    assert text.startswith("afgw report: scenario quiet (seed 3), 1 subscribers, 1m00s simulated\n")
    assert "SMS " not in text
    page = report_html.render(empty)
    assert 'data-chart="interceptions"' not in page
    assert page.rstrip().endswith("</html>")
