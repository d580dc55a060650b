"""The scenario runner against the real gateway in this process: every shipped scenario meets its
expectations with figures that add up, every part of the report is filled by traffic that crossed
the sockets, and the same seed gives the same report.

The shipped files are played with ``scale`` (a share of every count, on a clock that runs up to four times
faster) so that the five of them fit the suite's time; `make demo` plays the default one in full
(tests/simulator/test_demo.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from simulator import scenarios
from simulator.report import DETERMINISTIC_KEYS, Report, inconsistencies
from simulator.run import run_embedded
from simulator.run.player import spoof_family
from simulator.run.world import SHIPPED_LABELS
from simulator.scenarios.model import SPOOF_KINDS
from simulator.spoofer import SpoofKit, spoof_variants

#: How much of each shipped scenario the suite plays.
SCALES = {"default": 0.2, "fraud-wave": 0.25, "spoof-attack": 0.25, "dissuasion": 0.1, "international": 0.25}


def _scenario(name: str) -> scenarios.Scenario:
    return scenarios.load(scenarios.shipped()[name])


async def _play(name: str, **changes: Any) -> Report:
    scenario = dataclasses.replace(_scenario(name), **changes)
    return await run_embedded(scenario, scale=SCALES[name])


#: Each shipped scenario's report as first played here: the tests that only read a report share it, so
#: that no scenario is played twice for the same figures.
_played: dict[str, Report] = {}


async def _shipped(name: str) -> Report:
    if name not in _played:
        _played[name] = await _play(name)
    return _played[name]


def test_every_shipped_scenario_is_played_here() -> None:
    assert set(SCALES) == set(scenarios.shipped())


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(SCALES))
async def test_a_shipped_scenario_meets_its_expectations_with_figures_that_add_up(name: str) -> None:
    report = await _shipped(name)
    assert inconsistencies(report) == []
    failed = [f"{e.description}: wanted {e.wanted}, got {e.observed}" for e in report.expectations if not e.held]
    assert failed == []
    assert len(report.expectations) == len(_scenario(name).expectations)
    traffic = _scenario(name).traffic
    # What was planned was played, and each planned kind of traffic shows in the figures.
    assert report.sms.submitted == sum(r.total for r in report.sms_by_category)
    assert (report.sms.submitted > 0) == (traffic.sms_count > 0)
    assert (report.calls.total > 0) == (traffic.call_count > 0)
    if traffic.instruction_count:
        assert report.dissuasion.cases >= 1
        assert report.dissuasion.flash_sent >= report.dissuasion.cases - report.dissuasion.handled
    assert report.timelines
    assert all(t.entries for t in report.timelines)


@pytest.mark.timeout(300)
async def test_the_default_scenario_fills_every_part_of_the_report() -> None:
    report = await _shipped("default")
    sms, calls, d = report.sms, report.calls, report.dissuasion
    assert sms.blocked
    assert sms.warned
    assert sms.passed
    assert sms.flash_warnings
    assert sms.delivered == sms.passed + sms.tagged + sms.warned
    assert calls.passed
    assert calls.labelled
    assert calls.verified_labels_shown == calls.verified_total > 0
    # Every way to fake the label was tried and answered with a refusal the trunk heard.
    assert {s.kind for s in report.spoofs} == set(SPOOF_KINDS)
    assert all(answer[0] in "3456" for s in report.spoofs for answer in s.answers)
    assert d.cases
    assert d.handled
    assert d.calls_placed
    assert d.flash_sent
    assert report.smpp_latency.samples_ms
    assert report.invite_latency.samples_ms
    kinds = {e.kind for t in report.timelines for e in t.entries}
    assert {"call_ringing", "flash", "flash_acknowledged"} <= kinds
    verified = [e for t in report.timelines for e in t.entries if e.kind == "call_ringing" and e.verified]
    assert all(e.label == "公安反诈专号" for e in verified)
    assert any("no MQTT broker" in note for note in report.notes)


def deterministic(report: Report) -> dict[str, Any]:
    doc = report.to_dict()
    return {key: doc[key] for key in DETERMINISTIC_KEYS}


@pytest.mark.timeout(300)
async def test_the_same_seed_gives_the_same_report_and_another_seed_another() -> None:
    first = deterministic(await _shipped("international"))  # played once more below, from the start
    again = deterministic(await _play("international"))
    other = deterministic(await _play("international", seed=99))
    assert again == first
    assert (
        other["sms_by_category"] != first["sms_by_category"] or other["calls_by_category"] != first["calls_by_category"]
    )


def test_every_spoof_variant_falls_in_one_of_the_scenario_families() -> None:
    from gateway.labels import build_registry, load_labels
    from protocols.stir import Signer
    from protocols.stir.issue import new_key

    registry = build_registry(load_labels(SHIPPED_LABELS))
    signer = Signer(new_key(), "https://stir.afc.example.cn/shaken/signer.pem", plan=registry.plan)
    variants = spoof_variants(SpoofKit(registry, "8613800000001", signer, signer, captured=["x"]))
    families = {spoof_family(v.name) for v in variants}
    assert families == set(SPOOF_KINDS)
    assert spoof_family("display-number-spaced") == "number_in_name"
    assert spoof_family("display-plain") == "display_name"
    assert spoof_family("replay") == "token_misuse"
