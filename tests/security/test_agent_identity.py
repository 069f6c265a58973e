"""A hostile agent holding a stolen registration token (issue 11, item 3): once the cluster's agent
has registered, the token can neither replace its session nor change the reported API address or
CA; only the agent's own credential can. Rotating the token closes what the old token opened and
keeps the real agent connected; deleting the cluster refuses the credential too."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.kube import KubeSimProc, kubectl
from tests.procs import AgentProc, ServerProc, agent_env, free_port, metrics, running, wait_until
from tests.rest import ApiError, Rest

CONNECT_WITHIN_S = 15.0
REVOKE_WITHIN_S = 5.0
CREDENTIAL_HEADER = "X-API-Tunnel-Agent-Credential"
CUT_WITHIN_S = 10.0
MEMBER_PASSWORD = "member-password-for-identity-1"
# The agent reconnects after its first backoff step (a few seconds), then is refused.
REFUSED_WITHIN_S = 30.0


def sessions(server: ServerProc, role: str = "cluster") -> float:
    return metrics(server.url + "/metrics", server.ca_path).get(
        f'rancher_tunnel_sessions{{role="{role}"}}', 0.0
    )


def server_metrics(server: ServerProc) -> dict[str, float]:
    return metrics(server.url + "/metrics", server.ca_path)


def agent_health(port: int) -> str:
    """The agent's /healthz body (it answers 503 while not connected)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return str(resp.read().decode())
    except urllib.error.HTTPError as e:
        with e:
            return str(e.read().decode())
    except OSError:
        return ""


def cluster_record(server: ServerProc, cluster_id: str) -> dict[str, Any]:
    return next(c for c in server.cli("cluster", "list") if c["id"] == cluster_id)


def params(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def hostile_cluster_params(address: str = "6.6.6.6:443") -> str:
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nevil\n").decode()
    return params({"role": "cluster", "cluster": {"address": address, "caCert": ca}})


async def try_connect(
    server: ServerProc, path: str, headers: dict[str, str]
) -> tuple[int, aiohttp.ClientWebSocketResponse | None, aiohttp.ClientSession]:
    """(status, websocket or None, http session to close)."""
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    http = aiohttp.ClientSession()
    try:
        ws = await http.ws_connect(server.url + path, headers=headers, ssl=ctx, autoping=True)
    except aiohttp.WSServerHandshakeError as e:
        return e.status, None, http
    return 101, ws, http


async def closed_within(ws: aiohttp.ClientWebSocketResponse, timeout_s: float) -> bool:
    """Reads (and drops) the server's tunnel frames until the websocket closes."""
    async with asyncio.timeout(timeout_s):
        while True:
            msg = await ws.receive()
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):
                return True


def start_agent(server: ServerProc, reg: dict[str, Any], log: Path, **env: str) -> AgentProc:
    return AgentProc(
        agent_env(server, reg, CATTLE_K8S_API=f"127.0.0.1:{free_port()}", **env), log
    ).start()


