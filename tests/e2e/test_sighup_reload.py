"""SIGHUP to ``afgw run``: rules, warning templates and ESME accounts change together for the next
message, and a bad edit changes none of them and says why at file:line:col."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import pytest

from protocols.smpp.constants import CommandStatus
from simulator.esme import BindRefused, SimulatedEsme
from simulator.smsc import SimulatedSmsc, StoredSms
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def pack(word: str, action: str = "warn") -> str:
    return f"""\
pack: local
rules:
  - id: local.word
    title: 测试用的词
    status: stable
    author: test
    category: other
    risk: high
    channel: sms
    detection:
      sel:
        text|contains: ["{word}"]
      condition: sel
    action: {action}
    template: local
"""


def gateway_yaml(gw_port: int, smsc_port: int, tmp_path: Path, *, template: str, accounts: list[str]) -> str:
    listed = "".join(f"\n    - {{system_id: {name}, password: {name}pw}}" for name in accounts)
    return f"""\
smpp:
  listen: {{port: {gw_port}}}
  accounts:{listed}
  smsc: {{port: {smsc_port}, password: secret}}
rules:
  packs: [pack.yaml]
  reload_interval: 0
  warnings:
    min_interval: 1
    templates:
      local: "{template}"
store: {{backend: memory}}
"""


class Gateway:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        assert proc.stderr is not None
        self._reader = asyncio.ensure_future(self._read(proc.stderr))
        self._news = asyncio.Event()

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
            self._news.set()

    async def wait_for(self, pattern: str, after: int = 0) -> str:
        async def seen() -> str:
            while True:
                for line in self.lines[after:]:
                    if re.search(pattern, line):
                        return line
                assert self.proc.returncode is None, self.lines
                self._news.clear()
                await self._news.wait()

        return await asyncio.wait_for(seen(), 30)


async def status_of(esme: SimulatedEsme, text: str, destination: str) -> int:
    [resp] = await esme.submit("10690", destination, text)
    return resp.command_status


async def test_sighup_swaps_rules_templates_and_accounts_together_or_not_at_all(tmp_path):
    flashes: list[StoredSms] = []
    smsc = SimulatedSmsc()
    smsc.on_stored = lambda sms: flashes.append(sms) if sms.flash else None
    await smsc.start()
    gw_port = free_port()
    config = tmp_path / "gateway.yaml"
    rule_file = tmp_path / "pack.yaml"
    rule_file.write_text(pack("alpha"), encoding="utf-8")
    config.write_text(gateway_yaml(gw_port, smsc.port, tmp_path, template="模板一", accounts=["bank"]))
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "gateway.cli", "run", "-c", str(config)),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    gateway = Gateway(proc)
    try:
        await gateway.wait_for(r"smsc\.bound")
        bank = SimulatedEsme("127.0.0.1", gw_port, "bank", "bankpw")
        await bank.bind()
        assert await status_of(bank, "alpha 1", "8613800000001") == CommandStatus.ESME_ROK
        await smsc_received(lambda: len(flashes) == 1)
        assert flashes[-1].text == "模板一"
        assert (await status_of(bank, "beta 1", "8613800000002")) == CommandStatus.ESME_ROK
        assert len(flashes) == 1

        # A good edit: another word blocked, a new template, a new account.
        rule_file.write_text(pack("beta", action="block"), encoding="utf-8")
        config.write_text(gateway_yaml(gw_port, smsc.port, tmp_path, template="模板二", accounts=["bank", "shop"]))
        mark = len(gateway.lines)
        proc.send_signal(signal.SIGHUP)
        line = await gateway.wait_for(r"config\.reload", after=mark)
        assert "config.reloaded" in line, line
        assert await status_of(bank, "beta 2", "8613800000003") == CommandStatus.ESME_RSUBMITFAIL
        await smsc_received(lambda: len(flashes) == 2)  # a blocked message warns its recipient
        assert flashes[-1].text == "模板二"
        assert await status_of(bank, "alpha 2", "8613800000004") == CommandStatus.ESME_ROK
        shop = SimulatedEsme("127.0.0.1", gw_port, "shop", "shoppw")
        await shop.bind()  # the new account binds without a restart
        await shop.unbind()

        # A bad edit: the rule file broken, and an account added alongside. Neither is taken.
        rule_file.write_text(pack("gamma") + "    nonsense: [\n", encoding="utf-8")
        config.write_text(gateway_yaml(gw_port, smsc.port, tmp_path, template="模板三", accounts=["bank", "late"]))
        mark = len(gateway.lines)
        proc.send_signal(signal.SIGHUP)
        line = await gateway.wait_for(r"config\.reload", after=mark)
        assert "config.reload_failed" in line, line
        assert re.search(re.escape(str(rule_file)) + r":\d+:\d+: ", line), line
        assert await status_of(bank, "beta 3", "8613800000005") == CommandStatus.ESME_RSUBMITFAIL
        await smsc_received(lambda: len(flashes) == 3)
        assert flashes[-1].text == "模板二"
        late = SimulatedEsme("127.0.0.1", gw_port, "late", "latepw")
        with pytest.raises(BindRefused) as refused:
            await late.bind()  # an account from the rejected edit
        assert refused.value.status == CommandStatus.ESME_RINVPASWD
        shop = SimulatedEsme("127.0.0.1", gw_port, "shop", "shoppw")
        await shop.bind()  # the accounts of the last good edit stay
        await shop.unbind()
        await bank.unbind()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await smsc.stop()


async def smsc_received(condition, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        assert loop.time() < deadline, "the SMSC did not receive it"
        await asyncio.sleep(0.01)
