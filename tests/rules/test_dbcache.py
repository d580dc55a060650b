"""Compiled Hyperscan databases kept on disk: a second build with the same rules compiles nothing, gives
the same verdicts as the first, and a cache file that is corrupt, cut short or written for other
patterns is ignored and written again."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import hyperscan
import pytest

import rules
from rules import dbcache
from rules.dbcache import DatabaseCache
from rules.testing import run_tests
from tests.rules.helpers import rule_yaml
from tests.rules.test_reference import corpus_messages

PACKS = [rules.DEFAULT_PACKS]
SMALL = "rules:\n" + rule_yaml(
    "words:\n  text|nocase: [安全账户, safe account]\nlink:\n  text|raw: [HTTPS://SAFE]\ncondition: words or link",
    rule_id="safe-account",
    category="police_impersonation",
)


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many patterns each Hyperscan compilation took, in order, for the builds of the test."""
    calls: list[int] = []
    dbcache._target()  # the library's own probe is not one of ours

    class Counting(hyperscan.Database):  # type: ignore[misc]
        def compile(self, *args: Any, **kwargs: Any) -> Any:
            calls.append(len(kwargs.get("expressions", args[0] if args else [])))
            return super().compile(*args, **kwargs)

    monkeypatch.setattr(hyperscan, "Database", Counting)
    return calls


def verdicts(rs: rules.RuleSet) -> list[tuple[str, str, tuple[str, ...], str | None]]:
    engine = rules.Engine(rs, velocity=rules.MemoryVelocity())
    out = []
    for message in corpus_messages():
        v = engine.evaluate(message)
        out.append((v.action.value, v.risk.value, tuple(v.rules), v.category))
    return out


def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL, "utf-8")
    return path


def test_a_second_build_of_the_shipped_packs_compiles_nothing_and_decides_the_same(
    tmp_path: Path, compiles: list[int]
) -> None:
    cache = DatabaseCache(tmp_path / "cache")
    cold = rules.build(PACKS, cache=cache)
    cold_tests = [(r.rule, r.case.location, r.passed, r.verdict.rules) for r in run_tests(cold)]
    cold_verdicts = verdicts(cold)
    assert compiles, "the cold build compiled its databases"
    written = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(written) >= len(cold.all_databases())

    compiles.clear()
    warm = rules.build(PACKS, cache=cache)
    assert [(v, db.info()) for v, db in warm.all_databases()] == [(v, db.info()) for v, db in cold.all_databases()]
    assert verdicts(warm) == cold_verdicts
    assert [(r.rule, r.case.location, r.passed, r.verdict.rules) for r in run_tests(warm)] == cold_tests
    assert all(passed for _, _, passed, _ in cold_tests)
    assert compiles == [], "every database (the explain path's too) came from the cache"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == written


def test_other_patterns_are_a_miss(tmp_path: Path, compiles: list[int]) -> None:
    cache = DatabaseCache(tmp_path / "cache")
    first = small(tmp_path)
    rules.build([first], cache=cache)
    compiled = len(compiles)
    first.write_text(SMALL.replace("安全账户", "资金核查"), "utf-8")
    changed = rules.build([first], cache=cache)
    assert len(compiles) > compiled
    verdict = rules.Engine(changed).evaluate(rules.Message(channel="sms", src="1", dst="2", text="配合资金核查"))
    assert verdict.rules == ("safe-account",)
    assert rules.Engine(changed).evaluate(rules.Message(channel="sms", src="1", dst="2", text="安全账户")).rules == ()


