"""A report as a run would fill it, built through the report's own counting methods from a seeded draw."""

from __future__ import annotations

import random

from simulator.report import HandsetTimeline, Report, TimelineEntry

DAY = 86400.0
SMS_CATEGORIES = ("order_brushing", "investment", "loan", "police_impersonation", "phishing")
LEGIT_KINDS = ("bank", "courier", "shop", "friend")
SPOOF_ANSWERS = {
    "display_name": ("403 Forbidden", "438 Invalid Identity Header"),
    "headers": ("403 Forbidden",),
    "authorised_number": ("428 Use Identity Header", "437 Unsupported Credential", "438 Invalid Identity Header"),
    "token_misuse": ("403 Stale Date", "438 Invalid Identity Header"),
}


def sample_report(seed: int = 1) -> Report:
    rng = random.Random(seed)
    report = Report(scenario="default", seed=seed, duration_s=DAY, subscribers=10_000)
    for _ in range(400):
        at = rng.uniform(6 * 3600, 23 * 3600)
        if rng.random() < 0.2:
            outcome = rng.choices(("blocked", "warned", "tagged", "passed"), (80, 10, 5, 5))[0]
            report.count_sms(
                rng.choice(SMS_CATEGORIES), fraud=True, outcome=outcome, at_s=at, delivered=outcome != "blocked"
            )
        else:
            report.count_sms(rng.choice(LEGIT_KINDS), fraud=False, outcome="passed", at_s=at, delivered=True)
    report.sms.flash_warnings = report.sms.warned + report.sms.blocked
    for _ in range(60):
        report.count_call("people", fraud=False, outcome="passed", at_s=rng.uniform(0, DAY))
    for _ in range(12):
        outcome = rng.choice(("warned", "blocked", "labelled"))
        report.count_call("police_impersonation", fraud=True, outcome=outcome, at_s=rng.uniform(0, DAY))
    for _ in range(8):
        report.count_verified_call(label_shown=True, at_s=rng.uniform(8 * 3600, 20 * 3600))
    for kind, answers in SPOOF_ANSWERS.items():
        for _ in range(3):
            report.count_spoof(kind, rng.choice(answers), at_s=rng.uniform(10 * 3600, 16 * 3600))
    for _ in range(200):
        report.smpp_latency.samples_ms.append(rng.lognormvariate(0.3, 0.5))
    for _ in range(80):
        report.invite_latency.samples_ms.append(rng.lognormvariate(1.0, 0.4))
    d = report.dissuasion
    d.cases, d.escalated = 30, 4
    d.handled_on_attempt = {1: 15, 2: 7, 3: 3}
    d.handled = 25
    d.times_to_handle_s = [rng.uniform(20, 2400) for _ in range(25)]
    d.flash_sent, d.calls_placed, d.family_notified = 62, 71, 9
    d.funnel = [("opened", 30), ("reached", 28), ("acknowledged", 25), ("handled", 25)]
    report.timelines = [
        HandsetTimeline(
            "8613800000042",
            "trusting",
            [
                TimelineEntry(9 * 3600 + 12, "sms_blocked", caller="17012345678", detail="police.safe_account"),
                TimelineEntry(9 * 3600 + 13, "flash", text="【反诈提醒】公检法不会要求转账到安全账户，请勿转账。"),
                TimelineEntry(9 * 3600 + 95, "flash_acknowledged"),
                TimelineEntry(10 * 3600, "call_ringing", caller="96110", label="公安反诈专号", verified=True),
                TimelineEntry(10 * 3600 + 6, "call_answered"),
                TimelineEntry(10 * 3600 + 7, "family_warning", detail="8613900000007", text="您的家人可能正遭遇诈骗"),
            ],
        ),
        HandsetTimeline(
            "8613800001234",
            "careful",
            [
                TimelineEntry(14 * 3600, "sms", caller="10690", text="【某银行】您的信用卡本期账单1200元"),
                TimelineEntry(15 * 3600, "sms_tagged", caller="17099998888", text="【疑似诈骗】刷单兼职，日结工资<b>"),
                TimelineEntry(16 * 3600, "call_ringing", caller="+85212345678", label="境外来电"),
                TimelineEntry(16 * 3600 + 30, "call_missed", detail="unknown number"),
            ],
        ),
    ]
    return report
