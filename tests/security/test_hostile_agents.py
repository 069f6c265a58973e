"""Hostile agents against a real server process over TLS on loopback: flooding pings, forging
pongs, opening streams and sending reports without ever reading. The server's memory stays under
a ceiling, and whoever goes over a bound is cut off with the bound logged and counted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.common import rss_kib
from tests.procs import ServerProc, free_port, metrics, running, wait_until
from tests.security.hostile import HostileAgent

pytestmark = pytest.mark.timeout(60)

FLOOD_S = 8.0
# before the bounds, the ping flood alone grew the server by about 16 MiB/s
RSS_CEILING_MIB = 40.0
CUT_OFF_WITHIN_S = 10.0


def bound_disconnects(server: ServerProc, bound: str) -> float:
    m = metrics(server.url + "/metrics", server.ca_path)
    return m.get(f'rancher_tunnel_bound_disconnects_total{{bound="{bound}"}}', 0.0)


def test_flooding_agents_that_do_not_read_cost_bounded_memory(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.port = free_port()
    modes = ("ping", "ping", "pong", "open", "report")
    regs = [server.create_cluster(f"hostile-{i}") for i in range(len(modes))]
    server.start()
    assert server.proc is not None
    with running(server):
        time.sleep(1.0)
        before = rss_kib(server.proc.pid)
        agents = [
            HostileAgent(server.port, server.ca_path, str(reg["registrationToken"]), mode).start()
            for reg, mode in zip(regs, modes, strict=True)
        ]
        peak = before
        try:
            deadline = time.monotonic() + FLOOD_S
            while time.monotonic() < deadline:
                time.sleep(0.25)
                peak = max(peak, rss_kib(server.proc.pid))
        finally:
            for agent in agents:
                agent.stop()
        growth_mib = (peak - before) / 1024
        assert all(a.connections >= 1 for a in agents), [a.errors[:2] for a in agents]
        print(f"growth {growth_mib:.1f} MiB, sent {[a.sent_bytes >> 20 for a in agents]} MiB")
        assert sum(a.sent_bytes for a in agents[:2]) > 20 * 1024 * 1024  # they did flood
        assert growth_mib <= RSS_CEILING_MIB
        # the stream opener and the reporter were cut off for their bounds, and it shows
        for bound in ("control_queue", "reports"):
            wait_until(
                lambda b=bound: bound_disconnects(server, b) >= 1,  # type: ignore[misc]
                CUT_OFF_WITHIN_S,
                what=f"a disconnect for {bound}",
            )
    log = (tmp_path / "server.log").read_text()
    assert '"bound": "control_queue"' in log and '"bound": "reports"' in log
