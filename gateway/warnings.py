"""Class-0 flash warnings (闪信) to a potential victim, sent through the gateway's own binds to the SMSC.

A flash message pops up on the handset until dismissed: UCS2 with message class 0 (data_coding 0x18)
and dest_addr_subunit 1 (display). The text comes from a configured template chosen by the rule that
fired, or by its fraud category. One recipient is warned at most once per ``min_interval`` seconds, so
that a burst of fraud texts to one person does not become a burst of pop-ups.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial

from gateway.logs import get_logger
from protocols.smpp import text
from protocols.smpp.pdu import Pdu, SubmitSm, Tlv

log = get_logger("afgw.warnings")

DEFAULT_TEMPLATE = (
    "【反诈提醒】您正在接收的信息或来电疑似诈骗（{category}）。"
    "公检法不会电话办案，不存在安全账户，请勿转账汇款。如有疑问请拨打96110。"
)


@dataclass(frozen=True, slots=True)
class WarningConfig:
    sender: str = "12381"
    templates: Mapping[str, str] = field(default_factory=dict)
    min_interval: float = 300.0
    max_recipients: int = 100_000


class FlashWarner:
    """Sends flash warnings through ``submit`` (the SMSC pool's), never more than one per interval each."""

    def __init__(
        self,
        submit: Callable[[Pdu], asyncio.Future[Pdu]],
        clock: Callable[[], float],
        config: WarningConfig | None = None,
    ) -> None:
        self._submit = submit
        self._clock = clock
        self.config = config or WarningConfig()
        self._last: OrderedDict[str, float] = OrderedDict()
        self.sent = 0
        self.suppressed = 0

    def text_for(self, template: str | None, category: str | None) -> str:
        templates = self.config.templates
        chosen = (template and templates.get(template)) or (category and templates.get(category))
        chosen = chosen or templates.get("default") or DEFAULT_TEMPLATE
        return chosen.replace("{category}", category or "诈骗")

    def warn(self, recipient: str, *, template: str | None = None, category: str | None = None) -> bool:
        """Queue a flash warning to ``recipient``; False when one was sent to them too recently."""
        now = self._clock()
        last = self._last.get(recipient)
        if last is not None and now - last < self.config.min_interval:
            self.suppressed += 1
            return False
        self._last[recipient] = now
        self._last.move_to_end(recipient)
        while len(self._last) > self.config.max_recipients:
            self._last.popitem(last=False)
        message = self.text_for(template, category)
        data_coding, segments = text.flash_segments(message)
        for segment in segments:
            pdu = SubmitSm(
                source_addr=self.config.sender,
                destination_addr=recipient,
                esm_class=0x40 if segment.esm_class_udhi else 0,
                data_coding=data_coding,
                short_message=segment.short_message,
                tlvs=tuple(Tlv(tag, value) for tag, value in segment.tlvs),
            )
            self._submit(pdu).add_done_callback(partial(self._done, recipient))
        self.sent += 1
        log.info("warning.flash_sent", recipient=recipient, category=category, template=template)
        return True

    def _done(self, recipient: str, fut: asyncio.Future[Pdu]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            log.warning("warning.flash_failed", recipient=recipient, error=str(fut.exception() or "cancelled"))
            # Allow another attempt soon: the person has not been warned.
            self._last.pop(recipient, None)
        elif fut.result().command_status != 0:
            log.warning("warning.flash_refused", recipient=recipient, status=fut.result().command_status)
            self._last.pop(recipient, None)