def _truncate(data: bytes, _other: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip_a_byte(data: bytes, _other: bytes) -> bytes:
    return data[:-5] + bytes([data[-5] ^ 0xFF]) + data[-4:]


def _garbage(data: bytes, _other: bytes) -> bytes:
    return b"\x00" * len(data)


def _empty(_data: bytes, _other: bytes) -> bytes:
    return b""


def _another_databases_file(_data: bytes, other: bytes) -> bytes:
    return other


@pytest.mark.parametrize("spoil", [_truncate, _flip_a_byte, _garbage, _empty, _another_databases_file])
def test_a_spoilt_cache_file_is_ignored_and_written_again(tmp_path: Path, compiles: list[int], spoil: Any) -> None:
    cache = DatabaseCache(tmp_path / "cache")
    path = small(tmp_path)
    rules.build([path], cache=cache)
    files = sorted((tmp_path / "cache").glob("*.hsdb"), key=lambda p: p.stat().st_size)
    assert len(files) >= 2, "the small pack has a database for the normalised view and one for the raw"
    target, other = files[0], files[1]
    good = target.read_bytes()
    target.write_bytes(spoil(good, other.read_bytes()))

    compiles.clear()
    rebuilt = rules.build([path], cache=cache)
    assert len(compiles) == 1, "only the spoilt database is compiled again"
    assert target.read_bytes() == good
    engine = rules.Engine(rebuilt)
    for text, expected in (("请转入安全账户", ("safe-account",)), ("see HTTPS://SAFE.example/a", ("safe-account",))):
        assert engine.evaluate(rules.Message(channel="sms", src="1", dst="2", text=text)).rules == expected
    assert engine.evaluate(rules.Message(channel="sms", src="1", dst="2", text="明天见")).rules == ()


def test_a_cache_directory_that_cannot_be_written_only_means_compiling(tmp_path: Path, compiles: list[int]) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would be")
    path = small(tmp_path)
    for _ in range(2):
        rs = rules.build([path], cache=DatabaseCache(blocked / "cache"))
        text = "safe account"
        assert rules.Engine(rs).evaluate(rules.Message(channel="sms", src="1", dst="2", text=text)).rules == (
            "safe-account",
        )
    assert len(compiles) == 4


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    rules.build([small(tmp_path)], cache=DatabaseCache(tmp_path / "cache"))
    names = [p.name for p in (tmp_path / "cache").iterdir()]
    assert names
    assert [n for n in names if not n.endswith(".hsdb") or n.startswith(".")] == []


def test_the_least_recently_used_databases_go_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(dbcache, "MAX_FILES", 2)
    cache = DatabaseCache(tmp_path)
    keys = []
    for i, word in enumerate(("alpha", "beta", "gamma")):
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(expressions=[word.encode()], ids=[0], flags=[0])
        key = DatabaseCache.key([word.encode()], [0], [0], hyperscan.HS_MODE_BLOCK)
        keys.append(key)
        cache.store(key, db)
        os.utime(cache.path(key), (1000 + i, 1000 + i))
        if i == 1:
            assert cache.load(keys[0], hyperscan.HS_MODE_BLOCK) is not None  # alpha used again: now the newest
    assert cache.load(keys[0], hyperscan.HS_MODE_BLOCK) is not None
    assert cache.load(keys[2], hyperscan.HS_MODE_BLOCK) is not None
    assert not cache.path(keys[1]).exists()


def test_a_temporary_file_left_by_a_writer_that_died_goes_after_an_hour(tmp_path: Path) -> None:
    import os

    old, recent = tmp_path / ".tmp-old.hsdb", tmp_path / ".tmp-recent.hsdb"
    for path in (old, recent):
        path.write_bytes(b"half a database")
    os.utime(old, (1000, 1000))
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(expressions=[b"x"], ids=[0], flags=[0])
    DatabaseCache(tmp_path).store(DatabaseCache.key([b"x"], [0], [0], hyperscan.HS_MODE_BLOCK), db)
    assert not old.exists()
    assert recent.exists()


def test_where_the_cache_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AFGW_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dbcache.default_directory() == tmp_path / "xdg" / "afgw" / "hyperscan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dbcache.default_directory() == tmp_path / "home" / ".cache" / "afgw" / "hyperscan"
    monkeypatch.setenv("AFGW_CACHE_DIR", str(tmp_path / "mine"))
    assert dbcache.default_directory() == tmp_path / "mine" / "hyperscan"
    rules.build([small(tmp_path)])
    assert list((tmp_path / "mine" / "hyperscan").glob("*.hsdb"))
    monkeypatch.setenv("AFGW_CACHE_DIR", "")
    assert dbcache.default_cache() is None


def _plant_forgery(cache_dir: Path, target: Path, write_to: Path | None = None) -> None:
    """What another account that could write the directory would plant: a sound database of other
    patterns, stored under the real rules' key with a correct digest (the key and digest are public)."""
    other = hyperscan.Database()
    other.compile(expressions=[b"nothing-of-ours"], ids=[0], flags=[0])
    payload = hyperscan.dumpb(other)
    key = bytes.fromhex(target.name.removesuffix(target.suffix))
    (write_to or target).write_bytes(dbcache.FORMAT + key + dbcache.hashlib.sha256(payload).digest() + payload)


def _world_writable(cache_dir: Path, target: Path) -> None:
    _plant_forgery(cache_dir, target)
    cache_dir.chmod(0o777)


def _a_link(cache_dir: Path, target: Path) -> None:
    forged = cache_dir.parent / f"elsewhere-{target.name}"
    _plant_forgery(cache_dir, target, forged)
    target.unlink()
    target.symlink_to(forged)


def _a_fifo(cache_dir: Path, target: Path) -> None:
    target.unlink()
    os.mkfifo(target)  # read blindly, it would hold the start for ever


@pytest.mark.parametrize("plant", [_world_writable, _a_link, _a_fifo])
def test_a_database_someone_else_could_have_planted_is_never_read(
    tmp_path: Path, compiles: list[int], plant: Any
) -> None:
    cache_dir = tmp_path / "cache"
    cache = DatabaseCache(cache_dir)
    path = small(tmp_path)
    rules.build([path], cache=cache)
    for target in cache_dir.glob("*.hsdb"):
        plant(cache_dir, target)

    compiles.clear()
    rebuilt = rules.build([path], cache=cache)
    assert compiles, "the planted files were not taken: the rules were compiled"
    engine = rules.Engine(rebuilt)
    assert engine.evaluate(rules.Message(channel="sms", src="1", dst="2", text="请转入安全账户")).rules == (
        "safe-account",
    )


def test_the_cache_directory_is_made_private(tmp_path: Path) -> None:
    cache_dir = tmp_path / "new" / "cache"
    rules.build([small(tmp_path)], cache=DatabaseCache(cache_dir))
    assert cache_dir.stat().st_mode & 0o077 == 0
