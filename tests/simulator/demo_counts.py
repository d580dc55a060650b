"""What the default scenario sends, as the runner draws it."""

from __future__ import annotations


def planned_sms(scale: float = 1.0) -> tuple[int, int]:
    """How many SMS the default scenario sends at ``scale``, and how many of them are fraud, as the
    runner draws them: the report must count exactly these, whatever the shipped file holds."""
    from simulator.demo import load_scenario
    from simulator.run.plan import SmsItem, draw

    items = [i for i in draw(load_scenario("default"), scale=scale).items if isinstance(i, SmsItem)]
    return len(items), sum(1 for i in items if i.fraud)
