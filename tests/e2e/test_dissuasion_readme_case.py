"""The README's "A case from start to end": the same story through the whole gateway gives the same
``afgw case show`` (times, message ids and the instance name aside, which differ from run to run)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from gateway.dissuasion import case_cli
from simulator.behaviour import CallHabit, FlashHabit, Profile
from tests.e2e.dissuasion_world import INTERVAL, world
from tests.e2e.labels_harness import make_labels_pki

ROOT = Path(__file__).resolve().parents[2]
VICTIM = "8613800000001"
FAMILY = "8613800000002"
#: Lets every call ring out; reads the second flash 40 seconds after it pops up.
READS_THE_SECOND = Profile("reads-the-second", CallHabit(answer=0.0), FlashHabit(read=1.0, after=40.0, misses=1))
NEVER_LOOKS = Profile("never-looks", CallHabit(answer=0.0), FlashHabit(read=0.0))
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _readme_output() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("**A case from start to end.**", 1)[1]
    block = section.split("```\n", 2)[1]
    lines = block.splitlines()
    assert lines[0] == "$ afgw case show 1 -c config/gateway.yaml"
    return lines[1:]


def _shape(lines: list[str]) -> list[str]:
    """Each line with its times replaced, and the timeline's details that vary (message ids, the
    instance name) reduced to their kind."""
    shaped = []
    for line in lines:
        line = TIME.sub("T", line)
        m = re.fullmatch(r"(\s+T\s+)(\S+)(\s+)(.*)", line)
        if m and m.group(2) == "claimed":
            line = f"{m.group(1)}claimed{m.group(3)}INSTANCE"
        elif m:
            line = m.group(1) + m.group(2) + m.group(3) + re.sub(r"\b\d{4,}\b", "ID", m.group(4))
        shaped.append(line)
    return shaped


async def test_the_readme_case_is_what_case_show_prints(tmp_path: Path) -> None:
    pki = make_labels_pki(tmp_path / "pki")
    async with world(pki, tmp_path, {VICTIM: READS_THE_SECOND, FAMILY: NEVER_LOOKS}) as w:
        await w.desk.instruct(VICTIM, "medium", "冒充公检法", family=(FAMILY,))
        await w.until_case(VICTIM, lambda c: len(c.robot_calls) == 1)
        await w.step(INTERVAL)
        await w.until_case(VICTIM, lambda c: len(c.robot_calls) == 2)
        await w.step(40.0)
        await w.until_case(VICTIM, lambda c: c.state == "handled")
        case = await w.case_of(VICTIM)
        shown = await case_cli._show(argparse.Namespace(id=case.id, json=False), None, w.store, w.clock())
    assert _in_moments(shown.splitlines()) == _in_moments(_readme_output())


def _in_moments(lines: list[str]) -> list[object]:
    """The shaped lines, the timeline's steps of one moment as a sorted group: a receipt and the note
    of the flash it confirms reach the store in either order, but moments keep theirs."""
    out: list[object] = []
    previous = None
    for line in lines:
        moment = TIME.search(line) if line.startswith("    ") else None
        (shaped,) = _shape([line])
        if moment is not None and moment.group(0) == previous and isinstance(out[-1], list):
            out[-1].append(shaped)
        else:
            out.append([shaped] if moment is not None else shaped)
        previous = moment.group(0) if moment is not None else None
    return [sorted(item) if isinstance(item, list) else item for item in out]
