"""``cluster-agent import`` holds the agent's service-account token in memory only (a memfd on
Linux): no file on disk while it runs, nothing left behind when it is killed with -9."""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path

from tests.kube import KubeSimProc
from tests.procs import AgentProc, ServerProc, agent_env, free_port, running, wait_until


def _fd_targets(pid: int) -> set[str]:
    out = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            out.add(str(fd.readlink()))
        except OSError:  # closed meanwhile
            continue
    return out


def _leftovers() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("cattle-import-*")}


def test_import_keeps_the_token_in_memory_and_leaves_nothing(tmp_path: Path) -> None:
    sim = KubeSimProc(tmp_path / "sim", ["--nodes", "1"]).start()
    try:
        server = ServerProc(tmp_path / "data", tmp_path / "server.log", port=free_port())
        reg = server.create_cluster("imported")
        server.start()
        before = _leftovers()
        with running(server):
            agent = AgentProc(agent_env(server, reg), tmp_path / "agent.log",
                              args=["import", "--kubeconfig", str(sim.kubeconfig)]).start()
            try:
                assert agent.proc is not None
                pid = agent.proc.pid
                # The token lives in a memfd of the agent process: memory, not a file on disk.
                wait_until(lambda: any(t.startswith("/memfd:cattle-token")
                                       for t in _fd_targets(pid)), 20,
                           what="the import to hand the token over in memory")
                wait_until(lambda: "tunnel connected" in (tmp_path / "agent.log").read_text(),
                           20, what="the imported agent connected")
                assert not any(t.startswith(tempfile.gettempdir()) and "cattle" in t
                               for t in _fd_targets(pid))
                assert _leftovers() == before
                agent.proc.send_signal(signal.SIGKILL)
                agent.proc.wait(10)
            finally:
                agent.stop()
        assert _leftovers() == before
    finally:
        sim.stop()
