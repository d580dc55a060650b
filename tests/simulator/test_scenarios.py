"""Scenario files: the shipped ones load, the loader's errors point at file:line:col, the schema agrees."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cli import main
from rules.yaml_source import SourceErrors, load_file
from simulator import scenarios
from simulator.scenarios import loader, spec
from simulator.scenarios.expectations import EXPECTATIONS

SCHEMA_FILE = Path(spec.__file__).with_name("scenario.schema.json")
SHIPPED = scenarios.shipped()

MINIMAL = """\
scenario: t
description: a test town
seed: 1
duration: 1h
time_speed: 100
population:
  count: 100
  numbers: {prefix: "86138", length: 13}
  profiles:
    - name: all
      share: 1
      calls: {answer: 0.5}
      flash: {acknowledge: 0.5}
      script: {falls_for: 0.1}
traffic:
  sms:
    legitimate:
      - {kind: bank, count: 10}
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(SourceErrors) as caught:
        scenarios.loads(text, "town.yaml")
    return [str(e) for e in caught.value.errors]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_five_scenarios_ship() -> None:
    assert set(SHIPPED) == {"default", "fraud-wave", "spoof-attack", "dissuasion", "international"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_scenario_loads(name: str, validator: jsonschema.Draft202012Validator) -> None:
    scenario = scenarios.load(SHIPPED[name])
    assert scenario.name == name
    assert scenario.expectations, "a shipped scenario says what the run must achieve"
    assert list(validator.iter_errors(load_file(SHIPPED[name]))) == []
    assert SHIPPED[name].read_text("utf-8").startswith("# yaml-language-server: $schema=scenario.schema.json")


def test_the_default_scenario_is_a_day_in_a_town_of_ten_thousand_that_fits_in_a_minute() -> None:
    town = scenarios.load(SHIPPED["default"])
    assert town.population.count == 10_000
    assert town.duration == 86400
    # The simulated day at full speed leaves room for the gateway's own work within a minute.
    assert town.real_seconds <= 40
    traffic = town.traffic
    assert traffic.sms_count + traffic.call_count + traffic.instruction_count <= 3000
    # Everything the issue names is in the mixed day.
    assert {s.kind for s in traffic.legitimate_sms} >= {"bank", "carrier", "courier", "shop", "friend"}
    assert {c.category for c in traffic.fraud_sms} == set(loader.sms_categories_in_packs()) - {"official", "other"}
    assert any(c.evasions for c in traffic.fraud_sms)
    assert {c.origin for c in traffic.fraud_calls} == {"domestic", "international"}
    assert any(c.caller_id != "none" for c in traffic.fraud_calls)
    assert traffic.spoofed_labels is not None
    assert traffic.verified_calls is not None
    assert traffic.instructions is not None


def test_the_dissuasion_scenario_instructs_a_thousand_subscribers_of_varied_behaviour() -> None:
    town = scenarios.load(SHIPPED["dissuasion"])
    assert town.traffic.instruction_count == 1000
    answers = {p.calls.answer for p in town.population.profiles}
    assert len(answers) >= 3


def test_the_spoof_attack_tries_every_kind() -> None:
    town = scenarios.load(SHIPPED["spoof-attack"])
    assert town.traffic.spoofed_labels is not None
    assert set(town.traffic.spoofed_labels.kinds) == set(scenarios.model.SPOOF_KINDS)


def test_a_minimal_scenario_builds_with_defaults() -> None:
    town = scenarios.loads(MINIMAL)
    profile = town.population.profiles[0]
    assert profile.calls.answer_verified == 0.5
    assert profile.calls.delay.low == 5.0
    assert profile.script.falls_for_warned == 0.0
    assert town.traffic.legitimate_sms[0].window.end == 3600
    assert town.population.numbers.number(42) == "8613800000042"


@pytest.mark.parametrize(
    ("text", "seconds"), [(90, 90.0), ("30s", 30.0), ("15m", 900.0), ("24h", 86400.0), ("1h30m", 5400.0)]
)
def test_durations(text: int | str, seconds: float) -> None:
    assert scenarios.parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("      calls: {answer: 0.5}", "      calls: {answr: 0.5}"), "town.yaml:12:15: unknown field 'answr'"),
        (
            ("      calls: {answer: 0.5}", "      calls: {answer: 1.5}"),
            "town.yaml:12:23: population.profiles[0].calls.answer: must be at most 1",
        ),
        (("share: 1", "share: 0.4"), "town.yaml:10:5: population.profiles: the shares add up to 0.4, not 1"),
        (
            ("{kind: bank, count: 10}", "{kind: bank, count: 10, end: 2h}"),
            "town.yaml:18:38: traffic.sms.legitimate[0].end: 7200 s is after the run ends (3600 s)",
        ),
        (
            ("{kind: bank, count: 10}", "{kind: bnak, count: 10}"),
            "town.yaml:18:16: traffic.sms.legitimate[0].kind: expected one of bank",
        ),
        (("count: 100", "count: 100\n  count: 200"), "town.yaml:8:3: duplicate key 'count'"),
        (("time_speed: 100", "time_speed: 0"), "town.yaml:5:13: time_speed: must be more than 0"),
        (("duration: 1h", "duration: an hour"), "town.yaml:4:11: duration: 'an hour' is not a duration"),
        (
            ('prefix: "86138"', "prefix: 86138"),
            "town.yaml:8:21: population.numbers.prefix: expected a prefix of digits",
        ),
        (
            ("length: 13", "length: 6"),
            "town.yaml:7:10: population.count: 100 subscribers do not fit the number plan (10 numbers",
        ),
    ],
)
def test_errors_point_at_the_value(change: tuple[str, str], expected: str) -> None:
    text = MINIMAL.replace(*change, 1)
    assert text != MINIMAL
    found = errors_of(text)
    assert any(e.startswith(expected) for e in found), found


