"""The JSON Schema shipped for editors is generated from the same spec as the validator, and fits the packs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import rules
from rules import spec
from rules.yaml_source import load_file

SCHEMA_FILE = Path(spec.__file__).parent / "schema" / "rule.schema.json"
PACKS = sorted(rules.DEFAULT_PACKS.glob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text("utf-8") == spec.json_schema_text(), (
        "rules/schema/rule.schema.json is stale: python -c 'from rules.spec import json_schema_text as t; "
        'open("rules/schema/rule.schema.json", "w").write(t())\''
    )


@pytest.mark.parametrize("path", PACKS, ids=lambda p: p.stem)
def test_every_shipped_pack_validates(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(load_file(path))]
    assert errors == []


def test_every_pack_points_editors_at_the_schema() -> None:
    for path in PACKS:
        assert path.read_text("utf-8").startswith("# yaml-language-server: $schema=../schema/rule.schema.json")


def rule(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "t.r",
        "title": "t",
        "category": "other",
        "risk": "low",
        "channel": "sms",
        "action": "tag",
        "detection": {"sel": {"text|contains|squeezed": ["a", {"list": "l"}]}, "condition": "sel"},
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("doc", "valid"),
    [
        ({"rules": [rule()]}, True),
        ({"rules": [rule(titel="x")]}, False),
        ({"rules": [rule(category="nope")]}, False),
        ({"rules": [rule(risk=None)]}, False),
        ({"rules": [{k: v for k, v in rule().items() if k != "risk"}]}, False),
        ({"rules": [{**{k: v for k, v in rule().items() if k != "risk"}, "action": "pass"}]}, True),
        ({"rules": [rule(action="label")]}, False),
        ({"rules": [rule(action="label", label="境外短信")]}, True),
        ({"rules": [rule(overrides=["x"])]}, False),
        ({"rules": [rule(detection={"sel": {"text|re|squeezed": "a"}, "condition": "sel"})]}, True),
        ({"rules": [rule(detection={"sel": {"text|bogus": "a"}, "condition": "sel"})]}, False),
        ({"rules": [rule(detection={"sel": {"domain|exists": "yes"}, "condition": "sel"})]}, False),
        (
            {
                "rules": [
                    rule(detection={"sel": {"velocity": {"by": "src", "count": 3, "within": 60}}, "condition": "sel"})
                ]
            },
            True,
        ),
        ({"rules": [rule(detection={"and": {"text": "a"}, "condition": "and"})]}, False),
        ({"rules": [rule(detection={"sel": {"time": ["23:00", "06:00"]}, "condition": "sel"})]}, True),
        ({"rules": [rule(detection={"sel": {"time": ["24:00", "06:00"]}, "condition": "sel"})]}, False),
        ({"rules": [rule(tests={"match": [{"text": "a", "from": "1", "expect": {"action": "tag"}}]})]}, True),
        ({"rules": [rule(tests={"match": [{"text": "a", "frm": "1"}]})]}, False),
        ({"lists": {"wechat": ["微信"]}, "macros": {"has_link": {"domain|exists": True}}}, True),
    ],
)
def test_the_schema_agrees_with_the_validator(
    validator: jsonschema.Draft202012Validator, tmp_path: Path, doc: dict[str, object], valid: bool
) -> None:
    import yaml

    assert validator.is_valid(doc) is valid
    path = tmp_path / "doc.yaml"
    path.write_text(yaml.safe_dump({"lists": {"l": ["x"]}, **doc}, allow_unicode=True), "utf-8")
    assert (rules.check([path]) == []) is valid, rules.check([path])
