"""The STIR policy inside the running proxy, seen by bare UDP peers: exactly what reaches the handset."""

from __future__ import annotations

import asyncio

import pytest

from gateway.inspection import Call, Decision
from gateway.sip.proxy import SipProxy
from protocols.sip import Request
from tests.e2e.sip_harness import answer, register, request, sip_config
from tests.protocols.stir.conftest import CALLEE, NOW, Pki

POLICE = "公安反诈专号"
PAI = '"公安反诈专号" <sip:+8696110;verstat=TN-Validation-Passed@127.0.0.1;user=phone>'


class Recorder:
    def __init__(self, decision: Decision | None = None) -> None:
        self.calls: list[Call] = []
        self.decision = decision or Decision()

    def inspect_call(self, call: Call) -> Decision:
        self.calls.append(call)
        return self.decision


async def started(pki: Pki, inspector: Recorder | None = None) -> SipProxy:
    proxy = SipProxy(
        sip_config(), inspector=inspector, loop=asyncio.get_running_loop(), verifier=pki.verifier(), clock=lambda: NOW
    )
    await proxy.start()
    return proxy


async def test_the_handset_gets_the_stamped_identity_and_nothing_the_caller_wrote(pki: Pki, peers) -> None:
    trunk, handset = peers
    inspector = Recorder(Decision.label_call("疑似诈骗"))
    proxy = await started(pki, inspector)
    try:
        await register(handset, proxy.udp_port, CALLEE)
        sent = request(
            "INVITE",
            f"sip:{CALLEE}@127.0.0.1",
            trunk,
            from_user="96110;verstat=TN-Validation-Passed",
            extra=(
                ("Identity", pki.sign("96110")),
                ("P-Asserted-Identity", '"x" <sip:96110@127.0.0.2>'),
                ("Call-Info", "<https://spoof.example/logo.png>;purpose=icon"),
                ("X-Caller-Label", POLICE),
            ),
        )
        trunk.send(sent, proxy.udp_port)
        got = await handset.request("INVITE", sent.call_id)
        assert got.headers.get_all("P-Asserted-Identity") == [PAI]
        (card,) = got.headers.get_all("Call-Info")
        assert card.endswith('>;purpose=jcard;call-reason="反诈预警劝阻"')
        for name in ("Identity", "X-Caller-Label"):
            assert name not in got.headers
        assert got.from_addr.uri.user == "96110"
        # The rules saw the stamped identity, and their informational label did not replace the 反诈名片.
        (call,) = inspector.calls
        assert call.asserted == PAI
        assert proxy.stats["label_verified"] == 1

        handset.send(answer(got, 200, contact=handset), proxy.udp_port)
        ok = await trunk.response(sent.call_id, 200)
        # Inside the call, the trunk cannot assert anything either.
        update = request(
            "UPDATE",
            f"sip:{CALLEE}@127.0.0.1",
            trunk,
            call_id=sent.call_id,
            cseq=2,
            to_tag=ok.to_tag,
            from_user="96110",
            extra=(
                ("P-Asserted-Identity", f'"{POLICE}" <sip:96110@h>'),
                ("Call-Info", "<https://h/x>;purpose=icon"),
                ("P-Caller-Label", "公安反詐專號"),
                ("X-Note", "张三"),
            ),
        )
        trunk.send(update, proxy.udp_port)
        forwarded = await handset.request("UPDATE", sent.call_id)
        assert "P-Asserted-Identity" not in forwarded.headers
        assert "Call-Info" not in forwarded.headers
        assert "P-Caller-Label" not in forwarded.headers
        assert forwarded.headers.get("X-Note") == "张三"
    finally:
        await proxy.stop()


async def test_a_message_showing_the_label_is_refused_like_a_call(pki: Pki, peers) -> None:
    trunk, handset = peers
    proxy = await started(pki)
    try:
        await register(handset, proxy.udp_port, CALLEE)
        sent = request("MESSAGE", f"sip:{CALLEE}@127.0.0.1", trunk, from_user="8613912345678", body=b"hi")
        sent.headers.set("From", f'"【{POLICE}】" <sip:8613912345678@127.0.0.1>;tag=m1')
        trunk.send(sent, proxy.udp_port)
        final = await trunk.response(sent.call_id)
        assert (final.status, final.reason) == (428, "Use Identity Header")
        assert final.headers.get("Reason") == 'STIR;cause=428;text="Use Identity Header"'
        probe = request("OPTIONS", f"sip:{CALLEE}@127.0.0.1", trunk)
        trunk.send(probe, proxy.udp_port)
        await handset.request("OPTIONS", probe.call_id)
        assert not [m for m in handset.received if isinstance(m, Request) and m.call_id == sent.call_id]
        (record,) = proxy.store.audit_log  # type: ignore[attr-defined]
        assert (record.kind, record.at, record.fields["method"], record.fields["labels"]) == (
            "call.label_rejected",
            NOW,
            "MESSAGE",
            [POLICE],
        )
    finally:
        await proxy.stop()


@pytest.mark.parametrize(
    ("body", "refused"), [("您好，这里是公安反詐專號，请回电".encode(), True), ("晚上吃饭吗".encode(), False)]
)
async def test_a_message_body_showing_the_label_is_refused(pki: Pki, peers, body: bytes, refused: bool) -> None:
    trunk, handset = peers
    proxy = await started(pki)
    try:
        await register(handset, proxy.udp_port, CALLEE)
        sent = request("MESSAGE", f"sip:{CALLEE}@127.0.0.1", trunk, from_user="8613912345678", body=body)
        trunk.send(sent, proxy.udp_port)
        if refused:
            final = await trunk.response(sent.call_id)
            assert (final.status, final.headers.get("Reason")) == (428, 'STIR;cause=428;text="Use Identity Header"')
            assert proxy.stats["label_rejected"] == 1
        else:
            got = await handset.request("MESSAGE", sent.call_id)
            assert got.body == body
    finally:
        await proxy.stop()
