"""The server process's own figures on /metrics (what Prometheus expects of any service), and
its start-up heap kept out of the garbage collector's scans once it is ready."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rancher_server.metrics as metrics_module
from rancher_server.looplag import LoopLag, loop_lag_histogram
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
    # the freeze's own full collection, timed by the pause histogram
    assert samples['python_gc_pause_seconds_count{generation="2"}'] >= 1
    assert samples['python_gc_pause_seconds_bucket{generation="2",le="+Inf"}'] == samples[
        'python_gc_pause_seconds_count{generation="2"}']
    assert samples['python_gc_pause_seconds_sum{generation="2"}'] > 0
    assert "rancher_event_loop_lag_seconds_count" in samples  # sampled every 0.25 s


def test_freeze_heap_moves_the_live_objects_out_of_the_collector() -> None:
    code = ("import gc; from rancher_tunnel.process import freeze_heap; "
            "assert gc.get_freeze_count() == 0; freeze_heap(); print(gc.get_freeze_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) > 1_000


def test_gc_pauses_are_counted_in_their_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each pass lands in the first bucket whose bound it does not exceed; the histogram's
    buckets are cumulative, as Prometheus reads them."""
    clock = iter([10.0, 10.0008, 20.0, 20.7, 30.0, 37.0])
    monkeypatch.setattr(metrics_module.time, "perf_counter", lambda: next(clock))
    hist = metrics_module.gc_pause_histogram()
    pauses = metrics_module.GcPauseTimer(hist)
    for generation in (0, 2, 2):
        pauses("start", {"generation": generation})
        pauses("stop", {"generation": generation, "collected": 0, "uncollectable": 0})
    family = next(iter(hist.collect()))
    got = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    full = (("generation", "2"),)
    assert got[("python_gc_pause_seconds_count", full)] == 2
    assert got[("python_gc_pause_seconds_sum", full)] == pytest.approx(7.7)
    assert got[("python_gc_pause_seconds_bucket", (*full, ("le", "0.5")))] == 0
    assert got[("python_gc_pause_seconds_bucket", (*full, ("le", "1.0")))] == 1  # 0.7 s
    assert got[("python_gc_pause_seconds_bucket", (*full, ("le", "5.0")))] == 1
    assert got[("python_gc_pause_seconds_bucket", (*full, ("le", "+Inf")))] == 2  # 7 s
    young = (("generation", "0"),)
    assert got[("python_gc_pause_seconds_bucket", (*young, ("le", "0.001")))] == 1  # 0.8 ms


async def test_loop_lag_sees_the_loop_held() -> None:
    """A callback that holds the loop shows in the lag histogram, by how long it held it."""
    hist = loop_lag_histogram(None)
    lag = LoopLag(hist, sample_s=0.01)
    lag.start(asyncio.get_running_loop())
    await asyncio.sleep(0.05)
    time.sleep(0.08)  # the loop held, as a long computation or a full collection would
    await asyncio.sleep(0.05)
    lag.stop()
    family = next(iter(hist.collect()))
    got = {dict(s.labels).get("le", s.name): s.value for s in family.samples}
    assert got["+Inf"] >= 5  # samples kept coming every 10 ms around the hold
    assert got["+Inf"] - got["0.05"] >= 1, got  # one of them 50+ ms late
    assert lag.max_s >= 0.05
    assert got["rancher_event_loop_lag_seconds_sum"] >= 0.05
