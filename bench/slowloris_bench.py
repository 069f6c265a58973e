"""Slow-header benchmark (issue 11, items 1 and 5): a legitimate login's latency, from 127.0.0.1,
while an attacker at 127.0.0.2 tries to hold 1,000 connections that send their request heads one
byte at a time (each reconnects when the server closes it: at the head deadline, or at once when
its address already holds ``RANCHER_MAX_PENDING_PER_SOURCE`` such connections, then after
``DRIP_INTERVAL_S``), against the same login with no slow connections, measured in the same run.

    python3 bench/slowloris_bench.py [--quick]

The last line of output is one JSON object: ``slowloris_login_ms`` (median, target <= 500),
``baseline_login_ms``, how many slow connections the server held when the logins were measured
(``slow_connections_held``: open for over ``HELD_AFTER_S``), how many of the 1,000 it refused
at once (``slow_connections_refused``: their last attempt was closed within ``HELD_AFTER_S``),
and its count of refusals during the attack (``slow_connection_refusals``, from
``rancher_http_connections_closed_total{reason="pending_per_source"}``; a refused connection
retries every ``DRIP_INTERVAL_S``).

Attacker and login come from different loopback addresses because the server bounds the
connections one source holds without a request head (``RANCHER_MAX_PENDING_PER_SOURCE``,
default 512); set it above 1,000 in the environment to measure 1,000 held from one address."""

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

from rancher_tunnel.httpguard import HEADER_DEADLINE_S, max_pending_per_source_from_env
from tests.procs import ServerProc

LOGIN_PATH = "/v3-public/localProviders/local?action=login"
SLOW_CONNECTIONS = 1000
DRIP_INTERVAL_S = 1.0
OPEN_CONCURRENCY = 50
TARGET_MS = 500
LOGIN_SOURCE = "127.0.0.1"
SLOW_SOURCE = "127.0.0.2"  # Linux routes all of 127/8 to lo: a second source address
HELD_AFTER_S = 1.0  # a connection still open this long after its handshake is held, not refused
REFUSED_METRIC = 'rancher_http_connections_closed_total{reason="pending_per_source"}'


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def login_ms(port: int, ca: Path, password: str) -> float:
    ctx = ssl.create_default_context(cafile=str(ca))
    body = json.dumps({"username": "admin", "password": password})
    started = time.perf_counter()
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30,
                                       source_address=(LOGIN_SOURCE, 0))
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


def refused_so_far(port: int, ca: Path) -> int:
    """The server's count of connections closed for their source's pending-head bound."""
    ctx = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30,
                                       source_address=(LOGIN_SOURCE, 0))
    try:
        conn.request("GET", "/metrics")  # anonymous: tests.procs.ServerProc allows it
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    for line in text.splitlines():
        if line.startswith(REFUSED_METRIC + " "):
            return int(float(line.split()[1]))
    return 0


class Slowloris:
    """``count`` connections dripping a request head; reconnecting when closed."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.open = 0
        self.opened_at: dict[int, float] = {}  # task -> when its current connection opened
        self.refused: set[int] = set()  # tasks whose last connection was refused at once
        self.reconnects = 0
        self.stop = asyncio.Event()
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE
        self.gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    def held(self) -> int:
        """Connections open for over ``HELD_AFTER_S``: held by the server, not refused."""
        now = time.monotonic()
        return sum(1 for t in list(self.opened_at.values()) if now - t > HELD_AFTER_S)

    async def one(self, n: int) -> None:
        head = b"GET /v3/clusters HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 4000
        while not self.stop.is_set():
            try:
                async with self.gate:
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", self.port, ssl=self.ctx, local_addr=(SLOW_SOURCE, 0))
            except OSError:  # refused within the handshake (ssl.SSLError is an OSError)
                self.refused.add(n)
                await asyncio.sleep(DRIP_INTERVAL_S)
                continue
            self.open += 1
            opened = self.opened_at[n] = time.monotonic()
            self.refused.discard(n)
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
                self.opened_at.pop(n, None)
                self.reconnects += 1
                writer.close()
            if time.monotonic() - opened < HELD_AFTER_S:  # refused: retry, but not in a spin
                self.refused.add(n)
                await asyncio.sleep(DRIP_INTERVAL_S)
            else:
                self.refused.discard(n)

    async def run(self) -> None:
        tasks = [asyncio.create_task(self.one(n)) for n in range(self.count)]
        await self.stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    samples = 5 if args.quick else 20
    limit = max_pending_per_source_from_env()  # the server inherits our environment
    with tempfile.TemporaryDirectory() as d:
        server = ServerProc(Path(d) / "data", Path(d) / "server.log").start()
        try:
            password = str(server.info["bootstrap_password"])
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, login_ms, server.port, server.ca_path, password)
            baseline = await loop.run_in_executor(
                None, measure, server.port, server.ca_path, password, samples)
            log(f"baseline login p50 {statistics.median(baseline):.1f} ms")
            refused_before = await loop.run_in_executor(
                None, refused_so_far, server.port, server.ca_path)
            slow = Slowloris(server.port, SLOW_CONNECTIONS)
            runner = asyncio.create_task(slow.run())
            expect_held = min(SLOW_CONNECTIONS, limit)
            deadline = time.monotonic() + 30
            while slow.held() < expect_held * 0.95 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(HELD_AFTER_S)  # the last ones opened count as held
            held_at_start = slow.held()
            log(f"{held_at_start} slow connections held, {slow.open} open")
            attacked = await loop.run_in_executor(
                None, measure, server.port, server.ca_path, password, samples)
            held_at_end = slow.held()
            refused_at_end = len(slow.refused)
            log(f"under attack login p50 {statistics.median(attacked):.1f} ms")
            refusals = await loop.run_in_executor(
                None, refused_so_far, server.port, server.ca_path) - refused_before
            log(f"{refused_at_end} slow connections refused ({refusals} refusals, each retrying "
                f"every {DRIP_INTERVAL_S} s)")
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
        "slow_connections_refused": refused_at_end,
        "slow_connection_refusals": refusals,
        "slow_connections_target": SLOW_CONNECTIONS,
        "max_pending_per_source": limit,
        "slow_source": SLOW_SOURCE,
        "login_source": LOGIN_SOURCE,
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
