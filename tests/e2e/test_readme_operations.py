"""The README's "Operations" section, run as written: its code blocks are fed in order to one bash
shell in a copy of the checkout's layout (the sample configuration with free ports)."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from simulator.smsc import SimulatedSmsc
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


SMALL_PACK = """\
pack: small
rules:
  - id: small.safe-account
    title: 安全账户
    status: stable
    author: test
    category: police_impersonation
    risk: high
    channel: sms
    detection:
      sel:
        text|contains: ["安全账户"]
      condition: sel
    action: block
"""


#: The sub-sections tested here, in order (others, such as Capture, have tests of their own).
LIFECYCLE = ["Check a configuration", "Reload", "Drain and stop"]


def operations_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.split("\n## Operations\n", 1)[1].split("\n## ", 1)[0]


def operations_blocks() -> list[str]:
    """The code blocks of the section's introduction and of the LIFECYCLE sub-sections."""
    intro, *subsections = re.split(r"^### ", operations_section(), flags=re.M)
    wanted = [intro] + [text for text in subsections if text.split("\n", 1)[0] in LIFECYCLE]
    return [block for text in wanted for block in re.findall(r"^```\n(.*?)^```$", text, flags=re.M | re.S)]


def test_the_section_has_its_sub_headings_and_commands():
    headings = re.findall(r"^### (.+)$", operations_section(), flags=re.M)
    assert headings[: len(LIFECYCLE)] == LIFECYCLE
    assert len(operations_blocks()) == 4


class Shell:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.out: list[str] = []
        self.steps = 0

    async def run(self, block: str) -> list[str]:
        """Run ``block`` in the shell; the lines it printed."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.steps += 1
        marker = f"__step_{self.steps}_done__"
        self.proc.stdin.write(f"{block}\necho {marker}\n".encode())
        await self.proc.stdin.drain()
        printed = []
        while True:
            line = (await asyncio.wait_for(self.proc.stdout.readline(), 60)).decode().rstrip("\n")
            if line == marker:
                return printed
            printed.append(line)


def logged(log: Path, pattern: str) -> bool:
    return log.exists() and re.search(pattern, log.read_text(encoding="utf-8")) is not None


async def until_logged(log: Path, pattern: str, within: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not logged(log, pattern):
        assert loop.time() < deadline, f"{pattern!r} not in {log}"
        await asyncio.sleep(0.05)


async def test_the_operations_commands_work_as_written(tmp_path):
    start, check, reload, drain = operations_blocks()
    smsc = SimulatedSmsc()
    await smsc.start()
    text = (ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8")
    sip = free_port()
    text = text.replace("port: 2775", f"port: {free_port()}").replace("port: 2776", f"port: {smsc.port}")
    text = text.replace("udp_port: 5060", f"udp_port: {sip}").replace("tcp_port: 5060", f"tcp_port: {sip}")
    # One small pack instead of the shipped ones: compiling those three times (start, check, reload)
    # would be most of the test's time, and the commands are what is tested here.
    assert text.count("\nrules:\n") == 1
    text = text.replace("\nrules:\n", "\nrules:\n  packs: [small.yaml]\n")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "small.yaml").write_text(SMALL_PACK, encoding="utf-8")
    config = tmp_path / "config" / "gateway.yaml"
    config.write_text(text, encoding="utf-8")
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        "bash", cwd=tmp_path, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    shell = Shell(proc)
    log = tmp_path / "afgw.log"
    try:
        await shell.run(start)
        await until_logged(log, r"smsc\.bound")
        assert (await shell.run(check))[0] == "config/gateway.yaml: ok"
        config.write_text(text.replace('tag_prefix: "【疑似诈骗】"', 'tag_prefix: "【谨防诈骗】"'), encoding="utf-8")
        await shell.run(reload)
        await until_logged(log, r"config\.reloaded")
        assert await shell.run(drain) == ["afgw exited with status 0"]
        assert "afgw.stopped" in log.read_text(encoding="utf-8").splitlines()[-1]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await smsc.stop()
