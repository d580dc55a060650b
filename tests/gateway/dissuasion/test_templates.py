"""Warning templates: what a handset would show, and every way a bad template is refused at load."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.dissuasion import templates
from protocols.smpp import text as sms_text
from rules.yaml_source import SourceErrors

SHIPPED = templates.DEFAULT_PATH
FIVE_HIGH_INCIDENCE = ("order_brushing", "investment", "loan", "customer_service", "police_impersonation")
OK_VICTIM = "【公安反诈】您可能正遭遇诈骗，请勿转账。咨询96110。"
OK_FAMILY = "【公安反诈】您的亲属（尾号{tail}）可能正遭遇诈骗，请联系劝阻。"


def _doc(victim: str = OK_VICTIM, family: str = OK_FAMILY, extra: str = "") -> str:
    return (
        "templates:\n"
        "  default:\n"
        f"    victim: {victim!r}\n"
        f"    family: {family!r}\n"
        "  loan:\n"
        f"    victim: {victim!r}\n"
        f"    family: {family!r}\n" + extra
    ).replace("'", '"')


def _errors(source: str) -> list[str]:
    with pytest.raises(SourceErrors) as info:
        templates.loads(source, "t.yaml")
    return [str(e) for e in info.value.errors]


def test_shipped_templates_load_and_each_fits_one_flash():
    loaded = templates.load(SHIPPED)
    for kind in FIVE_HIGH_INCIDENCE:
        assert loaded.template_for(kind).fraud_type == kind
        for audience in templates.AUDIENCES:
            message = loaded.render(kind, audience, "8613912345678")
            # What goes on the wire: one class-0 UCS2 short message.
            data_coding, short_message, _ = sms_text.flash_sms(message)
            assert data_coding == 0x18
            assert len(short_message) <= 140
    assert "尾号5678" in loaded.render("loan", "family", "8613912345678")
    assert loaded.render("冒充公检法", "victim") == loaded.render("police_impersonation", "victim")


def test_unknown_type_falls_back_to_default():
    loaded = templates.load(SHIPPED)
    assert loaded.template_for(("no-such-type",)) is loaded.default
    assert loaded.template_for(("no-such-type", "loan")).fraud_type == "loan"


@pytest.mark.parametrize("audience", ["victim", "family"])
@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("【公安反诈】" + "请勿转账" * 20, "UCS2 characters, one flash part holds 70"),
        ("反诈提醒，详见 http://127.0.0.1/x", "contains a link"),
        ("反诈提醒，详见 www.fanzha.example", "contains a link"),
        ("反诈提醒，登录 fanzha.cn 查看", "contains a link"),
        ("如有疑问请拨打 010-12345678", "names the number"),
        ("如有疑问请拨打13800138000", "names the number"),
        ("如有疑问请拨打１３８００１３８０００", "names the number"),
        ("请回复身份证号码以便核实", "asks for a reply or for personal data"),
        ("请回复您的验证码", "asks for a reply or for personal data"),
        ("核实身份请提供银行卡号和密码", "asks for a reply or for personal data"),
        ("确认安全请回复1", "asks for a reply or for personal data"),
        ("请输入短信中的动态码", "asks for a reply or for personal data"),
        ("反诈提醒 {name}", "unknown placeholder"),
    ],
)
def test_each_rule_refuses_with_file_line_col(audience, bad, why):
    source = _doc(victim=bad) if audience == "victim" else _doc(family=bad)
    errors = _errors(source)
    # Both entries carry the bad text: one error at each, on the line of that value.
    lines = {3 if audience == "victim" else 4, 6 if audience == "victim" else 7}
    assert len([e for e in errors if why in e]) == 2, errors
    assert {int(e.split(":")[1]) for e in errors if why in e} == lines
    assert all(e.startswith("t.yaml:") and e.split(":")[2].isdigit() for e in errors)


@pytest.mark.parametrize(
    "fine",
    [
        "请勿向任何人提供验证码，咨询96110或12381。",
        "公检法不会要求您提供银行卡密码，切勿转账。",
        "24小时内第2次提醒，请勿转账。",
        "切勿回复验证码，咨询12381。",
    ],
)
def test_advice_against_giving_data_and_official_numbers_pass(fine):
    assert templates.loads(_doc(victim=fine), "t.yaml").default.victim == fine


def test_multipart_allows_longer_texts():
    long = "【公安反诈】" + "请勿转账" * 20
    source = _doc().replace("  loan:\n", "  loan:\n    multipart: true\n").replace(OK_VICTIM, long, 2)
    errors = _errors(source)
    # default still refuses it, loan (multi-part) does not.
    assert len(errors) == 1
    assert ":3:" in errors[0]


@pytest.mark.parametrize(
    ("source", "why", "line"),
    [
        ("templates:\n  loan:\n    victim: a\n    family: b\n", "a 'default' entry is required", 2),
        ("templates:\n  default:\n    victim: a\n", "missing required field 'family'", 3),
        ("templates:\n  default:\n    victim: a\n    family: b\n    famly: c\n", "unknown field 'famly'", 5),
        ("official_numbers: [96110]\ntemplates:\n  default: {victim: a, family: b}\n", "quoted string", 1),
        ("templates:\n  default:\n    victim: ''\n    family: b\n", "empty text", 3),
        ("- just a list\n", "a templates file is a mapping", 1),
        ("templates:\n  default: {victim: a, family: b}\n  default: {victim: a, family: b}\n", "duplicate key", 3),
    ],
)
def test_structure_errors_are_located(source, why, line):
    errors = _errors(source)
    assert any(why in e and e.startswith(f"t.yaml:{line}:") for e in errors), errors


def test_configured_official_numbers_replace_the_defaults():
    source = 'official_numbers: ["110"]\n' + _doc(victim="咨询96110。")
    assert any("names the number '96110'" in e for e in _errors(source))


@given(st.text(alphabet="诈骗请勿转账，。！", min_size=71, max_size=120))
def test_any_text_longer_than_one_part_is_refused(body):
    found = templates.problems(body, official_numbers=("96110",), multipart=False)
    assert any("one flash part holds 70" in why for why in found)
    assert not templates.problems(body[:70], official_numbers=("96110",), multipart=False)