def test_a_category_no_pack_has_sms_rules_for_is_refused() -> None:
    text = MINIMAL + "    fraud:\n      - {campaign: dice, category: gambling, count: 3}\n"
    assert errors_of(text) == [
        "town.yaml:20:36: traffic.sms.fraud[0].category: the shipped rule packs have no SMS rule for 'gambling'; "
        "nothing could catch this campaign"
    ]


def test_an_expectation_about_traffic_never_sent_is_refused() -> None:
    text = MINIMAL + "expectations:\n  every_spoof_rejected: true\n  ham_sms_blocked_max: 0\n"
    found = errors_of(text)
    assert len(found) == 1
    assert found[0].startswith(
        "town.yaml:20:3: expectations.every_spoof_rejected: the scenario sends no spoofed label calls"
    )


def test_every_problem_is_reported_in_one_pass() -> None:
    text = MINIMAL.replace("seed: 1", "seed: -1").replace("answer: 0.5", "answer: yes")
    found = errors_of(text)
    assert [e.split(": ", 1)[0] for e in found] == ["town.yaml:3:7", "town.yaml:12:23"]


def test_every_expectation_is_measured_and_guarded() -> None:
    from simulator.report_expectations import MEASURES

    assert set(MEASURES) == set(EXPECTATIONS) == set(loader._NEEDS)


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text("utf-8") == spec.json_schema_text(), (
        "simulator/scenarios/scenario.schema.json is stale: python -c 'from simulator.scenarios.spec import "
        'json_schema_text as t; open("simulator/scenarios/scenario.schema.json", "w").write(t())\''
    )


