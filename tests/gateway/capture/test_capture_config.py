"""Turning capture on: the ``capture`` section, ``--pcap`` and its companions, and the errors of each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.capture import CaptureConfig
from gateway.cli import _capture, build_parser
from gateway.config import ConfigError, GatewayConfig, Listen, SmppConfig, SmscPeer, load
from simulator.ports import free_udp_tcp_port

ROOT = Path(__file__).resolve().parents[3]


def test_capture_is_off_unless_configured():
    assert load(ROOT / "config" / "gateway.yaml").capture is None
    assert GatewayConfig().capture is None


def test_the_capture_section_names_a_file_beside_the_configuration(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("capture:\n  pcap: traces/afgw.pcap\n  pcap_size: 2.5\n  pcap_count: 4\n")
    capture = load(path).capture
    assert capture == CaptureConfig(pcap=str(tmp_path / "traces" / "afgw.pcap"), pcap_size=2.5, pcap_count=4)
    assert capture.max_bytes == 2_500_000
    path.write_text("capture:\n  pcap: /var/log/afgw.pcap\n")
    assert load(path).capture == CaptureConfig(pcap="/var/log/afgw.pcap", pcap_size=100.0, pcap_count=10)


def test_every_capture_mistake_is_reported_at_its_place(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("capture:\n  pcap_size: 0\n  pcap_count: -1\n  snaplen: 96\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    p = str(path)
    assert info.value.errors == [
        f"{p}:2:3: missing required field 'pcap'",
        f"{p}:2:14: pcap_size: 0 MB is less than 0.001 MB",
        f"{p}:3:15: pcap_count: must be greater than zero, got -1",
        f"{p}:4:3: unknown field 'snaplen' (hint: allowed: pcap, pcap_count, pcap_size)",
    ]


def test_the_command_line_overrides_the_section_field_by_field():
    configured = CaptureConfig(pcap="/var/log/afgw.pcap", pcap_size=50.0, pcap_count=4)
    parse = build_parser().parse_args
    assert _capture(parse(["run"]), configured) == configured
    assert _capture(parse(["run", "--pcap-count", "2"]), configured) == CaptureConfig("/var/log/afgw.pcap", 50.0, 2)
    assert _capture(parse(["run", "--pcap", "x.pcap", "--pcap-size", "0.5"]), None) == CaptureConfig("x.pcap", 0.5, 10)
    assert _capture(parse(["demo", "--pcap", "demo.pcap"]), None) == CaptureConfig("demo.pcap")
    assert _capture(parse(["run"]), None) is None
    with pytest.raises(ConfigError, match="--pcap-size and --pcap-count need --pcap FILE"):
        _capture(parse(["run", "--pcap-size", "5"]), None)


def test_afgw_run_refuses_sizes_and_counts_that_are_not_numbers_or_too_small(tmp_path):
    for args, message in (
        (["--pcap", "x.pcap", "--pcap-size", "0"], "0 is less than 0.001"),
        (["--pcap", "x.pcap", "--pcap-count", "0"], "0 is less than 1"),
        (["--pcap", "x.pcap", "--pcap-count", "many"], "'many' is not a number"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "gateway.cli", "run", "-c", str(ROOT / "config" / "gateway.yaml"), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 2
        assert message in proc.stderr


async def test_a_capture_file_that_cannot_be_written_stops_the_start_with_the_reason(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = GatewayConfig(
        smpp=SmppConfig(listen=Listen("127.0.0.1", 0), smsc=SmscPeer(port=free_udp_tcp_port())),
        capture=CaptureConfig(pcap=str(blocker / "afgw.pcap")),
    )
    with pytest.raises(ConfigError) as info:
        await Gateway(config).start()
    assert info.value.errors == [f"{blocker / 'afgw.pcap'}: cannot write the capture: Not a directory"]


def test_the_commented_capture_section_of_the_shipped_configuration_loads_when_uncommented(tmp_path):
    text = (ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8")
    block = text[text.index("# capture:") :].splitlines()
    uncommented = "\n".join(line.removeprefix("# ") for line in block) + "\n"
    path = tmp_path / "gateway.yaml"
    path.write_text(uncommented, encoding="utf-8")
    assert load(path).capture == CaptureConfig(pcap=str(tmp_path / "capture" / "afgw.pcap"))
