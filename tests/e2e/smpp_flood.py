"""A hostile ESME in its own process: connections that never bind and stream enquire_link.

Run as ``python -m tests.e2e.smpp_flood PORT CONNECTIONS SECONDS [SYSTEM_ID PASSWORD]``; with an
account, each connection binds first (a compromised ESME). In a process of its own it can send
faster than the gateway reads, as a real attacker does; inside the test's event loop it could not.
Each connection reconnects as soon as it is closed, so the flood lasts the whole run.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import sys

ENQUIRE_LINK, BIND_TRANSCEIVER = 0x00000015, 0x00000009


def bind_pdu(system_id: str, password: str) -> bytes:
    body = system_id.encode() + b"\0" + password.encode() + b"\0\0" + bytes((0x34, 0, 0)) + b"\0"
    return struct.pack(">IIII", 16 + len(body), BIND_TRANSCEIVER, 0, 0x7FFFFFFF) + body


BURST = b"".join(struct.pack(">IIII", 16, ENQUIRE_LINK, 0, i + 1) for i in range(4096))


async def discard(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while await reader.read(1 << 16):
            pass


async def one(port: int, n: int, until: float, opened: list[int], bind: bytes) -> None:
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(f"127.0.3.{n}", 0))
        except OSError:
            await asyncio.sleep(0.01)
            continue
        opened[0] += 1
        reading = asyncio.create_task(discard(reader))
        try:
            writer.write(bind)
            while loop.time() < until and not reading.done():
                writer.write(BURST)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            reading.cancel()
            writer.close()


async def main(port: int, connections: int, seconds: float, account: list[str]) -> None:
    bind = bind_pdu(*account) if account else b""
    until = asyncio.get_running_loop().time() + seconds
    opened = [0]
    await asyncio.gather(*(one(port, n % 250 + 1, until, opened, bind) for n in range(connections)))
    print(opened[0], flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:6]))
