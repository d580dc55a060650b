"""Reading a capture file back with tshark: what decodes as SMPP and SIP, and what Wireshark flags."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

#: Wireshark checks no checksum unless asked to: here it is asked for every layer.
CHECKSUMS = ("ip.check_checksum:TRUE", "tcp.check_checksum:TRUE", "udp.check_checksum:TRUE")
FLAGGED = '_ws.malformed || _ws.expert.severity >= "Warning"'


def tshark_args(tshark: str, path: Path, *, smpp: tuple[int, ...] = (), sip: tuple[int, ...] = ()) -> list[str]:
    args = [tshark, "-r", str(path), "-n"]
    for option in CHECKSUMS:
        args += ["-o", option]
    for port in smpp:
        args += ["-d", f"tcp.port=={port},smpp"]
    for port in sip:
        args += ["-d", f"tcp.port=={port},sip", "-d", f"udp.port=={port},sip"]
    return args


def fields(args: list[str], names: tuple[str, ...], display_filter: str | None = None) -> list[dict[str, list[str]]]:
    """One dict per frame: field name -> every value it has in the frame."""
    command = [*args, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=;"]
    if display_filter:
        command += ["-Y", display_filter]
    for name in names:
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return [
        {name: [v for v in value.split(";") if v] for name, value in zip(names, line.split("|"), strict=True)}
        for line in out.stdout.splitlines()
    ]


def flagged(args: list[str]) -> list[str]:
    """Frames Wireshark finds malformed or marks with a warning or an error (bad checksums included)."""
    out = subprocess.run([*args, "-Y", FLAGGED], capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.splitlines()


def expert_summary(args: list[str]) -> str:
    """tshark's expert-information table (errors, warnings, notes, chats) for the whole file."""
    out = subprocess.run([*args, "-q", "-z", "expert"], capture_output=True, text=True, timeout=120, check=True)
    return out.stdout


def smpp_commands(args: list[str], port: int) -> Counter[str]:
    """SMPP PDUs by command_id (hex) on the connections to or from ``port``."""
    frames = fields(args, ("smpp.command_id",), f"smpp && tcp.port == {port}")
    return Counter(cid for f in frames for cid in f["smpp.command_id"])


def sip_messages(args: list[str]) -> Counter[tuple[str, str]]:
    """SIP messages by transport ("udp" or "tcp") and "METHOD" or "STATUS METHOD" (the CSeq's method).

    Read from PDML, where each SIP message of a frame is an element of its own (a TCP segment may carry
    several, and field lists would lose which status goes with which CSeq)."""
    out = subprocess.run([*args, "-Y", "sip", "-T", "pdml"], capture_output=True, text=True, timeout=120, check=True)
    counted: Counter[tuple[str, str]] = Counter()
    for packet in ElementTree.fromstring(out.stdout).iter("packet"):
        protos = packet.findall("proto")
        transport = "tcp" if any(p.get("name") == "tcp" for p in protos) else "udp"
        for sip in (p for p in protos if p.get("name") == "sip"):
            shown = {f.get("name"): f.get("show") for f in sip.iter("field")}
            method = shown.get("sip.CSeq.method", "?")
            status = shown.get("sip.Status-Code")
            counted[transport, f"{status} {method}" if status else shown.get("sip.Method", "?")] += 1
    return counted
