"""The server on three etcd members, under etcd's faults (real processes): one member killed with
kill -9 goes unnoticed by users (login, list, create: no error); every member down: a write
answers 503 with a clear JSON message, a read answers 200 from memory, and a replica whose
picture is older than ``RANCHER_ETCD_STALE_READ_MAX_S`` answers 503 rather than trust a token
that may have been revoked elsewhere; etcd back: writes work again, without a restart."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rancher_server.store.etcd_open import STALE_READ_ENV
from tests.procs import ServerProc, free_port, wait_until
from tests.rest import ApiError, Rest
from tests.store.conftest import EtcdCluster

ADMIN_PASSWORD = "admin-password-for-etcd-faults"
STALE_BOUND_S = 3.0
WRITE_FAILS_WITHIN_S = 2.0
RECOVERED_WITHIN_S = 15.0


def _server(tmp_path: Path, name: str, url: str, env: dict[str, str]) -> ServerProc:
    for attempt in range(3):
        proc = ServerProc(tmp_path / name, tmp_path / f"{name}.log", port=free_port(),
                          env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD, **env})
        proc.extra_args = ["--store", url, "--replica-name", name,
                           "--peer-listen", f"127.0.0.1:{free_port()}"]
        try:
            return proc.start()
        except RuntimeError:  # a free port taken meanwhile by another process
            proc.stop()
            if attempt == 2 or "address is in use" not in proc.log_path.read_text():
                raise
            print(f"server {name}: a port was taken; again on others")
    raise AssertionError("unreachable")


def _status(call: Any) -> tuple[int, Any]:
    try:
        return 200, call()
    except ApiError as e:
        return e.status, e.body


def test_server_rides_out_etcd_faults(tmp_path: Path) -> None:
    etcd = EtcdCluster(tmp_path / "etcd").start()
    servers: list[ServerProc] = []
    try:
        servers.append(_server(tmp_path, "a", etcd.url, {}))
        servers.append(_server(tmp_path, "b", etcd.url, {STALE_READ_ENV: str(STALE_BOUND_S)}))
        a, b = (Rest(s.url, s.ca_path) for s in servers)
        a.token = a.login("admin", ADMIN_PASSWORD)
        b.token = a.token
        a.call("POST", "/v3/clusters", {"name": "prod"})
        created = [a.call("POST", "/v3/users", {"username": "before",
                                                "password": "user-password-before-1"})["id"]]

        # One member killed (the first listed: both servers talk to it): nobody notices.
        etcd.members[0].stop(kill=True)
        killed = time.monotonic()
        for i in range(5):
            token = a.login("admin", ADMIN_PASSWORD)
            assert [c["name"] for c in a.call("GET", "/v3/clusters", token=token)["data"]] \
                == ["prod"]
            created.append(a.call("POST", "/v3/users", {
                "username": f"after-{i}", "password": "user-password-after-1"}, token=token)["id"])
            assert b.call("GET", "/v3/clusters")["data"]
        print(f"one member killed: 5 rounds of login, list, create in "
              f"{time.monotonic() - killed:.2f} s, no error")

        # Every member down.
        for m in etcd.members:
            m.stop(kill=True)
        down = time.monotonic()
        t0 = time.monotonic()
        status, body = _status(lambda: a.call("POST", "/v3/users", {
            "username": "while-down", "password": "user-password-down-1"}))
        write_s = time.monotonic() - t0
        assert status == 503 and body["code"] == "ServiceUnavailable", (status, body)
        assert "storage is unavailable" in body["message"], body
        assert write_s < WRITE_FAILS_WITHIN_S, write_s
        assert [c["name"] for c in a.call("GET", "/v3/clusters")["data"]] == ["prod"]
        assert b.call("GET", "/v3/clusters")["data"]  # within its bound too
        # Past its bound, b trusts no token: 503, not 401 (the token is not known to be bad).
        wait_until(lambda: time.monotonic() - down > STALE_BOUND_S + 1.5, STALE_BOUND_S + 3)
        status, body = _status(lambda: b.call("GET", "/v3/clusters"))
        assert status == 503 and body["code"] == "ServiceUnavailable", (status, body)
        assert a.call("GET", "/v3/clusters")["data"]  # a's bound is the default (300 s)

        # etcd back (same ports and data): both servers write and authenticate again by
        # themselves, and nothing acknowledged was lost.
        etcd.start()
        back = time.monotonic()

        def writes() -> bool:
            status, body = _status(lambda: a.call("POST", "/v3/users", {
                "username": "after-return", "password": "user-password-back-1"}))
            if status == 200:
                created.append(body["id"])
            return status == 200

        wait_until(writes, RECOVERED_WITHIN_S, 0.2, what="a write after etcd returned")
        write_back_s = time.monotonic() - back
        wait_until(lambda: _status(lambda: b.call("GET", "/v3/clusters"))[0] == 200,
                   RECOVERED_WITHIN_S, 0.2, what="b authenticating again")
        users = {u["id"] for u in b.call("GET", "/v3/users")["data"]}
        assert set(created) <= users
        print(f"all members down: a write answered 503 in {write_s * 1000:.0f} ms; after the "
              f"restart writes worked in {write_back_s:.2f} s, b authenticated in "
              f"{time.monotonic() - back:.2f} s")
    finally:
        for s in servers:
            s.stop()
        etcd.stop()
