"""Hot reload: file changes and SIGHUP swap the rules; a bad edit keeps the old ones and logs why."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import rules
from tests.rules.helpers import rule_yaml, sms


def pack(word: str, rule_id: str = "t.rule") -> str:
    return "rules:\n" + rule_yaml(f"sel:\n  text: {word}\ncondition: sel", rule_id=rule_id)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def touch(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, "utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a distinct mtime even on coarse file systems


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    touch(tmp_path / "a.yaml", pack("旧词"))
    return tmp_path


def test_a_change_is_picked_up_after_the_interval(rules_dir: Path) -> None:
    clock = FakeClock()
    engine = rules.Engine(rules.build([rules_dir]))
    watcher = rules.RuleWatcher(engine, [rules_dir], interval=2.0, clock=clock)
    assert watcher.poll() is None
    touch(rules_dir / "a.yaml", pack("新词"))
    clock.now += 1.0
    assert watcher.poll() is None  # not due yet
    assert engine.evaluate(sms("旧词")).rules == ("t.rule",)
    clock.now += 1.5
    result = watcher.poll()
    assert result is not None
    assert result.ok
    assert result.rules == 1
    assert engine.evaluate(sms("新词")).rules == ("t.rule",)
    assert engine.evaluate(sms("旧词")).rules == ()
    clock.now += 5
    assert watcher.poll() is None  # nothing changed since


def test_a_bad_edit_keeps_the_old_rules_and_logs_every_error(rules_dir: Path) -> None:
    clock = FakeClock()
    engine = rules.Engine(rules.build([rules_dir]))
    old = engine.ruleset
    watcher = rules.RuleWatcher(engine, [rules_dir], interval=1.0, clock=clock)
    touch(
        rules_dir / "a.yaml", pack("新词").replace("risk: high", "risk: extreme").replace("text: 新词", "text|re: '(x'")
    )
    clock.now += 2
    with capture_logs() as logs:
        result = watcher.poll()
    assert result is not None
    assert not result.ok
    assert engine.ruleset is old
    assert engine.evaluate(sms("旧词")).rules == ("t.rule",)
    (event,) = logs
    assert event["event"] == "rules.reload_failed"
    assert event["log_level"] == "error"
    assert event["count"] == 2
    assert event["kept_rules"] == 1
    assert any(e.startswith(f"{rules_dir / 'a.yaml'}:5:11: rule t.rule.risk") for e in event["errors"])
    # not retried on every poll, only when the files change again
    clock.now += 2
    assert watcher.poll() is None
    touch(rules_dir / "a.yaml", pack("修好了"))
    clock.now += 2
    result = watcher.poll()
    assert result is not None
    assert result.ok
    assert engine.evaluate(sms("修好了")).rules == ("t.rule",)


def test_new_and_removed_files_count_as_changes(rules_dir: Path) -> None:
    clock = FakeClock()
    engine = rules.Engine(rules.build([rules_dir]))
    watcher = rules.RuleWatcher(engine, [rules_dir], interval=1.0, clock=clock)
    touch(rules_dir / "b.yaml", pack("第二", rule_id="t.second"))
    clock.now += 2
    assert watcher.poll() is not None
    assert len(engine.ruleset) == 2
    (rules_dir / "b.yaml").unlink()
    clock.now += 2
    assert watcher.poll() is not None
    assert len(engine.ruleset) == 1


def test_request_reload_forces_a_reload_without_a_change(rules_dir: Path) -> None:
    clock = FakeClock()
    engine = rules.Engine(rules.build([rules_dir]))
    watcher = rules.RuleWatcher(engine, [rules_dir], interval=3600, clock=clock)
    before = engine.ruleset
    watcher.request_reload()
    result = watcher.poll()
    assert result is not None
    assert result.ok
    assert engine.ruleset is not before


async def test_sighup_reloads_while_the_loop_keeps_serving(rules_dir: Path) -> None:
    engine = rules.Engine(rules.build([rules_dir]))
    watcher = rules.RuleWatcher(engine, [rules_dir], interval=3600)
    remove = rules.install_sighup(watcher)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        (rules_dir / "a.yaml").write_text(pack("信号"), "utf-8")
        os.kill(os.getpid(), signal.SIGHUP)
        served = 0
        for _ in range(500):  # traffic goes on while the worker thread compiles
            engine.evaluate(sms("信号"))
            served += 1
            if watcher.last is not None:
                break
            await asyncio.sleep(0.01)
        assert watcher.last is not None
        assert watcher.last.ok
        assert served >= 1
        assert engine.evaluate(sms("信号")).rules == ("t.rule",)
    finally:
        remove()
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_run_polls_files_on_the_loop(rules_dir: Path) -> None:
    engine = rules.Engine(rules.build([rules_dir]))
    watcher = rules.RuleWatcher(engine, [rules_dir], interval=0.02)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        touch(rules_dir / "a.yaml", pack("轮询"))
        for _ in range(300):
            if engine.evaluate(sms("轮询")).rules:
                break
            await asyncio.sleep(0.01)
        assert engine.evaluate(sms("轮询")).rules == ("t.rule",)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def test_reloading_a_thousand_rules_is_quick(tmp_path: Path) -> None:
    text = "rules:\n" + "".join(
        rule_yaml(f"sel:\n  text|squeezed: [词{i}甲, 词{i}乙, 词{i}丙]\ncondition: sel", rule_id=f"t.r{i}")
        for i in range(1000)
    )
    touch(tmp_path / "many.yaml", text)
    engine = rules.Engine(rules.build([tmp_path / "many.yaml"]))
    watcher = rules.RuleWatcher(engine, [tmp_path])
    result = watcher.reload()
    assert result.ok
    assert result.rules == 1000
    assert result.seconds < 10
    assert engine.evaluate(sms("词999乙")).rules == ("t.r999",)
