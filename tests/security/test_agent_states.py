"""The agent through its real interfaces: a refused credential is a state of its own (said once,
shown on /healthz and /metrics), and an allow-list pattern it cannot honour stops it at start."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cluster_agent.config import ConfigError, Target
from cluster_agent.constants import EXIT_CONFIG_ERROR
from tests.procs import AgentProc, ServerProc, agent_env, free_port, metrics, running, wait_until

pytestmark = pytest.mark.timeout(60)

STATE_WITHIN_S = 15.0
START_EXIT_TIMEOUT_S = 15.0


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        e.close()
        return e.code, body
    except OSError:
        return 0, ""


def test_refused_credentials_are_said_once_and_shown(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.port = free_port()
    reg = server.create_cluster("refused")
    server.start()
    health = free_port()
    agent = AgentProc(
        agent_env(
            server,
            {"registrationToken": str(reg["registrationToken"]) + "-wrong"},
            CATTLE_K8S_API="127.0.0.1:6443",
            CATTLE_HEALTH_LISTEN=f"127.0.0.1:{health}",
        ),
        tmp_path / "agent.log",
    ).start()
    with running(server, agent):
        wait_until(
            lambda: "credentials_refused" in healthz(health)[1],
            STATE_WITHIN_S,
            what="credentials_refused on /healthz",
        )
        code, body = healthz(health)
        assert code == 503 and "HTTP 401" in body
        m = metrics(f"http://127.0.0.1:{health}/metrics")
        assert m['cattle_agent_state{state="credentials_refused"}'] == 1
        assert m['cattle_agent_state{state="unreachable"}'] == 0
        assert m["cattle_agent_credentials_refused_total"] >= 1
    lines = [json.loads(x) for x in (tmp_path / "agent.log").read_text().splitlines() if x]
    said = [x for x in lines if x.get("event") == "the server refused this agent's credentials"]
    assert len(said) == 1 and said[0]["level"] == "error" and said[0]["status"] == 401
    # it retries at the longest interval, not at network-failure speed
    delays = [x["delay_s"] for x in lines if x.get("event") == "reconnecting"]
    assert delays and min(delays) >= 30


def test_unreachable_server_is_not_a_credential_failure(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log")
    server.port = free_port()
    server.start()
    server.stop()  # its CA stays; nothing listens on its port any more
    health = free_port()
    agent = AgentProc(
        {
            "CATTLE_SERVER": server.url,
            "CATTLE_TOKEN": "t",
            "CATTLE_CA_CERT_FILE": str(server.ca_path),
            "CATTLE_K8S_API": "127.0.0.1:6443",
            "CATTLE_HEALTH_LISTEN": f"127.0.0.1:{health}",
        },
        tmp_path / "agent.log",
    )
    agent.start()
    with running(agent):
        wait_until(lambda: healthz(health)[0] != 0, STATE_WITHIN_S, what="agent health")
        wait_until(lambda: "unreachable" in healthz(health)[1], STATE_WITHIN_S, what="state")
        m = metrics(f"http://127.0.0.1:{health}/metrics")
        assert m['cattle_agent_state{state="credentials_refused"}'] == 0
        assert m["cattle_agent_credentials_refused_total"] == 0


@pytest.mark.parametrize(
    "pattern", ["kube*:443", "a.*.svc:443", "*svc:443", "host:0", "host:x", "*.10.0.0.1:443"]
)
def test_unsupported_allow_list_pattern_stops_the_agent_at_start(
    tmp_path: Path, pattern: str
) -> None:
    env = {
        "CATTLE_SERVER": "https://127.0.0.1:1",
        "CATTLE_TOKEN": "t",
        "CATTLE_K8S_API": "127.0.0.1:6443",
        "CATTLE_ALLOWED_TARGETS": f"127.0.0.1:6443,{pattern}",
        "LOG_FORMAT": "json",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "cluster_agent"],
        env=env,
        capture_output=True,
        text=True,
        timeout=START_EXIT_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == EXIT_CONFIG_ERROR
    out = proc.stdout + proc.stderr
    assert "bad configuration" in out and repr(pattern) in out and "*.DOMAIN" in out


@pytest.mark.parametrize(
    ("pattern", "host", "port", "allowed"),
    [
        ("*:443", "anything.example", 443, True),
        ("*:443", "anything.example", 80, False),
        ("*.svc:443", "kubernetes.default.svc", 443, True),
        ("*.svc:443", "svc", 443, False),
        ("*.svc:443", "kubernetes.default.svc.evil.example", 443, False),
        ("*.svc.cluster.local:*", "api.ns.svc.cluster.local", 8443, True),
        ("kubernetes.default.svc:*", "KUBERNETES.default.svc", 6443, True),
        ("[::1]:6443", "::1", 6443, True),
        ("10.0.0.1:6443", "10.0.0.2", 6443, False),
    ],
)
def test_supported_wildcards(pattern: str, host: str, port: int, allowed: bool) -> None:
    assert Target.parse(pattern).matches(host, port) is allowed


def test_bad_patterns_say_what_is_supported() -> None:
    with pytest.raises(ConfigError, match=r"\*\.DOMAIN"):
        Target.parse("kube*:443")
