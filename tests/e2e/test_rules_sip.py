"""The rule engine behind the SIP proxy: a blocked call hears 608 with a Reason and never rings; a labelled
call rings with the label on the handset's screen; a warned-about call also warns the callee."""

from __future__ import annotations

import textwrap

import rules
from gateway.rules_hook import RulesInspector
from simulator.handset import Handset
from simulator.trunk import TrunkCaller
from tests.e2e.sip_harness import TRUNK_HOST, running_proxy, sip_config

CALLEE = "8613800000061"

LOCAL_PACK = """\
pack: local
rules:
  - id: local.blocked-caller
    title: 已确认的诈骗号码
    status: stable
    author: test
    category: other
    risk: high
    channel: call
    detection:
      sel:
        from: ["+85255555555"]
      condition: sel
    action: block
  - id: local.suspect-caller
    title: 疑似诈骗号码
    status: stable
    author: test
    category: other
    risk: medium
    channel: call
    detection:
      sel:
        from: ["01012345678"]
      condition: sel
    action: warn
"""


class RecordingWarner:
    def __init__(self) -> None:
        self.warned: list[tuple[str, str | None]] = []

    def warn(self, recipient: str, *, template: str | None = None, category: str | None = None) -> bool:
        self.warned.append((recipient, category))
        return True


async def test_rules_block_label_and_warn_calls(tmp_path):
    pack = tmp_path / "local.yaml"
    pack.write_text(textwrap.dedent(LOCAL_PACK), encoding="utf-8")
    warner = RecordingWarner()
    inspector = RulesInspector(rules.Engine(rules.build([rules.DEFAULT_PACKS, pack])), warner=warner)  # type: ignore[arg-type]
    async with running_proxy(sip_config(), inspector=inspector) as proxy:
        gateway = ("127.0.0.1", proxy.udp_port)
        handset = Handset(CALLEE, gateway)
        trunk = TrunkCaller(gateway)
        await handset.start()
        assert (await handset.register(120)).status == 200
        await trunk.start(TRUNK_HOST)
        try:
            blocked = await trunk.call(CALLEE, "+85255555555", display="Bank")
            assert blocked.status == 608
            assert blocked.reason is not None
            assert "cause=608" in blocked.reason
            assert handset.screen.find(blocked.call_id) is None  # it never rang

            abroad = await trunk.call(CALLEE, "+85261234567", display="Mr Chan", hold=0.05)
            assert abroad.status == 200
            shown = handset.screen.find(abroad.call_id)
            assert shown is not None
            assert shown.display_name == "境外来电"
            assert not shown.verified  # an informational label is not the verified badge

            suspect = await trunk.call(CALLEE, "01012345678", hold=0.05)
            assert suspect.status == 200
            warned = handset.screen.find(suspect.call_id)
            assert warned is not None
            assert warned.display_name == "疑似诈骗"
            assert warner.warned == [(CALLEE, "other")]

            plain = await trunk.call(CALLEE, "02150001234", display="Shanghai Bank", hold=0.05)
            assert plain.status == 200
            ordinary = handset.screen.find(plain.call_id)
            assert ordinary is not None
            assert ordinary.display_name == "Shanghai Bank"
        finally:
            await trunk.stop()
            await handset.stop()
