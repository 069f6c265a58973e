"""The node agent's host reading against a made-up /proc and /sys, and its dial targets."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cluster_agent.config import AgentConfig, Target
from cluster_agent.runner import node_dial_targets
from node_agent.host import HostSampler

pytestmark = pytest.mark.timeout(10)
GIB = 1024**3


def fake_root(tmp_path: Path, busy: int, idle: int) -> Path:
    proc = tmp_path / "proc"
    (proc / "sys" / "kernel").mkdir(parents=True, exist_ok=True)
    (proc / "sys" / "kernel" / "osrelease").write_text("6.1.0-test\n")
    (proc / "sys" / "kernel" / "hostname").write_text("worker-1\n")
    (proc / "stat").write_text(f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0\n")
    (proc / "meminfo").write_text("MemTotal:        4194304 kB\nMemAvailable:    1048576 kB\n")
    (proc / "loadavg").write_text("0.50 0.25 0.10 1/100 4242\n")
    (proc / "uptime").write_text("3600.25 7000.00\n")
    cpu = tmp_path / "sys" / "devices" / "system" / "cpu"
    cpu.mkdir(parents=True, exist_ok=True)
    (cpu / "online").write_text("0-3,6\n")
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc" / "os-release").write_text('PRETTY_NAME="Test Linux 1"\n')
    return tmp_path


def test_facts_stats_and_cpu_busy_between_samples(tmp_path: Path) -> None:
    root = fake_root(tmp_path, busy=100, idle=900)
    h = HostSampler(root)
    facts = h.facts()
    assert facts["kernel"] == "6.1.0-test" and facts["hostname"] == "worker-1"
    assert facts["cpus"] == "5" and facts["memory_bytes"] == str(4 * GIB)
    assert facts["os_image"] == "Test Linux 1"
    first = h.stats()
    assert "cpu_busy_percent" not in first  # one sample: no rate yet
    assert first["memory_available_bytes"] == GIB and first["load_5m"] == 0.25
    assert first["uptime_s"] == 3600.25 and first["disk_total_bytes"] > 0
    fake_root(tmp_path, busy=400, idle=1600)  # +300 busy of +1000
    assert h.stats()["cpu_busy_percent"] == pytest.approx(30.0)


def test_runtime_sockets_present(tmp_path: Path) -> None:
    root = fake_root(tmp_path, 1, 1)
    (root / "run" / "containerd").mkdir(parents=True)
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(root / "run" / "containerd" / "containerd.sock"))
        assert HostSampler(root).runtime_sockets() == ["/run/containerd/containerd.sock"]


def test_missing_files_leave_figures_out(tmp_path: Path) -> None:
    h = HostSampler(tmp_path)
    assert "kernel" not in h.facts() and int(h.facts()["cpus"]) >= 1
    assert set(h.stats()) <= {"disk_total_bytes", "disk_available_bytes"}


def test_a_node_agent_dials_only_the_api_server() -> None:
    wide = AgentConfig(server="https://s", token="t", api_address="10.0.0.1:6443",
                       allowed=(Target.parse("*:*"),))
    narrowed = node_dial_targets(wide)
    assert narrowed.allows("10.0.0.1", 6443)
    assert not narrowed.allows("10.0.0.2", 6443) and not narrowed.allows("10.0.0.1", 22)
    nothing = node_dial_targets(AgentConfig(server="https://s", token="t",
                                            allowed=(Target.parse("*:*"),)))
    assert not nothing.allows("10.0.0.1", 6443)
