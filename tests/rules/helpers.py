"""Helpers shared by the rule engine tests."""

from __future__ import annotations

import textwrap
from typing import Any

import rules

NOW = 1_717_380_000.0  # 2024-06-03 10:00 Beijing time


def rule_yaml(
    detection: str,
    *,
    rule_id: str = "t.rule",
    action: str = "block",
    risk: str | None = "high",
    channel: str = "sms",
    category: str = "other",
    extra: str = "",
) -> str:
    """One rule, as an item of a pack's ``rules:`` list, with ``detection`` written as under ``detection:``."""
    body = textwrap.indent(textwrap.dedent(detection).strip("\n"), "      ")
    more = textwrap.indent(textwrap.dedent(extra).strip("\n"), "    ") + "\n" if extra.strip() else ""
    risk_line = f"    risk: {risk}\n" if risk else ""
    return (
        f"  - id: {rule_id}\n"
        f"    title: {rule_id}\n"
        f"    category: {category}\n"
        f"{risk_line}"
        f"    channel: {channel}\n"
        f"    action: {action}\n"
        f"    detection:\n{body}\n"
        f"{more}"
    )


def sms(text: str = "", src: str = "17012345678", dst: str = "13800000001", **kw: Any) -> rules.Message:
    kw.setdefault("now", NOW)
    return rules.Message("sms", src, dst, text, **kw)


def call(src: str = "+85261234567", dst: str = "13800000001", **kw: Any) -> rules.Message:
    kw.setdefault("now", NOW)
    return rules.Message("call", src, dst, "", **kw)
