"""Rule engine throughput on one core, side by side with the raw Hyperscan scan, and the reload time.

The rule set is the shipped packs plus synthetic rules holding ``--keywords`` keywords (5,000) and
``--regexes`` regular expressions (200). The traffic is ``--messages`` (100,000) realistic SMS, about one
in seven of them fraud (from the five high-incidence types, with evasions), the rest verification codes,
bank and delivery notices, marketing and family messages, generated from templates with random fills.

Printed, all in one run:

- engine: ``Engine.evaluate`` per message, normalisation included (the gateway's cost);
- engine without normalisation: the same with each message's views computed beforehand;
- normalisation alone;
- raw Hyperscan: the same databases scanning each message's UTF-8 text once per database, with a
  callback that only counts, so the ratio shows what the engine adds over the matcher itself;
- the homophone view: the engine again with ``--homophone-keywords`` (1,000) more synthetic keywords
  matched on the homophone view (which the shipped packs use for longer phrases), side by side with the first
  line, and the homophone fold alone over the squeezed views;
- scoring and structural signals: the engine again with a pack of scored rules on every structural
  selector (URLs, contact handles, money, phone numbers, sender kind, official reminders) and on weak
  keywords, with per-category thresholds, side by side with the first line;
- reload: load, validate and compile ``--reload-rules`` (10,000) generated rules from YAML;
- with ``--against DIR`` (another checkout, such as a ``git worktree`` of main): the engine of this
  checkout and that of DIR side by side, for the three rule sets above, on the same traffic and the same
  rule files (each checkout's own shipped packs), each in its own process, the runs taken in turn so
  that the shared machine's load falls on both alike; the best run of each (in CPU time of the process,
  so that waiting for a busy core does not count) and their ratio.

    python bench/rules_throughput.py [--messages 100000] [--keywords 5000] [--regexes 200] [--cpu 0]
    python bench/rules_throughput.py --against ../main-worktree [--messages 30000] [--repeat 5]
    valgrind --tool=callgrind --toggle-collect=map_next python bench/rules_throughput.py --count engine --messages 2000
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

# the checkout whose rules package is measured: this one, or the one a --child is told to load
sys.path.insert(
    0,
    sys.argv[sys.argv.index("--root") + 1] if "--root" in sys.argv[:-1] else str(Path(__file__).resolve().parents[1]),
)

import rules
from rules.homophones import fold_squeezed
from rules.normalise import views

# Common characters of Chinese SMS, for synthetic keywords that look like real ones.
POOL = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
    "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性"
    "好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第"
    "向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管"
    "特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处"
    "账户款转贷客服退保证金额投收益股票微信号码验停冻结扣费订单任务佣金返利刷赚钱会员平台提现充值激活"
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
BANKS = ["工商银行", "建设银行", "中国银行", "农业银行", "招商银行", "交通银行", "邮储银行"]
SHOPS = ["京东", "淘宝", "拼多多", "美团", "饿了么", "抖音", "唯品会"]
EXPRESS = ["顺丰速运", "中通快递", "圆通速递", "韵达快递", "京东物流", "邮政EMS"]
DOMAINS = ["bank-cn.top", "tb-refund.cc", "gp-vip[.]cc", "jd-loan.vip", "dhl-track.top", "qb-daikuan点com", "t.cn/A6x"]
HAM = [
    "【{shop}】您的验证码是{code}，{n}分钟内有效，请勿泄露给他人。",
    "您的验证码为{code}，用于登录{shop}，如非本人操作请忽略。",
    "【{bank}】您尾号{tail}的账户{mm}月{dd}日{hh}:{mi}支出{amount}元，余额{balance}元。",
    "【{bank}】您尾号{tail}的信用卡本期账单{amount}元，最后还款日{mm}月{dd}日，详询客服。",
    "【{bank}】温馨提示：银行不会以任何理由要求您转账到安全账户，谨防诈骗。",
    "【{express}】您的快件{parcel}已到达{place}驿站，请凭取件码{pick}及时领取。",
    "【{express}】您的快件{parcel}正在派送中，快递员{name}电话1{phone}。",
    "【{shop}】您购买的商品已发货，订单号{order}，可在APP查看物流。",
    "【{shop}】您的退款{amount}元已原路退回，预计1-3个工作日到账。",
    "【{shop}】618大促开启，满300减50，会员专享折扣，回T退订。",
    "【中国移动】您本月话费{amount}元，剩余流量{n}GB，详询10086。",
    "【国家电网】您家{mm}月电费{amount}元，请于{dd}日前缴纳。",
    "【{city}人社】您的社保卡已制卡完成，请携带身份证到{place}领取。",
    "【12306】订单{order}，{name}您已购{mm}月{dd}日G{train}次{n}车{seat}号，检票口{gate}。",
    "妈，我今天加班，晚饭不回来吃了，你们先吃。",
    "爸，这个月工资发了，给你转了{amount}块，记得查收。",
    "老{surname}，明天上午{hh}点开会，记得带上合同。",
    "{name}，周末一起去爬山吗？天气预报说是晴天。",
    "宝贝，放学后在校门口等我，妈妈{hh}点来接你。",
    "您好，我是{shop}骑手，您的外卖放在门口了，祝您用餐愉快。",
    "【{city}医院】您预约的{mm}月{dd}日{hh}:{mi}门诊号{n}号，请提前30分钟到达。",
    "【{city}公安局】您申请的居住证已办理完成，请携带身份证到派出所领取。",
    "【滴滴出行】您的行程已结束，车费{amount}元，感谢乘坐。",
    "【支付宝】您的余额宝昨日收益{small}元。",
    "【微信支付】您的零钱提现已到账，金额{amount}元。",
    "详情见 https://www.{brand}.com 或拨打客服热线400-{phone4}。",
]
FRAUD = [
    "您好，我是{city}公安局民警，你的身份证涉嫌洗钱案，需将资金转入安全账户配合调查，不得告诉家人",
    "您 涉 嫌 洗 钱 案 件，请 将 资 金 转 入 安 全 账 户",
    "您涉嫌洗錢，請將資金轉入國家安全帳戶進行資金核查",
    "【{shop}客服】您购买的商品存在质量问题，为您办理双倍赔偿退款，请添加客服微信kf{n}办理",
    "快 递 丢 失，客 服 为 您 理 赔 三 倍，请 下 载 会 议 软 件",
    "您的學生帳戶未註銷，將影響個人徵信，請聯繫客服辦理註銷",
    "诚招手机兼职，点赞关注抖音博主即可，一单一结，日赚{amount}元，加V信：dy{code}详聊",
    "刷\u200b单\u200b返\u200b利，日\u200b结三百，动动手指就能赚",
    "您的任务出现卡单，需再垫付{amount}元完成连单才能提现本金和佣金",
    "内幕消息：明日三只牛股必涨停，稳赚不赔，加微信tz{n}入群免费领取",
    "ＵＳＤＴ理财，日收益３％，零风险，随存随取",
    "您在恒信国际平台的收益已达{amount}元，需缴纳个人所得税后方可提现",
    "【惠民贷】您有一笔5万元备用金待领取，无需征信，秒到账，点击 {domain} 办理",
    "貸款無需徵信，秒批秒到帳，低息免審核",
    "您的贷款已审批通过，因卡号填写错误资金被冻结，需缴纳解冻金{amount}元后放款",
    "妈，我手机掉水里了，这是我新号码，先别打电话，急用钱，帮我转{amount}块给同学",
    "我 是 你 领 导 张 总，加 我 新 微 信，帮 我 给 对 方 先 转 五 万",
    "【国家反诈中心】您的账户存在风险，请下载反诈APP并按提示转账验证",
    "【{bank}】您的账户积分即将清零，请登录 {domain} 兑换",
]
CITIES = ["北京市", "上海市", "广州市", "深圳市", "杭州市", "成都市", "武汉市", "南京市"]
PLACES = ["阳光小区", "幸福里", "科技园", "东门", "学府路", "万达广场"]


def _fill(template: str, rnd: random.Random) -> str:
    def num(k: int) -> str:
        return "".join(rnd.choice("0123456789") for _ in range(k))

    return template.format(
        shop=rnd.choice(SHOPS),
        bank=rnd.choice(BANKS),
        express=rnd.choice(EXPRESS),
        city=rnd.choice(CITIES),
        place=rnd.choice(PLACES),
        code=num(6),
        n=rnd.randint(1, 30),
        tail=num(4),
        mm=f"{rnd.randint(1, 12):02d}",
        dd=f"{rnd.randint(1, 28):02d}",
        hh=f"{rnd.randint(7, 21):02d}",
        mi=f"{rnd.randint(0, 59):02d}",
        amount=f"{rnd.randint(10, 50000):,}.{num(2)}" if rnd.random() < 0.5 else str(rnd.randint(100, 9000)),
        balance=f"{rnd.randint(100, 90000):,}.{num(2)}",
        parcel="SF" + num(12),
        pick=f"{rnd.randint(1, 9)}-{rnd.randint(1, 9)}-{num(4)}",
        name=rnd.choice(SURNAMES) + rnd.choice("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞"),
        surname=rnd.choice(SURNAMES),
        phone=num(10),
        phone4=num(7),
        order=num(16),
        train=rnd.randint(1, 999),
        seat=f"{rnd.randint(1, 20):02d}{rnd.choice('ABCDF')}",
        gate=f"{rnd.randint(1, 30)}{rnd.choice('AB')}",
        small=f"{rnd.random() * 5:.2f}",
        brand=rnd.choice(["jd", "taobao", "icbc", "ctrip", "meituan"]),
        domain=rnd.choice(DOMAINS),
    )


def messages(count: int, seed: int = 7) -> list[rules.Message]:
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        fraud = rnd.random() < 0.15
        text = _fill(rnd.choice(FRAUD if fraud else HAM), rnd)
        src = "1" + rnd.choice("3456789") + "".join(rnd.choice("0123456789") for _ in range(9))
        if not fraud and rnd.random() < 0.5:
            src = "10690" + str(rnd.randint(10000, 99999))
        origin = "international" if rnd.random() < 0.03 else "domestic"
        out.append(rules.Message("sms", src, "138" + f"{i % 100000000:08d}", text, origin, None, 1.7e9 + i * 0.01))
    return out


def synthetic_pack(keywords: int, regexes: int, rules_count: int, seed: int = 11) -> str:
    """YAML holding ``rules_count`` rules over ``keywords`` keywords and ``regexes`` regular expressions."""
    rnd = random.Random(seed)
    words = set()
    while len(words) < keywords:
        words.add("".join(rnd.choice(POOL) for _ in range(rnd.randint(3, 5))))
    word_list = sorted(words)
    rnd.shuffle(word_list)
    exprs = []
    for i in range(regexes):
        a, b = ("".join(rnd.choice(POOL) for _ in range(2)) for _ in range(2))
        shape = i % 4
        if shape == 0:
            exprs.append(f"{a}.{{0,6}}{b}")
        elif shape == 1:
            exprs.append(f"{a}[0-9]{{4,8}}{b}")
        elif shape == 2:
            exprs.append(f"(?:{a}|{b})[a-z0-9]{{5,}}")
        else:
            exprs.append(f"{a}\\s*[:：]?\\s*[0-9]{{6}}")
    lines = ["rules:"]
    per_rule = max(1, (keywords + regexes) // rules_count)
    items = [("kw", w) for w in word_list] + [("re", e) for e in exprs]
    for r in range(rules_count):
        chunk = items[r * per_rule : (r + 1) * per_rule] or [items[r % len(items)]]
        kws = [w for kind, w in chunk if kind == "kw"]
        res = [e for kind, e in chunk if kind == "re"]
        lines += [
            f"  - id: synthetic.r{r}",
            f"    title: synthetic rule {r}",
            "    category: other",
            "    risk: medium",
            "    channel: sms",
            "    action: tag",
            "    detection:",
        ]
        conds = []
        if kws:
            view = "|squeezed" if r % 2 else ""
            lines += ["      sel_kw:", f"        text|contains{view}: [{', '.join(kws)}]"]
            conds.append("sel_kw")
        if res:
            lines += ["      sel_re:", "        text|re:"]
            lines += [f"          - '{e}'" for e in res]
            conds.append("sel_re")
        lines.append(f"      condition: {' or '.join(conds)}")
    return "\n".join(lines) + "\n"


def homophone_pack(keywords: int, seed: int = 13) -> str:
    """YAML holding 50 rules over ``keywords`` synthetic keywords on the homophone view."""
    rnd = random.Random(seed)
    words = sorted({"".join(rnd.choice(POOL) for _ in range(rnd.randint(3, 5))) for _ in range(keywords)})
    lines = ["rules:"]
    for r in range(50):
        chunk = words[r::50]
        lines += [
            f"  - id: synthetic.homophone{r}",
            f"    title: synthetic homophone rule {r}",
            "    category: other",
            "    risk: medium",
            "    channel: sms",
            "    action: tag",
            "    detection:",
            "      sel:",
            f"        text|homophone: [{', '.join(chunk)}]",
            "      condition: sel",
        ]
    return "\n".join(lines) + "\n"


SCORING_PACK = """\
scoring:
  default: {tag: 3, warn: 5, block: 8}
