"""Nothing acknowledged is lost (issue 11, item 6): kill -9 during a burst of audited requests,
then every request that got its answer is in the audit log; and ``cluster-agent import`` leaves
no file holding the service-account token, however it ends."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from tests.procs import ServerProc
from tests.rest import ApiError, Rest

WRITERS = 8
BURST_S = 1.5


def test_kill9_during_a_burst_keeps_every_acknowledged_audit_entry(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.start()
    try:
        admin = Rest(server.url, server.ca_path)
        admin.token = admin.login("admin", server.info["bootstrap_password"])
        acknowledged: list[str] = []
        failed_logins: list[int] = []
        stop = threading.Event()

        def create_tokens() -> None:
            while not stop.is_set():
                try:
                    tok = admin.call("POST", "/v3/tokens", {"description": "burst"})
                except (ApiError, OSError):
                    return  # the server died under us: that answer was never acknowledged
                acknowledged.append(f"token:{tok['id']}")

        def bad_logins() -> None:
            anon = Rest(server.url, server.ca_path)
            while not stop.is_set():
                try:
                    anon.call("POST", "/v3-public/localProviders/local?action=login",
                              {"username": "admin", "password": "wrong"})
                except ApiError as e:
                    if e.status in (401, 429):
                        failed_logins.append(e.status)
                        continue
                    return
                except OSError:
                    return

        threads = [threading.Thread(target=create_tokens) for _ in range(WRITERS)]
        threads.append(threading.Thread(target=bad_logins))
        for t in threads:
            t.start()
        time.sleep(BURST_S)
        server.kill9()  # mid-burst
        stop.set()
        for t in threads:
            t.join(30)
    finally:
        server.stop()
    assert len(acknowledged) >= 10, "the burst was too small to mean anything"
    db = sqlite3.connect(tmp_path / "data" / "rancher.db")
    try:
        targets = {r[0] for r in db.execute("SELECT target FROM audit WHERE action='token.create'")}
        refusals = db.execute(
            "SELECT COUNT(*) FROM audit WHERE action='login' AND result!='success'"
        ).fetchone()[0]
    finally:
        db.close()
    missing = [a for a in acknowledged if a not in targets]
    assert not missing, f"{len(missing)} acknowledged requests missing from the audit log"
    assert refusals >= len(failed_logins)
