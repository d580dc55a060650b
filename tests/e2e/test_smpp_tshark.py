"""Wireshark's SMPP dissector reads both legs of the proxy (ESME <-> gateway <-> SMSC) as clean SMPP."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import smpplib.consts
import smpplib.gsm

from gateway.config import Listen
from simulator.smsc import SimulatedSmsc
from tests.conftest import free_port, require_peer
from tests.e2e.smpp_harness import (
    SmpplibEsme,
    encode_tlvs,
    in_thread,
    make_config,
    running_gateway,
)

BIND_TRX, SUBMIT, DELIVER, UNBIND, ENQUIRE_LINK = 0x09, 0x04, 0x05, 0x06, 0x15
EXPECTED = {cid | resp for cid in (BIND_TRX, SUBMIT, DELIVER, UNBIND, ENQUIRE_LINK) for resp in (0, 0x80000000)}
LONG = ("国家反诈中心提醒：公检法机关不会通过电话要求转账，更没有所谓安全账户。" * 10)[:300]


FIELDS = (
    "frame.number",
    "tcp.srcport",
    "tcp.dstport",
    "tcp.len",
    "frame.protocols",
    "tcp.reassembled_in",
    "smpp.command_id",
    "smpp.message_id",
    "smpp.opt_param_tag",
    "_ws.malformed",
    "_ws.expert.message",
    "_ws.expert.severity",
)


class Capture:
    """tshark capturing loopback traffic to and from some ports into a pcapng file."""

    def __init__(self, tshark: str, path: Path, ports: tuple[int, ...]) -> None:
        self.tshark, self.path, self.ports = tshark, path, ports
        self.probe_port = free_port()  # nobody listens here: probing it adds no SMPP-port traffic
        port_filter = " or ".join(f"tcp port {p}" for p in (*ports, self.probe_port))
        self.proc = subprocess.Popen(
            [tshark, "-i", "lo", "-f", port_filter, "-w", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def frames(self) -> list[dict[str, list[str]]]:
        """Every captured frame, dissected with the SMPP ports decoded as SMPP: field -> values."""
        if not self.path.exists():
            return []
        args = [self.tshark, "-r", str(self.path)]
        for port in self.ports:
            args += ["-d", f"tcp.port=={port},smpp"]
        args += ["-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=;"]
        for name in FIELDS:
            args += ["-e", name]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        return [
            {name: [v for v in value.split(";") if v] for name, value in zip(FIELDS, line.split("|"), strict=True)}
            for line in out.stdout.splitlines()
        ]

    async def until(self, predicate: Callable[[list[dict[str, list[str]]]], bool]) -> list[dict[str, list[str]]]:
        """Wait until the frames in the file satisfy ``predicate`` (dumpcap writes in blocks)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            frames = await in_thread(self.frames)
            if predicate(frames):
                return frames
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            assert loop.time() < deadline, "the capture never showed the expected packets"
            await asyncio.sleep(0.05)

    async def started(self) -> None:
        """Returns once packets to the probe port show up in the file: the capture is really running."""
        probe = str(self.probe_port)

        def probed(frames: list[dict[str, list[str]]]) -> bool:
            if any(probe in f["tcp.dstport"] for f in frames):
                return True
            with socket.socket() as s:
                s.connect_ex(("127.0.0.1", self.probe_port))
            return False

        try:
            await self.until(probed)
        except AssertionError:
            errors = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
            if "permission" in errors.lower() and os.environ.get("AFGW_REQUIRE_PEERS") != "1":
                pytest.skip(f"tshark may not capture on lo here: {errors.strip()}")
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def on_leg(frames: list[dict[str, list[str]]], port: int) -> list[dict[str, list[str]]]:
    return [f for f in frames if str(port) in f["tcp.srcport"] + f["tcp.dstport"]]


def command_ids(frames: list[dict[str, list[str]]], port: int) -> Counter[int]:
    return Counter(int(cid, 16) for f in on_leg(frames, port) for cid in f["smpp.command_id"])


