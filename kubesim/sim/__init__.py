"""The simulated cluster behind the stand-in: nodes with heartbeats, the controllers that turn
Deployments/ReplicaSets/DaemonSets into running pods, pod logs, exec/attach and port-forward.

The API core calls :func:`start_sim` at server start and :func:`stop_sim` at stop; it hands
the pod subresources log/exec/attach/portforward to :func:`kubesim.sim.streaming.handle` and
mounts :func:`kubesim.sim.admin.routes` under ``/_kubesim/``.

Parts (one concern per module): ``nodes`` (Node, Lease, heartbeats, NotReady), ``scheduler``,
``kubelet`` (pod start, readiness, pod GC, taint eviction), ``replicasets``, ``deployments``,
``daemonsets``, ``endpoints``, ``events`` (the recorders' formats), ``workqueue`` (the
single reconcile worker fed by ``store.subscribe``), ``logbuf``/``podlogs`` (pod logs),
``channels``/``remotecommand`` (exec, attach), ``spdy``/``portforward`` (port-forward),
``admin`` (``/_kubesim/`` endpoints and ``python -m kubesim.sim.admin``).

For tests: append to a container's log with ``pod-log append``; declare where a pod's port
is served with the annotation ``kubesim.io/port-<containerPort>: "<local port>"``; shorten
the eviction from an unreachable node with the pod's own ``tolerationSeconds``.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from kubesim.sim.context import SimConfig, SimContext, default_scratch_root
from kubesim.sim.daemonsets import DaemonSetController
from kubesim.sim.deployments import DeploymentController
from kubesim.sim.endpoints import EndpointsController
from kubesim.sim.events import EventRecorder
from kubesim.sim.kubelet import Kubelet
from kubesim.sim.logbuf import LogBuffers
from kubesim.sim.nodes import NodeSim
from kubesim.sim.replicasets import ReplicaSetController
from kubesim.sim.scheduler import Scheduler
from kubesim.sim.store_api import Store
from kubesim.sim.workqueue import Controller, WorkQueue
from rancher_tunnel.logs import get_logger

log = get_logger(component="kubesim.sim")

__all__ = ["SimConfig", "SimContext", "start_sim", "stop_sim"]


def _config_from(options: object | None) -> SimConfig:
    if isinstance(options, SimConfig):
        return options
    cfg = SimConfig()
    if options is not None:
        for name in (
            "nodes",
            "node_name_prefix",
            "lease_interval_s",
            "status_interval_s",
            "scratch_root",
            "default_toleration_s",
            "exec_host",
        ):
            value = getattr(options, name, None)
            if value is not None:
                setattr(cfg, name, value)
    if cfg.scratch_root is None:
        cfg.scratch_root = default_scratch_root()
    return cfg


def _scratch_dir(root: str | None) -> Path:
    scratch = Path(root or tempfile.mkdtemp(prefix="kubesim-pods-"))
    scratch.mkdir(parents=True, exist_ok=True)
    return scratch


async def start_sim(store: Store, options: object | None = None) -> SimContext:
    """Start the simulated cluster on ``store``; ``options`` is a :class:`SimConfig` or any object
    with some of its attributes (the server's Options carries ``nodes``)."""
    cfg = _config_from(options)
    owns_scratch = cfg.scratch_root is None
    scratch = _scratch_dir(cfg.scratch_root)
    events = EventRecorder(store)
    logs = LogBuffers()
    queue_ref: list[WorkQueue] = []

    def node_changed(name: str) -> None:
        if queue_ref:
            queue_ref[0].on_change("MODIFIED", "", "nodes", {"metadata": {"name": name}})

    nodes = NodeSim(store, cfg.lease_interval_s, cfg.status_interval_s, on_node_change=node_changed)
    controllers: list[Controller] = [
        DeploymentController(store, events),
        ReplicaSetController(store, events),
        DaemonSetController(store, events),
        Scheduler(store, events),
        Kubelet(store, nodes, events, logs, cfg.default_toleration_s),
        EndpointsController(store),
    ]
    queue = WorkQueue(controllers)
    queue_ref.append(queue)
    ctx = SimContext(
        store=store,
        config=cfg,
        scratch_root=scratch,
        nodes=nodes,
        logs=logs,
        events=events,
        queue=queue,
        owns_scratch=owns_scratch,
    )
    ctx.unsubscribe.append(store.subscribe(nodes.on_store_change))
    ctx.unsubscribe.append(store.subscribe(queue.on_change))
    queue.start()
    nodes.start()
    for i in range(cfg.nodes):
        nodes.add(f"{cfg.node_name_prefix}-{i}")
    # pick up objects that existed before the sim started
    for group, resource in (
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "daemonsets"),
        ("", "pods"),
        ("", "services"),
    ):
        for obj in store.list_items(group, resource):
            queue.on_change("ADDED", group, resource, obj)
    log.info("sim started", nodes=cfg.nodes, scratch=str(scratch))
    return ctx


async def stop_sim(ctx: SimContext) -> None:
    for unsub in ctx.unsubscribe:
        if callable(unsub):
            unsub()
    ctx.unsubscribe.clear()
    await ctx.nodes.stop()
    await ctx.queue.stop()
    await ctx.streams.close_all()
    ctx.logs.close_all()
    if ctx.owns_scratch:
        with contextlib.suppress(OSError):
            shutil.rmtree(ctx.scratch_root)