rules:
"""
SCORED = (
    ("ip", "url.ip_literal: true", 4),
    ("short", "url.shortener: true", 2),
    ("rare", "url.tld_rare: true", 2),
    ("puny", "url.punycode: true", 3),
    ("brand", "url.brand_lookalike: true", 5),
    ("handle", "contact.handle: true", 2),
    ("qq", "contact.handle|kind: qq", 1),
    ("money", "money.amount|at_least: 1000", 1),
    ("percent", "money.percent|at_least: 10", 1),
    ("phone", "phone.in_text: true", 1),
    ("virtual", "sender.kind: [virtual_operator, international]", 1),
    ("urgent", "text: [立即, 马上, 尽快, 逾期]", 1),
    ("authority", "text: [公安, 检察院, 法院, 客服]", 2),
    ("reminder", "reminder.official: true", -6),
)


def scoring_pack() -> str:
    """YAML of scored rules on every structural selector and a few weak keywords."""
    lines = [SCORING_PACK.rstrip("\n")]
    for name, key, points in SCORED:
        lines += [
            f"  - id: scored.{name}",
            f"    title: scored {name}",
            "    category: other",
            "    channel: sms",
            f"    score: {points}",
            "    detection:",
            f"      sel: {{{key}}}",
            "      condition: sel",
        ]
    return "\n".join(lines) + "\n"


def rate(fn: Callable[[], None], count: int, repeat: int) -> float:
    """Messages per second, from the best of ``repeat`` runs (the machine is shared: noise only slows)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return count / best


