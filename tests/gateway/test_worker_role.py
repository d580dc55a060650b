"""What ``afgw run --workers N`` changes in each worker's configuration, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, GatewayConfig, load
from gateway.workers.role import as_worker, check_workers


def config_with(tmp_path: Path, listen: str) -> GatewayConfig:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"smpp:\n  listen: {{port: 2775}}\nstore: {{backend: redis}}\nsip:\n  listen: {{{listen}}}\n",
        encoding="utf-8",
    )
    return load(path)


def test_each_worker_gets_its_own_udp_port_from_the_first(tmp_path: Path) -> None:
    config = config_with(tmp_path, "udp_port: 5060, tcp_port: 5060, worker_udp_port: 5070")
    check_workers(config, 3)
    ports = [as_worker(config, i, 3).sip.listen.worker_udp_port for i in range(3)]  # type: ignore[union-attr]
    assert ports == [5070, 5071, 5072]


def test_without_a_first_port_every_worker_lets_the_system_pick(tmp_path: Path) -> None:
    config = config_with(tmp_path, "udp_port: 5060, tcp_port: 5060")
    check_workers(config, 2)
    assert [as_worker(config, i, 2).sip.listen.worker_udp_port for i in range(2)] == [0, 0]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("listen", "count", "why"),
    [
        (
            "udp_port: 5060, tcp_port: 5060, worker_udp_port: 65535",
            2,
            "sip.listen.worker_udp_port 65535 gives --workers 2 the ports 65535..65536, past 65535",
        ),
        (
            "udp_port: 5061, tcp_port: 5060, worker_udp_port: 5060",
            4,
            "sip.listen.worker_udp_port 5060 gives --workers 4 the ports 5060..5063, which take in "
            "sip.listen.udp_port 5061, the port they share",
        ),
    ],
)
def test_worker_ports_that_cannot_be_are_refused_before_any_worker_starts(
    tmp_path: Path, listen: str, count: int, why: str
) -> None:
    config = config_with(tmp_path, listen)
    with pytest.raises(ConfigError) as info:
        check_workers(config, count)
    assert info.value.errors == [f"{config.source}: {why}"]
