"""Strict YAML: locations on every value, duplicates refused, YAML 1.2 scalars."""

from __future__ import annotations

import pytest

from rules.yaml_source import LocatedDict, Reader, SourceErrors, load_text


def test_values_keep_their_line_and_column():
    doc = load_text("a: 1\nb:\n  - x\n  - y\n", "f.yaml")
    assert isinstance(doc, LocatedDict)
    assert str(doc.where("a")) == "f.yaml:1:4"
    assert str(doc.where_key("b")) == "f.yaml:2:1"
    assert str(doc["b"].where(1)) == "f.yaml:4:5"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v: no", "no"),  # YAML 1.1 would say False
        ("v: on", "on"),
        ("v: y", "y"),
        ("v: 012", 12),  # YAML 1.1 would say 10 (octal)
        ("v: 1:20", "1:20"),  # YAML 1.1 would say 80 (sexagesimal)
        ("v: 0x1F", 31),
        ("v: 0o17", 15),
        ("v: true", True),
        ("v: 1.5", 1.5),
        ("v: ~", None),
        ("v: '12381'", "12381"),
        ('v: "+8613800000000"', "+8613800000000"),
    ],
)
def test_yaml_12_core_scalars(text, expected):
    assert load_text(text)["v"] == expected


def test_duplicate_key_names_both_lines():
    with pytest.raises(SourceErrors) as info:
        load_text("a: 1\nb: 2\na: 3\n", "f.yaml")
    (error,) = info.value.errors
    assert str(error).startswith("f.yaml:3:1: duplicate key 'a'")
    assert "line 1" in str(error)


def test_duplicates_can_be_collected_with_later_errors():
    collected = []
    doc = load_text("a: 1\na: 2\n", "f.yaml", collect=collected)
    assert doc["a"] == 1
    assert [str(e.location) for e in collected] == ["f.yaml:2:1"]


def test_invalid_yaml_points_at_the_problem():
    with pytest.raises(SourceErrors) as info:
        load_text("a: [1, 2\nb: 3\n", "f.yaml")
    assert str(info.value.errors[0]).startswith("f.yaml:")
    assert "invalid YAML" in str(info.value.errors[0])


def test_reader_reports_every_problem_in_one_pass_with_hints():
    doc = load_text("name: 12381\nenabled: no\ncount: many\nnmae: x\n", "f.yaml")
    reader = Reader()
    reader.keys(doc, {"name", "enabled", "count"}, required=("name",))
    reader.get(doc, "name", str)
    reader.get(doc, "enabled", bool)
    reader.get(doc, "count", int)
    with pytest.raises(SourceErrors) as info:
        reader.check()
    lines = [str(e) for e in info.value.errors]
    assert lines[0].startswith("f.yaml:1:7: name: expected a string")
    assert "quote it" in lines[0]
    assert lines[1].startswith("f.yaml:2:10: enabled: expected true or false")
    assert "yes/no" in lines[1]
    assert lines[2].startswith("f.yaml:3:8: count: expected an integer")
    assert lines[3].startswith("f.yaml:4:1: unknown field 'nmae'")
    assert "did you mean 'name'" in lines[3]


@pytest.mark.parametrize("loader", ["C", "Python"])
def test_both_yaml_parsers_give_the_same_values_and_locations(loader, monkeypatch):
    import yaml

    from rules import yaml_source

    if loader == "C" and not hasattr(yaml, "CSafeLoader"):
        pytest.skip("PyYAML built without libyaml")
    monkeypatch.setattr(yaml_source, "_LOADER", yaml.CSafeLoader if loader == "C" else yaml.SafeLoader)
    doc = load_text("a: no\nb: 012\nc: '12381'\nd: 1.5\ne: [x, 2]\nf: |\n  text\n", "f.yaml")
    assert doc == {"a": "no", "b": 12, "c": "12381", "d": 1.5, "e": ["x", 2], "f": "text\n"}
    assert str(doc.where("e")) == "f.yaml:5:4"
    assert str(doc["e"].where(1)) == "f.yaml:5:8"


def test_merge_keys_are_refused_and_a_quoted_one_is_a_string():
    with pytest.raises(SourceErrors) as info:
        load_text("a: &x {b: 1}\nc:\n  <<: *x\n", "f.yaml")
    assert str(info.value.errors[0]).startswith("f.yaml:3:3: merge keys (<<) are not supported")
    assert load_text('a: "<<"\n') == {"a": "<<"}