RULE_SETS = ("engine", "homophone", "scoring")
LABELS = {
    "engine": "engine (normalisation included)",
    "homophone": "engine + homophone view",
    "scoring": "engine + scoring, signals",
}


def rule_files(name: str, tmp: Path, args: argparse.Namespace) -> list[Path]:
    """The rule files of one of the bench's rule sets, written under ``tmp`` (the packs come apart)."""
    synthetic = tmp / "synthetic.yaml"
    synthetic.write_text(synthetic_pack(args.keywords, args.regexes, 500), encoding="utf-8")
    files = [synthetic]
    if name == "homophone":
        files.append(tmp / "homophone.yaml")
        files[-1].write_text(homophone_pack(args.homophone_keywords), encoding="utf-8")
    elif name == "scoring":
        files.append(tmp / "scoring.yaml")
        files[-1].write_text(scoring_pack(), encoding="utf-8")
    return files


def child(args: argparse.Namespace) -> int:
    """``--child NAME``: build rule set NAME with the ``rules`` package first on sys.path, then time one
    pass over the traffic for every line read from stdin, answering with the CPU seconds it took."""
    with tempfile.TemporaryDirectory() as tmp:
        ruleset = rules.build([rules.DEFAULT_PACKS, *rule_files(args.child, Path(tmp), args)])
    engine = rules.Engine(ruleset)
    traffic = messages(args.messages)
    for m in traffic[:1000]:
        engine.evaluate(m)
    print("ready", flush=True)
    for _ in sys.stdin:
        evaluate = engine.evaluate
        started = time.process_time()  # the CPU this process used: waiting for a shared core does not count
        for m in traffic:
            evaluate(m)
        print(time.process_time() - started, flush=True)
    return 0


