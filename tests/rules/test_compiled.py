"""The mypyc build of the message path (``make compile``): the package finds its data whether its modules
run compiled or as Python (afgw_compiled decides which; tests/afgw_compiled)."""

from __future__ import annotations

from pathlib import Path

import rules
from rules.homophones import TABLE, fold_squeezed
from rules.normalise import domains, normalise


def test_the_data_files_are_found_beside_the_package() -> None:
    # a compiled module's __file__ is not its own path: the tables are found from the package's
    assert Path(rules.__file__).resolve().parent / "homophones.json" == TABLE
    assert TABLE.exists()
    assert fold_squeezed("安全帐户") == fold_squeezed("鞍全账护")
    assert domains(normalise("登录 pay-refund.buzz 领取")) == ("pay-refund.buzz",)  # a TLD of data/signals.json


def test_a_message_is_a_value() -> None:
    # a plain class (a compiled dataclass would build each one through the dataclasses module's __init__)
    message = rules.Message("sms", "95588", "13800138000", "您的验证码", "domestic", "95588", None)
    same = rules.Message(channel="sms", src="95588", dst="13800138000", text="您的验证码", sender_id="95588")
    assert message == same
    assert hash(message) == hash(same)
    later = same.at(1_700_000_000.0)
    assert message != later
    assert later.now == 1_700_000_000.0
    assert later.text == "您的验证码"
    assert repr(message).startswith("Message(channel='sms', src='95588', dst='13800138000'")
    assert message.as_dict() == {
        "channel": "sms",
        "from": "95588",
        "to": "13800138000",
        "text": "您的验证码",
        "origin": "domestic",
        "sender_id": "95588",
    }
