"""The report as a carrier engineer reads it at a glance: aligned tables with a totals line, then one line
per figure, the spoof table, dissuasion, latency, a few handsets' timelines and the expectations."""

from __future__ import annotations

from collections.abc import Sequence

from simulator.report import OutcomeRow, Report, TimelineEntry, totals

_SMS_COLUMNS = ("passed", "tagged", "warned", "blocked")
_CALL_COLUMNS = ("passed", "labelled", "warned", "blocked")


def clock(seconds: float) -> str:
    """Simulated time of day as HH:MM:SS, with the day when the run is longer than one."""
    whole = int(seconds)
    day, rest = divmod(whole, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"day {day + 1} {text}" if day else text


def span(seconds: float) -> str:
    """A duration as 1h30m, 6m30s or 45s."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def describe(entry: TimelineEntry) -> str:
    """What the person saw or did, in one line."""
    if entry.kind == "call_ringing":
        shown = entry.label or entry.caller
        mark = " [verified]" if entry.verified else ""
        number = f" ({entry.caller})" if entry.label and entry.caller else ""
        return f"call ringing: {shown}{mark}{number}"
    if entry.kind == "call_answered":
        return "answered the call"
    if entry.kind == "call_missed":
        return "did not answer" + (f" ({entry.detail})" if entry.detail else "")
    if entry.kind == "flash":
        return f"flash warning popped up: {entry.text}"
    if entry.kind == "flash_acknowledged":
        return "read and acknowledged the flash"
    if entry.kind == "sms":
        return f"SMS from {entry.caller}: {entry.text}"
    if entry.kind == "sms_tagged":
        return f"SMS from {entry.caller}, tagged: {entry.text}"
    if entry.kind == "sms_blocked":
        why = f" ({entry.detail})" if entry.detail else ""
        return f"never arrived: SMS from {entry.caller} blocked by the gateway{why}"
    if entry.kind == "family_warning":
        return f"family contact {entry.detail} warned: {entry.text}".rstrip(": ")
    return entry.kind  # pragma: no cover - every kind is handled above


def _table(title: str, rows: Sequence[OutcomeRow], columns: tuple[str, ...]) -> list[str]:
    name_width = max([len(title), len("total"), *(len(r.name) + 2 for r in rows)])
    head = f"{title:<{name_width}}  {'':5}  {'total':>7}" + "".join(f"  {c:>8}" for c in columns) + f"  {'caught':>7}"
    lines = [head]
    ordered = sorted(rows, key=lambda r: (r.fraud, r.name))
    for row in ordered:
        cells = "".join(f"  {getattr(row, c):>8}" for c in columns)
        kind = "fraud" if row.fraud else "legit"
        caught = str(row.caught) if row.fraud else ""
        lines.append(f"  {row.name:<{name_width - 2}}  {kind:5}  {row.total:>7}{cells}  {caught:>7}".rstrip())
    total = totals(rows)
    fraud_caught = totals(r for r in rows if r.fraud).caught
    cells = "".join(f"  {getattr(total, c):>8}" for c in columns)
    lines.append("-" * len(head))
    lines.append(f"{'total':<{name_width}}  {'':5}  {total.total:>7}{cells}  {fraud_caught:>7}")
    return lines


def render(report: Report) -> str:
    sms, calls, d = report.sms, report.calls, report.dissuasion
    lat = report.latency_ms()
    out = [
        f"afgw report: scenario {report.scenario} (seed {report.seed}), {report.subscribers:,} subscribers, "
        f"{span(report.duration_s)} simulated",
        "",
    ]
    if report.notes:
        out += [f"  {note}" for note in report.notes] + [""]
    if sms.submitted:
        out += _table("SMS", report.sms_by_category, _SMS_COLUMNS)
        out += [
            f"  fraud caught      {sms.fraud_caught:>6} of {sms.fraud_total} "
            f"({percent(sms.fraud_caught, sms.fraud_total)}), missed {sms.fraud_total - sms.fraud_caught}",
            f"  legit blocked     {sms.ham_blocked:>6} of {sms.ham_total}",
            f"  delivered         {sms.delivered:>6} of {sms.passed + sms.tagged + sms.warned} let through",
            f"  flash warnings    {sms.flash_warnings:>6}",
            "",
        ]
    if calls.total:
        out += _table("Calls", report.calls_by_category, _CALL_COLUMNS)
        out += [
            f"  fraud caught      {calls.fraud_caught:>6} of {calls.fraud_total} "
            f"({percent(calls.fraud_caught, calls.fraud_total)}), missed {calls.fraud_total - calls.fraud_caught}",
            f"  legit blocked     {calls.ham_blocked:>6} of {calls.ham_total}",
            f"  verified labels   {calls.verified_labels_shown:>6} of {calls.verified_total} genuine centre calls "
            "showed 反诈名片",
            f"  spoofs rejected   {calls.spoof_rejected:>6} of {calls.spoof_attempts} attempts",
            "",
        ]
    if report.spoofs:
        width = max(len("Spoof attempt"), *(len(s.kind) for s in report.spoofs))
        out.append(f"{'Spoof attempt':<{width}}  {'tries':>5}  {'rejected':>8}  answered with")
        for s in report.spoofs:
            answers = ", ".join(f"{answer} x{n}" for answer, n in sorted(s.answers.items()))
            shown = f"  LABEL SHOWN x{s.label_shown}" if s.label_shown else ""
            out.append(f"{s.kind:<{width}}  {s.attempts:>5}  {s.rejected:>8}  {answers}{shown}")
        out.append("")
    if d.cases:
        attempts = ", ".join(f"#{a}: {n}" for a, n in sorted(d.handled_on_attempt.items()))
        out += [
            "Dissuasion",
            f"  cases             {d.cases:>6}: handled {d.handled} ({percent(d.handled, d.cases)}), "
            f"escalated {d.escalated}, open {d.open}",
            f"  handled on try    {attempts or '-'} (median {d.median_attempts:g})",
            f"  time to handle    median {span(d.median_time_to_handle_s)} (simulated)",
            f"  flash sent        {d.flash_sent:>6}",
            f"  calls placed      {d.calls_placed:>6}",
            f"  family warned     {d.family_notified:>6}",
        ]
        if d.funnel:
            out.append("  funnel            " + " -> ".join(f"{stage} {n}" for stage, n in d.funnel))
        out.append("")
    out.append("Latency (ms)          p50       p99   samples")
    for name, key, series in (
        ("SMPP submit", "smpp", report.smpp_latency),
        ("SIP INVITE", "invite", report.invite_latency),
    ):
        out.append(f"  {name:<13}{lat[key + '_p50']:>9.3f} {lat[key + '_p99']:>9.3f} {len(series.samples_ms):>9}")
    out.append("")
    for timeline in report.timelines:
        out.append(f"Handset {timeline.subscriber} ({timeline.profile})")
        out += [f"  {clock(e.at_s):>8}  {describe(e)}" for e in timeline.entries] or ["  (nothing happened)"]
        out.append("")
    if report.expectations:
        out.append("Expectations")
        for e in report.expectations:
            mark = "ok  " if e.held else "FAIL"
            out.append(f"  {mark} {e.description}: wanted {e.wanted}, got {e.observed}")
        held = sum(e.held for e in report.expectations)
        out.append(f"  {held} of {len(report.expectations)} held")
    return "\n".join(out).rstrip() + "\n"