def smpplib_session(esme: SmpplibEsme) -> None:
    """What the ESME does, in its own thread: bind, UCS2 with a vendor TLV, a long message, a long
    message in message_payload, enquire_link, then waits for the receipt and unbinds."""
    esme.connect()
    esme.listen_in_background()
    seqs = [
        esme.send(
            "submit_sm",
            extra_tlvs=encode_tlvs([(0x1400, b"\x00\x01anti-fraud\xff")]),
            source_addr="10690",
            destination_addr="8613800000051",
            short_message="您的验证码是 123456".encode("utf-16-be"),
            data_coding=smpplib.consts.SMPP_ENCODING_ISO10646,
            registered_delivery=1,
        )
    ]
    parts, coding, esm_class = smpplib.gsm.make_parts(LONG, encoding=smpplib.consts.SMPP_ENCODING_ISO10646)
    for part in parts:
        seqs.append(
            esme.send(
                "submit_sm",
                source_addr="10690",
                destination_addr="8613800000052",
                short_message=part,
                data_coding=coding,
                esm_class=esm_class,
            )
        )
    seqs.append(
        esme.send(
            "submit_sm",
            source_addr="10690",
            destination_addr="8613800000053",
            data_coding=coding,
            message_payload=LONG.encode("utf-16-be")[:258],
        )
    )
    seqs.append(esme.send("enquire_link"))
    for _ in range(1000):
        if all(s in esme.by_seq for s in seqs) and esme.delivered:
            break
        threading.Event().wait(0.01)
    assert all(esme.by_seq[s].status == 0 for s in seqs)
    assert esme.delivered, "no receipt came back"
    esme.close()


async def test_both_legs_dissect_as_clean_smpp(tmp_path):
    tshark = require_peer("tshark")
    gw_port, smsc_port = free_port(), free_port()
    capture = Capture(tshark, tmp_path / "smpp.pcapng", (gw_port, smsc_port))
    try:
        await capture.started()
        smsc = SimulatedSmsc(system_id="afgw", password="secret")
        await smsc.start("127.0.0.1", smsc_port)
        try:
            config = make_config(smsc_port, listen=Listen("127.0.0.1", gw_port), enquire_link_interval=0.3)
            async with running_gateway(config):
                esme = SmpplibEsme(gw_port, "bank", "bankpw")
                await in_thread(smpplib_session, esme)
                assert [s.text for s in smsc.inbox("8613800000052")] == [LONG]
                # The gateway probes an idle SMSC link itself: wait until that is on the wire too.
                await capture.until(lambda frames: command_ids(frames, smsc_port)[ENQUIRE_LINK] > 0)
            # Stopping the gateway unbinds from the SMSC.
        finally:
            await smsc.stop()
        frames = await capture.until(lambda frames: command_ids(frames, smsc_port)[UNBIND | 0x80000000] >= 2)
    finally:
        capture.stop()
    frames = on_leg(frames, gw_port) + on_leg(frames, smsc_port)

    # Every TCP segment that carries data is SMPP, whole or as part of a reassembled PDU.
    segments = [f for f in frames if int(f["tcp.len"][0]) > 0]
    assert len(segments) > 20
    not_smpp = [
        f["frame.number"]
        for f in segments
        if "smpp" not in f["frame.protocols"][0].split(":") and not f["tcp.reassembled_in"]
    ]
    assert not_smpp == [], f"frames not dissected as SMPP: {not_smpp}"

    # No malformed packet, no expert information at all on an SMPP frame.
    assert [f["frame.number"] for f in frames if f["_ws.malformed"]] == []
    assert not any("malformed" in m.lower() for f in frames for m in f["_ws.expert.message"])
    flagged = [(f["frame.number"], f["_ws.expert.message"]) for f in segments if f["_ws.expert.message"]]
    assert flagged == [], flagged

    for leg in (gw_port, smsc_port):
        seen = command_ids(frames, leg)
        assert set(seen) >= EXPECTED, f"port {leg}: missing {[hex(c) for c in EXPECTED - set(seen)]}"
        assert seen[SUBMIT] == 7  # one short, five parts, one message_payload
        assert seen[SUBMIT | 0x80000000] == 7

        # The vendor TLV is on the wire on both legs...
        tags = [t for f in on_leg(frames, leg) if "0x00000004" in f["smpp.command_id"] for t in f["smpp.opt_param_tag"]]
        assert "0x1400" in tags or "5120" in tags, tags

    # ...and both legs carry the same message ids in the submit_sm_resps.
    ids = {
        leg: sorted(
            mid for f in on_leg(frames, leg) if "0x80000004" in f["smpp.command_id"] for mid in f["smpp.message_id"]
        )
        for leg in (gw_port, smsc_port)
    }
    assert len(ids[gw_port]) == 7
    assert ids[gw_port] == ids[smsc_port]
