"""``afgw case``: what an operator types and reads, on the SQLite store a gateway uses."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.store import SqliteStore


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text("store:\n  backend: sqlite\n  data_dir: data\nevents:\n  jsonl: {path: data/events.jsonl}\n")
    return path


def afgw(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = main(["case", *args, "-c", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


def events(config: Path) -> list[dict]:
    lines = (config.parent / "data" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def store_of(config: Path) -> SqliteStore:
    return SqliteStore(config.parent / "data" / "afgw.db")


def test_open_a_case_then_a_second_open_updates_it(capsys, config):
    code, out, _ = afgw(
        capsys,
        config,
        "open",
        "8613800000001",
        "--tier",
        "medium",
        "--fraud-type",
        "冒充公检法",
        "--family",
        "8613800000002",
        "--note",
        "centre phoned",
    )
    assert code == 0
    assert out == "case 1 opened: 8613800000001, tier medium, 冒充公检法\n"
    code, out, _ = afgw(capsys, config, "open", "8613800000001", "--tier", "high", "--fraud-type", "刷单返利")
    assert code == 0
    assert out.startswith("case 1 updated")
    assert "tier high, 冒充公检法, 刷单返利" in out
    [opened, updated] = events(config)
    assert opened["event"] == "case.opened"
    assert opened["fields"] == {
        "id": "1",
        "subscriber": "8613800000001",
        "tier": "medium",
        "fraud_types": ["冒充公检法"],
        "family": ["8613800000002"],
        "source": "operator",
        "reference": "",
        "detail": "centre phoned",
    }
    assert (updated["event"], updated["fields"]["tier"]) == ("case.updated", "high")

    async def check() -> None:
        store = store_of(config)
        case = await store.open_case_of("8613800000001")
        assert case is not None
        assert [t.event for t in case.transitions] == ["opened", "updated"]
        # The family contact is kept with the case, for the engine's first attempt and escalation.
        assert case.family == ("8613800000002",)
        # Due at once: the engine's next look at due cases makes the first attempt.
        assert [c.id for c in await store.due_cases(now=case.opened_at)] == ["1"]
        await store.close()

    asyncio.run(check())


def test_list_show_close_and_stats(capsys, config):
    for number, tier in [("8613800000001", "high"), ("8613800000003", "low"), ("8613800000004", "low")]:
        assert afgw(capsys, config, "open", number, "--tier", tier, "--fraud-type", "loan")[0] == 0
    code, out, _ = afgw(capsys, config, "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID",
        "SUBSCRIBER",
        "STATE",
        "TIER",
        "ATTEMPTS",
        "OPENED",
        "NEXT",
        "DUE",
        "FRAUD",
        "TYPES",
    ]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["1", "8613800000001", "open", "high"],
        ["2", "8613800000003", "open", "low"],
        ["3", "8613800000004", "open", "low"],
    ]
    code, out, _ = afgw(
        capsys, config, "close", "2", "--outcome", "family confirmed, no transfer", "--operator", "officer-li"
    )
    assert (code, out) == (0, "case 2 closed after 0 attempt(s): family confirmed, no transfer\n")
    assert events(config)[-1]["event"] == "case.closed"
    closed_event = events(config)[-1]["fields"]
    # The console's close publishes the same event (gateway.dissuasion.engine.desk_step).
    assert (closed_event["case_id"], closed_event["operator"], closed_event["source"]) == (
        "2",
        "officer-li",
        "operator",
    )
    assert closed_event["outcome"] == "family confirmed, no transfer"

    _, out, _ = afgw(capsys, config, "list", "--json")
    assert [c["id"] for c in json.loads(out)] == ["1", "3"]
    _, out, _ = afgw(capsys, config, "list", "--state", "closed", "--json")
    [closed] = json.loads(out)
    assert (closed["id"], closed["state"], closed["due_at"]) == ("2", "closed", None)
    _, out, _ = afgw(capsys, config, "list", "--state", "all", "--json")
    assert [c["state"] for c in json.loads(out)] == ["open", "closed", "open"]
    assert afgw(capsys, config, "list", "--state", "escalated")[1] == "no escalated cases\n"

    _, out, _ = afgw(capsys, config, "show", "2")
    assert out.splitlines()[0] == "case 2: 8613800000003"
    assert "  family contacts: -" in out.splitlines()
    timeline = [line.split(maxsplit=2)[1:] for line in out.split("timeline:\n")[1].splitlines()]
    assert timeline == [["opened", "low loan"], ["closed", "officer-li family confirmed, no transfer"]]
    _, out, _ = afgw(capsys, config, "show", "2", "--json")
    assert [t["event"] for t in json.loads(out)["transitions"]] == ["opened", "closed"]

    async def engine_view() -> None:
        store = store_of(config)
        # The engine drives due cases only: a closed case never comes back to it.
        assert [c.id for c in await store.due_cases(now=1e12)] == ["1", "3"]
        case = (await store.claim_due("gw-1", now=1e12, lease_until=1e12 + 30))[0]
        await store.record_attempt(case.id, "gw-1", now=1e12, next_due=1e12 + 300)
        await store.transition(case.id, "handled", now=1e12 + 10)
        await store.close()

    asyncio.run(engine_view())
    code, out, _ = afgw(capsys, config, "stats", "--json")
    assert json.loads(out) == {
        "cases": 3,
        "by_state": {"open": 1, "handled": 1, "escalated": 0, "closed": 1},
        "by_tier": {"low": 2, "medium": 0, "high": 1},
        "by_state_and_tier": {
            "open": {"low": 1, "medium": 0, "high": 0},
            "handled": {"low": 0, "medium": 0, "high": 1},
            "escalated": {"low": 0, "medium": 0, "high": 0},
            "closed": {"low": 1, "medium": 0, "high": 0},
        },
        "median_attempts": 0,
        "median_attempts_to_handle": 1,
    }
    _, out, _ = afgw(capsys, config, "stats")
    assert out.splitlines()[1].split() == ["open", "1", "0", "0", "1"]
    assert "median attempts until handled: 1" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "42"], "afgw case show: no case '42'"),
        (["close", "42", "--outcome", "x"], "afgw case close: no case '42'"),
        (["close", "1", "--outcome", "x"], "afgw case close: case 1 is already closed"),
        (["close", "3", "--outcome", "  "], "afgw case close: --outcome must say what became of the case"),
        (["open", "138-0000", "--tier", "low", "--fraud-type", "x"], "'138-0000' is not a phone number"),
        (["open", "8613800000009", "--tier", "low", "--fraud-type", "x", "--family", "mum"], "'mum' is not a phone"),
        (["open", "8613800000009", "--tier", "low", "--fraud-type", " "], "--fraud-type must not be empty"),
    ],
)
def test_faults_are_one_line_and_exit_2(capsys, config, args, message):
    for number in ("8613800000001", "8613800000002", "8613800000003"):
        afgw(capsys, config, "open", number, "--tier", "low", "--fraud-type", "x")
    afgw(capsys, config, "close", "1", "--outcome", "done")
    code, out, err = afgw(capsys, config, *args)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert message in err


def test_a_bad_configuration_is_reported_as_file_line_col(capsys, tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("store:\n  backend: oracle\n")
    code, _, err = afgw(capsys, path, "list")
    assert code == 2
    assert err.startswith(f"{path}:2:")


def test_through_a_subprocess_on_a_sqlite_store(config):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[3]))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", "case", *args, "-c", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    opened = run("open", "+8613800000001", "--tier", "high", "--fraud-type", "冒充公检法")
    assert (opened.returncode, opened.stdout) == (0, "case 1 opened: +8613800000001, tier high, 冒充公检法\n")
    listed = run("list", "--json")
    assert [c["subscriber"] for c in json.loads(listed.stdout)] == ["+8613800000001"]
    closed = run("close", "1", "--outcome", "officer visited")
    assert closed.returncode == 0
    missing = run("show", "7")
    assert (missing.returncode, missing.stdout, missing.stderr) == (2, "", "afgw case show: no case '7'\n")


def test_on_a_redis_store_and_when_redis_is_away(capsys, tmp_path):
    from tests.conftest import free_port
    from tests.gateway.store.redis_server import start_redis

    proc, port = start_redis(tmp_path)
    config = tmp_path / "redis.yaml"
    config.write_text(f"store:\n  backend: redis\n  redis_url: redis://127.0.0.1:{port}/0\n  redis_prefix: clitest\n")
    try:
        assert afgw(capsys, config, "open", "8613800000001", "--tier", "low", "--fraud-type", "loan")[0] == 0
        assert afgw(capsys, config, "open", "8613800000002", "--tier", "high", "--fraud-type", "loan")[0] == 0
        assert afgw(capsys, config, "close", "1", "--outcome", "answered")[0] == 0
        _, out, _ = afgw(capsys, config, "stats", "--json")
        assert json.loads(out)["by_state"] == {"open": 1, "handled": 0, "escalated": 0, "closed": 1}
        _, out, _ = afgw(capsys, config, "show", "1", "--json")
        assert [t["event"] for t in json.loads(out)["transitions"]] == ["opened", "closed"]
    finally:
        proc.kill()
        proc.wait()
    away = tmp_path / "away.yaml"
    away.write_text(f"store:\n  backend: redis\n  redis_url: redis://127.0.0.1:{free_port()}/0\n")
    code, out, err = afgw(capsys, away, "list")
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1
    assert err.startswith("afgw case list: cannot reach the store")


def test_a_sqlite_file_that_is_not_a_database_is_one_line(capsys, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "afgw.db").write_bytes(b"this is not SQLite" * 100)
    config = tmp_path / "gateway.yaml"
    config.write_text("store:\n  backend: sqlite\n  data_dir: data\n")
    code, out, err = afgw(capsys, config, "stats")
    assert (code, out) == (2, "")
    assert err.startswith("afgw case stats: cannot open the store:")
    assert len(err.splitlines()) == 1


def test_an_escalated_case_is_closed_with_what_the_people_did(capsys, config):
    """A case escalated for no response is the people's now: they record its end with afgw case close."""
    assert afgw(capsys, config, "open", "8613800000009", "--tier", "low", "--fraud-type", "loan")[0] == 0

    async def escalate() -> None:
        store = store_of(config)
        try:
            [case] = await store.open_cases()
            await store.transition(case.id, "escalated", 1_796_600_000.0, detail="no_response")
        finally:
            await store.close()

    asyncio.run(escalate())
    code, out, err = afgw(capsys, config, "close", "1", "--outcome", "officer reached her", "--operator", "wang")
    assert (code, err) == (0, "")
    assert out == "case 1 closed after 0 attempt(s): officer reached her\n"
    assert events(config)[-1]["event"] == "case.closed"
    _, out, _ = afgw(capsys, config, "show", "1")
    assert "  state: closed" in out
    assert out.rstrip().endswith("closed          wang officer reached her")


