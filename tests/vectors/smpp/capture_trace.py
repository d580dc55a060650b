"""Re-capture trace_smpplib_smpp34.yaml: an smpplib client talking to an smpp34 server on loopback.

Run as root (tshark captures on lo): ``.venv/bin/python tests/vectors/smpp/capture_trace.py > new.yaml``.
Everything stays on 127.0.0.1; the port is a free one and tshark's capture filter is that port alone.
The YAML header comment of the stored trace was written by hand after reviewing the capture.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import smpp34
import smpplib.client
import smpplib.command
import smpplib.consts
import smpplib.smpp
from smpplib.ptypes import ostr

NAMES = {
    0x00000009: "bind_transceiver",
    0x80000009: "bind_transceiver_resp",
    0x00000004: "submit_sm",
    0x80000004: "submit_sm_resp",
    0x00000015: "enquire_link",
    0x80000015: "enquire_link_resp",
    0x00000006: "unbind",
    0x80000006: "unbind_resp",
}
STRINGS = ("system_id", "password", "system_type", "source_addr", "destination_addr", "message_id")
INTEGERS = (
    "interface_version",
    "addr_ton",
    "addr_npi",
    "source_addr_ton",
    "source_addr_npi",
    "dest_addr_ton",
    "dest_addr_npi",
    "protocol_id",
    "priority_flag",
    "data_coding",
    "sm_default_msg_id",
)


def teach_smpplib_the_vendor_tag() -> None:
    """smpplib has no API for vendor TLVs: register 0x1400 as an octet-string parameter of submit_sm."""
    smpplib.consts.OPTIONAL_PARAMS["afgw_vendor_1400"] = 0x1400
    cls = smpplib.command.SubmitSM
    cls.params = dict(cls.params, afgw_vendor_1400=smpplib.command.Param(type=ostr, max=64))
    cls.params_order = (*cls.params_order, "afgw_vendor_1400")


def client(port: int) -> None:
    c = smpplib.client.Client("127.0.0.1", port, timeout=5)
    c.connect()
    c.bind_transceiver(system_id="afgw", password="secret", system_type="")
    address = {"source_addr_ton": 1, "source_addr_npi": 1, "source_addr": "8610012381"}
    address |= {"dest_addr_ton": 1, "dest_addr_npi": 1, "destination_addr": "8613912345678"}
    c.send_message(**address, short_message=b"Hello from smpplib", data_coding=0, registered_delivery=1)
    c.read_pdu()
    ucs2 = "您好，请勿向陌生人转账".encode("utf-16-be")
    c.send_message(**address, short_message=ucs2, data_coding=8, afgw_vendor_1400=b"afgw")
    c.read_pdu()
    c.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=c))
    c.read_pdu()
    try:
        c.unbind()
    except smpplib.exceptions.ConnectionError:
        print("# the server closed the connection without unbind_resp", file=sys.stderr)
    c.disconnect()


async def serve(port: int) -> None:
    server = smpp34.Server("127.0.0.1", port, system_id="SMPP34")
    await server.start()
    thread = threading.Thread(target=client, args=(port,))
    thread.start()
    accepted = 0
    while True:
        event = await asyncio.wait_for(server.next(), 10)
        if isinstance(event, smpp34.SubmitSmEvent):
            accepted += 1
            event.accept(message_id=f"smpp34-{accepted}")
        elif isinstance(event, smpp34.Unbound):
            break
    await asyncio.get_running_loop().run_in_executor(None, thread.join)
    await server.stop()


def capture(pcap: Path) -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    tshark = subprocess.Popen(
        ["tshark", "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", str(pcap)], stderr=subprocess.PIPE
    )
    assert tshark.stderr is not None
    while (line := tshark.stderr.readline()) and b"Capturing on" not in line:
        pass
    time.sleep(0.5)
    teach_smpplib_the_vendor_tag()
    asyncio.run(serve(port))
    time.sleep(0.5)
    tshark.send_signal(signal.SIGINT)
    tshark.wait()
    return port


def to_yaml(pcap: Path, port: int) -> str:
    pdml = subprocess.run(
        ["tshark", "-r", str(pcap), "-d", f"tcp.port=={port},smpp", "-Y", "smpp", "-T", "pdml"],
        capture_output=True,
        check=True,
    ).stdout
    lines = ["pdus:"]
    for packet in ET.fromstring(pdml).iter("packet"):
        fields: dict[str, object] = {}
        tlvs: list[tuple[int, str]] = []
        source = payload = ""
        for element in packet.iter("field"):
            if element.get("name") == "tcp.srcport":
                source = element.get("show") or ""
            elif element.get("name") == "tcp.payload":
                payload = element.get("value") or ""
        (smpp,) = [p for p in packet.iter("proto") if p.get("name") == "smpp"]
        for element in smpp.iter("field"):
            name, value = (element.get("name") or "")[5:], element.get("value") or ""
            if name == "command_id":
                command_id = int(value, 16)
            elif name in ("sequence_number", "command_status"):
                fields[name] = int(value, 16)
            elif name in STRINGS:
                fields[name] = bytes.fromhex(value)[:-1].decode("latin-1")
            elif name in INTEGERS:
                fields[name] = int(value, 16)
            elif name == "regdel.receipt":
                fields["registered_delivery"] = int(element.get("unmaskedvalue") or "0", 16)
            elif name == "message":
                fields["short_message"] = value
            elif name == "opt_param":
                kids = [k for k in element if k.tag == "field"]
                tlvs.append((int(kids[0].get("value") or "0", 16), kids[2].get("value") or "" if kids[2:] else ""))
        assert int(payload[:8], 16) * 2 == len(payload), "one PDU per TCP segment"
        lines += [f"  - name: {NAMES[command_id]}"]
        lines += [f"    direction: {'smsc->esme' if source == str(port) else 'esme->smsc'}", "    hex: >-"]
        lines += [f"      {payload[i : i + 96]}" for i in range(0, len(payload), 96)]
        lines += ["    tshark:"]
        for key, value in fields.items():
            lines.append(f'      {key}: "{value}"' if isinstance(value, str) else f"      {key}: {value}")
        lines.append("      tlvs: []" if not tlvs else "      tlvs:")
        lines += [f'        - [0x{tag:04X}, "{value}"]' for tag, value in tlvs]
    return "\n".join(lines) + "\n"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pcap = Path(tmp) / "trace.pcapng"
        port = capture(pcap)
        sys.stdout.write(to_yaml(pcap, port))


if __name__ == "__main__":
    main()
