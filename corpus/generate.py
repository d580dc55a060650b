"""Generate the development corpus: fraud and hard ham composed from hand-written blocks, plus evasions.

    python corpus/generate.py            # rewrite corpus/dev.jsonl and corpus/test.jsonl
    python corpus/generate.py --check    # exit 1 when the committed files are not what this makes

Deterministic: one ``random.Random(SEED)`` drives composition and evasions, another
(``SPLIT_SEED``) the split. A base message and the evasion variants derived from it always land in the
same split, so that a pack tuned on dev cannot have seen a test message's twin. See README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from corpus.blocks_extra import FRAUD_EXTRA, HAM_EXTRA, QUOTED_FAMILIES, TERSE_EXTRA  # noqa: E402
from corpus.blocks_fraud import FRAUD, Blocks  # noqa: E402
from corpus.blocks_ham import CALLS, CHAT_TAILS, CHATS, HAM, TOPICS, HamBlocks  # noqa: E402
from corpus.evasion import EVASIONS  # noqa: E402

SEED = 20261206
SPLIT_SEED = 11
#: Base messages per fraud category and per ham kind; evasion variants come on top.
FRAUD_BASE = 95
HAM_BASE = 205
#: Share of base messages that get one evasion variant (fraud), and that get a benign variant (ham).
FRAUD_VARIANTS = 0.5
HAM_VARIANTS = 0.1
#: Evasions legitimate senders also produce (a Hong Kong bank writes traditional characters).
BENIGN_EVASIONS = ("traditional", "full_width", "spacing")
#: At most this many messages share one composition of blocks (they differ in their fills).
SAME_SHAPE = 2
TEST_SHARE = 0.5
#: The development-only supplement (``blocks_extra.py``): its own seed, so that the split above stays put.
EXTRA_SEED = SEED + 1
#: Base messages per fully written category, per one-line template, and per ham kind of the supplement.
EXTRA_FRAUD_BASE = 45
EXTRA_TERSE_EACH = 2
EXTRA_HAM_BASE = 40
#: The supplement varies more, and leans on the evasions that the first blocks caught least.
EXTRA_VARIANTS = 0.7
EXTRA_EVASION_WEIGHTS = {"homophone": 3, "spacing": 2, "zero_width": 1, "lookalike": 1, "traditional": 1}

# --- fills ----------------------------------------------------------------------------------------

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰斌浩宇欣怡子轩梓涵晨阳"
BANKS = ("工商银行", "建设银行", "中国银行", "农业银行", "招商银行", "交通银行", "邮储银行", "浦发银行", "兴业银行")
BANK_PHONES = ("95588", "95533", "95566", "95599", "95555", "95559", "95580", "95528", "95561")
SHOPS = ("京东", "淘宝", "拼多多", "美团", "抖音商城", "唯品会", "天猫", "快手小店", "闲鱼")
EXPRESS = ("顺丰速运", "中通快递", "圆通速递", "韵达快递", "京东物流", "邮政EMS", "申通快递", "极兔速递")
EXPRESS_PHONES = ("95338", "95311", "95554", "95546", "950616", "11183", "95543", "956025")
CITIES = ("北京市", "上海市", "广州市", "深圳市", "杭州市", "成都市", "武汉市", "南京市", "西安市", "长沙市", "郑州市")
PLACES = ("阳光小区", "幸福里", "科技园", "东门", "学府路", "万达广场", "人民路", "政务服务中心", "建设路")
PLATFORMS = (
    "鑫汇国际",
    "恒信财富",
    "金盛优选",
    "BitGlobal",
    "华泰智投",
    "聚宝盆",
    "众赢Pro",
    "盛世金融",
    "优品汇",
    "星链数科",
)
PLATFORMS_REAL = ("招商银行", "平安银行", "天天基金", "支付宝理财", "京东金融")
APPS = ("腾讯会议", "钉钉", "Zoom", "飞书", "云会议", "小米会议", "屏幕共享助手", "安全卫士", "Skype")
APPS_REAL = ("美团", "饿了么", "网易云音乐", "哔哩哔哩", "小红书", "抖音", "高德地图")
GOV_APPS = ("个人所得税", "国家政务服务平台", "交管12123", "掌上12333")
WALLETS = ("支付宝", "微信支付", "云闪付", "京东支付")
CARRIERS = (("中国移动", "10086"), ("中国联通", "10010"), ("中国电信", "10000"))
AIRLINES = (
    ("南方航空", "95539", "CZ"),
    ("东方航空", "95530", "MU"),
    ("中国国航", "95583", "CA"),
    ("海南航空", "95339", "HU"),
    ("春秋航空", "95524", "9C"),
)
GAMES = ("王者荣耀", "和平精英", "原神", "梦幻西游", "逆水寒", "英雄联盟", "蛋仔派对", "我的世界")
STOCKS = ("某科技股", "三只牛股", "这只龙头股", "一只妖股", "次新股")
LEADERS = ("张总", "李局", "王书记", "刘主任", "陈校长", "赵董", "孙经理", "周处长", "吴院长")
RELATIVES = ("表哥", "表妹", "侄子", "外甥", "堂弟", "老同学", "大学室友")
TEACHERS = ("李老师", "王老师", "张老师", "班主任刘老师", "陈教授", "股神赵老师")
AGENCIES = ("公安局", "检察院", "人民法院", "经侦支队", "刑侦支队")
CASES = ("洗钱案", "非法集资案", "电信诈骗案", "跨境赌博案", "贩卖个人信息案", "医保诈骗案")
OFFICERS = ("王", "李", "张", "刘", "陈", "杨")
PRODUCTS = ("苹果手机", "笔记本电脑", "扫地机器人", "电动车", "空调", "金条")
TV = ("《奔跑吧》", "《非常6+1》", "《开门大吉》", "《幸运52》")
BRANDS = ("优衣库", "李宁", "安踏", "屈臣氏", "周大福", "海底捞", "瑞幸咖啡", "喜茶")
SCHOOLS = ("实验小学", "第一中学", "新东方", "阳光幼儿园", "外国语学校")
POLICE_SIGNS = ("{city}公安", "{city}反诈中心", "平安{city}", "{city}公安局反诈中心", "{city}网警")
CARS = ("大众", "丰田", "本田", "比亚迪", "吉利")
HOTELS = ("如家酒店", "汉庭酒店", "全季酒店", "亚朵酒店")
TLDS = ("top", "cc", "vip", "xyz", "icu", "club", "shop", "site", "info", "com")
WORDS = (
    "icbc",
    "ccb",
    "boc",
    "jd",
    "tb",
    "pdd",
    "alipay",
    "wx",
    "etc",
    "gov",
    "safe",
    "kefu",
    "pay",
    "vip",
    "loan",
    "cash",
    "win",
    "kf",
    "app",
    "cn",
    "union",
    "sb",
    "yibao",
    "court",
    "fly",
    "game",
)


def number(rnd: random.Random, digits: int) -> str:
    return str(rnd.randint(1, 9)) + "".join(rnd.choice("0123456789") for _ in range(digits - 1))


def mobile(rnd: random.Random) -> str:
    return "1" + rnd.choice("3456789") + number(rnd, 9)


def money(rnd: random.Random, low: int, high: int) -> str:
    value = rnd.randint(low, high)
    shape = rnd.random()
    if value >= 10000 and shape < 0.3:
        return f"{value // 10000}万"
    if shape < 0.45:
        return f"{value:,}"
    if shape < 0.55:
        return f"¥{value}"
    if shape < 0.65 and value >= 1000:
        return f"{value // 1000}千"
    return str(value)


def link(rnd: random.Random) -> str:
    a, b = rnd.sample(WORDS, 2)
    host = rnd.choice((f"{a}-{b}", f"{a}{b}", f"{a}{rnd.randint(1, 99)}", f"www.{a}-{b}"))
    tld = rnd.choice(TLDS)
    path = rnd.choice(("", "", f"/{number(rnd, 4)}", "/login", "/t/" + a[:2] + number(rnd, 3)))
    shape = rnd.random()
    if shape < 0.45:
        return f"{rnd.choice(('http://', 'https://', ''))}{host}.{tld}{path}"
    if shape < 0.55:
        return f"{host}[.]{tld}"
    if shape < 0.62:
        return f"{host}点{tld}"
    if shape < 0.72:
        return f"t.cn/{rnd.choice('ABCDEFGH')}{number(rnd, 4)}{rnd.choice('xyzk')}"
    if shape < 0.8:
        return f"http://{rnd.randint(11, 223)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}/{a}"
    if shape < 0.88:
        return " ".join(f"{host}.{tld}")
    return f"{host}。{tld}"


def handle(rnd: random.Random) -> str:
    ident = rnd.choice(("", "kf", "vip", "a", "zx", "hr", "ly", "mm", "lc")) + number(rnd, rnd.randint(5, 9))
    kind = rnd.choice(
        (
            "微信",
            "微信：",
            "VX：",
            "vx",
            "V信",
            "薇信",
            "威信",
            "+V",
            "v：",
            "wx",
            "QQ：",
            "扣扣",
            "企鹅",
            "飞机@",
            "TG @",
            "纸飞机：",
            "蝙蝠",
            "Line：",
        )
    )
    if kind in ("QQ：", "扣扣", "企鹅"):
        return kind + number(rnd, rnd.randint(6, 10))
    return kind + ident


FILLS: dict[str, Callable[[random.Random], str]] = {
    "name": lambda r: r.choice(SURNAMES) + r.choice(GIVEN) + (r.choice(GIVEN) if r.random() < 0.5 else ""),
    "surname": lambda r: r.choice(SURNAMES),
    "bank": lambda r: r.choice(BANKS),
    "bank_phone": lambda r: r.choice(BANK_PHONES),
    "shop": lambda r: r.choice(SHOPS),
    "express": lambda r: r.choice(EXPRESS),
    "express_phone": lambda r: r.choice(EXPRESS_PHONES),
    "city": lambda r: r.choice(CITIES),
    "place": lambda r: r.choice(PLACES),
    "platform": lambda r: r.choice(PLATFORMS),
    "platform_real": lambda r: r.choice(PLATFORMS_REAL),
    "app": lambda r: r.choice(APPS),
    "app_real": lambda r: r.choice(APPS_REAL),
    "gov_app": lambda r: r.choice(GOV_APPS),
    "wallet": lambda r: r.choice(WALLETS),
    "carrier": lambda r: r.choice(CARRIERS)[0],
    "carrier_phone": lambda r: r.choice(CARRIERS)[1],
    "airline": lambda r: r.choice(AIRLINES)[0],
    "airline_phone": lambda r: r.choice(AIRLINES)[1],
    "flight": lambda r: r.choice(AIRLINES)[2] + str(r.randint(1000, 9999)),
    "game": lambda r: r.choice(GAMES),
    "stock": lambda r: r.choice(STOCKS),
    "leader": lambda r: r.choice(LEADERS),
    "relative": lambda r: r.choice(RELATIVES),
    "teacher": lambda r: r.choice(TEACHERS),
    "agency": lambda r: r.choice(AGENCIES),
    "case": lambda r: r.choice(CASES),
    "officer": lambda r: r.choice(OFFICERS),
    "product": lambda r: r.choice(PRODUCTS),
    "tv": lambda r: r.choice(TV),
    "brand": lambda r: r.choice(BRANDS),
    "school_real": lambda r: r.choice(CITIES) + r.choice(SCHOOLS),
    "police_sign": lambda r: r.choice(POLICE_SIGNS).format(city=r.choice(CITIES).rstrip("市")),
    "car": lambda r: r.choice(CARS),
    "hotel": lambda r: r.choice(HOTELS),
    "amount": lambda r: money(r, 2000, 200000),
    "balance": lambda r: f"{r.randint(100, 90000):,}.{r.randint(0, 99):02d}",
    "small": lambda r: money(r, 50, 3000),
    "tiny": lambda r: str(r.choice((1, 2, 3, 5, 8, 10, 15, 20, 30, 50))),
    "pct": lambda r: r.choice(("{}%", "百分之{}", "{}个点")).format(r.choice((3, 5, 8, 10, 15, 20, 30, 50, 200))),
    "pct_real": lambda r: f"{r.uniform(1.5, 3.2):.2f}%",
    "points": lambda r: str(r.randint(500, 50000)),
    "code": lambda r: number(r, 6),
    "qq": lambda r: number(r, r.randint(7, 10)),
    "card": lambda r: "6" + number(r, 18),
    "phone": lambda r: r.choice((mobile(r), "400-" + number(r, 3) + "-" + number(r, 4), "0" + number(r, 10))),
    "order": lambda r: number(r, 16),
    "parcel": lambda r: r.choice(("SF", "YT", "ZT", "JD", "")) + number(r, 12),
    "pick": lambda r: f"{r.randint(1, 9)}-{r.randint(1, 9)}-{number(r, 4)}",
    "tail": lambda r: number(r, 4),
    "date": lambda r: f"{r.randint(1, 12)}月{r.randint(1, 28)}日",
    "clock": lambda r: f"{r.randint(6, 22):02d}:{r.randint(0, 59):02d}",
    "minutes": lambda r: str(r.choice((5, 10, 15, 30))),
    "hours": lambda r: str(r.randint(12, 21)),
    "year": lambda r: str(r.choice((2024, 2025, 2026))),
    "n": lambda r: str(r.randint(1, 30)),
    "train": lambda r: r.choice("GDK") + str(r.randint(1, 999)),
    "gate": lambda r: f"{r.randint(1, 30)}{r.choice('AB')}",
    "seat": lambda r: f"{r.randint(1, 45)}{r.choice('ABCDF')}",
    "link": link,
    "handle": handle,
}
_SLOT = re.compile(r"\{([a-z_]+)\}")


def fill(template: str, rnd: random.Random, extra: dict[str, str] | None = None) -> str:
    def one(m: re.Match[str]) -> str:
        name = m.group(1)
        if extra and name in extra:
            return extra[name]
        return FILLS[name](rnd)

    return _SLOT.sub(one, template)


# --- senders --------------------------------------------------------------------------------------

FRAUD_SENDERS: tuple[tuple[float, Callable[[random.Random], str]], ...] = (
    (0.55, mobile),
    (0.2, lambda r: r.choice(("170", "171", "165", "167", "162")) + number(r, 8)),
    (0.12, lambda r: r.choice(("+63", "+855", "+95", "+84", "+60", "00852", "+1")) + number(r, 9)),
    (0.08, lambda r: "106" + number(r, r.randint(8, 11))),
    (0.05, lambda r: "+86" + mobile(r)),
)
HAM_SENDERS: dict[str, Callable[[random.Random], str]] = {
    "port": lambda r: "106" + number(r, r.randint(8, 11)),
    "bank": lambda r: r.choice(BANK_PHONES),
    "carrier": lambda r: r.choice(CARRIERS)[1],
    "antifraud": lambda r: r.choice(("12381", "96110", "106" + number(r, 9))),
    "gov": lambda r: r.choice(("12333", "12366", "12345", "12368", "106" + number(r, 9))),
    "airline": lambda r: r.choice(AIRLINES)[1],
    "mobile": mobile,
}


def ham_sender(text: str, blocks: HamBlocks, rnd: random.Random) -> str:
    """A number that would send ``text``: the one its signature implies, else one of its kind's."""
    if text.startswith("【12306】"):
        return "12306"
    for bank, phone in zip(BANKS, BANK_PHONES, strict=True):
        if text.startswith(f"【{bank}】"):
            return rnd.choice((phone, "106" + number(rnd, 9)))
    for airline, phone, _ in AIRLINES:
        if text.startswith(f"【{airline}】"):
            return phone
    for carrier, phone in CARRIERS:
        if text.startswith(f"【{carrier}】"):
            return phone
    kinds = [k for k in blocks.senders if k not in ("bank", "airline", "carrier")] or list(blocks.senders)
    return HAM_SENDERS[rnd.choice(kinds)](rnd)


