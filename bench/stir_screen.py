"""The STIR policy's cost on ordinary calls: ``StirPolicy.screen`` per INVITE that carries no Identity.

Every INVITE routed to a handset passes the policy: it strips what a caller may not assert, looks
for the protected labels and numbers in every header value (and a MESSAGE body), and only then, if
anything was found, asks the verifier. This measures that screening alone, for INVITEs as softphones
and trunks send them (ASCII display names, a Chinese display name, a dozen header fields), with the
shipped labels (config/labels.yaml's texts and numbers). Printed as µs per INVITE (best of
``--repeat``).

    python bench/stir_screen.py [--invites 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config import SipStir
from gateway.label_text import NormalisingRegistry
from gateway.sip.stir_policy import StirPolicy
from protocols.sip import Request, parse_message
from protocols.stir import CredentialResolver, Label, ReplayCache, Verifier

POLICE, MIIT = Label("公安反诈专号", crn="反诈预警劝阻"), Label("工信部反诈预警")
LABELS = {n: POLICE for n in ("96110", "010 96110", "+86 21 96110", "020-96110", "0086 755 96110", "0571 96110")}
LABELS["12381"] = MIIT

TEMPLATE = (
    "INVITE sip:8613800000001@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.2:5080;branch=z9hG4bK{n};rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: {display}<sip:8613912345678@127.0.0.1>;tag={n}\r\n"
    "To: <sip:8613800000001@127.0.0.1>\r\n"
    "Call-ID: {n}-bench@127.0.0.2\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:8613912345678@127.0.0.2:5080;transport=udp>\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, PRACK, MESSAGE, INFO, NOTIFY, REFER\r\n"
    "Supported: replaces, timer, 100rel\r\n"
    "User-Agent: baresip v3.10.1 (x86_64/linux)\r\n"
    "Session-Expires: 1800\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 0\r\n\r\n"
)
DISPLAYS = ("", '"Alice" ', '"张三" ', '"Shanghai Bank 95588" ')


def requests(count: int) -> list[Request]:
    out = []
    for n in range(count):
        message = parse_message(TEMPLATE.format(n=n, display=DISPLAYS[n % len(DISPLAYS)]).encode())
        assert isinstance(message, Request)
        out.append(message)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invites", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    registry = NormalisingRegistry(LABELS)
    verifier = Verifier(credentials=CredentialResolver([], {}), registry=registry, replay=ReplayCache())
    policy = StirPolicy(SipStir(), verifier, domain="127.0.0.1")
    best = float("inf")
    for _ in range(args.repeat):
        batch = requests(args.invites)
        start = time.perf_counter()
        for request in batch:
            policy.screen(request, "8613800000001", 0.0)
        best = min(best, time.perf_counter() - start)
    print(f"screen ordinary INVITE: {best / args.invites * 1e6:.2f} µs/INVITE ({args.invites / best:,.0f}/s)")


if __name__ == "__main__":
    main()
