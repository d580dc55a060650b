"""What the town's SMS say and who sends them: legitimate texts by kind, fraud texts by category, and
the evasions fraudsters use to slip past keyword filters.

The fraud texts are written for the simulator in the style of the five high-incidence types and their
relatives (not copied from the rule packs' own test cases): the report then measures the packs against
text they were not tuned on. Every draw comes from the caller's seeded ``random.Random``.
"""

from __future__ import annotations

import random

__all__ = ["EVADE", "fraud_sender", "fraud_text", "legit_sender", "legit_text"]

_LEGIT: dict[str, tuple[str, ...]] = {
    "bank": (
        "【某银行】您尾号{n}的账户于{hh}:{mm}转入人民币{amount}.00元，余额{big}.00元。",
        "【某银行】您的验证码是{code}，5分钟内有效，请勿向任何人泄露。",
        "【某银行】您的信用卡本期账单{amount}.00元，还款日为本月25日，请按时还款。",
    ),
    "carrier": (
        "【中国移动】尊敬的客户，您本月已使用流量{small}GB，剩余{small}GB。",
        "【中国移动】您的话费余额为{small}.50元，为避免停机请及时充值。",
    ),
    "courier": (
        "【顺丰速运】您的快递已到达小区驿站，取件码{code}，请于今日18点前取件。",
        "【中通快递】您的包裹正在派送中，快递员电话13{n}{n}，请保持电话畅通。",
    ),
    "shop": (
        "【某商城】您的订单{n}{n}已发货，预计明日送达。",
        "【某商城】会员日全场满{amount}减50，回TD退订。",
    ),
    "government": (
        "【12345】您反映的小区路灯问题已转交街道办处理，感谢您的监督。",
        "【社保中心】您{mm}月的养老保险已缴纳成功，如有疑问请咨询12333。",
    ),
    "friend": (
        "晚上七点老地方吃饭，别迟到",
        "到家了吗？明天记得带伞，听说要下雨",
        "周末一起去爬山吧，我开车来接你",
        "妈，我这周末回家吃饭",
    ),
}

#: Fraud texts per category (the categories the rule packs know).
_FRAUD: dict[str, tuple[str, ...]] = {
    "order_brushing": (
        "刷单兼职，日结工资，一单返佣金30元，动动手指日赚500，加微信kf8888详聊",
        "招聘网络兼职，在家点赞关注即可，垫付后立即返本返佣，日赚三五百，加QQ{code}",
    ),
    "investment": (
        "【理财导师】内部消息，某股明日必涨停，进群跟着导师操作，稳赚不赔，保本保息，名额有限",
        "老师带单，数字货币稳赚不赔，日收益10%，下载APP注册即送体验金，加微信{code}",
    ),
    "loan": (
        "您好，您申请的网贷额度20万已审批，需先缴纳3000元解冻费和保证金才能放款，请尽快处理",
        "无抵押低息贷款，当天放款，放款前需交手续费和刷流水，联系客服微信{code}",
    ),
    "customer_service": (
        "【淘宝客服】您购买的商品质量有问题，我们将为您办理双倍赔偿退款，请添加客服微信并下载会议软件共享屏幕",
        "【京东客服】您开通了百万保障服务，每月将扣费800元，如需关闭请联系客服微信{code}注销",
    ),
    "police_impersonation": (
        "【公安局】您的身份信息涉嫌一起洗钱案件，请立即将名下资金转入安全账户配合调查，否则将冻结您的银行卡。",
        "这里是市公安局刑侦支队，您涉嫌洗钱犯罪，案件保密，请将资金转入安全账户接受资金审查",
    ),
    "acquaintance_impersonation": (
        "妈，我手机掉水里了，这是我新号码，先别打电话，急用钱，帮我转5000块给同学",
        "小王，我是你们李局，这是我新号，明天有笔款急用，你先帮我垫付一下，回头报销",
    ),
    "phishing": (
        "【ETC】您的ETC已失效，请点击 http://etc-renew.example.top 重新认证，逾期将停用",
        "您的积分{amount}即将清零，请登录 http://jf-dh.example.xyz 兑换现金礼品",
    ),
    "international": (
        "Congratulations! 您的号码在国际抽奖中获得一等奖{big}美元，请缴纳手续费后领取",
        "【海外代购】您的包裹被海关扣押，需缴纳关税{amount}元，请联系客服微信{code}",
    ),
    "spoofing": (
        "【工商银行】您的账户存在异常，已被临时冻结，请点击链接验证身份解冻",
        "【建设银行】您的信用卡积分即将过期，请联系客服办理兑换，回复身份证号码",
    ),
}

