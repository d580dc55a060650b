"""Dissuasion (劝阻): finding the subscribers at risk, warning them until they respond, escalating to people.

Triggers (the anti-fraud centre's instructions, the gateway's own risk scores, operators) produce
:class:`~gateway.dissuasion.triggers.Trigger` values; the engine turns them into cases and attempts.
"""

from gateway.dissuasion.triggers import Trigger, TriggerSink

__all__ = ["Trigger", "TriggerSink"]
