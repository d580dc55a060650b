"""The store backends under test: one conformance suite runs against each of them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.store import MemoryStore, SqliteStore
from gateway.store.redis_store import RedisStore
from tests.gateway.store.redis_server import start_redis


@pytest.fixture(scope="session")
def redis_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    proc, port = start_redis(tmp_path_factory.mktemp("redis"))
    yield port
    proc.kill()
    proc.wait()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(request.param)


@pytest.fixture
def make_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Opens another handle on the same store: what a second gateway instance (or a restart) sees."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    shared_memory: list[MemoryStore] = []

    def make(**kwargs: Any) -> Any:
        if backend == "memory":
            if not shared_memory:
                shared_memory.append(MemoryStore(**kwargs))
            return shared_memory[0]
        if backend == "sqlite":
            return SqliteStore(tmp_path / "afgw.db", **kwargs)
        port = request.getfixturevalue("redis_port")
        return RedisStore(f"redis://127.0.0.1:{port}/0", prefix=prefix, **kwargs)

    return make


@pytest.fixture
async def store(make_store: Callable[..., Any]) -> AsyncIterator[Any]:
    s = make_store()
    yield s
    await s.close()
