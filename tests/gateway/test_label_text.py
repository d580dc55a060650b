"""Protected label texts are found in every disguise, and ordinary names are left alone."""

from __future__ import annotations

import sys

import pytest

from gateway import label_text
from gateway.label_text import LabelMatcher, NormalisingRegistry, normalise_label_text
from protocols.stir import CallInfo, Label, LabelRegistry, Rejected

POLICE, MIIT = "公安反诈专号", "工信部反诈预警"
MATCHER = LabelMatcher([POLICE, MIIT])


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("公安反诈专号", POLICE),
        ("公安反詐專號", POLICE),  # traditional
        ("公 安 反 詐 專 號", POLICE),
        ("公安　反诈　专号", POLICE),  # ideographic spaces
        ("公安·反诈*专号", POLICE),
        ("公安-反诈_专号", POLICE),
        ("公安\u200b反诈\u2060专号\ufe0f", POLICE),  # zero-width space, word joiner, variation selector
        ("公安\u202e反诈专号", POLICE),  # a bidi override
        ("公\u0301安反诈专号", POLICE),  # a combining mark
        ("公安＿反诈＿专号！", POLICE),  # full-width forms
        ("公安反诈専号", POLICE),  # the Japanese 専
        ("公安友诈专号", POLICE),  # 友 drawn for 反
        ("【公安反诈专号】", POLICE),
        ("★公安反诈专号★北京", POLICE),
        ("公安反诈专号96110", POLICE),
        ("公安a反诈1专号", POLICE),  # Latin letters and digits between Han characters
        ("エ信部反诈预警", MIIT),  # katakana エ for 工
        ("⼯信部反诈预警", MIIT),  # Kangxi radical ⼯ (NFKC)
        ("工信部反詐預警", MIIT),
    ],
)
def test_a_disguised_label_is_found(text: str, label: str) -> None:
    assert MATCHER.labels_in(text) == {label}


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "Shanghai Bank",
        "96110",
        "公安局",
        "反诈专号",
        "公安反诈",
        "中国移动客服",
        "公安反诈中心",
        "专号反诈安公",
    ],
)
def test_ordinary_names_and_fragments_show_no_label(text: str | None) -> None:
    assert MATCHER.labels_in(text) == frozenset()


def test_both_labels_in_one_text_and_any_of_several_texts() -> None:
    assert MATCHER.labels_in("公安反诈专号/工信部反诈预警") == {POLICE, MIIT}
    assert MATCHER.labels_in_any(["Bank", None, "【工信部反诈预警】"]) == {MIIT}


def test_normal_form() -> None:
    assert normalise_label_text("【公安 反詐 專號】ＡＢｃ１２") == "公安反诈专号abc12"


def test_without_zhconv_the_built_in_map_covers_the_shipped_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zhconv_rs", None)  # import now fails
    convert = label_text._converter()
    assert convert("公安反詐專號") == POLICE
    assert convert("工信部反詐預警") == MIIT
    assert convert("エ信部") == "工信部"


def test_the_normalising_registry_makes_the_verifier_see_disguised_display_names() -> None:
    labels = {"96110": Label(POLICE), "12381": Label(MIIT)}
    plain, normalising = LabelRegistry(labels), NormalisingRegistry(labels)
    assert plain.labels_in("公安反詐專號") == frozenset()
    assert normalising.labels_in("公安反詐專號") == {POLICE}
    assert normalising.claims_label("【工信部反诈预警】")
    assert NormalisingRegistry.of(normalising) is normalising
    assert NormalisingRegistry.of(plain).texts == plain.texts
    from protocols.stir import CredentialResolver, Verifier

    verifier = Verifier(credentials=CredentialResolver([], {}), registry=normalising)
    outcome = verifier.verify([], CallInfo("c1", "8613912345678", "8613800000001", "公安 反詐 專號"), 0)
    assert isinstance(outcome, Rejected)
    assert outcome.status == 428
