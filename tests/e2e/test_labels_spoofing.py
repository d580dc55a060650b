"""反诈名片 end to end: trunk caller -> gateway -> a registered simulated handset, over UDP on loopback.

The anti-fraud centre's genuine call rings the handset with 公安反诈专号 and the verified badge. Every
spoof (``simulator.spoofer.spoof_variants``) is refused with the code and Reason below, audited and
published as an event, and the handset never rings for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.events import MemoryEvents
from gateway.keys import issue_spc
from gateway.labels import load_labels
from gateway.sip.proxy import SipProxy
from gateway.store import MemoryStore
from protocols.stir import Signer
from simulator.antifraud_centre import AntiFraudCentre
from simulator.handset import Handset, Screen
from simulator.spoofer import OWN_NUMBER, Spoofer, SpoofKit, spoof_variants
from tests.conftest import require_peer
from tests.e2e.labels_harness import CARRIER_X5U, Clock, LabelsPki, make_labels_pki
from tests.e2e.sip_harness import TRUNK_HOST, sip_config

VICTIM = "8613800000001"
USERS = ((VICTIM, "pw1"),)
LABEL = "公安反诈专号"
TEXT = {
    403: "Stale Date",
    428: "Use Identity Header",
    436: "Bad Identity Info",
    437: "Unsupported Credential",
    438: "Invalid Identity Header",
}

# variant -> the answer the spoofer must get
TABLE = {
    "display-plain": 428,
    "display-traditional": 428,
    "display-spaces": 428,
    "display-symbols": 428,
    "display-zero-width": 428,
    "display-full-width": 428,
    "display-katakana": 428,
    "display-kangxi": 428,
    "display-japanese-form": 428,
    "display-brackets": 428,
    "display-decorated": 428,
    "display-latin-between": 428,
    "from-user": 428,
    "display-number": 428,
    "display-number-chinese": 428,
    "display-number-capital": 428,
    "display-number-full-width": 428,
    "display-number-lookalike": 428,
    "display-number-spaced": 428,
    "display-number-prefixed": 428,
    "pai-display-number": 428,
    "pai": 428,
    "call-info-reason": 428,
    "call-info-jcard": 428,
    "remote-party-id": 428,
    "vendor-header": 428,
    "p-caller-label": 428,
    "x-label": 428,
    "any-vendor-header": 428,
    "contact-display": 428,
    "subject": 428,
    "verstat-in-from": 428,
    "authorised-no-identity": 428,
    "authorised-unknown-x5u": 436,
    "forged-signature": 438,
    "untrusted-ca": 437,
    "stale": 403,
    "wrong-orig": 438,
    "wrong-dest": 438,
    "nam-mismatch": 438,
    "genuine-token-other-number": 438,
    "carrier-rcd-label": 438,
    "replay": 438,
    "attest-b-label": 438,
    "attest-c-label": 438,
}
# variant -> the Reason text, where it says more than the code's phrase
REASON_TEXT = {
    f"attest-{level.lower()}-label": f"Invalid Identity Header: attestation {level} cannot vouch for a protected label"
    for level in "BC"
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LabelsPki:
    return make_labels_pki(tmp_path_factory.mktemp("labels"))


@dataclass
class Network:
    proxy: SipProxy
    handset: Handset
    centre: AntiFraudCentre
    spoofer: Spoofer
    kit: SpoofKit
    clock: Clock
    events: MemoryEvents
    store: MemoryStore


@contextlib.asynccontextmanager
async def network(pki: LabelsPki, **stir: str) -> AsyncIterator[Network]:
    config = sip_config(auth=True, users=USERS)
    config = replace(config, labels=pki.labels, stir=replace(config.stir, **stir))
    clock = Clock(pki.now)
    events, store = MemoryEvents(clock=clock), MemoryStore()
    proxy = SipProxy(config, loop=asyncio.get_running_loop(), clock=clock, events=events, store=store)
    await proxy.start()
    gateway = ("127.0.0.1", proxy.udp_port)
    handset = Handset(VICTIM, gateway, password="pw1")
    centre = AntiFraudCentre(gateway, pki.centre, pki.registry, clock=clock)
    spoofer = Spoofer(gateway)
    kit = SpoofKit(pki.registry, VICTIM, centre=pki.centre, rogue=pki.rogue, carrier=pki.carrier, clock=clock)
    try:
        await handset.start()
        assert (await handset.register(120)).status == 200
        await centre.start(TRUNK_HOST)
        await spoofer.start(TRUNK_HOST)
        yield Network(proxy, handset, centre, spoofer, kit, clock, events, store)
    finally:
        for ua in (handset, centre, spoofer):
            await ua.stop()
        await proxy.stop()


async def test_the_anti_fraud_centre_rings_the_handset_with_the_verified_label(pki: LabelsPki) -> None:
    async with network(pki) as net:
        result = await net.centre.place(VICTIM, hold=0.01)
        assert (result.status, result.bye_status) == (200, 200)
        shown = net.handset.screen.find(result.call_id)
        assert shown is not None
        assert (shown.caller_number, shown.label, shown.badge) == ("+8696110", LABEL, True)
        assert (shown.card_name, shown.call_reason) == (LABEL, "反诈预警劝阻")
        assert shown.answered
        (verified,) = net.events.named("call.label_verified")
        assert verified.fields["call_id"] == result.call_id
        assert net.proxy.stats["label_verified"] == 1


def test_the_table_covers_every_variant_the_spoofer_knows(pki: LabelsPki) -> None:
    kit = SpoofKit(pki.registry, VICTIM, centre=pki.centre, rogue=pki.rogue, carrier=pki.carrier)
    kit.captured.append("token")
    assert sorted(s.name for s in spoof_variants(kit)) == sorted(TABLE)


@pytest.mark.parametrize("variant", list(TABLE))
async def test_a_spoof_is_refused_with_its_code_and_reason_and_never_rings(pki: LabelsPki, variant: str) -> None:
    code = TABLE[variant]
    async with network(pki) as net:
        if variant == "replay":
            genuine = await net.centre.place(VICTIM)
            assert genuine.status == 200
            net.kit.captured.append(net.centre.sent[-1])
        (spoof,) = [s for s in spoof_variants(net.kit) if s.name == variant]
        result = await net.spoofer.attempt(spoof, VICTIM)
        assert (result.status, result.reason_phrase) == (code, TEXT[code]), spoof.what
        assert result.reason == f'STIR;cause={code};text="{REASON_TEXT.get(variant, TEXT[code])}"'
        assert not net.handset.screen.rang(result.call_id)
        (event,) = net.events.named("call.label_rejected")
        assert (event.fields["call_id"], event.fields["code"]) == (result.call_id, code)
        (record,) = [r for r in net.store.audit_log if r.kind == "call.label_rejected"]
        assert (record.fields["call_id"], record.fields["code"], record.at) == (result.call_id, code, net.clock.now)


async def test_the_same_spoofs_through_one_gateway_in_a_row(pki: LabelsPki) -> None:
    """One gateway, the genuine call and then every variant: none rings, each gets its code."""
    async with network(pki) as net:
        genuine = await net.centre.place(VICTIM)
        net.kit.captured.append(net.centre.sent[-1])
        results = await net.spoofer.attempt_all(spoof_variants(net.kit), VICTIM)
        assert {name: r.status for name, r in results.items()} == TABLE
        assert [c.call_id for c in net.handset.screen.calls] == [genuine.call_id]
        assert len(net.events.named("call.label_rejected")) == len(TABLE)


async def test_a_forged_verstat_on_an_ordinary_call_is_stripped_and_shows_no_badge(pki: LabelsPki) -> None:
    async with network(pki) as net:
        result = await net.spoofer.call(
            VICTIM,
            OWN_NUMBER,
            display="Shanghai Bank",
            from_uri=f"sip:{OWN_NUMBER};verstat=TN-Validation-Passed@127.0.0.1;user=phone",
            headers=(
                ("P-Asserted-Identity", f"<sip:{OWN_NUMBER};verstat=TN-Validation-Passed@127.0.0.1;user=phone>"),
                ("X-Verstat", "TN-Validation-Passed"),
                ("Contact", f"<sip:{OWN_NUMBER}@127.0.0.2;verstat=TN-Validation-Passed>"),
            ),
        )
        assert result.status == 200
        shown = net.handset.screen.find(result.call_id)
        assert shown is not None
        assert (shown.caller_number, shown.display_name, shown.verified, shown.badge) == (
            OWN_NUMBER,
            "Shanghai Bank",
            False,
            False,
        )
        assert shown.asserted is None
        assert net.proxy.stats["label_rejected"] == 0


async def test_deliver_policy_lets_an_unproven_authorised_call_ring_without_a_label(pki: LabelsPki) -> None:
    async with network(pki, unverified_authorised="deliver") as net:
        plain = await net.spoofer.call(VICTIM, "96110")
        stale = await net.spoofer.call(VICTIM, "96110", identity=net.centre.identity(VICTIM, iat=net.clock.now - 600))
        labelled = await net.spoofer.call(VICTIM, "96110", display=LABEL)
        assert (plain.status, stale.status) == (200, 200)
        for result in (plain, stale):
            shown = net.handset.screen.find(result.call_id)
            assert shown is not None
            assert (shown.label, shown.badge, shown.verstat) == (None, False, "TN-Validation-Failed")
        # Showing the label without proof is refused whatever the policy.
        assert (labelled.status, labelled.reason) == (428, 'STIR;cause=428;text="Use Identity Header"')
        assert not net.handset.screen.rang(labelled.call_id)


async def test_a_secsipidx_token_for_an_ordinary_number_passes_verified_and_unlabelled(pki: LabelsPki) -> None:
    secsipidx = require_peer("secsipidx")
    async with network(pki) as net:
        net.clock.now = time.time()  # secsipidx signs with the real clock
        proc = await asyncio.create_subprocess_exec(
            secsipidx, "-sign-full", "-orig-tn", OWN_NUMBER, "-dest-tn", VICTIM, "-attest", "A",
            "-orig-id", "8c2b6b0e-0000-4000-8000-000000000001", "-x5u", CARRIER_X5U,
            "-k", str(pki.carrier_key_path),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
        identity = out.decode().strip()
        assert identity.endswith(f";info=<{CARRIER_X5U}>;alg=ES256;ppt=shaken")
        result = await net.spoofer.call(VICTIM, OWN_NUMBER, display="Shanghai Bank", identity=identity)
        assert result.status == 200
        shown = net.handset.screen.find(result.call_id)
        assert shown is not None
        assert (shown.caller_number, shown.verified, shown.label, shown.badge) == (f"+{OWN_NUMBER}", True, None, False)
        assert shown.call_info == ()
        assert net.proxy.stats["label_verified"] == 0


@pytest.mark.parametrize("attest", ["B", "C"])
async def test_partial_attestation_without_a_label_rings_verified_and_unlabelled(pki: LabelsPki, attest: str) -> None:
    carrier = Signer(pki.carrier.key, pki.carrier.x5u, plan=pki.registry.plan, attest=attest)
    async with network(pki) as net:
        identity = carrier.sign(orig=OWN_NUMBER, dest=VICTIM, iat=int(net.clock.now)).serialise()
        result = await net.spoofer.call(VICTIM, OWN_NUMBER, display="Shanghai Bank", identity=identity)
        assert result.status == 200
        shown = net.handset.screen.find(result.call_id)
        assert shown is not None
        assert (shown.verstat, shown.label, shown.badge) == ("TN-Validation-Passed", None, False)
        assert shown.call_info == ()
        assert net.proxy.stats["label_verified"] == 0


@pytest.mark.parametrize("label_in_from", [True, False])
async def test_a_phone_that_reads_only_from_shows_the_verified_label(pki: LabelsPki, label_in_from: bool) -> None:
    async with network(pki) as net:
        net.proxy.stir.config = replace(net.proxy.stir.config, label_in_from=label_in_from)
        net.handset.screen = Screen(from_only=True)
        result = await net.centre.place(VICTIM, hold=0.01)
        assert result.status == 200
        shown = net.handset.screen.find(result.call_id)
        assert shown is not None
        assert shown.display_name == (LABEL if label_in_from else None)
        assert shown.caller_number == "96110"


SPC_X5U = "https://cr.carrier.example/shaken/sp-1234.pem"


@pytest.mark.parametrize("delegated", [True, False])
async def test_an_spc_certificate_labels_through_the_gateway_only_when_delegated(
    tmp_path: Path, delegated: bool
) -> None:
    base = make_labels_pki(tmp_path)
    issue_spc(base.directory / "stir", "1234", SPC_X5U, now=dt.datetime.fromtimestamp(base.now, dt.UTC))
    text = base.labels_path.read_text(encoding="utf-8")
    delegation = '[{spc: "1234", numbers: ["+86 96110"]}]' if delegated else "[]"
    base.labels_path.write_text(text.replace("delegations: []\n", f"delegations: {delegation}\n"), encoding="utf-8")
    pki = replace(base, labels=load_labels(base.labels_path))
    key = serialization.load_pem_private_key((base.directory / "stir" / "spc-1234.key").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    carrier = Signer(key, SPC_X5U, plan=pki.registry.plan)
    async with network(pki) as net:
        now = int(net.clock.now)
        police = pki.registry.lookup("96110")
        labelled = carrier.sign(orig="96110", dest=VICTIM, iat=now, label=police).serialise()
        result = await net.spoofer.call(VICTIM, "96110", identity=labelled)
        ordinary = carrier.sign(orig=OWN_NUMBER, dest=VICTIM, iat=now).serialise()
        plain = await net.spoofer.call(VICTIM, OWN_NUMBER, identity=ordinary)
        if delegated:
            assert result.status == 200
            shown = net.handset.screen.find(result.call_id)
            assert shown is not None
            assert (shown.label, shown.badge) == (LABEL, True)
        else:
            assert (result.status, result.reason) == (437, 'STIR;cause=437;text="Unsupported Credential"')
            assert not net.handset.screen.rang(result.call_id)
        assert plain.status == 200
        shown = net.handset.screen.find(plain.call_id)
        assert shown is not None
        assert (shown.verstat, shown.label) == ("TN-Validation-Passed", None)
