"""Reserved sender ids and signatures are refused to everyone not authorised, in every disguise."""

from __future__ import annotations

import pytest

from gateway.smpp.sender_policy import SenderPolicy
from protocols.smpp.constants import CommandStatus

POLICY = SenderPolicy(["12381", "96110"], ["【国家反诈中心】", "【反诈名片】"])
NOBODY = frozenset[str]()


def check(source: str, text: str = "您好", senders: frozenset[str] = NOBODY, signatures: frozenset[str] = NOBODY):
    return POLICY.check(source, text, authorised_senders=senders, authorised_signatures=signatures)


@pytest.mark.parametrize("source", ["12381", "+8612381", "008612381", "8612381", "１２３８１", " 96110 "])
def test_reserved_sender_in_any_spelling_is_refused(source):
    refusal = check(source)
    assert refusal is not None
    assert refusal.status == CommandStatus.ESME_RINVSRCADR


@pytest.mark.parametrize("source", ["1069012381", "123810", "10690", "BANK", "95588"])
def test_other_senders_pass(source):
    assert check(source) is None


def test_authorised_account_may_use_its_sender_and_signature():
    senders = POLICY.authorised_senders(["+8612381"])
    signatures = POLICY.authorised_signatures(["【国家反诈中心】"])
    assert check("12381", "【国家反诈中心】提醒您：谨防诈骗", senders, signatures) is None
    # Authorised for 12381 is not authorised for 96110.
    assert check("96110", "x", senders, signatures) is not None


@pytest.mark.parametrize(
    "text",
    [
        "【国家反诈中心】您的账户存在风险",
        "【國家反詐中心】您的賬戶存在風險",  # traditional characters
        "［国家反诈中心］您的账户存在风险",  # full-width square brackets
        "[国家 反诈 中心]您的账户存在风险",  # spaces inside
        "【国家\u200b反诈\u200d中心】您的账户存在风险",  # zero-width characters
        "〖国家-反诈·中心〗您的账户存在风险",  # other brackets, symbols inside
        "您的账户存在风险【反诈名片】",  # signature at the end
        "【仮诈名片】请配合调查",  # a Japanese look-alike of 反, as the SIP side's labels also see through
    ],
)
def test_reserved_signature_in_any_disguise_is_refused(text):
    refusal = check("10690", text)
    assert refusal is not None
    assert refusal.status == CommandStatus.ESME_RSUBMITFAIL


@pytest.mark.parametrize(
    "text",
    [
        "【某银行】请下载国家反诈中心APP，谨防诈骗",  # a mention, not a signature
        "【某银行】您的验证码是123456",
        "妈，我到家了",
    ],
)
def test_mentions_and_other_signatures_pass(text):
    assert check("10690", text) is None


def test_a_text_without_a_character_all_names_share_passes_and_the_others_are_still_checked():
    # 反 and 诈 are in both reserved names: a text missing either (in every form) cannot carry one.
    assert check("10690", "【某银行】谨防诈骗") is None
    assert check("10690", "【某银行】反诈宣传月") is None  # both shared characters, no reserved name
    assert check("10690", "【國家反詐中心】提醒") is not None  # the shared characters in traditional form


def test_names_with_no_character_in_common_are_each_found():
    policy = SenderPolicy([], ["【国家反诈中心】", "【平安北京】"])
    for text in ("【平安北京】提醒您", "【国家反诈中心】提醒您"):
        assert policy.check("10690", text, authorised_senders=NOBODY, authorised_signatures=NOBODY) is not None
    assert policy.check("10690", "【某银行】您好", authorised_senders=NOBODY, authorised_signatures=NOBODY) is None
