"""One stack for end-to-end tests of access control: the stand-in with RBAC and kube-api-auth as
its token webhook (as kube-apiserver would be configured), the server, and an agent imported from
the stand-in's kubeconfig."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from tests.kube import KubeSimProc
from tests.procs import AgentProc, ServerProc, free_port, wait_until
from tests.rest import Rest

ADMIN_PASSWORD = "admin-password-for-ace-1"
# How long the direct path may keep a user's old groups after kube-api-auth has the new ones:
# kube-apiserver caches a token's answer twice, in its token authenticator (10 s success TTL)
# and in the webhook authenticator under it (--authentication-token-webhook-cache-ttl; the
# stand-in's is 10 s). A request in the moment between the outer entry's expiry and the inner
# one's re-caches the old answer for another 10 s: CI saw 15 s exceeded so, under load.
DIRECT_PATH_CACHE_S = 20.0


def webhook_config(path: Path, port: int) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "kube-api-auth",
                        "cluster": {"server": f"http://127.0.0.1:{port}/v1/authenticate"},
                    }
                ],
                "users": [{"name": "kube-apiserver", "user": {}}],
                "contexts": [
                    {
                        "name": "webhook",
                        "context": {"cluster": "kube-api-auth", "user": "kube-apiserver"},
                    }
                ],
                "current-context": "webhook",
            }
        )
    )
    return path


@contextlib.contextmanager
def ace_stack(tmp_path: Path) -> Iterator[dict[str, object]]:
    """kubesim with kube-api-auth as its token webhook, the server, and an imported agent."""
    started: list[object] = []
    try:
        hook_port = free_port()
        sim = KubeSimProc(
            tmp_path / "sim",
            [
                "--authorization-mode",
                "RBAC",
                "--nodes",
                "1",
                "--authentication-token-webhook-config-file",
                str(webhook_config(tmp_path / "webhook.yaml", hook_port)),
            ],
        ).start()
        started.append(sim)
        server = ServerProc(
            tmp_path / "data",
            tmp_path / "server.log",
            port=free_port(),
            env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD},
        )
        server.start()
        started.append(server)
        admin = Rest(server.url, server.ca_path)
        admin.token = admin.login("admin", ADMIN_PASSWORD)
        reg = admin.call("POST", "/v3/clusters", {"name": "edge"})
        agent = AgentProc(
            {
                "CATTLE_SERVER": server.url,
                "CATTLE_TOKEN": reg["registrationToken"],
                "CATTLE_CA_CHECKSUM": server.ca_checksum,
            },
            tmp_path / "agent.log",
            args=["import", "--kubeconfig", str(sim.kubeconfig)],
        )
        agent.start()
        started.append(agent)
        log = open(tmp_path / "kube-api-auth.log", "w")  # noqa: SIM115
        auth = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kube_api_auth",
                "--listen-host",
                "127.0.0.1",
                "--listen-port",
                str(hook_port),
                "--kubeconfig",
                str(sim.kubeconfig),
                "--cluster-name",
                reg["id"],
            ],
            stdout=log,
            stderr=log,
            env={**os.environ, "LOG_FORMAT": "json"},
        )
        wait_until(
            lambda: admin.call("GET", f"/v3/clusters/{reg['id']}")["state"] == "active",
            20,
            what="agent connected",
        )
        yield {
            "tmp": tmp_path,
            "sim": sim,
            "server": server,
            "admin": admin,
            "cluster": reg["id"],
            "agent": agent,
            "auth": auth,
        }
        auth.send_signal(signal.SIGTERM)
        auth.wait(10)
        log.close()
    finally:
        for p in reversed(started):
            p.stop()  # type: ignore[attr-defined]
