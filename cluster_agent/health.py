"""The agent's own health and metrics endpoint (``CATTLE_HEALTH_LISTEN=HOST:PORT``): ``/healthz``
answers 200 while the tunnel is up (a liveness/readiness probe for the Deployment), 503 otherwise
with the connection state in the body (e.g. ``credentials_refused: the server refused ...``), and
``/metrics`` exposes the tunnel's counters, ``cattle_agent_state{state}`` and (cluster agent) its
informers and picture, through prometheus_client: one collector reads the live objects at scrape
time, so the data path pays nothing for them."""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cluster_agent.connection import AgentConnection
from cluster_agent.connstate import ConnState
from cluster_agent.dial import DialStats
from cluster_agent.reporter import Reporter

CONN: web.AppKey[AgentConnection] = web.AppKey("conn", AgentConnection)
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry", CollectorRegistry)


class AgentCollector(Collector):
    """The agent's figures, read from the connection (and the reporter) when scraped."""

    def __init__(self, conn: AgentConnection, reporter: Reporter | None = None,
                 dials: DialStats | None = None) -> None:
        self._conn = conn
        self._reporter = reporter
        self._dials = dials

    def collect(self) -> Iterator[Metric]:
        conn = self._conn
        session = conn.session
        st = session.stats if session is not None else None
        yield GaugeMetricFamily("cattle_agent_connected", "1 while the tunnel is up",
                                value=1 if conn.connected.is_set() else 0)
        yield CounterMetricFamily("cattle_agent_sessions_started", "Tunnel sessions started",
                                  value=conn.sessions_started)
        yield GaugeMetricFamily("cattle_agent_tunnel_streams", "Open tunnel streams",
                                value=st.open_streams if st else 0)
        rtt = session.rtt_s if session is not None and session.rtt_s else 0.0
        yield GaugeMetricFamily("cattle_agent_tunnel_rtt_seconds", "Last keepalive round trip",
                                value=rtt)
        state = GaugeMetricFamily("cattle_agent_state", "The connection's state (1: current)",
                                  labels=["state"])
        for s in ConnState:
            state.add_metric([s.value], int(conn.state is s))
        yield state
        yield CounterMetricFamily(
            "cattle_agent_credentials_refused",
            "Connection attempts the server answered with 401 or 403",
            value=conn.credentials_refused)
        if self._dials is not None:
            dials = CounterMetricFamily("cattle_agent_dials", "The server's dials (served: "
                                        "connected to an allowed target)", labels=["result"])
            dials.add_metric(["served"], self._dials.served)
            dials.add_metric(["refused"], self._dials.refused)
            yield dials
        if self._reporter is not None:
            yield from self._picture(self._reporter)

    @staticmethod
    def _picture(reporter: Reporter) -> Iterator[Metric]:
        objects = GaugeMetricFamily("cattle_agent_informer_objects",
                                    "Objects held by each informer", labels=["resource"])
        relists = CounterMetricFamily("cattle_agent_informer_relists",
                                      "Lists after the first (410 Gone, broken watch)",
                                      labels=["resource"])
        for inf in reporter.informers:
            resource = inf.path.rsplit("/", 1)[-1]
            objects.add_metric([resource], len(inf.items))
            relists.add_metric([resource], inf.relists)
        yield objects
        yield relists
        picture = reporter.picture
        yield GaugeMetricFamily("cattle_agent_picture_pending",
                                "Picture parts changed and not yet sent (coalescing)",
                                value=len(picture.dirty))
        yield CounterMetricFamily("cattle_agent_picture_events_evicted",
                                  "Events dropped from the agent's bounded event list",
                                  value=picture.events_evicted)


async def metrics(request: web.Request) -> web.Response:
    resp = web.Response(body=generate_latest(request.app[REGISTRY]))
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


async def healthz(request: web.Request) -> web.Response:
    conn = request.app[CONN]
    if conn.connected.is_set():
        return web.Response(text="ok")
    return web.Response(
        status=503, text=f"tunnel not connected: {conn.state.value}: {conn.state_detail}"
    )


async def start_health(
    conn: AgentConnection, listen: str, reporter: Reporter | None = None,
    dials: DialStats | None = None,
) -> web.AppRunner:
    app = web.Application()
    app[CONN] = conn
    registry = CollectorRegistry()
    registry.register(AgentCollector(conn, reporter, dials))
    app[REGISTRY] = registry
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, _, port = listen.rpartition(":")
    await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
    return runner