def fraud_sender(rnd: random.Random) -> str:
    x = rnd.random()
    for share, make in FRAUD_SENDERS:
        if x < share:
            return make(rnd)
        x -= share
    return mobile(rnd)


# --- composition ----------------------------------------------------------------------------------


def _join(parts: list[str], rnd: random.Random, script: bool) -> str:
    out = ""
    for i, part in enumerate(parts):
        if i:
            if out[-1] in "。！？!?，,：:】":
                pass
            elif script:
                out += rnd.choice(("。", "。", "，", "！"))
            else:
                out += rnd.choice(("，", "，", "。", " ", "！"))
        out += part
    if rnd.random() < 0.5 and out[-1] not in "。！？!?":
        out += rnd.choice(("。", "！", "！！", "~"))
    return out


def compose_fraud(blocks: Blocks, rnd: random.Random) -> tuple[str, str, tuple[Any, ...]]:
    """(text, voice, shape): one message in a random voice; ``shape`` names the blocks it used."""
    voice = rnd.choices(("terse", "standard", "script"), (0.3, 0.45, 0.25))[0]
    if voice == "terse":
        if rnd.random() < 0.6 or not blocks.hook:
            i = rnd.randrange(len(blocks.terse))
            return fill(blocks.terse[i], rnd), voice, ("terse", i)
        h, c = rnd.randrange(len(blocks.hook)), rnd.randrange(len(blocks.contact))
        return _join([fill(blocks.hook[h], rnd), fill(blocks.contact[c], rnd)], rnd, False), voice, ("hc", h, c)
    slots: list[tuple[str, tuple[str, ...]]]
    if voice == "standard":
        slots = [("open", blocks.open)] if rnd.random() < 0.6 else []
        slots += [("hook", blocks.hook), ("ask", blocks.ask)]
        if rnd.random() < 0.4:
            slots.append(("push", blocks.push))
        slots.append(("contact", blocks.contact))
    else:
        slots = [("open", blocks.open), ("hook", blocks.hook)]
        if blocks.detail:
            slots.append(("detail", blocks.detail))
        slots += [("ask", blocks.ask), ("push", blocks.push)]
        if blocks.detail and rnd.random() < 0.5:
            slots.insert(3, ("detail2", blocks.detail))
        slots.append(("contact", blocks.contact))
        if rnd.random() < 0.3:  # call scripts often put the demand after the pressure
            slots[-3], slots[-2] = slots[-2], slots[-3]
    chosen = [(name, rnd.randrange(len(options))) for name, options in slots if options]
    table = dict(slots)
    text = _join([fill(table[name][i], rnd) for name, i in chosen], rnd, voice == "script")
    return text, voice, tuple(chosen)


