"""The kind of sender a source address is (``sender.kind``: one of :data:`rules.spec.SENDER_KINDS`).

Asked for every message whose rules index or select on the sender's kind: a module of its own so that
mypyc compiles it with the engine (``make compile``).
"""

from __future__ import annotations

import re
from functools import lru_cache


def sender_kind(src: str, origin: str) -> str:
    """The kind of sender a source address is (one of SENDER_KINDS)."""
    if len(src) == 11 and src[0] == "1" and origin != "international" and src.isdigit():
        # a plain mobile-range number, most senders: what the general rules below say of it, directly
        if src.startswith("106"):
            return "service_106"
        if src[1:3] in _VIRTUAL_PREFIXES:
            return "virtual_operator"
        return "mobile" if src[1] in "3456789" else "other"
    return _sender_kind(src, origin)


@lru_cache(maxsize=65536)
def _sender_kind(src: str, origin: str) -> str:
    number = _NOT_DIGIT.sub("", src) if not src.isdigit() else src
    if origin == "international":
        return "international"
    if number.startswith("+") and not number.startswith("+86"):
        return "international"
    if number.startswith("00") and not number.startswith("0086"):
        return "international"
    for prefix in ("+86", "0086", "86"):
        if number.startswith(prefix) and len(number) - len(prefix) >= 11:
            number = number[len(prefix) :]
            break
    if number.startswith("106"):
        return "service_106"
    if _VIRTUAL.fullmatch(number):
        return "virtual_operator"
    if _MOBILE.fullmatch(number):
        return "mobile"
    if _SHORT_CODE.fullmatch(number):
        return "short_code"
    return "other"


_NOT_DIGIT = re.compile(r"[\s()-]")
_VIRTUAL_PREFIXES = frozenset(["70", "71", "65", "62", "67"])
_VIRTUAL = re.compile(r"1(?:" + "|".join(sorted(_VIRTUAL_PREFIXES)) + r")[0-9]{8}")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_SHORT_CODE = re.compile(r"(?:95|96|12|100)[0-9]{1,4}")
