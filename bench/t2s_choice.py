"""Traditional-to-simplified conversion: opencc against zhconv-rs, side by side, for docs/rules.md.

Correctness on the words that matter to fraud rules (帳戶 / 賬戶 / 詐騙 / 轉帳 / 帐户 must all meet the
keywords 账户 / 诈骗 / 转账), time per message on a typical traditional-character fraud SMS and on a
simplified one, and start-up time. opencc is optional (it is not a dependency): install it to compare.

    python bench/t2s_choice.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

import zhconv_rs

WORDS = ["帳戶", "賬戶", "詐騙", "轉帳", "帐户", "安全帳戶", "我的帳號被凍結了", "網路貸款", "軟體"]
WANT = {"帳戶": "账户", "賬戶": "账户", "詐騙": "诈骗", "轉帳": "转账", "帐户": "账户", "安全帳戶": "安全账户"}
TRADITIONAL = "【中國銀行】尊敬的客戶，您的帳戶存在異常交易，涉嫌洗錢，請立即聯繫客服轉帳至安全賬戶，否則將凍結。"
SIMPLIFIED = "尊敬的客户您好，您的验证码是123456，请勿泄露。如非本人操作请忽略。"


def per_message(convert: Callable[[str], str], text: str, n: int = 20000) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(n):
            convert(text)
        best = min(best, (time.perf_counter() - started) / n)
    return best * 1e6


def main() -> None:
    candidates: dict[str, Callable[[str], str]] = {}
    started = time.perf_counter()
    cn = zhconv_rs.make_converter("zh-CN", [])
    candidates["zhconv-rs zh-CN"] = cn
    zh_setup = time.perf_counter() - started
    candidates["zhconv-rs zh-Hans"] = lambda s: zhconv_rs.zhconv(s, "zh-Hans")
    setup = {"zhconv-rs zh-CN": zh_setup, "zhconv-rs zh-Hans": 0.0}
    try:
        import opencc

        started = time.perf_counter()
        t2s = opencc.OpenCC("t2s")
        setup["opencc t2s"] = time.perf_counter() - started
        candidates["opencc t2s"] = t2s.convert
    except ImportError:
        print("opencc is not installed: pip install opencc to compare")
    print(f"{'':20s}" + "".join(f"{w:>10s}" for w in WORDS))
    for name, convert in candidates.items():
        out = [convert(w) for w in WORDS]
        wrong = sum(1 for w, o in zip(WORDS, out, strict=True) if w in WANT and o != WANT[w])
        print(f"{name:20s}" + "".join(f"{o:>10s}" for o in out) + f"   wrong without a variant map: {wrong}")
    for name, convert in candidates.items():
        print(
            f"{name:20s} traditional {per_message(convert, TRADITIONAL):5.2f} us/msg,"
            f" simplified {per_message(convert, SIMPLIFIED):5.2f} us/msg, set-up {setup[name] * 1e3:6.2f} ms"
        )


if __name__ == "__main__":
    main()
