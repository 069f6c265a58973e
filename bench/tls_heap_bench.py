"""Heap per idle TLS connection on a uvloop server, as clients arrive in bursts or slowly, with and
without ``malloc_trim`` while they connect (what ``SessionRegistry`` does for agent sessions).

Why it exists: at 5,000 agent sessions the server's glibc heap held ~140 KiB a session resident
while its live non-buffer allocations were ~35 KiB. uvloop gives every TLS connection a 256 KiB
read buffer that is mostly never written; when many handshakes run at once, their freed buffers
are reused at once for those long-lived allocations, whose pages then stay resident.

    python3 -m bench.tls_heap_bench [--connections 2000]

One JSON line: heap KiB per connection (``/proc/self/smaps``, the ``[heap]`` mapping) for each
case: ``slow`` (50 at a time, 50 ms apart), ``burst`` (1,000 at a time), ``burst_trim`` (burst,
with a trim every 0.5 s while they connect)."""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import cast

import uvloop

from bench.common import machine
from rancher_tunnel.malloc import trim, tune_malloc
from tests.tlsutil import self_signed

SETTLE_S = 3.0
TRIM_EVERY_S = 0.5
CASES = {"slow": (50, False), "burst": (1000, False), "burst_trim": (1000, True)}
HOLD_S = 3600.0
CONNECT_TIMEOUT_S = 120.0


def heap_kib() -> int:
    """Resident KiB of this process's ``[heap]`` mapping."""
    name, total = "", 0
    with open("/proc/self/smaps") as f:
        for line in f:
            parts = line.split()
            if not parts[0].endswith(":"):
                name = parts[5] if len(parts) > 5 else ""
            elif parts[0] == "Rss:" and name == "[heap]":
                total += int(parts[1])
    return total


class _Echo(asyncio.Protocol):
    connections = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        _Echo.connections += 1

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def serve(n: int, burst: int, with_trim: bool) -> float:
    """Heap KiB per connection once ``n`` clients are connected and idle."""
    directory = Path(tempfile.mkdtemp(prefix="tls-heap-"))
    crt, key = self_signed(directory)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Echo, "127.0.0.1", 0, ssl=ctx, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    before = heap_kib()
    client = subprocess.Popen([sys.executable, "-m", "bench.tls_heap_bench", "--client",
                               str(port), str(n), str(crt), str(burst)])
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            while _Echo.connections < n:
                await asyncio.sleep(TRIM_EVERY_S)
                if with_trim:
                    trim()
        await asyncio.sleep(SETTLE_S)
        return (heap_kib() - before) / n
    finally:
        client.kill()
        client.wait()
        server.close()


async def clients(port: int, n: int, ca: str, burst: int) -> None:
    ctx = ssl.create_default_context(cafile=ca)

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        writer.write(b"x" * 200)
        await writer.drain()
        await reader.read(1000)
        await asyncio.sleep(HOLD_S)

    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one()))
        if i % burst == 0:
            await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)


def case(n: int, name: str) -> float:
    """One case in a fresh process (a heap that held an earlier case is not a fresh heap)."""
    out = subprocess.run([sys.executable, "-m", "bench.tls_heap_bench", "--case", name,
                          "--connections", str(n)], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--case", choices=sorted(CASES))
    p.add_argument("--client", nargs=4, metavar=("PORT", "N", "CA", "BURST"))
    args = p.parse_args()
    if args.client:
        port, n, ca, burst = args.client
        asyncio.run(clients(int(port), int(n), ca, int(burst)))
        return
    if args.case:
        tune_malloc()  # as the server runs
        burst, with_trim = CASES[args.case]
        print(round(uvloop.run(serve(args.connections, burst, with_trim)), 1))
        return
    result: dict[str, object] = {"bench": "tls_heap", "machine": machine(),
                                 "connections": args.connections}
    for name in CASES:
        result[f"heap_kib_per_conn_{name}"] = case(args.connections, name)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
