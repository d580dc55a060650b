"""Near-duplicate fingerprints (rules.campaign): evasions and varied details keep a template's sketch,
other texts do not share it, every process computes the same one, and a campaign's points raise a verdict."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rules import Action, Risk, Verdict
from rules.campaign import BANDS, SLOTS, Sketch, boosted, sketch
from rules.model import Thresholds

ROOT = Path(__file__).resolve().parents[2]
PLAIN = "张伟您好，您名下的抖音会员即将自动续费399元，如需取消请于今日联系专员vx:kf123办理，逾期不予处理"
EVADED = {
    "traditional": "張偉您好，您名下的抖音會員即將自動續費399元，如需取消請於今日聯繫專員vx:kf123辦理，逾期不予處理",
    "spacing": "张 伟 您好，您 名 下 的 抖 音 会 员 即 将 自 动 续 费399元，如 需 取 消 请 于 今日联系专员vx:kf123办理",
    "zero width": (
        "张\u200b伟您\u200d好，您名\u200c下的抖音会员即将自动续费399元，"
        "如需取消请于今日联系专员vx:kf123办理，逾期不予处理"
    ),
    "full width": (
        "张伟您好，您名下的抖音会员即将自动续费３９９元，如需取消请于今日联系专员ｖｘ：ｋｆ１２３办理，逾期不予处理"
    ),
    "homophones": "张伟您好，您名下的抖音会元即将自栋续费399元，如需取消请于今日连系专员vx:kf123办理，逾期不予处里",
    "emoji": "张伟🌹您好，您名下的🎁抖音会员即将自动💰续费399元，如需取消请于今日联系专员vx:kf123办理，逾期不予处理",
    "details": "李娜您好，您名下的抖音会员即将自动续费588元，如需取消请于今日联系专员QQ 88776655办理，逾期不予处理",
}
UNRELATED = (
    "【某某快递】您的包裹已到达小区驿站，请凭取件码领取，如有疑问请联系快递员",
    "妈，我周末回家吃饭，帮我把上次那件外套找出来，天冷了要穿",
    "各位同学请注意，本周五下午的体育课改到周四上午，请相互转告",
)


@pytest.mark.parametrize("evasion", sorted(EVADED))
def test_evasions_and_varied_details_keep_the_sketch(evasion):
    plain, evaded = sketch(PLAIN), sketch(EVADED[evasion])
    assert plain is not None
    assert evaded is not None
    assert plain.similarity(evaded) >= 0.7
    assert set(plain.bands) & set(evaded.bands)


@pytest.mark.parametrize("other", UNRELATED)
def test_other_texts_do_not_resemble_it(other):
    plain, found = sketch(PLAIN), sketch(other)
    assert plain is not None
    assert found is not None
    assert plain.similarity(found) < 0.2


def test_short_texts_get_no_sketch():
    assert sketch("您的验证码是123456") is None
    assert sketch("ok http://example.com/a/b/c/d/e 1234567890") is None


def test_the_sketch_has_its_shape_and_survives_its_text_form():
    found = sketch(PLAIN)
    assert found is not None
    assert len(found.slots) == SLOTS
    assert len(found.bands) == BANDS == len(set(found.bands))
    assert Sketch.from_hex(found.hex) == found


def test_every_process_computes_the_same_sketch():
    # Python salts str hashes per process; gateways sharing one Redis must agree on the bands anyway.
    code = f"from rules.campaign import sketch; print(sketch({PLAIN!r}).hex)"
    seen = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        seen.add(out.stdout.strip())
    found = sketch(PLAIN)
    assert found is not None
    assert seen == {found.hex}


def thresholds(category: str) -> Thresholds | None:
    return Thresholds(tag=3, warn=5, block=8) if category == "customer_service" else None


def test_a_campaign_raises_a_passed_copy_to_its_category():
    raised = boosted(Verdict(), "customer_service", 5.0, None, thresholds)
    assert (raised.action, raised.risk, raised.category) == (Action.WARN, Risk.MEDIUM, "customer_service")
    assert raised.contributions == (("campaign", "customer_service", 5.0),)
    assert raised.rules == ("campaign",)


def test_points_add_to_the_rules_own_and_the_least_action_holds():
    scored = Verdict(
        action=Action.TAG,
        risk=Risk.LOW,
        rules=("cs.refund",),
        category="customer_service",
        contributions=(("cs.refund", "customer_service", 3.0),),
        totals=(("customer_service", 3.0),),
    )
    assert boosted(scored, "customer_service", 5.0, None, thresholds).action is Action.BLOCK  # 3 + 5 = 8
    assert boosted(Verdict(), "other", 1.0, Action.TAG, thresholds).action is Action.TAG


def test_a_campaign_never_lowers_a_verdict():
    blocked = Verdict(action=Action.BLOCK, risk=Risk.HIGH, rules=("x",), category="phishing")
    raised = boosted(blocked, "customer_service", 1.0, Action.TAG, thresholds)
    assert (raised.action, raised.risk, raised.category) == (Action.BLOCK, Risk.HIGH, "phishing")