def quote(rnd: random.Random) -> tuple[str, str]:
    """A fraud script to quote in a reminder: (category, a filled hook or demand, without its link)."""
    category = rnd.choice(sorted(FRAUD))
    blocks = FRAUD[category]
    options = [t for t in blocks.hook + blocks.ask + blocks.terse if "{link}" not in t and "{handle}" not in t]
    text = fill(rnd.choice(options), rnd)
    return category, text.rstrip("。！!，")


def compose_ham(kind: str, blocks: HamBlocks, rnd: random.Random) -> tuple[str, tuple[Any, ...]]:
    i = rnd.randrange(len(blocks.templates))
    template = blocks.templates[i]
    if kind == "chat_money":
        c = rnd.randrange(len(CHATS))
        extra = {
            "call": fill(rnd.choice(CALLS), rnd),
            "chat": fill(CHATS[c], rnd),
            "chat_tail": rnd.choice(CHAT_TAILS),
        }
        return fill(template, rnd, extra), (i, c)
    if kind == "antifraud_reminder":
        category, said = quote(rnd)
        return fill(template, rnd, {"quote": said, "topic": TOPICS[category]}), (i, category)
    text = fill(template, rnd)
    if blocks.after and rnd.random() < 0.4:
        ending = fill(rnd.choice(blocks.after), rnd)
        text = text.removesuffix("回T退订") + ending if ending else text
    return text, (i,)


