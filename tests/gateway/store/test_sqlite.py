"""The SQLite backend: WAL, schema upgrades in place, nothing committed lost to kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.store import AuditRecord, SqliteStore
from gateway.store.base import attempted_case, claimed_case, new_case, noted_case
from gateway.store.sqlite import MIGRATIONS, SCHEMA_VERSION, Checkpointer, case_doc, case_of_text


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
from gateway.store.base import attempted_case, claimed_case, new_case, noted_case

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


async def test_cases_of_a_version_4_file_are_read_and_driven_after_the_upgrade(tmp_path):
    path = tmp_path / "afgw.db"
    # A file as release 4 left it: each case a JSON object with named fields, times to the last digit.
    old = sqlite3.connect(path)
    for step in MIGRATIONS[:4]:
        assert isinstance(step, str)
        old.executescript(step)
    case = new_case("1", "8613900000001", "medium", "loan", 1796515200.123456, 1796515260.654321, ("8613700000002",))
    case = claimed_case(case, "gw1", 1796515260.7, 1796515320.7)
    old.execute(
        "INSERT INTO cases (id, subscriber, state, due_at, lease_holder, lease_until, doc)"
        " VALUES (1, ?, 'open', ?, ?, ?, ?)",
        (case.subscriber, case.due_at, case.lease_holder, case.lease_until, json.dumps(case.to_doc())),
    )
    old.execute("PRAGMA user_version = 4")
    old.commit()
    old.close()
    store = SqliteStore(path)
    assert store.upgraded_from == 4
    assert await store.get_case("1") == case
    (doc,) = store.db.execute("SELECT doc FROM cases WHERE id = 1").fetchone()
    assert doc.startswith('["1","8613900000001","open","medium",["loan"]')
    done = await store.record_attempt("1", "gw1", 1796515261.0, 1796515561.0, "flash=a1 call=placed")
    assert (done.attempts, done.due_at, done.transitions[-1].detail) == (1, 1796515561.0, "1 flash=a1 call=placed")
    assert [c.id for c in await store.due_cases(1796515561.0)] == ["1"]
    await store.close()
    again = SqliteStore(path)
    assert await again.get_case("1") == done
    await again.close()


async def test_checkpoints_run_on_a_thread_of_their_own_not_on_a_commit(tmp_path):
    path = tmp_path / "afgw.db"
    store = SqliteStore(path, checkpoint_every=0.01)
    # A commit on the event loop never copies the WAL into the file (SQLite would, every 1,000 pages).
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    for i in range(50):
        await store.open_or_update_case(f"86139{i:08d}", "low", "loan", now=float(i), due_at=float(i))
    seen = store.checkpoints
    for _ in range(500):  # the thread's next round, whenever the machine gets to it
        if store.checkpoints > seen + 1:
            break
        await asyncio.sleep(0.01)
    # What the thread copied is in the database file itself: a copy of that file alone, without the
    # WAL, has every case.
    copy = tmp_path / "copy.db"
    copy.write_bytes(path.read_bytes())
    assert sqlite3.connect(copy).execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 50
    await store.close()
    assert not [t for t in threading.enumerate() if t.name == f"checkpoint {path}"]


async def test_without_the_thread_sqlite_checkpoints_as_it_always_did(tmp_path):
    path = tmp_path / "afgw.db"
    store = SqliteStore(path, checkpoint_every=0)
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    assert not [t for t in threading.enumerate() if t.name == f"checkpoint {path}"]
    await store.close()


@settings(max_examples=60, deadline=None)
@given(details=st.lists(st.text(), min_size=1, max_size=8))
def test_a_doc_written_step_by_step_is_the_doc_written_whole(details):
    # Each write adds its steps to the timeline's text as read; the doc must be the one written whole,
    # whatever the details hold (quotes, brackets, commas, Chinese).
    case = new_case("7", "8613900000001", "high", "冒充公检法", 1796515200.1, 1796515200.1, ("8613700000002",))
    written = case_doc(case)
    for i, detail in enumerate(details):
        now = 1796515200.1 + i / 7
        case = claimed_case(case, "gw1", now, now + 60.0)
        written = case_doc(case, written)
        case = noted_case(case, "flashed", now, detail, "gw1", False)
        written = case_doc(case, written)
        case = attempted_case(case, "gw1", now, now + 300.0, detail)
        written = case_doc(case, written)
        assert written.text == case_doc(case).text
        assert case_of_text(written.text) == case


def test_a_checkpoint_round_that_fails_does_not_end_the_checkpoints(tmp_path):
    # SQLite's own checkpoints are off while the thread runs: were it to stop at the first error, the
    # WAL would grow for ever. Here the file is missing at first (each round fails), then appears.
    path = tmp_path / "later.db"
    checkpointer = Checkpointer(path, 0.01)
    try:
        for _ in range(500):
            if checkpointer.failed >= 2:
                break
            time.sleep(0.01)
        assert checkpointer.failed >= 2
        assert not path.exists(), "a failing round does not create the file it checkpoints"
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        db.commit()
        for _ in range(500):
            if checkpointer.done >= 2:
                break
            time.sleep(0.01)
        assert checkpointer.done >= 2
        db.close()
    finally:
        checkpointer.stop()
