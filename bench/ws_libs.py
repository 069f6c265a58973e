"""Choose the websocket library by measurement: aiohttp vs websockets moving 64 KiB binary
messages one way over loopback (compression off on both), receiver in its own process.

    python3 bench/ws_libs.py [--mib 1024] [--rounds 3]

Prints one JSON object as its last line: MB/s per library (median of the rounds) and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import time
from multiprocessing.connection import Connection

import aiohttp
import websockets
from aiohttp import web
from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.server import serve as ws_serve

MESSAGE_BYTES = 64 * 1024
MAX_MESSAGE_BYTES = 1024 * 1024
ACK = b"done"


# --- receivers (run in a child process; report the port through a pipe) --------------------------


async def _aiohttp_receiver(pipe: Connection, count: int) -> None:
    done = asyncio.Event()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, compress=False)
        await ws.prepare(request)
        got = 0
        async for _msg in ws:
            got += 1
            if got == count:
                await ws.send_bytes(ACK)
        done.set()
        return ws

    app = web.Application()
    app.router.add_get("/", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    pipe.send(runner.addresses[0][1])
    await done.wait()
    await runner.cleanup()


async def _websockets_receiver(pipe: Connection, count: int) -> None:
    done = asyncio.Event()

    async def handler(ws: websockets.asyncio.server.ServerConnection) -> None:
        got = 0
        async for _ in ws:
            got += 1
            if got == count:
                await ws.send(ACK)
        done.set()

    async with ws_serve(
        handler, "127.0.0.1", 0, compression=None, max_size=MAX_MESSAGE_BYTES
    ) as server:
        pipe.send(next(iter(server.sockets)).getsockname()[1])
        await done.wait()


def _receiver(lib: str, pipe: Connection, count: int) -> None:
    coro = _aiohttp_receiver if lib == "aiohttp" else _websockets_receiver
    asyncio.run(coro(pipe, count))


# --- senders ------------------------------------------------------------------------------------


async def _aiohttp_send(port: int, count: int) -> float:
    payload = b"\x5a" * MESSAGE_BYTES
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"http://127.0.0.1:{port}/", compress=0, max_msg_size=MAX_MESSAGE_BYTES
        ) as ws,
    ):
        t0 = time.perf_counter()
        for _ in range(count):
            await ws.send_bytes(payload)
        msg = await ws.receive()
        elapsed = time.perf_counter() - t0
        assert msg.data == ACK
    return elapsed


async def _websockets_send(port: int, count: int) -> float:
    payload = b"\x5a" * MESSAGE_BYTES
    async with ws_connect(
        f"ws://127.0.0.1:{port}/", compression=None, max_size=MAX_MESSAGE_BYTES
    ) as ws:
        t0 = time.perf_counter()
        for _ in range(count):
            await ws.send(payload)
        ack = await ws.recv()
        elapsed = time.perf_counter() - t0
        assert ack == ACK
    return elapsed


def measure(lib: str, count: int) -> float:
    """MB/s of one run."""
    parent, child = mp.Pipe()
    proc = mp.get_context("fork").Process(target=_receiver, args=(lib, child, count), daemon=True)
    proc.start()
    try:
        port = parent.recv()
        send = _aiohttp_send if lib == "aiohttp" else _websockets_send
        elapsed = asyncio.run(send(port, count))
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    return count * MESSAGE_BYTES / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="MiB sent per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    args = parser.parse_args()
    count = args.mib * 1024 * 1024 // MESSAGE_BYTES
    runs: dict[str, list[float]] = {"aiohttp": [], "websockets": []}
    for _ in range(args.rounds):
        for lib, values in runs.items():
            values.append(measure(lib, count))
    result = {
        "message_bytes": MESSAGE_BYTES,
        "mib_per_run": args.mib,
        "aiohttp_version": aiohttp.__version__,
        "websockets_version": websockets.__version__,
        "aiohttp_mb_s": round(statistics.median(runs["aiohttp"]), 1),
        "websockets_mb_s": round(statistics.median(runs["websockets"]), 1),
        "runs_mb_s": {k: [round(v, 1) for v in vs] for k, vs in runs.items()},
    }
    result["aiohttp_over_websockets"] = round(
        result["aiohttp_mb_s"] / result["websockets_mb_s"],
        2,  # type: ignore[operator]
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
