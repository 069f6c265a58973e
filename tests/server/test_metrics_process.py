"""The server process's own figures on /metrics (what Prometheus expects of any service), and
its start-up heap kept out of the garbage collector's scans once it is ready."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.procs import ServerProc, metrics, running

# The server's modules and start-up state are well over this many objects (about 120,000);
# a server that froze nothing reports 0.
MIN_FROZEN_OBJECTS = 20_000


def test_server_exports_process_figures_and_freezes_its_start_up_heap(tmp_path: Path) -> None:
    server = ServerProc(tmp_path / "data", tmp_path / "server.log").start()
    with running(server):
        samples = metrics(server.url + "/metrics", server.ca_path)
    assert samples["process_resident_memory_bytes"] > 0
    assert samples["process_cpu_seconds_total"] > 0
    assert samples["process_open_fds"] > 0
    assert 'python_gc_collections_total{generation="2"}' in samples
    assert samples["python_gc_frozen_objects"] >= MIN_FROZEN_OBJECTS


def test_freeze_heap_moves_the_live_objects_out_of_the_collector() -> None:
    code = ("import gc; from rancher_tunnel.process import freeze_heap; "
            "assert gc.get_freeze_count() == 0; freeze_heap(); print(gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) > 1_000
