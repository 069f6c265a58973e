"""Store benchmark: the hot-path read (token_with_user) and a write (create_binding) on etcd
against SQLite in the same run, plus how long a write on one etcd replica takes to be seen by
another. Starts its own etcd member (Debian's etcd-server) on free loopback ports.

    python3 bench/store_bench.py [--quick]      # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from rancher_server.store import SQLiteStore, Store, StoreError
from rancher_server.store.etcd import EtcdStore
from rancher_server.store.etcd_conn import EtcdConnection

READ_SECONDS = 1.0
WRITES = 500
WRITES_QUICK = 150
PROPAGATION_SAMPLES = 50


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_etcd(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    client, peer = _free_port(), _free_port()
    c, p = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    proc = subprocess.Popen(
        [shutil.which("etcd") or "/usr/bin/etcd", "--name", "b", "--data-dir", str(data),
         "--listen-client-urls", c, "--advertise-client-urls", c, "--listen-peer-urls", p,
         "--initial-advertise-peer-urls", p, "--initial-cluster", f"b={p}",
         "--logger", "zap", "--log-level", "error"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"127.0.0.1:{client}"
    for _ in range(200):
        conn = EtcdConnection([endpoint])
        try:
            conn.range_prefix(b"/ready/")
            return proc, endpoint
        except StoreError:
            time.sleep(0.1)
        finally:
            conn.close()
    proc.kill()
    raise SystemExit("etcd did not start")


def _reads_per_s(store: Store) -> float:
    u = store.create_user("bench", "", "hash", groups=["devs"])
    t = store.create_token(u.id, "sh", kind="api", description="", expires_at=None)
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < READ_SECONDS:
        for _ in range(1000):
            store.token_with_user(t.id)
        n += 1000
    return n / (time.perf_counter() - started)


def _writes_per_s(store: Store, writes: int) -> float:
    c = store.create_cluster("bench", "bench-hash")
    started = time.perf_counter()
    for i in range(writes):
        store.create_binding(c.id, "group", f"g{i}", "cluster-member")
    return writes / (time.perf_counter() - started)


def _propagation_ms(a: EtcdStore, b: EtcdStore) -> float:
    c = a.create_cluster("prop", "prop-hash")
    samples = []
    for i in range(PROPAGATION_SAMPLES):
        started = time.perf_counter()
        binding = a.create_binding(c.id, "group", f"p{i}", "read-only")
        while True:
            try:
                b.get_binding(binding.id)
                break
            except StoreError:
                time.sleep(0.0002)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return samples[len(samples) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    writes = WRITES_QUICK if args.quick else WRITES
    with tempfile.TemporaryDirectory() as tmp:
        proc, endpoint = _start_etcd(Path(tmp) / "etcd")
        try:
            sqlite = SQLiteStore(Path(tmp) / "rancher.db")
            etcd = EtcdStore(f"etcd://{endpoint}")
            replica = EtcdStore(f"etcd://{endpoint}")
            result = {
                "token_with_user_reads_per_s_sqlite": round(_reads_per_s(sqlite)),
                "token_with_user_reads_per_s_etcd": round(_reads_per_s(etcd)),
                "create_binding_writes_per_s_sqlite": round(_writes_per_s(sqlite, writes), 1),
                "create_binding_writes_per_s_etcd": round(_writes_per_s(etcd, writes), 1),
                "write_seen_on_other_replica_p50_ms": round(_propagation_ms(etcd, replica), 2),
                "writes": writes,
            }
            for s in (sqlite, etcd, replica):
                s.close()
        finally:
            proc.terminate()
            proc.wait(10)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
