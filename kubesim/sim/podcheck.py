"""Checks kube-apiserver makes before it proxies a pod's log/exec/attach/portforward to the
kubelet, with the same Status answers."""

from __future__ import annotations

from kubesim.errors import StatusError
from kubesim.sim.context import SimContext
from kubesim.sim.store_api import Obj
from kubesim.sim.util import name_of

DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container"


def container_names(pod: Obj) -> tuple[list[str], list[str]]:
    spec = pod.get("spec", {})
    return (
        [str(c.get("name")) for c in spec.get("containers") or []],
        [str(c.get("name")) for c in spec.get("initContainers") or []],
    )


def pick_container(pod: Obj, requested: str) -> str:
    """The container a request targets, or the 400 kube-apiserver gives."""
    containers, inits = container_names(pod)
    name = name_of(pod)
    if requested:
        if requested not in containers and requested not in inits:
            raise StatusError(
                400, "BadRequest", f"container {requested} is not valid for pod {name}"
            )
        return requested
    default = (pod.get("metadata", {}).get("annotations") or {}).get(DEFAULT_CONTAINER_ANNOTATION)
    if default in containers:
        return str(default)
    if len(containers) == 1:
        return containers[0]
    choices = " ".join(containers)
    msg = f"a container name must be specified for pod {name}, choose one of: [{choices}]"
    if inits:
        msg += f" or one of the init containers: [{' '.join(inits)}]"
    raise StatusError(400, "BadRequest", msg)


def kubelet_unreachable(
    ctx: SimContext, pod: Obj, url_path: str, verb: str = "Get"
) -> StatusError | None:
    """None when a simulated kubelet serves the pod's node; else the 500 kube-apiserver
    returns after its dial to the kubelet fails (as recorded against a kubelet-less Node)."""
    node_name = str(pod.get("spec", {}).get("nodeName") or "")
    if ctx.nodes.kubelet_running(node_name):
        return None
    node = ctx.store.get_item("", "nodes", None, node_name) or {}
    ip = next(
        (
            a.get("address")
            for a in node.get("status", {}).get("addresses") or []
            if a.get("type") == "InternalIP"
        ),
        "127.0.0.1",
    )
    return StatusError(
        500,
        "",
        f'{verb} "https://{ip}:10250{url_path}": dial tcp {ip}:10250: connect: connection refused',
    )


def container_running(pod: Obj, container: str) -> StatusError | None:
    """None when ``container`` runs; else the 400 for a container that is not started yet."""
    for cs in (pod.get("status", {}).get("containerStatuses") or []) + (
        pod.get("status", {}).get("initContainerStatuses") or []
    ):
        if cs.get("name") == container and cs.get("state", {}).get("running"):
            return None
        if cs.get("name") == container and cs.get("state", {}).get("terminated"):
            return None
    return StatusError(
        400,
        "BadRequest",
        f'container "{container}" in pod "{name_of(pod)}" is waiting to start: ContainerCreating',
    )