# --- the corpus -----------------------------------------------------------------------------------


def records() -> Iterator[tuple[int, dict[str, Any]]]:
    """(group, record) for every message, in a fixed order; variants share their base's group."""
    rnd = random.Random(SEED)
    group = 0
    seen: set[str] = set()
    for category in sorted(FRAUD):
        blocks = FRAUD[category]
        shapes: Counter[tuple[Any, ...]] = Counter()
        made = 0
        while made < FRAUD_BASE:
            text, voice, shape = compose_fraud(blocks, rnd)
            if text in seen or shapes[shape] >= SAME_SHAPE:
                continue
            seen.add(text)
            shapes[shape] += 1
            made += 1
            group += 1
            base = {"text": text, "from": fraud_sender(rnd), "to": mobile(rnd), "channel": "sms", "label": "fraud"}
            base["category"] = category
            yield group, {**base, "tags": [f"voice:{voice}", "evasion:none"]}
            if rnd.random() < FRAUD_VARIANTS:
                names = rnd.sample(sorted(EVASIONS), 2 if rnd.random() < 0.25 else 1)
                varied = text
                for name in names:
                    varied = EVASIONS[name](varied, rnd)
                if varied not in seen:
                    seen.add(varied)
                    tags = [f"voice:{voice}", *(f"evasion:{name}" for name in names)]
                    yield group, {**base, "text": varied, "tags": tags}
    for kind in sorted(HAM):
        blocks = HAM[kind]
        made = 0
        while made < HAM_BASE:
            text, _ = compose_ham(kind, blocks, rnd)
            if text in seen:
                continue
            seen.add(text)
            made += 1
            group += 1
            src = ham_sender(text, blocks, rnd)
            base = {"text": text, "from": src, "to": mobile(rnd), "channel": "sms", "label": "ham", "category": kind}
            yield group, {**base, "tags": ["evasion:none"]}
            if rnd.random() < HAM_VARIANTS:
                name = rnd.choice(BENIGN_EVASIONS)
                varied = EVASIONS[name](text, rnd)
                if varied not in seen:
                    seen.add(varied)
                    yield group, {**base, "text": varied, "tags": [f"evasion:{name}"]}


