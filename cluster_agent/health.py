"""The agent's own health and metrics endpoint (``CATTLE_HEALTH_LISTEN=HOST:PORT``): ``/healthz``
answers 200 while the tunnel is up (a liveness/readiness probe for the Deployment), 503 otherwise
with the connection state in the body (e.g. ``credentials_refused: the server refused ...``), and
``/metrics`` exposes the tunnel's counters and ``cattle_agent_state{state}`` in Prometheus text
format."""

from __future__ import annotations

from aiohttp import web

from cluster_agent.connection import AgentConnection
from cluster_agent.connstate import ConnState

CONN: web.AppKey[AgentConnection] = web.AppKey("conn", AgentConnection)


async def healthz(request: web.Request) -> web.Response:
    conn = request.app[CONN]
    if conn.connected.is_set():
        return web.Response(text="ok")
    return web.Response(
        status=503, text=f"tunnel not connected: {conn.state.value}: {conn.state_detail}"
    )


async def metrics(request: web.Request) -> web.Response:
    conn = request.app[CONN]
    session = conn.session
    st = session.stats if session is not None else None
    lines = [
        "# TYPE cattle_agent_connected gauge",
        f"cattle_agent_connected {1 if conn.connected.is_set() else 0}",
        "# TYPE cattle_agent_sessions_started counter",
        f"cattle_agent_sessions_started_total {conn.sessions_started}",
        "# TYPE cattle_agent_tunnel_streams gauge",
        f"cattle_agent_tunnel_streams {st.open_streams if st else 0}",
        "# TYPE cattle_agent_tunnel_rtt_seconds gauge",
        f"cattle_agent_tunnel_rtt_seconds {session.rtt_s if session and session.rtt_s else 0}",
        "# TYPE cattle_agent_state gauge",
        *(f'cattle_agent_state{{state="{s.value}"}} {int(conn.state is s)}' for s in ConnState),
        "# TYPE cattle_agent_credentials_refused counter",
        f"cattle_agent_credentials_refused_total {conn.credentials_refused}",
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def start_health(conn: AgentConnection, listen: str) -> web.AppRunner:
    app = web.Application()
    app[CONN] = conn
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = listen.rpartition(":")
    await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
    return runner
