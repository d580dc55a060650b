"""Gateway.reload (what SIGHUP runs) with the 反诈名片 labels file: a good edit is used from the next
call, with the replay cache kept; a bad one changes nothing and names the place of the error."""

from __future__ import annotations

from pathlib import Path

import structlog

from gateway.app import Gateway
from gateway.config import load
from tests.conftest import free_port
from tests.e2e.labels_harness import make_labels_pki

NEW_LABEL = """\
  - text: 测试反诈热线
    numbers:
      - "12399"
"""


def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"""\
smpp:
  listen: {{port: 0}}
  smsc: {{port: {free_port()}, reconnect_initial: 5}}
sip:
  listen: {{udp_port: 0, tcp_port: 0}}
  labels: labels.yaml
store: {{backend: memory}}
""",
        encoding="utf-8",
    )
    return path


async def test_a_labels_edit_is_taken_whole_or_not_at_all(tmp_path):
    pki = make_labels_pki(tmp_path)
    gateway = Gateway(load(config(tmp_path)))
    await gateway.start()
    try:
        assert gateway.sip is not None
        before = gateway.sip.stir
        assert before.verifier is not None
        registry = before.verifier.registry
        assert not registry.labels_in("测试反诈热线")  # type: ignore[attr-defined]
        text = pki.labels_path.read_text(encoding="utf-8")
        pki.labels_path.write_text(text.replace("labels:\n", "labels:\n" + NEW_LABEL, 1), encoding="utf-8")
        assert await gateway.reload()
        after = gateway.sip.stir
        assert after.verifier is not None
        assert after.verifier.registry.labels_in("测试反诈热线")  # type: ignore[attr-defined]
        assert after.verifier.replay is before.verifier.replay

        pki.labels_path.write_text(text.replace("labels:\n", "labels:\n  - text: [\n", 1), encoding="utf-8")
        with structlog.testing.capture_logs() as logs:
            assert not await gateway.reload()
        assert gateway.sip.stir is after
        [failed] = [entry for entry in logs if entry["event"] == "config.reload_failed"]
        assert failed["errors"][0].startswith(f"{pki.labels_path}:"), failed
    finally:
        await gateway.stop()
