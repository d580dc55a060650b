"""The SQLite backend: WAL, schema upgrades in place, nothing committed lost to kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gateway.store import AuditRecord, SqliteStore
from gateway.store.sqlite import MIGRATIONS, SCHEMA_VERSION


async def test_wal_mode_and_current_schema(tmp_path):
    store = SqliteStore(tmp_path / "data" / "afgw.db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    await store.close()


async def test_an_older_schema_is_upgraded_in_place(tmp_path):
    path = tmp_path / "afgw.db"
    # A file as the first release left it: routes and audit only, one route remembered.
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0])
    old.execute("INSERT INTO routes VALUES ('1a2f', 'bank', 100.0)")
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    store = SqliteStore(path)
    assert store.upgraded_from == 1
    assert store.owner_of(str(0x1A2F), now=101.0) == "bank"
    case, created = await store.open_or_update_case("861", "low", "x", now=0.0, due_at=0.0)
    assert created
    await store.close()
    again = SqliteStore(path)
    assert again.upgraded_from == SCHEMA_VERSION
    assert (await again.get_case(case.id)).subscriber == "861"
    await again.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "afgw.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer"):
        SqliteStore(path)


@pytest.mark.parametrize(
    ("count", "within", "expected"), [(3, 10.0, True), (4, 10.0, False), (1, 1.5, True), (2, 1.5, False)]
)
def test_velocity_counters(tmp_path, count, within, expected):
    store = SqliteStore(tmp_path / "afgw.db")
    for t in (1.0, 5.0, 9.0):
        store.record("sms|src|10086", t)
    store.record("sms|src|other", 9.0)
    assert store.at_least("sms|src|10086", count, within, now=10.0) is expected
    assert store.db.close() is None


WRITER = """
import asyncio, sys
from gateway.store import AuditRecord, SqliteStore

async def main():
    store = SqliteStore(sys.argv[1])
    n = 0
    while True:
        await store.open_or_update_case(f"86{n:011d}", "medium", "investment", now=float(n), due_at=float(n) + 300)
        print(n, flush=True)
        n += 1

asyncio.run(main())
"""


def test_kill_9_loses_nothing_committed(tmp_path):
    path = tmp_path / "afgw.db"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    child = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    acknowledged = -1
    deadline = time.monotonic() + 60
    while acknowledged < 300 and time.monotonic() < deadline:
        acknowledged = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    asyncio.run(_check_after_crash(path, acknowledged))


async def _check_after_crash(path, acknowledged):
    # Every case the child had reported committed before it died is there, once, intact.
    store = SqliteStore(path)
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    cases = await store.open_cases()
    subscribers = [c.subscriber for c in cases]
    assert len(subscribers) == len(set(subscribers)) >= acknowledged + 1
    assert {f"86{n:011d}" for n in range(acknowledged + 1)} <= set(subscribers)
    assert all(json.loads(json.dumps(c.to_doc()))["tier"] == "medium" for c in cases)
    # and the file keeps working
    case, created = await store.open_or_update_case(f"86{0:011d}", "high", "x", now=1e6, due_at=0.0)
    assert not created
    assert case.tier == "high"
    await store.close()


async def test_hot_path_writes_are_committed_by_the_end_of_the_loop_turn(tmp_path):
    path = tmp_path / "afgw.db"
    store = SqliteStore(path)
    reader = sqlite3.connect(path)
    for i in range(50):
        store.remember_message(f"{i:X}", "bank", now=1.0)
        store.audit(AuditRecord("sms.blocked", 1.0, {"n": i}))
        store.record("sms|dst|861", 1.0)
    # a case opened in the same turn commits the batch first, then its own transaction
    case, _ = await store.open_or_update_case("861", "low", "x", now=1.0, due_at=2.0)
    await asyncio.sleep(0)
    counts = [reader.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("routes", "audit", "velocity")]
    assert counts == [50, 50, 50]
    assert reader.execute("SELECT COUNT(*) FROM cases WHERE id = ?", (case.id,)).fetchone()[0] == 1
    reader.close()
    await store.close()


def test_without_a_loop_each_write_commits_at_once(tmp_path):
    path = tmp_path / "afgw.db"
    store = SqliteStore(path)
    store.remember_message("1A", "bank", now=1.0)
    assert sqlite3.connect(path).execute("SELECT system_id FROM routes").fetchall() == [("bank",)]
