"""docs/grafana-dashboard.json asks only for what a running gateway really exports.

Every PromQL expression in the dashboard is parsed (promql-parser, a PromQL grammar of its own, not
ours); each metric it selects must be on the /metrics of a gateway that has carried some traffic (SMS
blocked and passed, a verified call and a spoof, a dissuasion case with an attempt), each label it
matches or groups by must be one of that metric's labels, and each value it matches exactly must be
one the gateway exposed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import promql_parser as promql
import pytest

from gateway.config import DissuasionConfig, EventsConfig, MqttEventsConfig, RulesConfig
from gateway.dissuasion import templates
from gateway.dissuasion.triggers import Trigger
from protocols.smpp.constants import CommandStatus
from simulator.smsc import SimulatedSmsc
from simulator.spoofer import Spoofer
from tests.conftest import free_port
from tests.e2e.labels_harness import LabelsPki, make_labels_pki
from tests.e2e.sip_harness import sip_config
from tests.gateway.web.scrape import Scrape, scrape
from tests.gateway.web.test_endpoint import FRAUD, HAM, HAM_TO, VICTIM, gateway_config, parties, started

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana-dashboard.json"
#: What Grafana puts in place of its own variables before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabelsPki:
    return make_labels_pki(tmp_path_factory.mktemp("labels"))


def expressions() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    found = []
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", ()):
            found.append((panel["title"], target["expr"]))
    return found


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def parse(expr: str) -> Any:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a variable Grafana would not fill in: {expr}"
    return promql.parse(expr)


def selectors(node: Any) -> Iterator[Any]:
    """Every vector selector in an expression."""
    if isinstance(node, promql.VectorSelector):
        yield node
    elif isinstance(node, promql.MatrixSelector):
        yield node.vector_selector
    elif isinstance(node, promql.BinaryExpr):
        yield from selectors(node.lhs)
        yield from selectors(node.rhs)
    elif isinstance(node, promql.AggregateExpr):
        yield from selectors(node.expr)
        if node.param is not None:
            yield from selectors(node.param)
    elif isinstance(node, promql.Call):
        for arg in node.args:
            yield from selectors(arg)
    elif isinstance(node, promql.ParenExpr | promql.UnaryExpr | promql.SubqueryExpr):
        yield from selectors(node.expr)
    elif not isinstance(node, promql.NumberLiteral | promql.StringLiteral):
        raise AssertionError(f"a PromQL node this test does not know: {type(node).__name__}")


def groupings(node: Any) -> Iterator[tuple[list[str], list[Any]]]:
    """Each aggregation's ``by`` labels with the selectors it aggregates."""
    if isinstance(node, promql.AggregateExpr):
        if node.modifier is not None and node.modifier.type == promql.AggModifierType.By:
            yield list(node.modifier.labels), list(selectors(node.expr))
        yield from groupings(node.expr)
    elif isinstance(node, promql.BinaryExpr):
        yield from groupings(node.lhs)
        yield from groupings(node.rhs)
    elif isinstance(node, promql.Call):
        for arg in node.args:
            yield from groupings(arg)
    elif isinstance(node, promql.ParenExpr | promql.UnaryExpr | promql.SubqueryExpr):
        yield from groupings(node.expr)


def exported(metrics: Scrape) -> set[str]:
    """Every series name a scrape of ``metrics`` yields to Prometheus, sampled or only declared."""
    names = set(metrics.names)
    for family, kind in metrics.types.items():
        names |= {
            "counter": {f"{family}_total"},
            "histogram": {f"{family}_{s}" for s in ("bucket", "sum", "count")},
        }.get(kind, {family})
    return names


def test_every_panel_has_a_query_and_every_query_parses() -> None:
    found = expressions()
    assert len(found) >= 20
    for title, expr in found:
        assert list(selectors(parse(expr))), f"{title}: {expr} selects no metric"


def test_the_dashboard_shows_what_the_operators_asked_for() -> None:
    used = {selector.name for _, expr in expressions() for selector in selectors(parse(expr))}
    for metric in (
        "afgw_rule_decisions_total",  # interceptions by category and action
        "afgw_label_verifications_total",  # label rejections by cause
        "afgw_smpp_pdus_total",
        "afgw_sip_requests_total",
        "afgw_smpp_submit_seconds_bucket",
        "afgw_sip_invite_first_response_seconds_bucket",
        "afgw_dissuasion_open_cases",  # cases by tier and state
        "afgw_esme_binds",
        "afgw_smsc_binds",
        "afgw_sip_registrations",
    ):
        assert metric in used


async def test_every_metric_and_label_the_dashboard_asks_for_is_exported(smsc: SimulatedSmsc, pki: LabelsPki) -> None:
    dissuasion = DissuasionConfig(poll_interval=0.05, templates=templates.load(templates.DEFAULT_PATH))
    config = gateway_config(
        smsc.port,
        sip=replace(sip_config(), labels=pki.labels),
        rules=RulesConfig(reload_interval=0),
        dissuasion=dissuasion,
        # A broker nobody runs: its metrics are there (saying it is down) all the same.
        events=EventsConfig(mqtt=MqttEventsConfig(port=free_port(), backoff_initial=0.05, backoff_max=0.1)),
    )
    async with started(config) as (gw, http, port), parties(gw, pki) as p:
        (refused,) = await p.esme_bulk.submit("17012345678", VICTIM, FRAUD)
        (accepted,) = await p.esme_bank.submit("10690", HAM_TO, HAM)
        assert (refused.command_status, accepted.command_status) == (CommandStatus.ESME_RSUBMITFAIL, 0)
        assert (await p.centre.place(VICTIM, hold=0.01)).status == 200
        spoofer: Spoofer = p.spoofer
        assert (await spoofer.call(VICTIM, "13700000000", display="公安反诈专号")).status == 428
        assert gw.triggers is not None
        await gw.triggers.trigger(Trigger("8613800000009", "high", "police_impersonation", "centre"), time.time())
        metrics = await _attempted(http, port)

    names = exported(metrics)
    for title, expr in expressions():
        tree = parse(expr)
        for selector in selectors(tree):
            assert selector.name in names, f"{title}: {selector.name} is not exported"
            labels = metrics.labels.get(selector.name, set())
            for matcher in selector.matchers.matchers:
                assert matcher.name in labels, f"{title}: {selector.name} has no label {matcher.name}"
                if matcher.op == promql.MatchOp.Equal:
                    values = metrics.by(selector.name, matcher.name)
                    assert matcher.value in values, f"{title}: {matcher.name}={matcher.value!r} never exported"
        for by, inside in groupings(tree):
            available = set().union(*(metrics.labels.get(s.name, set()) for s in inside))
            assert set(by) <= available, f"{title}: grouped by {set(by) - available}, which {expr} does not have"


async def _attempted(http: Any, port: int, within: float = 10.0) -> Scrape:
    """A scrape taken once the dissuasion engine (polling every 50 ms) has made its first attempt."""
    deadline = asyncio.get_running_loop().time() + within
    while (metrics := await scrape(http, port)).total("afgw_dissuasion_attempts_total") == 0:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the dissuasion engine made no attempt")
        await asyncio.sleep(0.02)
    return metrics


def test_a_misspelt_metric_would_be_caught() -> None:
    metrics = Scrape("# TYPE afgw_smsc_binds gauge\nafgw_smsc_binds 1\n")
    (selector,) = selectors(parse("afgw_smsc_bind"))
    assert selector.name not in exported(metrics)