async def test_stolen_registration_token_cannot_replace_the_agent(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.port = free_port()
    reg = server.create_cluster("c1")
    cred_file = tmp_path / "agent" / "credential"
    server.start()
    agent = start_agent(server, reg, tmp_path / "agent.log", CATTLE_CREDENTIAL_FILE=str(cred_file))
    with running(server, agent):
        wait_until(lambda: sessions(server) == 1, CONNECT_WITHIN_S, what="agent session")
        before = cluster_record(server, reg["id"])
        assert before["api_endpoint"].startswith("127.0.0.1:")
        # The credential the server issued is in a file of the agent's own, mode 0600.
        wait_until(cred_file.exists, CONNECT_WITHIN_S, what="credential file")
        assert stat.S_IMODE(cred_file.stat().st_mode) == 0o600
        credential = cred_file.read_text()
        assert len(credential) >= 40

        # The thief: register and connect with the registration token, claiming another address.
        token = reg["registrationToken"]
        for path in ("/v3/connect/register", "/v3/connect"):
            status, _, http = await try_connect(
                server, path,
                {"X-API-Tunnel-Token": token, "X-API-Tunnel-Params": hostile_cluster_params()},
            )
            await http.close()
            assert status == 401, path
        # A forged credential is refused too.
        status, _, http = await try_connect(
            server, "/v3/connect/register",
            {CREDENTIAL_HEADER: "x" * 43, "X-API-Tunnel-Params": hostile_cluster_params()},
        )
        await http.close()
        assert status == 401
        after = cluster_record(server, reg["id"])
        assert (after["api_endpoint"], after["ca_cert"]) == (before["api_endpoint"],
                                                              before["ca_cert"])
        assert sessions(server) == 1

        # The registration token still admits a node agent (no API address, no CA; the fallback
        # tunnel). Rotating the token closes that session at once and refuses the old token...
        status, node_ws, node_http = await try_connect(
            server, "/v3/connect",
            {"X-API-Tunnel-Token": token,
             "X-API-Tunnel-Params": params({"role": "node", "node": {"name": "thief"}})},
        )
        assert status == 101 and node_ws is not None
        try:
            server.cli("cluster", "rotate-token", reg["id"])
            assert await closed_within(node_ws, REVOKE_WITHIN_S)
        finally:
            await node_ws.close()
            await node_http.close()
        status, _, http = await try_connect(
            server, "/v3/connect",
            {"X-API-Tunnel-Token": token,
             "X-API-Tunnel-Params": params({"role": "node", "node": {"name": "thief"}})},
        )
        await http.close()
        assert status == 401
        # ... while the real agent, authenticated by its own credential, stays connected.
        assert sessions(server) == 1
        assert agent.proc is not None and agent.proc.poll() is None

    # A restarted agent comes back with its credential (its registration token is stale now).
    server.start()
    agent = start_agent(server, reg, tmp_path / "agent2.log", CATTLE_CREDENTIAL_FILE=str(cred_file))
    with running(server, agent):
        wait_until(lambda: sessions(server) == 1, CONNECT_WITHIN_S, what="agent back")
        # Deleting the cluster closes the session and refuses the credential.
        server.cli("cluster", "delete", reg["id"])
        wait_until(lambda: sessions(server) == 0, REVOKE_WITHIN_S, what="session closed")
        status, _, http = await try_connect(
            server, "/v3/connect/register",
            {CREDENTIAL_HEADER: credential, "X-API-Tunnel-Params": hostile_cluster_params()},
        )
        await http.close()
        assert status == 401


async def test_registration_is_first_come_and_reset_by_the_owner(tmp_path: Path) -> None:
    """Whoever registers first gets the credential (the token is a bearer secret until then, see
    docs/security.md); the owner resets it, and the agent that registers next gets a new one."""
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.port = free_port()
    reg = server.create_cluster("c1")
    server.start()
    with running(server):
        token = reg["registrationToken"]
        headers = {"X-API-Tunnel-Token": token, "X-API-Tunnel-Params": hostile_cluster_params()}
        status, ws, http = await try_connect(server, "/v3/connect/register", headers)
        assert status == 101 and ws is not None
        first = ws._response.headers.get(CREDENTIAL_HEADER, "")
        assert first
        status, _, http2 = await try_connect(server, "/v3/connect/register", headers)
        await http2.close()
        assert status == 401
        admin = Rest(server.url, server.ca_path)
        admin.token = admin.login("admin", server.info["bootstrap_password"])
        admin.call("POST", f"/v3/clusters/{reg['id']}?action=resetAgentCredential", {})
        assert await closed_within(ws, REVOKE_WITHIN_S)  # the old session is closed
        await ws.close()
        await http.close()
        status, ws, http = await try_connect(server, "/v3/connect/register", headers)
        assert status == 101 and ws is not None
        second = ws._response.headers.get(CREDENTIAL_HEADER, "")
        assert second and second != first
        await ws.close()
        await http.close()


def test_deleted_cluster_is_404_at_once_and_its_agent_is_refused(tmp_path: Path) -> None:
    """Deleting a cluster (issue 11, item 2): the proxy answers 404 for it at once, a watch open
    through it is cut, its agent's session is closed, and the agent, still running, is refused
    when it reconnects (and says so on its /healthz)."""
    sim = KubeSimProc(tmp_path / "sim", ["--nodes", "1"]).start()
    server = ServerProc(tmp_path / "data", tmp_path / "server.log", port=free_port())
    health = free_port()
    with running(sim, server.start()):
        admin = Rest(server.url, server.ca_path)
        admin.token = admin.login("admin", server.info["bootstrap_password"])
        reg = admin.call("POST", "/v3/clusters", {"name": "doomed"})
        cid = reg["id"]
        agent = AgentProc(
            agent_env(server, reg, CATTLE_HEALTH_LISTEN=f"127.0.0.1:{health}",
                      CATTLE_CREDENTIAL_FILE=str(tmp_path / "agent" / "credential")),
            tmp_path / "agent.log", args=["import", "--kubeconfig", str(sim.kubeconfig)],
        ).start()
        with running(agent):
            wait_until(lambda: admin.call("GET", f"/v3/clusters/{cid}")["state"] == "active",
                       CONNECT_WITHIN_S, what="cluster active")
            kc = tmp_path / "admin.kubeconfig"
            kc.write_text(admin.call(
                "POST", f"/v3/clusters/{cid}?action=generateKubeconfig")["config"])
            assert "default" in kubectl(kc, "get", "namespaces", "-o", "name").stdout
            # A member (not an admin): their binding goes with the cluster.
            member = admin.call("POST", "/v3/users", {"username": "member",
                                                      "password": MEMBER_PASSWORD})
            admin.call("POST", "/v3/clusterroletemplatebindings", {
                "clusterId": cid, "userId": member["id"], "roleTemplateId": "cluster-member"})
            member_rest = Rest(server.url, server.ca_path)
            member_rest.token = member_rest.login("member", MEMBER_PASSWORD)
            member_kc = tmp_path / "member.kubeconfig"
            member_kc.write_text(member_rest.call(
                "POST", f"/v3/clusters/{cid}?action=generateKubeconfig")["config"])
            watch = subprocess.Popen(
                ["kubectl", "--kubeconfig", str(kc), "get", "namespaces", "-w"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                wait_until(lambda: server_metrics(server)["rancher_proxy_open_requests"] == 1
                           or watch.poll() is not None, CONNECT_WITHIN_S, what="watch open")
                assert watch.poll() is None, watch.communicate()
                accepted = server_metrics(server)["rancher_tunnel_sessions_accepted_total"]
                assert sessions(server) == 1

                admin.call("DELETE", f"/v3/clusters/{cid}")
                # At once: the very next request through the deleted cluster's context.
                gone = kubectl(kc, "get", "namespaces", "-o", "name", check=False)
                assert gone.returncode != 0
                assert "(NotFound)" in gone.stderr, gone.stderr
                assert f'clusters "{cid}" not found' in gone.stderr, gone.stderr
                with pytest.raises(ApiError) as e:
                    admin.call("GET", f"/k8s/clusters/{cid}/api/v1/namespaces")
                assert e.value.status == 404
                assert e.value.body["kind"] == "Status" and e.value.body["reason"] == "NotFound"
                # The member is not told whether the id exists (no oracle for cluster ids):
                # refused as for any cluster they may not use.
                r = kubectl(member_kc, "get", "namespaces", "-o", "name", check=False)
                assert r.returncode != 0 and f'may not access cluster "{cid}"' in r.stderr, \
                    r.stderr
                # The watch opened through it is cut; the session is gone from the server.
                watch.communicate(timeout=CUT_WITHIN_S)
            finally:
                if watch.poll() is None:
                    watch.kill()
                    watch.communicate()
            assert sessions(server) == 0
            assert cid not in {c["id"] for c in admin.call("GET", "/v3/clusters")["data"]}
            with pytest.raises(ApiError) as e:
                admin.call("GET", f"/v3/clusters/{cid}")
            assert e.value.status == 404
            # The agent, still running, reconnects and is refused.
            wait_until(lambda: "credentials_refused" in agent_health(health),
                       REFUSED_WITHIN_S, what="the agent told it was refused")
            assert agent.proc is not None and agent.proc.poll() is None
            assert sessions(server) == 0
            assert server_metrics(server)["rancher_tunnel_sessions_accepted_total"] == accepted
            refused = [json.loads(x) for x in (tmp_path / "server.log").read_text().splitlines()
                       if '"agent refused"' in x]
            assert refused, "no refused reconnect in the server's log"
            assert kubectl(kc, "get", "namespaces", check=False).returncode != 0
