"""The simulated cluster's state shared by its parts (``SimContext``) and its settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from kubesim.sim.events import EventRecorder
from kubesim.sim.kubelet import DEFAULT_TOLERATION_S
from kubesim.sim.logbuf import LogBuffers
from kubesim.sim.minishell import PodFiles
from kubesim.sim.nodes import DEFAULT_LEASE_INTERVAL_S, DEFAULT_STATUS_INTERVAL_S, NodeSim
from kubesim.sim.sessions import Sessions
from kubesim.sim.store_api import Store
from kubesim.sim.workqueue import WorkQueue

SCRATCH_ENV = "KUBESIM_SCRATCH_DIR"


@dataclass
class SimConfig:
    """Settings of the simulated cluster (defaults match kubelet's where they have one)."""

    nodes: int = 0
    node_name_prefix: str = "node"
    lease_interval_s: float = DEFAULT_LEASE_INTERVAL_S
    status_interval_s: float = DEFAULT_STATUS_INTERVAL_S
    scratch_root: str | None = None  # per-pod exec working directories live under it
    default_toleration_s: float = DEFAULT_TOLERATION_S  # eviction from an unreachable node
    exec_host: bool = False  # exec runs host processes (tests only); else the built-in shell


@dataclass
class SimContext:
    store: Store
    config: SimConfig
    scratch_root: Path
    nodes: NodeSim
    logs: LogBuffers
    events: EventRecorder
    queue: WorkQueue
    owns_scratch: bool = False
    streams: Sessions = field(default_factory=Sessions)
    files: PodFiles = field(default_factory=PodFiles)  # the built-in shell's files per pod
    unsubscribe: list[object] = field(default_factory=list)

    def pod_scratch_dir(self, namespace: str, pod: str) -> Path:
        """The per-pod working directory of exec'd commands (created on demand)."""
        d = self.scratch_root / namespace / pod
        d.mkdir(parents=True, exist_ok=True)
        return d


def default_scratch_root() -> str | None:
    return os.environ.get(SCRATCH_ENV)
