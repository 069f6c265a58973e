"""The stand-in's simulated cluster, a real server and a real cluster agent (imported from the
stand-in's admin kubeconfig), for the picture's end-to-end tests and benchmark; helpers to drive
the simulation and to follow the server's live feed."""

from __future__ import annotations

import contextlib
import http.client
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubesim.sim.admin import AdminClient
from tests.kube import KubeSimProc
from tests.procs import AgentProc, ServerProc, free_port, wait_until
from tests.rest import Rest

ADMIN_PASSWORD = "admin-password-for-tests-1"
CONNECT_WITHIN_S = 20.0
FEED_READ_TIMEOUT_S = 30.0


@dataclass
class PictureStack:
    work: Path
    nodes: int = 2
    agent_env: dict[str, str] = field(default_factory=dict)
    sim: KubeSimProc | None = None
    server: ServerProc | None = None
    agent: AgentProc | None = None
    admin: Rest | None = None
    cluster_id: str = ""
    _reg: dict[str, Any] = field(default_factory=dict)
    _kube: AdminClient | None = None

    def start(self) -> PictureStack:
        self.sim = KubeSimProc(self.work / "sim", ["--nodes", str(self.nodes)]).start()
        self._kube = AdminClient(str(self.sim.kubeconfig))
        self.server = ServerProc(self.work / "data", self.work / "server.log", port=free_port(),
                                 env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD}).start()
        self.admin = Rest(self.server.url, self.server.ca_path)
        self.admin.token = self.admin.login("admin", ADMIN_PASSWORD)
        self._reg = self.admin.call("POST", "/v3/clusters", {"name": "pictured"})
        self.cluster_id = self._reg["id"]
        self.start_agent()
        return self

    def start_agent(self) -> None:
        assert self.server is not None and self.sim is not None
        env = {"CATTLE_SERVER": self.server.url, "CATTLE_TOKEN": self._reg["registrationToken"],
               "CATTLE_CA_CHECKSUM": self.server.ca_checksum, "CATTLE_HEALTH_INTERVAL_S": "1",
               "CATTLE_CREDENTIAL_FILE": str(self.work / "agent.credential"), **self.agent_env}
        self.agent = AgentProc(env, self.work / "agent.log", module="cluster_agent",
                               args=["import", "--kubeconfig", str(self.sim.kubeconfig)]).start()
        wait_until(lambda: self.cluster()["state"] == "active", CONNECT_WITHIN_S,
                   what="cluster active")

    def kill_agent(self) -> None:
        assert self.agent is not None and self.agent.proc is not None
        self.agent.proc.kill()
        self.agent.proc.wait(10)
        self.agent.stop()

    def stop(self) -> None:
        if self.agent is not None:
            self.agent.stop()
        if self.server is not None:
            self.server.stop()
        if self.sim is not None:
            self.sim.stop()

    # -- the server's picture ----------------------------------------------------------------
    def api(self, path: str) -> Any:
        assert self.admin is not None
        return self.admin.call("GET", path)

    def cluster(self) -> dict[str, Any]:
        return dict(self.api(f"/v3/clusters/{self.cluster_id}"))

    def nodes_ready(self) -> dict[str, bool]:
        got = self.api(f"/v3/clusters/{self.cluster_id}/nodes")["data"]
        return {n["name"]: n["ready"] for n in got}

    def server_events(self, **filters: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cont = ""
        while True:
            q = "&".join(f"{k}={v}" for k, v in {**filters, "limit": "1000"}.items())
            page = self.api(f"/v3/clusters/{self.cluster_id}/events?{q}"
                            + (f"&continue={cont}" if cont else ""))
            out += page["data"]
            cont = page["pagination"].get("continue", "")
            if not cont:
                return out

    # -- the stand-in ------------------------------------------------------------------------
    def sim_admin(self, *args: str) -> None:
        assert self.sim is not None
        subprocess.run([sys.executable, "-m", "kubesim.sim.admin", "--kubeconfig",
                        str(self.sim.kubeconfig), *args], check=True, capture_output=True,
                       timeout=30)

    def kube(self, method: str, path: str, body: Any = None) -> Any:
        assert self._kube is not None
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            self._kube.headers["Content-Type"] = "application/json"
        code, out = self._kube.call(method, path, data)
        if code >= 300:
            raise AssertionError(f"{method} {path}: {code} {out[:300]!r}")
        return json.loads(out) if out else None

    def sim_events(self) -> dict[str, int]:
        """Every event of the stand-in: namespace/name -> count."""
        items = self.kube("GET", "/api/v1/events")["items"]
        return {f"{e['metadata']['namespace']}/{e['metadata']['name']}": int(e.get("count") or 1)
                for e in items}


class Feed:
    """Follows an SSE feed of the server in a thread; items arrive on ``items``."""

    def __init__(self, rest: Rest, path: str) -> None:
        host, port = rest.url.split("://", 1)[1].rsplit(":", 1)
        self._conn = http.client.HTTPSConnection(host, int(port), context=rest.ctx,
                                                 timeout=FEED_READ_TIMEOUT_S)
        self._conn.request("GET", path, headers={"Authorization": f"Bearer {rest.token}",
                                                 "Accept": "text/event-stream"})
        self._resp = self._conn.getresponse()
        assert self._resp.status == 200, self._resp.read()
        self.items: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event, data = "", ""
        # close() from the test's thread races with this read: http.client then fails with
        # ValueError or AttributeError (its file object gone) rather than a clean end
        with contextlib.suppress(OSError, ValueError, AttributeError, http.client.HTTPException):
            for raw in self._resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif not line and event:
                    self.items.put((event, json.loads(data)))
                    event, data = "", ""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._conn.sock.shutdown(2)  # type: ignore[union-attr]
        self._conn.close()


@contextlib.contextmanager
def feed(rest: Rest, path: str) -> Iterator[Feed]:
    f = Feed(rest, path)
    try:
        yield f
    finally:
        f.close()