def count_instructions(args: argparse.Namespace) -> int:
    """``--count NAME``: evaluate the traffic once with rule set NAME, inside ``map``, for an instruction
    count that the machine's load does not change (clock rates on a shared machine vary by a third)::

        valgrind --tool=callgrind --toggle-collect=map_next python bench/rules_throughput.py \\
            --count engine --messages 2000 [--root DIR]

    Only what runs under ``map_next`` is counted (the evaluations, not building the rule set or the
    1,000 warm-up messages): the total divided by ``--messages`` is the instructions per message."""
    with tempfile.TemporaryDirectory() as tmp:
        ruleset = rules.build([rules.DEFAULT_PACKS, *rule_files(args.count, Path(tmp), args)])
    engine = rules.Engine(ruleset)
    traffic = messages(1000 + args.messages)
    for m in traffic[:1000]:
        engine.evaluate(m)
    verdicts = list(map(engine.evaluate, traffic[1000:]))
    print(f"{len(verdicts)} messages evaluated")
    return 0


def against(args: argparse.Namespace) -> int:
    """This checkout's engine and that of ``--against`` side by side, runs taken in turn."""
    here = Path(__file__).resolve().parents[1]
    other = Path(args.against).resolve()
    print(f"this checkout: {here}\nagainst:       {other}\nmessages: {args.messages}, best of {args.repeat}")
    print(f"{'':34s} {'this':>12s} {'against':>12s} {'ratio':>7s}")
    for name in RULE_SETS:
        procs = {}
        for side, root in (("this", here), ("against", other)):
            command = [sys.executable, __file__, "--child", name, "--root", str(root), "--messages", str(args.messages)]
            command += ["--keywords", str(args.keywords), "--regexes", str(args.regexes)]
            command += ["--homophone-keywords", str(args.homophone_keywords)]
            procs[side] = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        best = {side: float("inf") for side in procs}
        try:
            for side, proc in procs.items():
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"the {side} checkout could not build the {name} rule set")
            for _ in range(args.repeat):
                for side, proc in procs.items():
                    assert proc.stdin is not None
                    assert proc.stdout is not None
                    proc.stdin.write("run\n")
                    proc.stdin.flush()
                    best[side] = min(best[side], float(proc.stdout.readline()))
        finally:
            for proc in procs.values():
                if proc.stdin is not None:
                    proc.stdin.close()
                proc.wait()
        this, then = args.messages / best["this"], args.messages / best["against"]
        print(f"{LABELS[name]:34s} {this:>12,.0f} {then:>12,.0f} {this / then:>7.2f}  msg/s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--keywords", type=int, default=5_000)
    parser.add_argument("--regexes", type=int, default=200)
    parser.add_argument("--reload-rules", type=int, default=10_000)
    parser.add_argument("--homophone-keywords", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measure; the best is reported")
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    parser.add_argument("--against", metavar="DIR", help="another checkout to compare with, side by side")
    parser.add_argument("--child", choices=RULE_SETS, help=argparse.SUPPRESS)
    parser.add_argument("--count", choices=RULE_SETS, help="evaluate once, for callgrind (see count_instructions())")
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    if args.child:
        return child(args)
    if args.count:
        return count_instructions(args)
    if args.against:
        return against(args)

    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "synthetic.yaml"
        synthetic.write_text(synthetic_pack(args.keywords, args.regexes, 500), encoding="utf-8")
        ruleset = rules.build([rules.DEFAULT_PACKS, synthetic])
    engine = rules.Engine(ruleset)
    traffic = messages(args.messages)
    n = len(traffic)
    print(f"rules: {len(ruleset)} ({len(ruleset.patterns)} Hyperscan expressions), messages: {n}")

    for m in traffic[:1000]:  # warm the caches (verdicts, explain databases are not used here)
        engine.evaluate(m)
    verdicts: list[rules.Verdict] = []

    def run_engine() -> None:
        evaluate = engine.evaluate
        verdicts[:] = [evaluate(m) for m in traffic]

    full = rate(run_engine, n, args.repeat)
    prepared = [views(m.text) for m in traffic]

    def run_prepared() -> None:
        evaluate = engine.evaluate
        for m, v in zip(traffic, prepared, strict=True):
            evaluate(m, views=v)

    without = rate(run_prepared, n, args.repeat)

    def run_views() -> None:
        for m in traffic:
            views(m.text)

    norm = rate(run_views, n, args.repeat)
    data = [m.text.encode() for m in traffic]
    databases = [db for _, db in ruleset.all_databases()] if hasattr(ruleset, "all_databases") else []
    databases = databases or list(ruleset.databases.values())
    counted = [0]

    def count(pattern_id: int, start: int, end: int, flags: int, ctx: object) -> None:
        counted[0] += 1

    def run_raw() -> None:
        for d in data:
            for db in databases:
                db.scan(d, count)

    raw = rate(run_raw, n, args.repeat)
    caught = sum(1 for v in verdicts if v.action != rules.Action.PASS)
    print(f"flagged: {caught} of {n} ({100 * caught / n:.1f}%)")
    print(f"{'engine (normalisation included)':40s} {full:>12,.0f} msg/s  {1e6 / full:6.2f} us/msg")
    print(f"{'engine without normalisation':40s} {without:>12,.0f} msg/s  {1e6 / without:6.2f} us/msg")
    print(f"{'normalisation alone (all views)':40s} {norm:>12,.0f} msg/s  {1e6 / norm:6.2f} us/msg")
    print(f"{'raw Hyperscan (' + str(len(databases)) + ' databases, no views)':40s} {raw:>12,.0f} msg/s")
    print(f"{'engine / raw Hyperscan':40s} {full / raw:>12.2f}")
    target = "met" if full >= 100_000 else "NOT met"
    print(f"target 100,000 msg/s on one core: {target}")

    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "synthetic.yaml"
        synthetic.write_text(synthetic_pack(args.keywords, args.regexes, 500), encoding="utf-8")
        extra = Path(tmp) / "homophone.yaml"
        extra.write_text(homophone_pack(args.homophone_keywords), encoding="utf-8")
        with_homophone = rules.Engine(rules.build([rules.DEFAULT_PACKS, synthetic, extra]))
    for m in traffic[:1000]:
        with_homophone.evaluate(m)

    def run_homophone() -> None:
        evaluate = with_homophone.evaluate
        for m in traffic:
            evaluate(m)

    homophone = rate(run_homophone, n, args.repeat)
    squeezed = [v.squeezed for v in prepared]

    def run_fold() -> None:
        for s in squeezed:
            fold_squeezed(s)

    fold = rate(run_fold, n, args.repeat)
    label = f"engine + homophone view ({args.homophone_keywords} kw)"
    print(f"{'engine (normalisation included)':40s} {full:>12,.0f} msg/s  {1e6 / full:6.2f} us/msg")
    print(f"{label:40s} {homophone:>12,.0f} msg/s  {1e6 / homophone:6.2f} us/msg")
    print(f"{'homophone fold alone (from squeezed)':40s} {fold:>12,.0f} msg/s  {1e6 / fold:6.2f} us/msg")

    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(tmp) / "synthetic.yaml"
        synthetic.write_text(synthetic_pack(args.keywords, args.regexes, 500), encoding="utf-8")
        extra = Path(tmp) / "scoring.yaml"
        extra.write_text(scoring_pack(), encoding="utf-8")
        with_scoring = rules.Engine(rules.build([rules.DEFAULT_PACKS, synthetic, extra]))
    for m in traffic[:1000]:
        with_scoring.evaluate(m)
    scored_verdicts: list[rules.Verdict] = []

    def run_scoring() -> None:
        evaluate = with_scoring.evaluate
        scored_verdicts[:] = [evaluate(m) for m in traffic]

    scoring = rate(run_scoring, n, args.repeat)
    flagged = sum(1 for v in scored_verdicts if v.action != rules.Action.PASS)
    label = f"engine + scoring, signals ({len(SCORED)} rules)"
    print(f"{'engine (normalisation included)':40s} {full:>12,.0f} msg/s  {1e6 / full:6.2f} us/msg")
    print(f"{label:40s} {scoring:>12,.0f} msg/s  {1e6 / scoring:6.2f} us/msg  (flagged {flagged})")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.yaml"
        path.write_text(synthetic_pack(args.reload_rules * 3, args.reload_rules // 20, args.reload_rules), "utf-8")
        started = time.perf_counter()
        big = rules.build([path])
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        engine.install(big)
        swap = time.perf_counter() - started
    print(
        f"reload of {len(big):,} rules ({len(big.patterns):,} expressions): {seconds:.2f} s"
        f" (compile {big.compile_seconds:.2f} s), swap {swap * 1e6:.1f} us"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
