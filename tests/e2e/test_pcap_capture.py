"""The gateway's own capture file, read back by tshark: every SMPP PDU and SIP message it carried
decodes, on the real addresses and ports, with no malformed packet and no warning (checksums checked).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import shlex
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

from gateway.app import Gateway
from gateway.capture import CaptureConfig
from gateway.config import Listen
from simulator.demo import run_demo
from simulator.esme import SimulatedEsme
from simulator.ports import free_udp_tcp_port
from simulator.smsc import SimulatedSmsc
from tests.conftest import require_peer
from tests.e2e.pcap_check import expert_summary, fields, flagged, sip_messages, smpp_commands, tshark_args
from tests.e2e.sip_harness import ROOT, SIPP_SCENARIOS, TRUNK_HOST, run_sipp, sip_config
from tests.e2e.smpp_harness import eventually, make_config

BIND_TRX, SUBMIT, DELIVER, UNBIND = "0x00000009", "0x00000004", "0x00000005", "0x00000006"


def resp(command_id: str) -> str:
    return f"0x{int(command_id, 16) | 0x80000000:08x}"


async def test_smpp_bind_submit_and_deliver_on_both_legs_decode_from_the_capture(tmp_path, smsc):
    tshark = require_peer("tshark")
    pcap = tmp_path / "afgw.pcap"
    config = replace(make_config(smsc.port, binds=2), capture=CaptureConfig(str(pcap)))
    async with Gateway(config) as gw:
        assert gw.smpp is not None
        await asyncio.wait_for(gw.smpp.pool.up.wait(), 5)
        await eventually(lambda: smsc.bound == 2)
        gateway_port = gw.smpp.server.port
        esme = SimulatedEsme("127.0.0.1", gateway_port, "bank", "bankpw")
        await esme.bind()
        for n in range(4):
            [answer] = await esme.submit("10690", f"861380000010{n}", f"您的验证码是 12345{n}", registered_delivery=1)
            assert answer.command_status == 0
        assert await smsc.inject_mo("8613800000100", "10690123", "收到，谢谢") == 0
        await eventually(lambda: len(esme.delivered) == 5)  # four receipts and the reply
        await esme.unbind()
        await esme.conn.closed
    # The gateway has unbound from the SMSC and closed the file.

    args = tshark_args(tshark, pcap, smpp=(gateway_port, smsc.port))
    assert flagged(args) == []
    summary = expert_summary(args)
    assert "Errors" not in summary
    assert "Warns" not in summary

    esme_leg = smpp_commands(args, gateway_port)
    assert esme_leg == {
        BIND_TRX: 1,
        resp(BIND_TRX): 1,
        SUBMIT: 4,
        resp(SUBMIT): 4,
        DELIVER: 5,
        resp(DELIVER): 5,
        UNBIND: 1,
        resp(UNBIND): 1,
    }
    smsc_leg = smpp_commands(args, smsc.port)
    assert smsc_leg == {
        BIND_TRX: 2,
        resp(BIND_TRX): 2,
        SUBMIT: 4,
        resp(SUBMIT): 4,
        DELIVER: 5,
        resp(DELIVER): 5,
        UNBIND: 2,
        resp(UNBIND): 2,
    }

    # The real addresses and ports, and each connection opened and closed in the file: three streams
    # (one ESME bind, two SMSC binds), each with its SYN, SYN-ACK and two FINs.
    tcp = fields(args, ("tcp.stream", "tcp.flags.syn", "tcp.flags.fin", "ip.src", "ip.dst", "tcp.port"))
    assert {(f["ip.src"][0], f["ip.dst"][0]) for f in tcp} == {("127.0.0.1", "127.0.0.1")}
    assert {gateway_port, smsc.port} <= {int(p) for f in tcp for p in f["tcp.port"]}
    streams: dict[str, Counter[str]] = {}
    for f in tcp:
        flags = streams.setdefault(f["tcp.stream"][0], Counter())
        flags.update(name for name in ("syn", "fin") if f[f"tcp.flags.{name}"] == ["1"])
    assert list(streams.values()) == [Counter(syn=2, fin=2)] * 3


@contextlib.asynccontextmanager
async def sipp_uas(sipp: str, port: int, tmp_path: Path, *transport: str) -> AsyncIterator[None]:
    proc = await asyncio.create_subprocess_exec(
        sipp,
        "-sn",
        "uas",
        "-i",
        "127.0.0.1",
        "-p",
        str(port),
        *transport,
        "-nostdin",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=str(tmp_path),
    )
    try:
        yield
    finally:
        proc.terminate()
        await proc.wait()


#: sipp's screen when it sent no REGISTER at all.
_NOTHING_SENT = re.compile(r"REGISTER -+>\s+0\s")


async def register_and_call(sipp: str, tmp_path: Path, gateway_port: int, number: str, *transport: str) -> None:
    """A sipp handset registers ``number`` with the gateway; a sipp trunk calls it through the gateway."""
    uas_port, register_port, uac_port = free_udp_tcp_port(), free_udp_tcp_port(), free_udp_tcp_port()
    name = transport[-1] if transport else "udp"
    async with sipp_uas(sipp, uas_port, tmp_path, *transport):
        for _ in range(2):
            registered = await run_sipp(
                sipp,
                f"127.0.0.1:{gateway_port}",
                "-sf",
                str(SIPP_SCENARIOS / "register.xml"),
                "-i",
                "127.0.0.1",
                "-p",
                str(register_port),
                "-s",
                number,
                "-key",
                "contact_port",
                str(uas_port),
                "-m",
                "1",
                *transport,
                tmp_path=tmp_path,
                name=f"register-{name}",
            )
            # sipp stops at once with status 254 when a port it binds was taken between the pick and its
            # start (picked ports are only free when picked): nothing was sent, so try again elsewhere.
            if registered.returncode != 254 or not _NOTHING_SENT.search(registered.output):
                break
            register_port = free_udp_tcp_port()
        assert registered.returncode == 0, registered.output[:1000] + "\n...\n" + registered.output[-2000:]
        called = await run_sipp(
            sipp,
            "-sn",
            "uac",
            f"127.0.0.1:{gateway_port}",
            "-i",
            TRUNK_HOST,
            "-p",
            str(uac_port),
            "-s",
            number,
            "-m",
            "1",
            *transport,
            tmp_path=tmp_path,
            name=f"call-{name}",
        )
        assert called.returncode == 0, called.output[-2000:]
        assert (called.successful, called.failed) == (1, 0)


async def test_sip_register_and_a_call_over_udp_and_tcp_decode_from_the_capture(tmp_path, smsc):
    tshark, sipp = require_peer("tshark"), require_peer("sipp")
    pcap = tmp_path / "afgw.pcap"
    config = replace(make_config(smsc.port), sip=sip_config(), capture=CaptureConfig(str(pcap)))
    async with Gateway(config) as gw:
        assert gw.sip is not None
        udp_port, tcp_port = gw.sip.udp_port, gw.sip.tcp_port
        await register_and_call(sipp, tmp_path, udp_port, "8613800000001")
        await register_and_call(sipp, tmp_path, tcp_port, "8613800000002", "-t", "t1")

    args = tshark_args(tshark, pcap, sip=(udp_port, tcp_port))
    assert flagged(args) == []
    one_call = {
        "INVITE": 2,  # trunk -> gateway -> handset
        "100 INVITE": 1,  # the gateway's own Trying to the trunk
        "180 INVITE": 2,
        "200 INVITE": 2,
        "ACK": 2,
        "BYE": 2,
        "200 BYE": 2,
        "REGISTER": 1,
        "200 REGISTER": 1,
    }
    seen = sip_messages(args)
    assert {k: n for (t, k), n in seen.items() if t == "udp"} == one_call
    assert {k: n for (t, k), n in seen.items() if t == "tcp"} == one_call


async def test_smpp_over_ipv6_is_captured_as_ipv6(tmp_path, smsc):
    tshark = require_peer("tshark")
    pcap = tmp_path / "afgw.pcap"
    config = make_config(smsc.port, listen=Listen("::1", 0))
    [bank, shop] = config.smpp.accounts
    bank = replace(bank, allowed_networks=(ipaddress.ip_network("::1/128"),))
    config = replace(config, smpp=replace(config.smpp, accounts=(bank, shop)), capture=CaptureConfig(str(pcap)))
    async with Gateway(config) as gw:
        assert gw.smpp is not None
        await asyncio.wait_for(gw.smpp.pool.up.wait(), 5)
        gateway_port = gw.smpp.server.port
        esme = SimulatedEsme("::1", gateway_port, "bank", "bankpw")
        await esme.bind()
        [answer] = await esme.submit("10690", "8613800000101", "您的验证码是 123456")
        assert answer.command_status == 0
        await esme.unbind()
        await esme.conn.closed

    args = tshark_args(tshark, pcap, smpp=(gateway_port, smsc.port))
    assert flagged(args) == []
    esme_leg = fields(args, ("ipv6.src", "ipv6.dst", "smpp.command_id"), f"tcp.port == {gateway_port}")
    assert {(f["ipv6.src"][0], f["ipv6.dst"][0]) for f in esme_leg} == {("::1", "::1")}
    assert smpp_commands(args, gateway_port) == {
        BIND_TRX: 1,
        resp(BIND_TRX): 1,
        SUBMIT: 1,
        resp(SUBMIT): 1,
        UNBIND: 1,
        resp(UNBIND): 1,
    }


def readme_capture_commands() -> list[list[str]]:
    """The afgw and tshark command lines of the README's Capture section, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Capture", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return [shlex.split(line) for line in section.splitlines() if line.startswith((".venv/bin/afgw run", "tshark "))]