def _extra_variant(base: dict[str, Any], voice: str | None, rnd: random.Random) -> dict[str, Any] | None:
    if rnd.random() >= EXTRA_VARIANTS:
        return None
    names = sorted(EXTRA_EVASION_WEIGHTS)
    chosen = rnd.choices(names, [EXTRA_EVASION_WEIGHTS[n] for n in names], k=2 if rnd.random() < 0.25 else 1)
    chosen = list(dict.fromkeys(chosen))
    varied = base["text"]
    for name in chosen:
        varied = EVASIONS[name](varied, rnd)
    tags = ([f"voice:{voice}"] if voice else []) + [f"evasion:{name}" for name in chosen] + ["set:extra"]
    return {**base, "text": varied, "tags": tags}


def extra_records(seen: set[str]) -> Iterator[dict[str, Any]]:
    """The development-only supplement, in a fixed order; ``seen`` keeps every text unique."""
    rnd = random.Random(EXTRA_SEED)

    def emit(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if record["text"] not in seen:
            seen.add(record["text"])
            yield record

    for category in sorted(FRAUD_EXTRA):
        blocks = FRAUD_EXTRA[category]
        shapes: Counter[tuple[Any, ...]] = Counter()
        made = 0
        while made < EXTRA_FRAUD_BASE:
            text, voice, shape = compose_fraud(blocks, rnd)
            if text in seen or shapes[shape] >= SAME_SHAPE:
                continue
            shapes[shape] += 1
            made += 1
            base = {"text": text, "from": fraud_sender(rnd), "to": mobile(rnd), "channel": "sms", "label": "fraud"}
            base = {**base, "category": category, "tags": [f"voice:{voice}", "evasion:none", "set:extra"]}
            yield from emit(base)
            variant = _extra_variant(base, voice, rnd)
            if variant:
                yield from emit(variant)
    for category in sorted(TERSE_EXTRA):
        for template in TERSE_EXTRA[category] * EXTRA_TERSE_EACH:
            text = fill(template, rnd)
            base = {"text": text, "from": fraud_sender(rnd), "to": mobile(rnd), "channel": "sms", "label": "fraud"}
            base = {**base, "category": category, "tags": ["voice:terse", "evasion:none", "set:extra"]}
            yield from emit(base)
            variant = _extra_variant(base, "terse", rnd)
            if variant:
                yield from emit(variant)
    for kind in sorted(HAM_EXTRA):
        blocks = HAM_EXTRA[kind]
        for _ in range(EXTRA_HAM_BASE):
            family = FRAUD_EXTRA[rnd.choice(QUOTED_FAMILIES)]
            said = fill(rnd.choice(family.ask + family.hook), rnd).rstrip("。！!，")
            text = fill(rnd.choice(blocks.templates), rnd, {"quote": said})
            src = HAM_SENDERS[rnd.choice(blocks.senders)](rnd)
            base = {"text": text, "from": src, "to": mobile(rnd), "channel": "sms", "label": "ham", "category": kind}
            yield from emit({**base, "tags": ["evasion:none", "set:extra"]})
            if rnd.random() < HAM_VARIANTS:
                name = rnd.choice(BENIGN_EVASIONS)
                yield from emit({**base, "text": EVASIONS[name](text, rnd), "tags": [f"evasion:{name}", "set:extra"]})


def split() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(dev, test): whole groups, each to test with probability TEST_SHARE under SPLIT_SEED; then the
    development-only supplement, appended to dev."""
    chooser = random.Random(SPLIT_SEED)
    in_test: dict[int, bool] = {}
    dev: list[dict[str, Any]] = []
    test: list[dict[str, Any]] = []
    seen: set[str] = set()
    for group, record in records():
        if group not in in_test:
            in_test[group] = chooser.random() < TEST_SHARE
        (test if in_test[group] else dev).append(record)
        seen.add(record["text"])
    dev.extend(extra_records(seen))
    return dev, test


def render(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed files differ")
    args = parser.parse_args(argv)
    dev, test = split()
    stale = []
    for name, rows in (("dev.jsonl", dev), ("test.jsonl", test)):
        path = HERE / name
        text = render(rows)
        if args.check:
            if not path.exists() or path.read_text("utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, "utf-8")
    for name, rows in (("dev", dev), ("test", test)):
        fraud = sum(r["label"] == "fraud" for r in rows)
        print(f"{name}: {len(rows)} messages, {fraud} fraud, {len(rows) - fraud} ham")
    if stale:
        print(f"stale: {', '.join(stale)}: run python corpus/generate.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
