"""Admin endpoints of the simulated cluster, under ``/_kubesim/`` (not part of the Kubernetes
API), and a command line that calls them with an admin kubeconfig.

Endpoints (admin only: a client certificate in group ``system:masters``; on plain HTTP, any
loopback client):

- ``GET /_kubesim/nodes``: the simulated nodes and whether their kubelet runs.
- ``POST /_kubesim/nodes`` with ``{"name": N}``: add a Ready node (201, the Node).
- ``POST /_kubesim/nodes/{name}/notready`` and ``/ready``: stop or restart its kubelet.
- ``DELETE /_kubesim/nodes/{name}``: remove the node (its pods are garbage-collected).
- ``POST /_kubesim/compact``: forget the watch history, as etcd compaction does: a watch that
  resumes from an older resourceVersion gets ``410 Gone`` and must relist.
- ``POST /_kubesim/namespaces/{ns}/pods/{pod}/log?container=C``: append the body to the
  container's log (the pod's first container by default; 404 when the pod does not exist).
- ``POST /_kubesim/namespaces/{ns}/pods/{pod}/exit?container=C&code=N``: the container's
  process exits with N (default 0): kubelet restarts it under ``restartPolicy`` Always (or
  OnFailure and N != 0) and its log becomes the ``previous=true`` log; otherwise it stays
  terminated and the pod ends Succeeded or Failed once every container has.
- ``POST /_kubesim/namespaces/{ns}/pods/{pod}/restart?container=C``: the same with code 1.

Command line::

    python -m kubesim.sim.admin --kubeconfig F node add|notready|ready|remove NAME
    python -m kubesim.sim.admin --kubeconfig F compact
    python -m kubesim.sim.admin --kubeconfig F pod-log append NS POD [CONTAINER] TEXT
    python -m kubesim.sim.admin --kubeconfig F pod exit NS POD [CONTAINER] CODE
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import ssl
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import yaml
from aiohttp import web

from kubesim.sim.context import SimContext
from kubesim.sim.lifecycle import NotRunning, container_exited
from kubesim.sim.store_api import Obj

ADMIN_PREFIX = "/_kubesim"
ADMIN_GROUP = "system:masters"
CLI_TIMEOUT_S = 10.0
MAX_APPEND_BYTES = 1024 * 1024


def _is_admin(request: web.Request) -> bool:
    transport = request.transport
    if transport is None:
        return False
    if transport.get_extra_info("sslcontext") is None:
        peer = transport.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) and peer else ""
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    cert = transport.get_extra_info("peercert") or {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "organizationName" and value == ADMIN_GROUP:
                return True
    return False


def _status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


def routes(ctx: SimContext) -> list[web.RouteDef]:
    def guard(request: web.Request) -> web.Response | None:
        if not _is_admin(request):
            return _status(
                403, "Forbidden", "the kubesim admin endpoints need a system:masters client"
            )
        return None

    async def list_nodes(request: web.Request) -> web.Response:
        if (denied := guard(request)) is not None:
            return denied
        return web.json_response(
            {
                "nodes": [
                    {"name": n.name, "ready": n.kubelet_running} for n in ctx.nodes.nodes.values()
                ]
            }
        )

    async def add_node(request: web.Request) -> web.Response:
        if (denied := guard(request)) is not None:
            return denied
        try:
            body = await request.json()
            name = str(body["name"])
        except (ValueError, KeyError, TypeError):
            return _status(400, "BadRequest", 'body must be {"name": "<node name>"}')
        try:
            node = ctx.nodes.add(name)
        except ValueError as exc:
            return _status(409, "AlreadyExists", str(exc))
        return web.json_response(node, status=201)

    async def set_ready(request: web.Request, ready: bool) -> web.Response:
        if (denied := guard(request)) is not None:
            return denied
        name = request.match_info["name"]
        try:
            return web.json_response(ctx.nodes.set_ready(name, ready))
        except KeyError:
            return _status(404, "NotFound", f'simulated node "{name}" not found')

    async def notready(request: web.Request) -> web.Response:
        return await set_ready(request, False)

    async def ready(request: web.Request) -> web.Response:
        return await set_ready(request, True)

    async def remove_node(request: web.Request) -> web.Response:
        if (denied := guard(request)) is not None:
            return denied
        name = request.match_info["name"]
        try:
            ctx.nodes.remove(name)
        except KeyError:
            return _status(404, "NotFound", f'simulated node "{name}" not found')
        return web.json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
        )

    async def compact(request: web.Request) -> web.Response:
        if (denied := guard(request)) is not None:
            return denied
        ctx.store.compact()
        return web.Response(status=204)

    def _container(pod: Obj | None, request: web.Request) -> str:
        container = request.query.get("container", "")
        if not container and pod is not None:
            containers = pod.get("spec", {}).get("containers") or [{}]
            container = str(containers[0].get("name", ""))
        return container

    def pod_target(request: web.Request) -> tuple[str, str, Obj, str] | web.Response:
        """Namespace, name, pod and container a pod admin request names; or the refusal."""
        if (denied := guard(request)) is not None:
            return denied
        ns, name = request.match_info["ns"], request.match_info["pod"]
        pod = ctx.store.get_item("", "pods", ns, name)
        if pod is None:
            return _status(404, "NotFound", f'pods "{name}" not found')
        return ns, name, pod, _container(pod, request)

    async def append_log(request: web.Request) -> web.Response:
        target = pod_target(request)
        if isinstance(target, web.Response):
            return target
        ns, name, pod, container = target
        containers = [c.get("name") for c in pod.get("spec", {}).get("containers") or []]
        containers += [c.get("name") for c in pod.get("spec", {}).get("initContainers") or []]
        if container not in containers:
            return _status(400, "BadRequest", f"container {container} is not valid for pod {name}")
        data = await request.content.read(MAX_APPEND_BYTES + 1)
        if len(data) > MAX_APPEND_BYTES:
            return _status(413, "RequestEntityTooLarge", "log append too large")
        ctx.logs.append(ns, name, container, data)
        return web.Response(status=204)

    async def exit_container(request: web.Request) -> web.Response:
        target = pod_target(request)
        if isinstance(target, web.Response):
            return target
        ns, name, pod, container = target
        try:
            code = int(request.query.get("code", "1" if request.path.endswith("/restart") else "0"))
            restarted = container_exited(ctx.store, pod, container, code)
        except ValueError:
            return _status(400, "BadRequest", "code must be an integer")
        except NotRunning as exc:
            return _status(400, "BadRequest", str(exc))
        if restarted:
            ctx.logs.restart(ns, name, container)
        else:
            ctx.logs.get(ns, name, container).close()
        return web.Response(status=204)

    pod_path = f"{ADMIN_PREFIX}/namespaces/{{ns}}/pods/{{pod}}"
    return [
        web.get(f"{ADMIN_PREFIX}/nodes", list_nodes),
        web.post(f"{ADMIN_PREFIX}/nodes", add_node),
        web.post(f"{ADMIN_PREFIX}/nodes/{{name}}/notready", notready),
        web.post(f"{ADMIN_PREFIX}/nodes/{{name}}/ready", ready),
        web.delete(f"{ADMIN_PREFIX}/nodes/{{name}}", remove_node),
        web.post(f"{ADMIN_PREFIX}/compact", compact),
        web.post(f"{pod_path}/log", append_log),
        web.post(f"{pod_path}/restart", exit_container),
        web.post(f"{pod_path}/exit", exit_container),
    ]


# -- command line ----------------------------------------------------------------------------
class AdminClient:
    """A synchronous client for the admin endpoints, configured from an admin kubeconfig."""

    def __init__(self, kubeconfig: str) -> None:
        with open(kubeconfig, encoding="utf-8") as f:
            cfg: dict[str, Any] = yaml.safe_load(f)
        current = cfg.get("current-context") or cfg["contexts"][0]["name"]
        context = next(c["context"] for c in cfg["contexts"] if c["name"] == current)
        cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == context["cluster"])
        user = next(u["user"] for u in cfg.get("users", []) if u["name"] == context["user"])
        self.server = str(cluster["server"]).rstrip("/")
        self.headers: dict[str, str] = {}
        self.ssl: ssl.SSLContext | None = None
        if self.server.startswith("https"):
            self.ssl = ssl.create_default_context()
            if cluster.get("certificate-authority-data"):
                self.ssl.load_verify_locations(
                    cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
                )
            elif cluster.get("certificate-authority"):
                self.ssl.load_verify_locations(cafile=cluster["certificate-authority"])
            if cluster.get("insecure-skip-tls-verify"):
                self.ssl.check_hostname = False
                self.ssl.verify_mode = ssl.CERT_NONE
            self._load_client_cert(user)
        if user.get("token"):
            self.headers["Authorization"] = f"Bearer {user['token']}"

    def _load_client_cert(self, user: dict[str, Any]) -> None:
        assert self.ssl is not None
        if user.get("client-certificate-data"):
            with tempfile.TemporaryDirectory(prefix="kubesim-admin-") as d:
                cert, key = os.path.join(d, "c.crt"), os.path.join(d, "c.key")
                with open(cert, "wb") as f:
                    f.write(base64.b64decode(user["client-certificate-data"]))
                fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(base64.b64decode(user["client-key-data"]))
                self.ssl.load_cert_chain(cert, key)
        elif user.get("client-certificate"):
            self.ssl.load_cert_chain(user["client-certificate"], user.get("client-key"))

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        if not self.server.startswith(("http://", "https://")):
            raise ValueError(f"unsupported server URL: {self.server}")
        req = urllib.request.Request(  # noqa: S310 (scheme checked above)
            self.server + path, data=body, method=method, headers=self.headers
        )
        try:
            with urllib.request.urlopen(  # noqa: S310 (scheme checked above)
                req, timeout=CLI_TIMEOUT_S, context=self.ssl
            ) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as err:
            return int(err.code), bytes(err.read())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m kubesim.sim.admin", description=__doc__.split("\n")[0]
    )
    p.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG", ""),
        required=not os.environ.get("KUBECONFIG"),
    )
    sub = p.add_subparsers(dest="what", required=True)
    node = sub.add_parser("node", help="add, notready, ready or remove a simulated node")
    node.add_argument("action", choices=["add", "notready", "ready", "remove"])
    node.add_argument("name")
    plog = sub.add_parser("pod-log", help="append to a pod container's log")
    plog.add_argument("action", choices=["append"])
    plog.add_argument("namespace")
    plog.add_argument("pod")
    plog.add_argument("rest", nargs="+", metavar="[CONTAINER] TEXT")
    sub.add_parser("compact", help="forget the watch history (resuming watches get 410)")
    pexit = sub.add_parser("pod", help="make a pod's container exit with a code")
    pexit.add_argument("action", choices=["exit"])
    pexit.add_argument("namespace")
    pexit.add_argument("pod")
    pexit.add_argument("rest", nargs="+", metavar="[CONTAINER] CODE")
    args = p.parse_args(argv)
    try:
        client = AdminClient(args.kubeconfig)
    except (OSError, KeyError, StopIteration, TypeError, yaml.YAMLError) as exc:
        sys.stderr.write(f"error: cannot use kubeconfig {args.kubeconfig}: {exc!r}\n")
        return 2
    try:
        return _run(p, args, client)
    except urllib.error.URLError as exc:
        sys.stderr.write(f"error: {client.server}: {exc.reason}\n")
        return 1


def _run(p: argparse.ArgumentParser, args: argparse.Namespace, client: AdminClient) -> int:
    if args.what == "node":
        name = urllib.parse.quote(args.name, safe="")
        if args.action == "add":
            code, out = client.call(
                "POST", f"{ADMIN_PREFIX}/nodes", json.dumps({"name": args.name}).encode()
            )
        elif args.action == "remove":
            code, out = client.call("DELETE", f"{ADMIN_PREFIX}/nodes/{name}")
        else:
            code, out = client.call("POST", f"{ADMIN_PREFIX}/nodes/{name}/{args.action}")
    elif args.what == "compact":
        code, out = client.call("POST", f"{ADMIN_PREFIX}/compact")
    elif args.what == "pod":
        if len(args.rest) > 2:
            p.error("pod exit takes NS POD [CONTAINER] CODE")
        container, exit_code = (
            (args.rest[0], args.rest[1]) if len(args.rest) == 2 else ("", args.rest[0])
        )
        params = {"code": exit_code, **({"container": container} if container else {})}
        ns, pod = urllib.parse.quote(args.namespace, safe=""), urllib.parse.quote(args.pod, safe="")
        path = f"{ADMIN_PREFIX}/namespaces/{ns}/pods/{pod}/exit?{urllib.parse.urlencode(params)}"
        code, out = client.call("POST", path)
    else:
        if len(args.rest) > 2:
            p.error("pod-log append takes NS POD [CONTAINER] TEXT")
        container, text = (
            (args.rest[0], args.rest[1]) if len(args.rest) == 2 else ("", args.rest[0])
        )
        q = f"?container={urllib.parse.quote(container)}" if container else ""
        ns, pod = urllib.parse.quote(args.namespace, safe=""), urllib.parse.quote(args.pod, safe="")
        code, out = client.call(
            "POST", f"{ADMIN_PREFIX}/namespaces/{ns}/pods/{pod}/log{q}", text.encode()
        )
    if code >= 300:
        sys.stderr.write(out.decode(errors="replace") + "\n")
        return 1
    if args.what == "node":
        done = {"add": "added", "remove": "removed", "ready": "ready", "notready": "notready"}
        sys.stdout.write(f"node/{args.name} {done[args.action]}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