_LEGIT_SENDERS = {
    "bank": ("1069095588", "1069095599"),
    "carrier": ("10086",),
    "courier": ("1069095338", "1069011111"),
    "shop": ("1069088888",),
    "government": ("12345", "12333"),
}

_TRADITIONAL = str.maketrans("账户转资金钱银行诈骗验证码帐", "賬戶轉資金錢銀行詐騙驗證碼帳")
_HOMOPHONE = str.maketrans({"账": "帐", "户": "护", "安": "按", "全": "泉", "资": "咨", "转": "传", "返": "反"})
_STROKES = "丨丶丿"


def _spaced(text: str, rng: random.Random) -> str:
    return " ".join(text)


def _punctuated(text: str, rng: random.Random) -> str:
    return "".join(ch + (rng.choice("-*·.") if rng.random() < 0.3 else "") for ch in text)


def _strokes(text: str, rng: random.Random) -> str:
    return "".join(ch + (rng.choice(_STROKES) if rng.random() < 0.2 else "") for ch in text)


def _zero_width(text: str, rng: random.Random) -> str:
    return "\u200b".join(text)


def _full_width(text: str, rng: random.Random) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _traditional(text: str, rng: random.Random) -> str:
    return text.translate(_TRADITIONAL)


def _homophone(text: str, rng: random.Random) -> str:
    return text.translate(_HOMOPHONE)


def _alias(text: str, rng: random.Random) -> str:
    return text.replace("微信", rng.choice(("薇信", "V信", "vx"))).replace("QQ", "扣扣")


def _link(text: str, rng: random.Random) -> str:
    return text.replace("http://", "h t t p : / / ").replace(".", "[.]")


#: Evasion name (the scenario format's EVASIONS) -> how a text is rewritten.
EVADE = {
    "spacing": _spaced,
    "punctuation": _punctuated,
    "strokes": _strokes,
    "zero_width": _zero_width,
    "full_width": _full_width,
    "traditional": _traditional,
    "homophone": _homophone,
    "alias": _alias,
    "link_obfuscation": _link,
}


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        n=rng.randrange(1000, 9999),
        amount=rng.randrange(10, 5000),
        big=rng.randrange(10_000, 99_999),
        small=rng.randrange(1, 30),
        code=rng.randrange(100_000, 999_999),
        hh=f"{rng.randrange(24):02d}",
        mm=f"{rng.randrange(1, 13):02d}",
    )


def legit_text(kind: str, rng: random.Random) -> str:
    return _fill(rng.choice(_LEGIT[kind]), rng)


def legit_sender(kind: str, rng: random.Random) -> str:
    """The source address of a legitimate SMS of ``kind``; a friend writes from a mobile number."""
    if kind == "friend":
        return f"8613{rng.randrange(10**9):09d}"
    return rng.choice(_LEGIT_SENDERS[kind])


def fraud_text(category: str, rng: random.Random, evasion: str | None = None) -> str:
    text = _fill(rng.choice(_FRAUD.get(category) or _FRAUD["police_impersonation"]), rng)
    return EVADE[evasion](text, rng) if evasion else text


def fraud_sender(kind: str, rng: random.Random) -> str:
    """A source address of the scenario's sender kind (SENDER_KINDS)."""
    if kind == "virtual_operator":
        return f"170{rng.randrange(10**8):08d}"
    if kind == "service_106":
        return f"1069{rng.randrange(10**7):07d}"
    if kind == "international":
        return f"+63{rng.randrange(10**9):09d}"
    return f"86{rng.choice(('135', '150', '187'))}{rng.randrange(10**8):08d}"
