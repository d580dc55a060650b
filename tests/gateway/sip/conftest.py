"""Fixtures of the proxy tests that talk to it from bare UDP peers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.sip_harness import TRUNK_HOST, UdpPeer
from tests.protocols.stir.conftest import Pki, make_pki


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
async def peers() -> AsyncIterator[tuple[UdpPeer, UdpPeer]]:
    """A trunk peer (from the configured trunk address) and a handset peer."""
    trunk = await UdpPeer.open(TRUNK_HOST)
    handset = await UdpPeer.open()
    yield trunk, handset
    trunk.close()
    handset.close()
