"""The report as one self-contained HTML page that works offline.

Everything is inline: the style sheet, the charts (SVG drawn here: interceptions over simulated time by
category, the dissuasion funnel, latency histograms) and the handsets drawn as phone screens. The page
names no other resource, and its Content-Security-Policy (``default-src 'none'``) stops the browser from
fetching one even if a text in the report tried. Every text that came from traffic (SMS, labels, numbers)
is escaped.

Charts and screens carry ``data-`` attributes (``data-chart``, ``data-count``, ``data-kind``) so that a
browser test can check what rendered.
"""

from __future__ import annotations

from html import escape

from simulator.report import OutcomeRow, Report, TimelineEntry, totals
from simulator.report_text import clock, percent, span

#: Colours for categories, in the order they first appear; enough to tell a dozen apart.
PALETTE = (
    "#d1495b",
    "#edae49",
    "#00798c",
    "#30638e",
    "#6a4c93",
    "#8ac926",
    "#ff924c",
    "#52a675",
    "#b5838d",
    "#4267ac",
    "#c9184a",
    "#7f5539",
)
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_STYLE = """
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, "Noto Sans CJK SC", "PingFang SC", sans-serif; margin: 0; color: #1d2330;
  background: #f4f6f9; }
header { background: #1d2330; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
main { padding: 8px 28px 40px; max-width: 1200px; }
section { background: #fff; border-radius: 8px; padding: 14px 18px; margin: 16px 0;
  box-shadow: 0 1px 3px rgba(0,0,0,.08); }
h2 { font-size: 17px; margin: 0 0 10px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { flex: 1 1 160px; border: 1px solid #e2e6ee; border-radius: 6px; padding: 10px 12px; }
.card .value { font-size: 24px; font-weight: 600; }
.card .what { color: #5b6475; font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
th, td { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eef0f4; }
th:first-child, td:first-child, #spoofs td:last-child, #spoofs th:last-child { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid #1d2330; }
td.fraud { color: #b0263c; }
.legend span { display: inline-block; margin-right: 12px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; }
svg text { font-size: 11px; fill: #5b6475; }
.phones { display: flex; flex-wrap: wrap; gap: 22px; }
.phone { width: 270px; border: 10px solid #1d2330; border-radius: 30px; background: #1d2330; }
.phone .bar { color: #fff; font-size: 12px; padding: 2px 12px 6px; display: flex; justify-content: space-between; }
.phone .screen { background: #eef1f6; border-radius: 18px; min-height: 420px; padding: 10px 8px; }
.entry { background: #fff; border-radius: 10px; padding: 7px 9px; margin: 0 0 8px; font-size: 13px; }
.entry time { display: block; color: #8a93a3; font-size: 11px; }
.entry.call_ringing { background: #1d2330; color: #fff; text-align: center; }
.entry.call_ringing .label { font-size: 17px; font-weight: 600; }
.entry .verified { display: inline-block; background: #1f9d55; color: #fff; border-radius: 9px;
  padding: 0 7px; font-size: 11px; margin-left: 4px; }
.entry.flash { border: 2px solid #d1495b; box-shadow: 0 3px 10px rgba(209,73,91,.35); }
.entry.flash b { color: #d1495b; }
.entry.sms_blocked { background: transparent; border: 1px dashed #8a93a3; color: #8a93a3; }
.entry.sms_tagged .tag { color: #b0263c; font-weight: 600; }
.entry.family_warning { background: #fff6dd; }
.entry.flash_acknowledged, .entry.call_answered, .entry.call_missed { background: transparent; color: #5b6475;
  padding: 2px 9px; }
.expect li.held::marker { content: "\\2714  "; color: #1f9d55; }
.expect li.failed::marker { content: "\\2718  "; color: #d1495b; }
"""


