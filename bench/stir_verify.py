"""STIR/SHAKEN cost per INVITE on one core: verifying an Identity header, and signing one.

Printed, all in one run, as µs/op and ops/s (best of ``--repeat`` runs):

- parse Identity header: ``parse_identity`` on one header value;
- decode PASSporT: base64url + strict JSON of header and claims;
- ES256 verify: the signature check alone (cryptography / OpenSSL);
- certificate (cached): ``CredentialResolver.resolve`` for a known x5u, validity window checked;
- certificate (first use): chain validation to the trust anchor, as for a new x5u;
- verify INVITE: ``Verifier.verify`` end to end, each INVITE a distinct token and Call-ID (parse,
  signature, cached chain, claims, number normalisation, TNAuthList and claim constraints, label
  registry, replay cache), the gateway's cost per labelled call;
- sign INVITE: ``Signer.sign`` for a labelled call (claims, canonical JSON, ES256), the anti-fraud
  centre's side.

    python bench/stir_verify.py [--invites 5000] [--repeat 3] [--cpu 0]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import serialization

from protocols.stir import (
    CallInfo,
    CredentialResolver,
    Label,
    LabelRegistry,
    ReplayCache,
    Signer,
    Verified,
    Verifier,
    decode_passport,
    parse_identity,
    verify_signature,
)
from protocols.stir.issue import authority_for, issue_ca, issue_signer, new_key

X5U = "https://stir.afc.example.cn/shaken/signer.pem"
POLICE = Label("公安反诈专号", crn="反诈预警劝阻")
CALLEE = "8613800000001"


def best(repeat: int, count: int, run: Callable[[], None]) -> float:
    """Seconds per operation: the best of ``repeat`` timings of ``run`` doing ``count`` operations."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invites", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu", type=int, default=0, help="CPU to pin to (-1: do not pin)")
    args = parser.parse_args()
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    n = args.invites

    now = 1_800_000_000
    start = dt.datetime.fromtimestamp(now, dt.UTC) - dt.timedelta(days=1)
    registry = LabelRegistry({"96110": POLICE, "010 96110": POLICE, "+86 21 96110": POLICE})
    ca_key, signer_key = new_key(), new_key()
    ca = issue_ca(ca_key, common_name="Bench Root", not_before=start, not_after=start + dt.timedelta(days=3650))
    tn_auth, constraints = authority_for(registry)
    signer_cert = issue_signer(
        ca_key=ca_key,
        ca_cert=ca,
        public_key=signer_key.public_key(),
        common_name="Bench Signer",
        not_before=start,
        not_after=start + dt.timedelta(days=365),
        tn_auth=tn_auth,
        constraints=constraints,
    )
    store = {X5U: signer_cert.public_bytes(serialization.Encoding.PEM)}
    signer = Signer(signer_key, X5U)

    # Distinct tokens (iat and origid vary), as a busy line would present them.
    values = [
        signer.sign(orig="96110", dest=CALLEE, iat=now - (i % 50), label=POLICE, origid=f"bench-{i}").serialise()
        for i in range(n)
    ]
    passports = [decode_passport(parse_identity(v).token) for v in values]
    public_key = signer_key.public_key()
    resolver = CredentialResolver([ca], store)
    resolver.resolve(X5U, now)

    def parse() -> None:
        for v in values:
            parse_identity(v)

    def decode() -> None:
        for v in values:
            decode_passport(v.split(";", 1)[0])

    def signature() -> None:
        for p in passports:
            verify_signature(p, public_key)

    def cached_chain() -> None:
        for _ in range(n):
            resolver.resolve(X5U, now)

    first_use_count = max(n // 20, 50)

    def first_use_chain() -> None:
        for _ in range(first_use_count):
            CredentialResolver([ca], store).resolve(X5U, now)

    calls = [CallInfo(f"call-{i}@trunk", "+86 96110", "13800000001") for i in range(n)]

    def verify() -> None:
        verifier = Verifier(credentials=resolver, registry=registry, replay=ReplayCache(max_entries=2 * n))
        for v, c in zip(values, calls, strict=True):
            outcome = verifier.verify([v], c, now)
            if not isinstance(outcome, Verified):
                raise SystemExit(f"unexpected outcome: {outcome}")

    def sign() -> None:
        for _ in range(n):
            signer.sign(orig="96110", dest=CALLEE, iat=now, label=POLICE, origid="bench")

    rows = [
        ("parse Identity header", best(args.repeat, n, parse)),
        ("decode PASSporT", best(args.repeat, n, decode)),
        ("ES256 verify", best(args.repeat, n, signature)),
        ("certificate (cached)", best(args.repeat, n, cached_chain)),
        ("certificate (first use)", best(args.repeat, first_use_count, first_use_chain)),
        ("verify INVITE", best(args.repeat, n, verify)),
        ("sign INVITE", best(args.repeat, n, sign)),
    ]
    cpu = f"CPU {args.cpu}" if args.cpu >= 0 else "unpinned"
    print(f"STIR/SHAKEN on one core ({cpu}), {n} INVITEs, best of {args.repeat}; token {len(values[0])} octets")
    print(f"{'operation':<26}{'µs/op':>10}{'ops/s':>12}")
    for name, seconds in rows:
        print(f"{name:<26}{seconds * 1e6:>10.1f}{1 / seconds:>12,.0f}")
    verify_s = dict(rows)["verify INVITE"]
    print(
        f"signature share of verify INVITE: {dict(rows)['ES256 verify'] / verify_s:.0%}; "
        f"sign/verify ratio: {dict(rows)['sign INVITE'] / verify_s:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
