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
from pathlib import Path
from typing import Any

import aiohttp

from tests.procs import AgentProc, ServerProc, agent_env, free_port, metrics, running, wait_until
from tests.rest import Rest

CONNECT_WITHIN_S = 15.0
REVOKE_WITHIN_S = 5.0
CREDENTIAL_HEADER = "X-API-Tunnel-Agent-Credential"


def sessions(server: ServerProc, role: str = "cluster") -> float:
    return metrics(server.url + "/metrics", server.ca_path).get(
        f'rancher_tunnel_sessions{{role="{role}"}}', 0.0
    )


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
