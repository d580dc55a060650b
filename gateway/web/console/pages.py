"""The console's HTML, server-rendered: every value escaped, no inline script (the CSP forbids it),
numbers masked for viewers, message texts only for those who work cases."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any

from gateway.store.base import AuditRecord, Case, Transition
from gateway.web.console.auth import Session, mask
from gateway.web.console.overview import response, waiting_since

#: Beijing time: the desk reads local time.
LOCAL = timedelta(hours=8)
#: What a person may record as the end of a case, and how the console says it.
OUTCOMES = {
    "reached_by_phone": "电话联系上本人",
    "visited_in_person": "上门见到本人",
    "false_alarm": "误报",
    "could_not_reach": "无法联系",
}
STATES = {"open": "进行中", "handled": "已劝阻", "escalated": "已转人工", "closed": "已结案"}
TIER_NAMES = {"low": "低", "medium": "中", "high": "高"}
EVENTS = {
    "opened": "立案",
    "updated": "新线索",
    "claimed": "机器人接手",
    "flashed": "闪信已发送",
    "attempt": "劝阻尝试",
    "high_risk": "高风险，转人工",
    "handled": "已劝阻",
    "escalated": "升级至人工",
    "closed": "结案",
    "desk_claim": "坐席认领",
    "desk_note": "坐席备注",
    "flash_delivered": "闪信已送达",
    "flash_acknowledged": "闪信已确认",
    "robot_call": "机器人外呼结果",
    "robot_ringing": "机器人外呼振铃",
    "family_warned": "亲情号已提醒",
    "family_acknowledged": "亲情号已确认闪信",
}
#: How the queue and the case page mark the person's own answer (see overview.response).
RESPONSES = {"acknowledged": "已确认", "answered": "已接听"}
_LONG_NUMBER = re.compile(r"\+?\d{7,}")


def when(at: float | None) -> str:
    if at is None:
        return "-"
    return (datetime.fromtimestamp(at, UTC) + LOCAL).strftime("%Y-%m-%d %H:%M:%S")


def number(session: Session, value: str) -> str:
    return escape(value if session.may_act() else mask(value))


def masked_text(session: Session, text: str) -> str:
    """Free text with every phone number in it masked for viewers."""
    return escape(text if session.may_act() else _LONG_NUMBER.sub(lambda m: mask(m.group(0)), text))


def layout(title: str, body: str, session: Session | None) -> str:
    nav = ""
    if session is not None:
        audit = ' <a href="/console/audit">操作审计</a>' if session.may_audit() else ""
        nav = (
            '<nav><a href="/console/">总览</a> <a href="/console/queue">人工处置队列</a> '
            f'<a href="/console/lookup">号码查询</a>{audit}'
            f'<span class="who">{escape(session.operator)}（{escape(role_name(session.role))}）</span>'
            f"{form('/console/logout', session.csrf, '<button>退出</button>', 'inline')}</nav>"
        )
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(title)} · 反诈工作台</title>"
        '<link rel="stylesheet" href="/console/static/console.css">'
        '<script src="/console/static/console.js" defer></script></head>'
        f"<body>{nav}<main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def role_name(role: str) -> str:
    return {"viewer": "只读", "agent": "坐席", "admin": "管理员"}.get(role, role)


def form(action: str, csrf: str, inner: str, css: str = "") -> str:
    return (
        f'<form method="post" action="{escape(action)}" class="{css}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">{inner}</form>'
    )


def login_page(csrf: str, error: str = "") -> str:
    said = f'<p class="error" id="error">{escape(error)}</p>' if error else ""
    inner = (
        '<label>用户名 <input name="name" id="name" autocomplete="username" required></label>'
        '<label>密码 <input name="password" id="password" type="password" autocomplete="current-password" required>'
        '</label><button id="login">登录</button>'
    )
    return layout("登录", said + form("/console/login", csrf, inner, "login"), None)


def overview_page(session: Session, snapshot: dict[str, Any]) -> str:
    tiers = snapshot["open_by_tier"]
    cells = [
        ("interceptions_total", "近一分钟拦截", snapshot["interceptions_total"]),
        ("queue", "待人工处置", snapshot["queue"]),
        ("open_high", "进行中（高风险）", tiers["high"]),
        ("open_medium", "进行中（中风险）", tiers["medium"]),
        ("open_low", "进行中（低风险）", tiers["low"]),
        ("smsc_binds", "短信中心连接", snapshot["smsc_binds"]),
        ("sip_registrations", "SIP 注册", snapshot["sip_registrations"]),
    ]
    tiles = "".join(
        f'<div class="tile"><span class="label">{label}</span><span class="value" id="{key}">{value}</span></div>'
        for key, label, value in cells
    )
    body = (
        f'<section class="tiles" data-stream="/console/stream">{tiles}</section>'
        "<h2>近一分钟拦截（按类别、动作）</h2><table><thead><tr><th>类别</th><th>动作</th><th>条数</th></tr></thead>"
        f'<tbody id="interceptions">{interception_rows(snapshot["interceptions"])}</tbody></table>'
        "<h2>反诈名片核验</h2><table><thead><tr><th>结果</th><th>原因</th><th>次数</th></tr></thead>"
        f'<tbody id="labels">{label_rows(snapshot["labels"])}</tbody></table>'
        '<p class="hint" id="live">实时更新</p>'
    )
    return layout("总览", body, session)


def interception_rows(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(
        f"<tr><td>{escape(r['category'])}</td><td>{escape(r['action'])}</td><td>{r['count']}</td></tr>" for r in rows
    )


def label_rows(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(
        f"<tr><td>{'通过' if r['result'] == 'verified' else '拒绝'}</td><td>{escape(r['cause'] or '-')}</td>"
        f"<td>{r['count']}</td></tr>"
        for r in rows
    )


def holder(case: Case) -> str:
    from gateway.store.base import desk_holder

    return desk_holder(case)


def queue_page(session: Session, cases: list[Case], now: float) -> str:
    rows = []
    for case in cases:
        actions = ""
        if session.may_act() and not holder(case):
            actions = form(
                f"/console/case/{case.id}/claim", session.csrf, '<button class="claim">认领</button>', "inline"
            )
        waited = int((now - waiting_since(case)) // 60)
        rows.append(
            f'<tr data-case="{escape(case.id)}">'
            f'<td><a href="/console/case/{escape(case.id)}">{escape(case.id)}</a></td>'
            f'<td>{number(session, case.subscriber)}</td><td class="tier-{case.tier}">{TIER_NAMES[case.tier]}</td>'
            f"<td>{escape(STATES.get(case.state, case.state))}{response_mark(case)}</td>"
            f"<td>{escape('、'.join(case.fraud_types))}</td>"
            f"<td>{case.attempts}</td><td>{waited} 分钟</td>"
            f"<td>{escape(holder(case) or '-')}</td><td>{actions}</td></tr>"
        )
    table = (
        '<table id="queue"><thead><tr><th>案件</th><th>号码</th><th>风险</th><th>状态</th><th>诈骗类型</th>'
        "<th>机器人尝试</th><th>已等待</th><th>认领人</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows) or '<tr><td colspan=9>队列为空</td></tr>'}</tbody></table>"
    )
    return layout(f"人工处置队列（{len(cases)}）", table, session)


def response_mark(case: Case) -> str:
    said = response(case)
    if said is None:
        return ""
    kind, at = said
    return f' <span class="response {kind}" title="{when(at)}">{RESPONSES[kind]}</span>'


def case_page(session: Session, case: Case) -> str:
    facts = (
        f'<dl class="facts"><dt>号码</dt><dd id="subscriber">{number(session, case.subscriber)}</dd>'
        f'<dt>状态</dt><dd id="state">{escape(STATES.get(case.state, case.state))}{response_mark(case)}</dd>'
        f"<dt>风险</dt><dd>{TIER_NAMES[case.tier]}</dd><dt>诈骗类型</dt><dd>{escape('、'.join(case.fraud_types))}</dd>"
        f"<dt>亲情号</dt><dd>{'、'.join(number(session, f) for f in case.family) or '-'}</dd>"
        f'<dt>机器人尝试</dt><dd>{case.attempts}</dd><dt>认领人</dt><dd id="holder">{escape(holder(case) or "-")}</dd>'
        f"<dt>下次尝试</dt><dd>{when(case.due_at)}</dd></dl>"
    )
    timeline = "".join(timeline_row(session, t) for t in case.transitions)
    body = facts + (
        '<h2>时间线</h2><table id="timeline"><thead><tr><th>时间</th><th>事件</th><th>详情</th></tr></thead>'
        f"<tbody>{timeline}</tbody></table>"
    )
    if session.may_act() and case.state in ("open", "escalated"):
        path = f"/console/case/{case.id}"
        outcomes = "".join(f'<option value="{k}">{v}</option>' for k, v in OUTCOMES.items())
        if not holder(case):
            body += form(f"{path}/claim", session.csrf, '<button id="claim">认领</button>')
        body += form(
            f"{path}/note",
            session.csrf,
            '<label>备注 <textarea name="note" id="note" maxlength="500" required></textarea></label>'
            '<button id="add-note">添加备注</button>',
        )
        body += form(
            f"{path}/close",
            session.csrf,
            f'<label>处置结果 <select name="outcome" id="outcome">{outcomes}</select></label>'
            '<label>说明 <input name="note" id="close-note" maxlength="500"></label>'
            '<button id="close">结案</button>',
        )
    return layout(f"案件 {case.id}", body, session)


def timeline_row(session: Session, t: Transition) -> str:
    detail = t.detail
    if t.event == "closed" and detail:
        who, _, rest = detail.partition(" ")
        outcome, _, note = rest.partition(" ")
        if outcome in OUTCOMES:
            detail = " ".join(x for x in (who, OUTCOMES[outcome], note) if x)
    return (
        f'<tr class="event-{escape(t.event)}"><td>{when(t.at)}</td><td>{escape(EVENTS.get(t.event, t.event))}</td>'
        f"<td>{masked_text(session, detail)}</td></tr>"
    )


def lookup_page(session: Session, wanted: str, cases: list[Case], records: list[AuditRecord], error: str = "") -> str:
    body = (
        '<form method="get" action="/console/lookup"><label>用户号码 '
        f'<input name="number" id="number" value="{escape(wanted)}" inputmode="numeric"></label>'
        '<button id="lookup">查询</button></form>'
    )
    if error:
        body += f'<p class="error">{escape(error)}</p>'
    if wanted and not error:
        rows = "".join(
            f'<tr><td><a href="/console/case/{escape(c.id)}">{escape(c.id)}</a></td>'
            f"<td>{escape(STATES.get(c.state, c.state))}</td><td>{TIER_NAMES[c.tier]}</td>"
            f"<td>{escape('、'.join(c.fraud_types))}</td><td>{when(c.opened_at)}</td></tr>"
            for c in cases
        )
        body += (
            '<h2>案件</h2><table id="cases"><thead><tr><th>案件</th><th>状态</th><th>风险</th><th>诈骗类型</th>'
            f"<th>立案时间</th></tr></thead><tbody>{rows or '<tr><td colspan=5>无</td></tr>'}</tbody></table>"
        )
        show_text = session.may_act()
        found = "".join(
            f"<tr><td>{when(r.at)}</td><td>{escape(r.kind)}</td>"
            f"<td>{number(session, str(r.fields.get('caller') or r.fields.get('source', '')))}</td>"
            f"<td>{escape(', '.join(map(str, r.fields.get('rules', []))) or str(r.fields.get('reason', '')))}</td>"
            f"<td>{escape(str(r.fields.get('text', ''))) if show_text else '（已隐藏）'}</td></tr>"
            for r in records
        )
        body += (
            '<h2>近期拦截</h2><table id="interceptions"><thead><tr><th>时间</th><th>类型</th><th>来源</th>'
            f"<th>规则</th><th>内容</th></tr></thead><tbody>{found or '<tr><td colspan=5>无</td></tr>'}</tbody></table>"
        )
    return layout("号码查询", body, session)


def refusal_page(title: str, said: str, session: Session | None) -> str:
    return layout(title, f'<p class="error" id="error">{escape(said)}</p>', session)


#: The desk's own audit records, as the audit page names them.
AUDIT_KINDS = {
    "console.login": "登录",
    "console.login_failed": "登录失败",
    "console.login_throttled": "登录受限",
    "console.logout": "退出",
    "console.session_ended": "会话失效",
    "console.refused": "操作被拒绝",
    "console.case_claim": "认领案件",
    "console.case_note": "添加备注",
    "console.case_close": "结案",
    "console.lookup": "号码查询",
}


def audit_page(session: Session, records: list[AuditRecord], operator: str) -> str:
    """The operators' actions, newest first, for the admin: who logged in (or failed to, from where),
    who was refused what, who claimed, noted, closed or looked up what."""
    rows = "".join(
        f'<tr class="audit-{escape(r.kind.removeprefix("console."))}"><td>{when(r.at)}</td>'
        f"<td>{escape(str(r.fields.get('operator', '')) or '-')}</td>"
        f"<td>{escape(AUDIT_KINDS.get(r.kind, r.kind))}</td><td>{audit_detail(r)}</td>"
        f"<td>{escape(str(r.fields.get('source', '')))}</td></tr>"
        for r in records
    )
    body = (
        '<form method="get" action="/console/audit"><label>操作员 '
        f'<input name="operator" id="operator" value="{escape(operator)}"></label>'
        '<button id="filter">筛选</button></form>'
        '<table id="audit"><thead><tr><th>时间</th><th>操作员</th><th>操作</th><th>内容</th><th>来源地址</th>'
        f"</tr></thead><tbody>{rows or '<tr><td colspan=5>无</td></tr>'}</tbody></table>"
    )
    return layout("操作审计", body, session)


def audit_detail(record: AuditRecord) -> str:
    f = record.fields
    said = []
    if case_id := str(f.get("case_id", "")):
        said.append(f'<a href="/console/case/{escape(case_id)}">案件 {escape(case_id)}</a>')
    for key in ("detail", "number", "role", "path", "why"):
        if value := str(f.get(key, "")):
            said.append(escape(value))
    return " ".join(said)