def test_show_lists_the_robot_call_ringing_and_what_came_after_the_escalation(capsys, config):
    from gateway.dissuasion import templates
    from gateway.dissuasion.engine import DissuasionEngine, NoRobotCaller
    from gateway.events import MemoryEvents

    assert afgw(capsys, config, "open", "8613800000009", "--tier", "medium", "--fraud-type", "loan")[0] == 0
    at = 1_796_600_000.0

    async def ring_then_escalate_then_read() -> None:
        store = store_of(config)
        # Neither flash nor call is made here: what rang and what was read are reported to it.
        flash: Any = None
        engine = DissuasionEngine(store, MemoryEvents(), flash, NoRobotCaller(), templates.load(templates.DEFAULT_PATH))
        try:
            [case] = await store.open_cases()
            await engine.call_ringing(case.id, at, 180)
            await store.transition(case.id, "escalated", at + 60.0, detail="no_response")
            store.remember_message("B0001", "dissuasion:" + case.id, at)
            assert not await engine.flash_acknowledged("B0001", at + 120.0)
        finally:
            await store.close()

    asyncio.run(ring_then_escalate_then_read())
    _, out, _ = afgw(capsys, config, "show", "1")
    assert "  state: escalated" in out
    timeline = [tuple(line.split()[-2:]) for line in out.splitlines() if line.startswith("    ")]
    assert timeline[1:] == [("robot_ringing", "180"), ("escalated", "no_response"), ("flash_acknowledged", "B0001")]