def run_tshark(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


def as_here(args: list[str], values: dict[str, str]) -> list[str]:
    """``args`` with each argument in ``values`` (or the value after an option in it) replaced."""
    out = []
    for i, arg in enumerate(args):
        previous = args[i - 1] if i else ""
        out.append(values.get(f"{previous} _", values.get(arg, arg)))
    return out


async def test_the_readme_capture_rotates_files_that_tshark_decodes_and_finds_clean(tmp_path):
    """The README's commands, run as written but for paths, ports and a small size and count."""
    tshark = require_peer("tshark")
    run, decode, check = readme_capture_commands()
    smpp_port, smsc_port, sip_port = free_udp_tcp_port(), free_udp_tcp_port(), free_udp_tcp_port()
    text = (ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8")
    text = text.replace("port: 2775", f"port: {smpp_port}").replace("port: 2776", f"port: {smsc_port}")
    text = text.replace("udp_port: 5060", f"udp_port: {sip_port}").replace("tcp_port: 5060", f"tcp_port: {sip_port}")
    config = tmp_path / "gateway.yaml"
    config.write_text(text, encoding="utf-8")
    pcap = tmp_path / "capture" / "afgw.pcap"
    values = {
        "config/gateway.yaml": str(config),
        "capture/afgw.pcap": str(pcap),
        "--pcap-size _": "0.02",
        "--pcap-count _": "3",
    }
    assert run[:2] == [".venv/bin/afgw", "run"]
    smsc = SimulatedSmsc(system_id="afgw", password="secret")
    await smsc.start("127.0.0.1", smsc_port)
    with (tmp_path / "gateway.log").open("wb") as log:
        gateway = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", *as_here(run[1:], values), cwd=str(ROOT), stderr=log
        )
    try:
        await eventually(lambda: smsc.bound == 2, within=90)  # afgw run compiles the shipped rules first
        esme = SimulatedEsme("127.0.0.1", smpp_port, "bank", "bankpw")
        await esme.bind()
        # A window's worth at a time: enough traffic for more than three files of 20 kB.
        answers = await asyncio.gather(
            *(esme.submit("10690", f"86138000{n:05d}", f"您的验证码是 {n:06d}，5分钟内有效。") for n in range(300))
        )
        assert {a.command_status for [a] in answers} == {0}
        await esme.unbind()
        gateway.send_signal(signal.SIGTERM)
        await asyncio.wait_for(gateway.wait(), 20)
        assert gateway.returncode == 0, (tmp_path / "gateway.log").read_text()
    finally:
        if gateway.returncode is None:
            gateway.kill()
            await gateway.wait()
        await smsc.stop()

    files = sorted(pcap.parent.iterdir())
    assert [f.name for f in files] == ["afgw.pcap", "afgw.pcap.1", "afgw.pcap.2"]
    ports = {"tcp.port==2775,smpp": f"tcp.port=={smpp_port},smpp", "tcp.port==2776,smpp": f"tcp.port=={smsc_port},smpp"}
    for file in files:
        assert file.stat().st_size <= 20_000
        here = {**values, **ports, "capture/afgw.pcap": str(file)}
        decoded = run_tshark(as_here(check, here))
        assert (decoded.returncode, decoded.stdout) == (0, ""), (file.name, decoded.stderr)
        args = tshark_args(tshark, file, smpp=(smpp_port, smsc_port))
        assert smpp_commands(args, smsc_port)[resp(SUBMIT)] > 0, file.name
    # The newest file ends with the stop: the gateway's two binds to the SMSC unbound.
    decoded = run_tshark(as_here(decode, {**values, **ports}))
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.count("Unbind - resp") == 3  # the ESME's, and the gateway's two to the SMSC


async def test_the_demo_records_its_traffic_when_asked(tmp_path):
    tshark = require_peer("tshark")
    pcap = tmp_path / "demo.pcap"
    report = str(tmp_path / "report.json")
    assert await run_demo(json_path=report, scale=0.05, capture=CaptureConfig(str(pcap))) == 0
    # No ports to name: Wireshark's own SMPP heuristics find the PDUs.
    args = tshark_args(tshark, pcap)
    assert flagged(args) == []
    seen = Counter(cid for f in fields(args, ("smpp.command_id",), "smpp") for cid in f["smpp.command_id"])
    assert seen[BIND_TRX] == seen[resp(BIND_TRX)] == 5  # three ESMEs, two binds to the SMSC
    assert seen[SUBMIT] == seen[resp(SUBMIT)] > 40
    assert seen[DELIVER] == seen[resp(DELIVER)] > 0
