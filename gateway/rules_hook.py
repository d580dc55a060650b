"""The rule engine behind the gateway's two inspection hooks, and what each verdict makes the gateway do.

SMS: block -> ESME_RSUBMITFAIL, content in the audit log, and the recipient is warned; warn -> delivered,
and a class-0 flash warning goes to the recipient; tag -> delivered with the tag prefix (【疑似诈骗】);
label -> delivered with the label as prefix (【境外短信】).
Calls: block -> 608 Rejected (RFC 8688: rejected by analytics) with a Reason header; warn -> the call
rings with a label (the warning rule's own label, else the call tag) and the callee gets a flash
warning; tag and label -> the call rings with the label.
Every decision other than pass is logged with its rule ids. The engine answers in memory, so both hooks
return a Decision at once and the proxies never switch tasks for them, except for an SMS that campaign
detection counts (gateway.campaigns): its answer waits for the store, which holds the campaigns; and,
on Redis, for an SMS or call that a velocity rule counts: the counters are shared by every gateway on
that Redis (gateway.store.redis_velocity), so the message is recorded and counted there first.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol

from gateway.campaigns import CampaignTracker, Judged
from gateway.dissuasion.scoring import Sighting
from gateway.inspection import PASS, Action, Call, Decision, SmsMessage
from gateway.logs import get_logger
from gateway.metrics import GatewayMetrics
from gateway.warnings import FlashWarner
from rules import Action as RuleAction
from rules import Engine, Message, Verdict
from rules.normalise import scrub, views
from rules.velocity import Counted, Question, VelocityStore

log = get_logger("afgw.rules")

DEFAULT_TAG = "【疑似诈骗】"
DEFAULT_CALL_TAG = "疑似诈骗"
_ACTIONS = {
    RuleAction.BLOCK: Action.BLOCK,
    RuleAction.WARN: Action.WARN,
    RuleAction.TAG: Action.TAG,
    RuleAction.LABEL: Action.LABEL,
}
#: An Enum's ``value`` is a Python-level property: looked up once per verdict, it showed on every SMS.
_ACTION_VALUES = {action: action.value for action in RuleAction}
# Looked up once: an Enum member lookup costs more than the test it feeds on CPython 3.11.
_RULE_PASS = RuleAction.PASS
_BLOCK, _WARN, _TAG, _LABEL = Action.BLOCK, Action.WARN, Action.TAG, Action.LABEL
# Label values of the commonest decision, built once.
_SMS_PASS = ("sms", "pass", "none")
_CALL_PASS = ("call", "pass", "none")


def origin_of(number: str, home_country: str = "86") -> str:
    """international when the number carries a foreign country code (+852..., 00852...), else domestic."""
    digits = number.strip()
    if digits.startswith("+"):
        digits = digits[1:]
    elif digits.startswith("00"):
        digits = digits[2:]
    else:
        return "domestic"
    return "domestic" if digits.startswith(home_country) else "international"


#: ``origin_of`` an SMS sender, kept for the senders seen most (as the sender policy keeps their keys):
#: bulk senders send millions of messages from a handful of ids.
_sms_origin = functools.lru_cache(maxsize=16384)(origin_of)


class SharedVelocity(Protocol):
    """Counters several gateways share (gateway.store.redis_velocity): records a message, answers its
    counts, or None when they cannot be reached."""

    async def count(self, questions: Sequence[Question], now: float) -> Counted | None: ...


class RulesInspector:
    def __init__(
        self,
        engine: Engine,
        *,
        warner: FlashWarner | None = None,
        tag_prefix: str = DEFAULT_TAG,
        call_tag: str = DEFAULT_CALL_TAG,
        home_country: str = "86",
    ) -> None:
        self.engine = engine
        self.warner = warner
        self.tag_prefix = tag_prefix
        self.call_tag = call_tag
        self.home_country = home_country
        #: Told of every SMS and call aimed at a subscriber, with the verdict (the risk scores).
        self.observer: Callable[[Sighting], None] | None = None
        #: Asked first, with the channel, action, sender and origin, whether the observer wants that
        #: sighting at all (most are worth nothing to it); None: every sighting is built and told.
        self.observes: Callable[[str, str, str, str], bool] | None = None
        #: Counts near-duplicates sent to many (gateway.campaigns); None: campaign detection is off.
        self.campaigns: CampaignTracker | None = None
        #: Counts every decision (None: nobody counts).
        self.metrics: GatewayMetrics | None = None
        #: Velocity counters shared with other gateways (Redis); None: the engine's own counters.
        self.shared_velocity: SharedVelocity | None = None

    # --- SMS ----------------------------------------------------------------------------------------

    def inspect_sms(self, message: SmsMessage) -> Decision | Awaitable[Decision]:
        recipient = message.destinations[0] if message.destinations else ""
        origin = _sms_origin(message.source, self.home_country)
        shared = self.shared_velocity
        asked = None
        if shared is not None:
            # The message the engine evaluates, when no counter needs it: one built for this question alone
            # cost as much again.
            asked = self._rules_message(message, recipient, origin, message.text)
            questions = self.engine.velocity_questions(asked)
            if questions:
                return self._sms_shared(message, recipient, origin, shared, questions)
        return self._sms(message, recipient, origin, asked=asked)

    def _sms(
        self,
        message: SmsMessage,
        recipient: str,
        origin: str,
        velocity: VelocityStore | None = None,
        now: float | None = None,
        *,
        asked: Message | None = None,
    ) -> Decision | Awaitable[Decision]:
        """``asked``: the rules' message already built for ``message``, at no given ``now``."""
        campaigns = self.campaigns
        if campaigns is not None and message.direction == "mt":
            return self._sms_counted(message, recipient, origin, campaigns, velocity, now)
        if asked is None or now is not None:
            asked = self._rules_message(message, recipient, origin, message.text, now)
        verdict = self.engine.evaluate(asked, velocity=velocity)
        return self._sms_decision(message, origin, verdict, None)

    async def _sms_shared(
        self,
        message: SmsMessage,
        recipient: str,
        origin: str,
        shared: SharedVelocity,
        questions: tuple[Question, ...],
    ) -> Decision:
        """The decision once the shared counters have recorded the message and answered its counts."""
        now = self.engine.clock()
        counted = await shared.count(questions, now)  # None: Redis is away, the engine counts alone
        if counted is not None:  # the engine's own counters kept fed, for when Redis goes away
            counted = Counted(counted.counts, self.engine.velocity)
        result = self._sms(message, recipient, origin, counted, now)
        return result if isinstance(result, Decision) else await result

    @staticmethod
    def _rules_message(
        message: SmsMessage, recipient: str, origin: str, text: str, now: float | None = None
    ) -> Message:
        # Positional: a compiled class parses keywords at several times the cost of building itself.
        # (channel, src, dst, text, origin, sender_id, now)
        return Message("sms", message.source, recipient, text, origin, message.source, now)

    def _sms_counted(
        self,
        message: SmsMessage,
        recipient: str,
        origin: str,
        campaigns: CampaignTracker,
        velocity: VelocityStore | None,
        now: float | None,
    ) -> Decision | Awaitable[Decision]:
        """The rules' verdict and the campaign's word on it, the text's views computed once for both."""
        text = message.text
        try:
            seen = views(text)
            rules_message = self._rules_message(message, recipient, origin, text, now)
            verdict = self.engine.evaluate(rules_message, views=seen, velocity=velocity)
        except UnicodeEncodeError:  # lone surrogates: no encoder takes them
            text = scrub(text)
            seen = views(text)
            rules_message = self._rules_message(message, recipient, origin, text, now)
            verdict = self.engine.evaluate(rules_message, views=seen, velocity=velocity)
        found = campaigns.fingerprint(message.source, seen.squeezed, verdict)
        if found is None:
            return self._sms_decision(message, origin, verdict, None)
        # The store is asked, so the answer is awaited (in memory it does not switch tasks).
        judging = campaigns.judge(found, message.source, message.destinations, verdict)
        return self._sms_in_campaign(message, origin, verdict, judging)

    async def _sms_in_campaign(
        self, message: SmsMessage, origin: str, verdict: Verdict, judging: Awaitable[Judged]
    ) -> Decision:
        try:
            judged = await judging
        except Exception as exc:  # the store is away: the rules' own verdict still holds
            log.warning("campaign.unavailable", error=str(exc) or type(exc).__name__)
            judged = Judged(verdict)
        return self._sms_decision(message, origin, judged.verdict, judged.campaign)

    def _sms_decision(self, message: SmsMessage, origin: str, verdict: Verdict, campaign: str | None) -> Decision:
        observer = self.observer
        if (
            observer is not None
            and message.direction == "mt"
            and self._observes("sms", message.source, origin, verdict)
        ):
            for destination in message.destinations:
                observer(_sighting(destination, "sms", message.source, origin, verdict))
        metrics = self.metrics
        if verdict.action is _RULE_PASS:
            if metrics is not None:
                metrics.decisions.inc(_SMS_PASS)
            return PASS
        action = _ACTIONS[verdict.action]
        if metrics is not None:
            metrics.decided("sms", action.value, verdict.category, verdict.rules)
        log.info(
            "sms.decision",
            action=action.value,
            rules=list(verdict.rules),
            category=verdict.category,
            system_id=message.system_id,
            source=message.source,
            campaign=campaign,
        )
        if action is _BLOCK or action is _WARN:
            self._warn(message.destinations, verdict)
        label = None
        if action is _TAG:
            label = self.tag_prefix
        elif action is _LABEL and verdict.label:
            label = f"【{verdict.label}】"
        return self._decision(verdict, action, label=label, campaign=campaign)

    # --- calls --------------------------------------------------------------------------------------

    def inspect_call(self, call: Call) -> Decision | Awaitable[Decision]:
        origin = origin_of(call.caller, self.home_country)
        # (channel, src, dst, text, origin, sender_id, now, attestation), positional as for an SMS
        message = Message("call", call.caller, call.callee, "", origin, None, None, call.attestation)
        shared = self.shared_velocity
        if shared is not None and (questions := self.engine.velocity_questions(message)):
            return self._call_shared(call, message, shared, questions)
        return self._call_decision(call, origin, self.engine.evaluate(message))

    async def _call_shared(
        self, call: Call, message: Message, shared: SharedVelocity, questions: tuple[Question, ...]
    ) -> Decision:
        now = self.engine.clock()
        counted = await shared.count(questions, now)  # None: Redis is away, the engine counts alone
        if counted is not None:  # the engine's own counters kept fed, for when Redis goes away
            counted = Counted(counted.counts, self.engine.velocity)
        verdict = self.engine.evaluate(message.at(now), velocity=counted)
        return self._call_decision(call, message.origin, verdict)

    def _call_decision(self, call: Call, origin: str, verdict: Verdict) -> Decision:
        if self.observer is not None and self._observes("call", call.caller, origin, verdict):
            self.observer(_sighting(call.callee, "call", call.caller, origin, verdict))
        metrics = self.metrics
        if verdict.action is _RULE_PASS:
            if metrics is not None:
                metrics.decisions.inc(_CALL_PASS)
            return PASS
        action = _ACTIONS[verdict.action]
        if metrics is not None:
            metrics.decided("call", action.value, verdict.category, verdict.rules)
        log.info(
            "call.decision",
            action=action.value,
            rules=list(verdict.rules),
            category=verdict.category,
            call_id=call.call_id,
            caller=call.caller,
        )
        if action is Action.BLOCK:
            decision = Decision.reject_call(608, "Rejected", rules=verdict.rules)
            return Decision(
                action=Action.BLOCK,
                risk=verdict.risk.value,
                rules=verdict.rules,
                category=verdict.category,
                reason=decision.reason,
                status=decision.status,
            )
        if action is Action.WARN:
            self._warn((call.callee,), verdict)
        if action is Action.LABEL and verdict.label:
            label = verdict.label
        elif action is Action.WARN and verdict.decided_label:
            label = verdict.decided_label  # the warning rule's own words (疑似冒用服务号码)
        else:
            label = self.call_tag
        return Decision(
            action=Action.LABEL, risk=verdict.risk.value, rules=verdict.rules, category=verdict.category, label=label
        )

    # --- helpers ------------------------------------------------------------------------------------

    def _observes(self, channel: Literal["sms", "call"], sender: str, origin: str, verdict: Verdict) -> bool:
        wants = self.observes
        return wants is None or wants(channel, _ACTION_VALUES[verdict.action], sender, origin)

    def _warn(self, recipients: tuple[str, ...], verdict: Verdict) -> None:
        if self.warner is None:
            log.warning("warning.no_smsc", rules=list(verdict.rules))
            return
        for recipient in recipients:
            self.warner.warn(recipient, template=verdict.template, category=verdict.category)

    @staticmethod
    def _decision(verdict: Verdict, action: Action, *, label: str | None, campaign: str | None = None) -> Decision:
        return Decision(
            action=action,
            risk=verdict.risk.value,
            rules=verdict.rules,
            category=verdict.category,
            reason=f"rules {', '.join(verdict.rules)}" + (f" (campaign {campaign})" if campaign else ""),
            label=label,
            campaign=campaign,
        )


def _sighting(subscriber: str, channel: Literal["sms", "call"], sender: str, origin: str, verdict: Verdict) -> Sighting:
    return Sighting(
        subscriber=subscriber,
        channel=channel,
        action=_ACTION_VALUES[verdict.action],
        sender=sender,
        origin=origin,
        rules=verdict.rules,
        category=verdict.category,
        dissuade=verdict.dissuade,
    )
