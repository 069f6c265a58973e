"""/metrics names clusters and sessions: by default only administrators may read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.procs import ServerProc, free_port, running
from tests.rest import ApiError, Rest

ADMIN_PASSWORD = "metrics-admin-password-1"


def test_metrics_need_an_admin_token_by_default(tmp_path: Path) -> None:
    server = ServerProc(
        tmp_path / "data",
        tmp_path / "server.log",
        port=free_port(),
        env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD, "RANCHER_METRICS_ANONYMOUS": "false"},
    ).start()
    with running(server):
        rest = Rest(server.url, server.ca_path)
        with pytest.raises(ApiError) as e:
            rest.call_text("GET", "/metrics")
        assert e.value.status == 401
        admin = rest.login("admin", ADMIN_PASSWORD)
        rest.token = admin
        rest.call("POST", "/v3/users", {"username": "viewer", "password": "viewer-password-1"})
        viewer = Rest(server.url, server.ca_path)
        viewer.token = viewer.login("viewer", "viewer-password-1")
        with pytest.raises(ApiError) as e:
            viewer.call_text("GET", "/metrics")
        assert e.value.status == 403
        assert "rancher_tunnel_sessions" in rest.call_text("GET", "/metrics")
