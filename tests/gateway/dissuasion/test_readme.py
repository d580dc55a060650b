"""The README's operator walk-through works as written against the sample config."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import load
from gateway.dissuasion.instructions import InstructionIntake, parse_instruction
from gateway.dissuasion.triggers import Trigger
from tests.conftest import free_port, require_peer
from tests.gateway.events.mqtt_broker import Broker

ROOT = Path(__file__).parents[3]
SECTION = (ROOT / "README.md").read_text(encoding="utf-8").split("## Dissuasion cases", 1)[1].split("\n## ", 1)[0]


def lines_starting(word: str) -> list[list[str]]:
    return [shlex.split(line, comments=True) for line in SECTION.splitlines() if line.startswith(word + " ")]


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def sample_config_with_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """config/gateway.yaml with events.mqtt uncommented, as the README asks."""
    monkeypatch.setenv("AFGW_MQTT_PASSWORD", "pw")
    text = (ROOT / "config" / "gateway.yaml").read_text(encoding="utf-8")
    lines, inside = [], False
    for line in text.splitlines():
        if line == "  # mqtt:":
            inside = True
        elif inside and not line.startswith("  #   "):
            inside = False
        lines.append("  " + line[4:] if inside else line)
    path = tmp_path / "gateway.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(ROOT / "config" / "labels.yaml", tmp_path / "labels.yaml")
    return path


def test_the_readme_lines_name_the_sample_configs_broker_and_topics(tmp_path, monkeypatch):
    mqtt = load(sample_config_with_broker(tmp_path, monkeypatch)).events.mqtt
    assert mqtt is not None
    subs, pubs = lines_starting("mosquitto_sub"), lines_starting("mosquitto_pub")
    assert len(subs) == 2
    assert len(pubs) == 1
    for argv in subs + pubs:
        assert (option(argv, "-h"), int(option(argv, "-p")), option(argv, "-q")) == (mqtt.host, mqtt.port, "1")
    assert [option(argv, "-t") for argv in subs] == [mqtt.instruction_errors_topic, mqtt.topic_prefix + "/#"]
    assert option(pubs[0], "-t") == mqtt.instructions_topic
    trigger = parse_instruction(option(pubs[0], "-m").encode(), time.time())
    assert (trigger.subscriber, trigger.tier, trigger.family) == ("8613800000001", "high", ("8613800000002",))
    # The expiry the text suggests adding is one the gateway reads (on the day the README was written).
    [expiry] = re.findall(r'`"expires_at": ("[^"]+")`', SECTION)
    with_expiry = json.loads(option(pubs[0], "-m")) | {"expires_at": json.loads(expiry)}
    written = 1_796_515_200.0  # 2026-12-06T00:00:00Z
    assert parse_instruction(json.dumps(with_expiry).encode(), written).expires_at == 1_798_646_400.0


def test_the_readme_error_example_is_what_the_faulty_instruction_gets():
    [shown] = [line for line in SECTION.splitlines() if line.startswith("afgw/v1/instructions/errors {")]
    example = json.loads(shown.split(" ", 1)[1])
    faulty = json.loads(option(lines_starting("mosquitto_pub")[0], "-m")) | {"tier": "urgent"}
    try:
        parse_instruction(json.dumps(faulty, ensure_ascii=False).encode(), time.time())
    except Exception as exc:
        answer = json.loads(exc.to_json(example["at"]))  # type: ignore[attr-defined]
    assert answer == example


class RecordingSink:
    def __init__(self) -> None:
        self.triggers: list[Trigger] = []

    async def trigger(self, trigger: Trigger, now: float) -> None:
        self.triggers.append(trigger)


async def test_the_readme_mosquitto_lines_work_against_a_broker(tmp_path, monkeypatch):
    require_peer("mosquitto_pub")
    mqtt = load(sample_config_with_broker(tmp_path, monkeypatch)).events.mqtt
    assert mqtt is not None
    broker = Broker(tmp_path)
    await broker.start()
    sink = RecordingSink()
    intake = InstructionIntake(
        sink, topic=mqtt.instructions_topic, error_topic=mqtt.instruction_errors_topic, port=broker.port
    )

    def on_our_broker(argv: list[str]) -> list[str]:
        argv = list(argv)
        argv[argv.index("-p") + 1] = str(broker.port)  # the README's 1883, moved to this test's broker
        return argv

    try:
        await intake.start()
        await asyncio.wait_for(intake.connected.wait(), 10)
        errors_line = [*on_our_broker(lines_starting("mosquitto_sub")[0]), "-C", "1", "-W", "30"]
        watcher = await asyncio.create_subprocess_exec(*errors_line, stdout=subprocess.PIPE)
        pub = on_our_broker(lines_starting("mosquitto_pub")[0])
        await asyncio.to_thread(subprocess.run, pub, check=True, timeout=10)
        faulty = list(pub)
        faulty[faulty.index("-m") + 1] = faulty[faulty.index("-m") + 1].replace('"high"', '"urgent"')
        # Until mosquitto_sub has subscribed an answer may pass it by: send again until it hears one.
        output = asyncio.ensure_future(watcher.communicate())
        for _ in range(30):
            await asyncio.to_thread(subprocess.run, faulty, check=True, timeout=10)
            done, _ = await asyncio.wait({output}, timeout=1.0)
            if done:
                break
        out = (await asyncio.wait_for(output, 30))[0].decode()
    finally:
        await intake.stop()
        await broker.stop(signal.SIGKILL)
    assert [t.reference for t in sink.triggers] == ["FZ-2026-0001"]
    topic, payload = out.strip().split(" ", 1)
    assert topic == mqtt.instruction_errors_topic
    assert json.loads(payload)["error"] == "unknown_tier"


def test_the_readme_case_lines_run_against_the_sample_config(tmp_path, monkeypatch, capsys):
    config = sample_config_with_broker(tmp_path, monkeypatch)
    # No broker listens on this port: the case is kept, the event goes to the log, and the miss is said.
    config.write_text(config.read_text().replace("    port: 1883\n", f"    port: {free_port()}\n"))
    commands = lines_starting("afgw")
    assert [argv[2] for argv in commands] == ["list", "show", "open", "close", "stats"]
    opening = next(argv for argv in commands if argv[2] == "open")
    for argv in [opening, *commands]:
        assert argv[-2:] == ["-c", "config/gateway.yaml"]
        code = main([*argv[1:-1], str(config)])
        out, err = capsys.readouterr()
        assert code == 0, argv
        assert out
        if argv[2] in ("open", "close"):
            assert "was not published" in err
    logged = [json.loads(line) for line in (tmp_path / "data" / "events.jsonl").read_text().splitlines()]
    assert [e["event"] for e in logged] == ["case.opened", "case.updated", "case.closed"]