def render(report: Report) -> str:
    title = f"afgw report: {report.scenario}"
    parts = [
        "<!doctype html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<header><h1>{escape(title)}</h1><div>seed {report.seed} &middot; {report.subscribers:,} subscribers "
        f"&middot; {escape(span(report.duration_s))} simulated</div></header><main>",
        _cards(report),
        _interceptions(report),
        _tables(report),
        _spoofs(report),
        _dissuasion(report),
        _latency(report),
        _handsets(report),
        _expectations(report),
        "</main></body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


def _card(value: str, what: str) -> str:
    return f'<div class="card"><div class="value">{escape(value)}</div><div class="what">{escape(what)}</div></div>'


def _cards(report: Report) -> str:
    sms, calls, d = report.sms, report.calls, report.dissuasion
    cards = [
        _card(
            f"{sms.fraud_caught}/{sms.fraud_total}", f"fraud SMS caught ({percent(sms.fraud_caught, sms.fraud_total)})"
        ),
        _card(str(sms.ham_blocked), f"legitimate SMS blocked, of {sms.ham_total}"),
        _card(f"{calls.fraud_caught}/{calls.fraud_total}", "fraud calls caught"),
        _card(f"{calls.spoof_rejected}/{calls.spoof_attempts}", "spoofed 反诈名片 rejected"),
        _card(f"{calls.verified_labels_shown}/{calls.verified_total}", "verified labels shown"),
        _card(f"{d.handled}/{d.cases}", f"dissuasion cases handled ({d.escalated} escalated)"),
        _card(str(sms.flash_warnings), "flash warnings"),
    ]
    return f'<section id="figures"><h2>At a glance</h2><div class="cards">{"".join(cards)}</div></section>'


def _colours(names: list[str]) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _legend(colours: dict[str, str]) -> str:
    items = "".join(f'<span><i style="background:{c}"></i>{escape(n)}</span>' for n, c in colours.items())
    return f'<div class="legend">{items}</div>'


def _interceptions(report: Report) -> str:
    series = report.interceptions.by_category
    if not series:
        return ""
    buckets = max(len(s) for s in series.values())
    colours = _colours(sorted(series))
    width, height, left, bottom = 760, 240, 36, 22
    plot_w, plot_h = width - left - 8, height - bottom - 10
    peak = max(sum(s[i] for s in series.values() if i < len(s)) for i in range(buckets)) or 1
    bar_w = plot_w / buckets
    shapes: list[str] = []
    for i in range(buckets):
        y = float(10 + plot_h)
        for name in colours:
            count = series[name][i] if i < len(series[name]) else 0
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            at = clock(i * report.interceptions.bucket_s)
            shapes.append(
                f'<rect x="{left + i * bar_w + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
                f'fill="{colours[name]}" data-category="{escape(name)}" data-count="{count}">'
                f"<title>{escape(name)} {at}: {count}</title></rect>"
            )
    step = max(1, buckets // 12)
    ticks = "".join(
        f'<text x="{left + i * bar_w:.1f}" y="{height - 6}">{clock(i * report.interceptions.bucket_s)[:5]}</text>'
        for i in range(0, buckets, step)
    )
    axis = (
        f'<line x1="{left}" y1="{10 + plot_h}" x2="{width - 8}" y2="{10 + plot_h}" stroke="#8a93a3"/>'
        f'<text x="2" y="16">{peak}</text><text x="2" y="{10 + plot_h}">0</text>'
    )
    svg = (
        f'<svg data-chart="interceptions" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="interceptions over simulated time">{axis}{"".join(shapes)}{ticks}</svg>'
    )
    return (
        '<section id="interceptions"><h2>Interceptions over simulated time, by category</h2>'
        f"<p>Messages and calls blocked, warned or tagged per {span(report.interceptions.bucket_s)} of simulated "
        f"time ({report.interceptions.total} in all).</p>{svg}{_legend(colours)}</section>"
    )


def _table(caption: str, rows: list[OutcomeRow], columns: tuple[str, ...]) -> str:
    head = "".join(f"<th>{c}</th>" for c in ("category", "", "total", *columns, "caught"))
    body = []
    for row in sorted(rows, key=lambda r: (r.fraud, r.name)):
        kind = '<td class="fraud">fraud</td>' if row.fraud else "<td>legit</td>"
        cells = "".join(f"<td>{getattr(row, c)}</td>" for c in columns)
        caught = row.caught if row.fraud else ""
        body.append(f"<tr><td>{escape(row.name)}</td>{kind}<td>{row.total}</td>{cells}<td>{caught}</td></tr>")
    total = totals(rows)
    cells = "".join(f"<td>{getattr(total, c)}</td>" for c in columns)
    caught = totals(r for r in rows if r.fraud).caught
    body.append(f'<tr class="total"><td>total</td><td></td><td>{total.total}</td>{cells}<td>{caught}</td></tr>')
    return f"<h3>{escape(caption)}</h3><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _tables(report: Report) -> str:
    tables = []
    if report.sms_by_category:
        tables.append(_table("SMS", report.sms_by_category, ("passed", "tagged", "warned", "blocked")))
    if report.calls_by_category:
        tables.append(_table("Calls", report.calls_by_category, ("passed", "labelled", "warned", "blocked")))
    if not tables:
        return ""
    return f'<section id="categories"><h2>By category</h2>{"".join(tables)}</section>'


def _spoofs(report: Report) -> str:
    if not report.spoofs:
        return ""
    rows = []
    for s in report.spoofs:
        answers = "<br>".join(f"{escape(a)} &times;{n}" for a, n in sorted(s.answers.items()))
        shown = f'<td class="fraud">{s.label_shown}</td>' if s.label_shown else "<td>0</td>"
        rows.append(
            f"<tr><td>{escape(s.kind)}</td><td>{s.attempts}</td><td>{s.rejected}</td>{shown}<td>{answers}</td></tr>"
        )
    head = "<tr><th>attempt</th><th>tries</th><th>rejected</th><th>label shown</th><th>answered with</th></tr>"
    return (
        '<section id="spoofs"><h2>Attempts to fake 反诈名片</h2>'
        f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _funnel_svg(funnel: list[tuple[str, int]]) -> str:
    width, row_h = 520, 34
    widest = max((n for _, n in funnel), default=0) or 1
    shapes = []
    for i, (stage, n) in enumerate(funnel):
        w = max(2.0, (width - 160) * n / widest)
        x = 150 + (width - 160 - w) / 2
        y = i * row_h + 4
        shapes.append(
            f'<text x="0" y="{y + 19}">{escape(stage)}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{PALETTE[2]}" '
            f'data-stage="{escape(stage)}" data-count="{n}"><title>{escape(stage)}: {n}</title></rect>'
            f'<text x="{x + w / 2 - 8:.1f}" y="{y + 19}" style="fill:#fff">{n}</text>'
        )
    height = len(funnel) * row_h + 8
    return (
        f'<svg data-chart="funnel" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="dissuasion funnel">{"".join(shapes)}</svg>'
    )


def _dissuasion(report: Report) -> str:
    d = report.dissuasion
    if not d.cases:
        return ""
    attempts = ", ".join(f"attempt {a}: {n}" for a, n in sorted(d.handled_on_attempt.items())) or "none"
    facts = (
        f"<p>{d.cases} cases: {d.handled} handled ({percent(d.handled, d.cases)}), {d.escalated} escalated, "
        f"{d.open} open. Handled on {attempts} (median {d.median_attempts:g}); median time to handle "
        f"{escape(span(d.median_time_to_handle_s))}. {d.flash_sent} flash warnings, {d.calls_placed} calls placed, "
        f"{d.family_notified} family contacts warned.</p>"
    )
    return f'<section id="dissuasion"><h2>Dissuasion</h2>{facts}{_funnel_svg(d.funnel)}</section>'


def _histogram_svg(name: str, histogram: list[tuple[float, int]], p50: float, p99: float) -> str:
    width, height, bottom = 360, 150, 20
    if not histogram:
        return (
            f'<svg data-chart="latency-{name}" width="{width}" height="30"><text x="0" y="18">no samples</text></svg>'
        )
    peak = max(n for _, n in histogram) or 1
    bar_w = width / len(histogram)
    plot_h = height - bottom - 6
    shapes = []
    for i, (bound, n) in enumerate(histogram):
        h = plot_h * n / peak
        shapes.append(
            f'<rect x="{i * bar_w + 1:.1f}" y="{6 + plot_h - h:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}" '
            f'fill="{PALETTE[3]}" data-count="{n}"><title>&le; {bound:g} ms: {n}</title></rect>'
        )
    for q, value, colour in (("p50", p50, "#1f9d55"), ("p99", p99, "#d1495b")):
        index = next((i for i, (bound, _) in enumerate(histogram) if value <= bound), len(histogram) - 1)
        x = (index + 0.5) * bar_w
        shapes.append(
            f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{6 + plot_h}" stroke="{colour}" stroke-dasharray="4 3"/>'
            # the label goes left of the line near the right edge, so that it stays inside the chart
            f'<text x="{x + 3 if x < width - 90 else x - 88:.1f}" y="{14 if q == "p50" else 28}" '
            f'style="fill:{colour}">{q} {value:g} ms</text>'
        )
    shapes.append(f'<text x="0" y="{height - 4}">{histogram[0][0]:g} ms</text>')
    shapes.append(f'<text x="{width - 60}" y="{height - 4}">{histogram[-1][0]:g} ms</text>')
    return (
        f'<svg data-chart="latency-{name}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{name} latency">{"".join(shapes)}</svg>'
    )


def _latency(report: Report) -> str:
    lat = report.latency_ms()
    smpp = _histogram_svg("smpp", report.smpp_latency.histogram(), lat["smpp_p50"], lat["smpp_p99"])
    invite = _histogram_svg("invite", report.invite_latency.histogram(), lat["invite_p50"], lat["invite_p99"])
    return (
        '<section id="latency"><h2>Latency</h2><div class="cards">'
        f'<div class="card"><div class="what">SMPP submit_sm &rarr; submit_sm_resp '
        f"({len(report.smpp_latency.samples_ms)} samples)</div>{smpp}</div>"
        f'<div class="card"><div class="what">SIP INVITE &rarr; first answer '
        f"({len(report.invite_latency.samples_ms)} samples)</div>{invite}</div></div></section>"
    )


def _entry(e: TimelineEntry) -> str:
    at = f"<time>{escape(clock(e.at_s))}</time>"
    kind = e.kind
    if kind == "call_ringing":
        mark = '<span class="verified">&#10004; 已验证</span>' if e.verified else ""
        label = f'<div class="label">{escape(e.label or e.caller)}{mark}</div>'
        number = f"<div>{escape(e.caller)}</div>" if e.label and e.caller else ""
        body = f"{label}{number}<div>来电</div>"
    elif kind == "call_answered":
        body = "接听了来电"
    elif kind == "call_missed":
        body = "未接听" + (f" ({escape(e.detail)})" if e.detail else "")
    elif kind == "flash":
        body = f"<b>闪信</b><div>{escape(e.text)}</div>"
    elif kind == "flash_acknowledged":
        body = "已阅读并确认闪信"
    elif kind == "sms":
        body = f"<div><b>{escape(e.caller)}</b></div>{escape(e.text)}"
    elif kind == "sms_tagged":
        body = f'<div><b>{escape(e.caller)}</b> <span class="tag">tagged</span></div>{escape(e.text)}'
    elif kind == "sms_blocked":
        why = f" ({escape(e.detail)})" if e.detail else ""
        body = f"未送达: an SMS from {escape(e.caller)} was blocked by the gateway{why}"
    else:  # family_warning
        body = f"亲情号 {escape(e.detail)} 已收到提醒" + (f"<div>{escape(e.text)}</div>" if e.text else "")
    return f'<div class="entry {kind}" data-kind="{kind}">{at}{body}</div>'


def _handsets(report: Report) -> str:
    if not report.timelines:
        return ""
    phones = []
    for t in report.timelines:
        entries = "".join(_entry(e) for e in t.entries) or '<div class="entry">nothing happened</div>'
        phones.append(
            f'<div class="phone" data-subscriber="{escape(t.subscriber)}"><div class="bar"><span>'
            f"{escape(t.subscriber)}</span><span>{escape(t.profile)}</span></div>"
            f'<div class="screen">{entries}</div></div>'
        )
    return (
        f'<section id="handsets"><h2>What the handsets showed</h2><div class="phones">{"".join(phones)}</div></section>'
    )


def _expectations(report: Report) -> str:
    if not report.expectations:
        return ""
    items = "".join(
        f'<li class="{"held" if e.held else "failed"}" data-held="{str(e.held).lower()}">{escape(e.description)}: '
        f"wanted {escape(e.wanted)}, got {escape(e.observed)}</li>"
        for e in report.expectations
    )
    return f'<section id="expectations"><h2>Expectations</h2><ul class="expect">{items}</ul></section>'
