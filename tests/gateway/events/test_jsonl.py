"""The local event log: whole JSON lines with a schema version, rotated by size, never raising."""

from __future__ import annotations

import json

import pytest

from gateway.events import SCHEMA_VERSION, FanOut, JsonlEvents, MemoryEvents


@pytest.mark.parametrize("fsync_every", [0, 1, 3])
def test_each_event_is_one_json_line(tmp_path, fsync_every):
    sink = JsonlEvents(tmp_path / "log" / "events.jsonl", fsync_every=fsync_every, clock=lambda: 12.5)
    sink.emit("sms.blocked", src="10086", text="您的账户\n异常", code=0x45)
    sink.emit("call.label_rejected", call_id="a@b", status=438)
    sink.close()
    lines = (tmp_path / "log" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "schema": SCHEMA_VERSION,
            "event": "sms.blocked",
            "at": 12.5,
            "fields": {"src": "10086", "text": "您的账户\n异常", "code": 69},
        },
        {
            "schema": SCHEMA_VERSION,
            "event": "call.label_rejected",
            "at": 12.5,
            "fields": {"call_id": "a@b", "status": 438},
        },
    ]


def test_appends_across_restarts_and_rotates(tmp_path):
    path = tmp_path / "events.jsonl"
    JsonlEvents(path).emit("a")
    sink = JsonlEvents(path, max_bytes=200, keep=2)
    for i in range(12):
        sink.emit("case.attempt", n=i)
    sink.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    ns = []
    for name in ("events.jsonl.2", "events.jsonl.1", "events.jsonl"):
        ns += [json.loads(line)["fields"].get("n") for line in (tmp_path / name).read_text().splitlines()]
    # the oldest went with the rotation; what is kept is the most recent, in order
    assert ns == list(range(12))[-len(ns) :]
    assert len(ns) >= 4
    assert all(p.stat().st_size < 400 for p in tmp_path.iterdir())


def test_a_failing_sink_does_not_stop_the_others(tmp_path):
    class Broken:
        def emit(self, name, /, **fields):
            raise OSError("disk full")

    memory = MemoryEvents()
    FanOut(Broken(), memory).emit("sms.blocked", src="1")
    assert [e.name for e in memory.events] == ["sms.blocked"]