def _doc(**over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(MINIMAL)
    for dotted, value in over.items():
        *parents, last = dotted.split("__")
        target = doc
        for name in parents:
            target = target[int(name)] if name.isdigit() else target[name]
        if value is None:
            del target[last]
        else:
            target[last] = value
    return doc


@pytest.mark.parametrize(
    ("doc", "valid"),
    [
        (_doc(), True),
        (_doc(seed=None), False),
        (_doc(time_speed=-1), False),
        (_doc(duration="2h30m"), True),
        (_doc(duration="2 hours"), False),
        (_doc(population__count=0), False),
        (_doc(population__family_contacts=1.2), False),
        (_doc(population__profiles__0__calls={"answer": 0.5, "delay": ["2s", "9s"]}), True),
        (_doc(population__profiles__0__calls={"answer": 0.5, "delay": ["2s"]}), False),
        (_doc(population__profiles__0__flash={"acknowledge": 0.5, "dealy": "2s"}), False),
        (_doc(traffic={}), False),
        (_doc(traffic={"calls": {"spoofed_labels": {"kinds": "all", "per_kind": 2}}}), True),
        (_doc(traffic={"calls": {"spoofed_labels": {"kinds": ["headers"], "per_kind": 2}}}), True),
        (_doc(traffic={"calls": {"spoofed_labels": {"kinds": ["sideways"], "per_kind": 2}}}), False),
        (
            _doc(
                traffic={
                    "calls": {
                        "fraud": [
                            {
                                "campaign": "c",
                                "category": "loan",
                                "count": 3,
                                "origin": "international",
                                "caller_id": "trusted_number",
                            }
                        ]
                    }
                }
            ),
            True,
        ),
        (
            _doc(traffic={"calls": {"fraud": [{"campaign": "c", "category": "loan", "count": 3, "origin": "mars"}]}}),
            False,
        ),
        (
            _doc(traffic={"instructions": {"count": 5, "risk": {"high": 1}, "categories": ["loan"]}}),
            True,
        ),
        (
            _doc(traffic={"instructions": {"count": 5, "risk": {"severe": 1}, "categories": ["loan"]}}),
            False,
        ),
        (_doc(expectations={"ham_sms_blocked_max": 0}), True),
        (_doc(expectations={"ham_sms_blocked_maximum": 0}), False),
        (_doc(expectations={"sms_all_delivered": "yes"}), False),
    ],
)
def test_the_schema_agrees_with_the_loader(
    validator: jsonschema.Draft202012Validator, doc: dict[str, Any], valid: bool
) -> None:
    assert validator.is_valid(doc) is valid, list(validator.iter_errors(doc))
    text = yaml.safe_dump(doc, allow_unicode=True)
    problems: list[str] = []
    try:
        scenarios.loads(text)
    except SourceErrors as exc:
        problems = [str(e) for e in exc.errors]
    assert (problems == []) is valid, problems


def test_scenario_check_passes_the_shipped_files(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenario", "check", *map(str, SHIPPED.values())]) == 0
    out = capsys.readouterr().out
    assert "default.yaml: ok: default, 10000 subscribers" in out


def test_scenario_check_exits_2_with_file_line_col(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(MINIMAL.replace("answer: 0.5", "answr: 0.5"), "utf-8")
    assert main(["scenario", "check", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:12:15: unknown field 'answr' in population.profiles[0].calls (hint: did you mean 'answer'?)" in err


def test_campaign_names_are_unique() -> None:
    fraud = "    fraud:\n" + "      - {campaign: dup, category: loan, count: 3}\n" * 2
    assert errors_of(MINIMAL + fraud) == [
        "town.yaml:21:9: traffic.sms.fraud[1]: the campaign name 'dup' is given twice"
    ]


#: The README's example, which gives every optional field.
FULL = re.findall(r"```yaml\n(.*?)```", Path(scenarios.__file__).with_name("README.md").read_text("utf-8"), re.S)[0]
_VALUES = st.sampled_from(["", "~", "0", "-1", "1.5", "2h", "[]", "{}", "[1s]", "x", "'8'", "true", "all", "1e309"])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_edit_of_a_value_gives_a_scenario_or_located_errors(data: st.DataObject) -> None:
    """Replace any value in the file, or drop a line: the loader answers with a scenario or SourceErrors."""
    base = data.draw(st.sampled_from([MINIMAL, FULL]))
    lines = [line.split(" #")[0] for line in base.splitlines()]
    index = data.draw(st.integers(0, len(lines) - 1))
    if data.draw(st.booleans()):
        del lines[index]
    else:
        line = lines[index]
        values = [m for m in re.finditer(r"(?<=: )[^,{}\[\]]+|(?<=- )\w+", line)]
        if values:
            m = data.draw(st.sampled_from(values))
            lines[index] = line[: m.start()] + data.draw(_VALUES) + line[m.end() :]
    text = "\n".join(lines) + "\n"
    problems: list[str] = []
    try:
        scenarios.loads(text, "town.yaml")
    except SourceErrors as exc:
        problems = [str(e) for e in exc.errors]
    assert all(re.match(r"town\.yaml:\d+:\d+: ", p) for p in problems), problems


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, ":1:1: cannot read:"),
        ("a: [\n", ":2:1: invalid YAML: did not find expected node content"),
        ("- 1\n", ":1:1: a scenario is a mapping (scenario, population, traffic ...)"),
    ],
)
def test_scenario_check_refuses_what_is_not_a_scenario(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    path = tmp_path / "town.yaml"
    if content is not None:
        path.write_text(content, "utf-8")
    assert main(["scenario", "check", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"{path}{expected}")
