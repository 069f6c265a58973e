"""Slow-header benchmark (issue 11, item 5): a legitimate login's latency while 1,000 connections
send their request heads one byte at a time (each reconnects when the server's head deadline
closes it, so 1,000 are held throughout), against the same login with no slow connections,
measured in the same run.

    python3 bench/slowloris_bench.py [--quick]

The last line of output is one JSON object: ``slowloris_login_ms`` (median, target <= 500),
``baseline_login_ms``, and how many slow connections were open when the logins were measured."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import resource
import ssl
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rancher_tunnel.httpguard import HEADER_DEADLINE_S
from tests.procs import ServerProc

LOGIN_PATH = "/v3-public/localProviders/local?action=login"
SLOW_CONNECTIONS = 1000
DRIP_INTERVAL_S = 1.0
OPEN_CONCURRENCY = 50
TARGET_MS = 500


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def login_ms(port: int, ca: Path, password: str) -> float:
    ctx = ssl.create_default_context(cafile=str(ca))
    body = json.dumps({"username": "admin", "password": password})
    started = time.perf_counter()
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
    try:
        conn.request("POST", LOGIN_PATH, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 201, resp.status
    finally:
        conn.close()
    return (time.perf_counter() - started) * 1000


def measure(port: int, ca: Path, password: str, samples: int) -> list[float]:
    return [login_ms(port, ca, password) for _ in range(samples)]


class Slowloris:
    """``count`` connections dripping a request head; reconnecting when closed."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.open = 0
        self.reconnects = 0
        self.stop = asyncio.Event()
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one(self) -> None:
        head = b"GET /v3/clusters HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 4000
        while not self.stop.is_set():
            try:
                async with self.gate:
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", self.port, ssl=self.ctx)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            self.open += 1
            try:
                for byte in head:
                    if self.stop.is_set():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    try:
                        if await asyncio.wait_for(reader.read(1), DRIP_INTERVAL_S) == b"":
                            break  # closed by the server
                    except TimeoutError:
                        continue
            except (OSError, ssl.SSLError):
                pass
            finally:
                self.open -= 1
                self.reconnects += 1
                writer.close()

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.one()) for _ in range(self.count)]
        await self.stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    samples = 5 if args.quick else 20
    with tempfile.TemporaryDirectory() as d:
        server = ServerProc(Path(d) / "data", Path(d) / "server.log").start()
        try:
            password = str(server.info["bootstrap_password"])
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, login_ms, server.port, server.ca_path, password)
            baseline = await loop.run_in_executor(
                None, measure, server.port, server.ca_path, password, samples)
            log(f"baseline login p50 {statistics.median(baseline):.1f} ms")
            slow = Slowloris(server.port, SLOW_CONNECTIONS)
            runner = asyncio.create_task(slow.run())
            deadline = time.monotonic() + 30
            while slow.open < SLOW_CONNECTIONS * 0.95 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            log(f"{slow.open} slow connections open")
            held_at_start = slow.open
            attacked = await loop.run_in_executor(
                None, measure, server.port, server.ca_path, password, samples)
            held_at_end = slow.open
            log(f"under attack login p50 {statistics.median(attacked):.1f} ms")
            slow.stop.set()
            await runner
        finally:
            server.stop()
    ms = statistics.median(attacked)
    return {
        "slowloris_login_ms": round(ms, 1),
        "slowloris_login_max_ms": round(max(attacked), 1),
        "baseline_login_ms": round(statistics.median(baseline), 1),
        "slow_connections_held": min(held_at_start, held_at_end),
        "slow_connections_target": SLOW_CONNECTIONS,
        "header_deadline_s": HEADER_DEADLINE_S,
        "samples": samples,
        "target_ms": TARGET_MS,
        "ok": ms <= TARGET_MS,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer samples (under a minute)")
    args = p.parse_args()
    result = asyncio.run(main_async(args))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    main()
