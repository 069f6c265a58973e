"""Benchmark of access control: how fast a weakened binding is refused on both paths, and how fast a
newly connected cluster gets every object the server keeps in it.

Method
------
1. The Kubernetes stand-in (RBAC, kube-api-auth as its token webhook), the server and
   kube-api-auth run as real processes on loopback. The store is filled before the server starts
   (writing 1,000 users through the API would spend minutes in scrypt): ``--users`` users, each a
   ``project-member`` of one of ``--projects`` projects, ``--namespaces`` namespaces spread over the
   projects (annotated downstream), and ``--changes`` of the users also ``cluster-owner`` with an
   API token; the authorized endpoint is on.
2. ``converge``: the agent is started (``cluster-agent import``); from its start, the cluster's
   ``/v3/clusters/<id>/accesssync`` is polled: ``converge_10k_s`` is when 10,000 of our objects
   exist downstream, ``converge_all_s`` when all of them exist and nothing fails. The count is
   checked once more with kubectl at the end. Baseline in the same run: the same number of
   RoleBindings created straight against the stand-in with kubernetes_asyncio, 16 at a time
   (``direct_create_s``); ``converge_ratio`` is ``converge_all_s / direct_create_s``.
3. ``revoke``: for each of ``--changes`` owners, a dry-run ConfigMap create is sent on the proxy
   and on the direct path until both succeed; then the owner binding is replaced by ``read-only``
   through the REST API (create, delete) and both paths are polled every 20 ms until both refuse.
   ``revoke_p99_s`` is the p99 over the changes of the larger of the two times, measured from the
   start of the REST calls. Baseline: one dry-run request's round trip through the proxy
   (``request_p50_s``).

The last line printed is one JSON object. ``--quick`` (200 users, 40 namespaces, 20 changes)
finishes in under a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from kubernetes_asyncio import client as kclient
from kubernetes_asyncio import config as kconfig

from rancher_server.access.desired import PROJECT_ANNOTATION, SELECTOR
from rancher_server.access.endpoint_config import AceConfig, set_config
from rancher_server.auth.passwords import hash_password, hash_token_secret, new_token_secret
from rancher_server.clusters.registration import create_cluster
from rancher_server.store import SQLiteStore
from tests.e2e.ace_stack import webhook_config
from tests.kube import KubeSimProc, kubectl
from tests.procs import AgentProc, ServerProc, free_port
from tests.rest import Rest

ADMIN_PASSWORD = "admin-password-for-bench-1"
USER_PASSWORD = "user-password-for-bench-1"
CONVERGE_TIMEOUT_S = 600.0
REVOKE_TIMEOUT_S = 30.0
POLL_S = 0.02
STATUS_POLL_S = 0.1
TEN_K = 10_000
DIRECT_CONCURRENCY = 16
LABELLED = ("clusterroles,clusterrolebindings,rolebindings,serviceaccounts,secrets,"
            "clusteruserattributes,clusterauthtokens")


def fill_store(db: Path, users: int, projects: int, owners: int) -> dict[str, Any]:
    store = SQLiteStore(db)
    try:
        store.create_user("admin", "Admin", hash_password(ADMIN_PASSWORD), is_admin=True)
        reg = create_cluster(store, "bench")
        cid = reg.cluster.id
        pids = [store.create_project(cid, f"team-{i}").id for i in range(projects)]
        pw = hash_password(USER_PASSWORD)
        tokens: list[tuple[str, str]] = []  # (user id, bearer) of the owners
        for i in range(users):
            u = store.create_user(f"user{i}", f"User {i}", pw)
            store.create_binding(cid, "user", u.id, "project-member", project_id=pids[i % projects])
            if i < owners:
                b = store.create_binding(cid, "user", u.id, "cluster-owner")
                secret = new_token_secret()
                tok = store.create_token(u.id, hash_token_secret(secret), kind="api",
                                         description="bench", expires_at=None)
                tokens.append((b.id, f"{tok.id}:{secret}"))
        set_config(store, cid, AceConfig(enabled=True))
        return {"cluster": cid, "token": reg.token, "projects": pids, "owners": tokens}
    finally:
        store.close()


def create_namespaces(sim: KubeSimProc, tmp: Path, cid: str, pids: list[str], n: int) -> None:
    items = [{"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": f"ns-{i}",
                           "annotations": {PROJECT_ANNOTATION: f"{cid}:{pids[i % len(pids)]}"}}}
             for i in range(n)]
    f = tmp / "namespaces.json"
    f.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    kubectl(sim.kubeconfig, "create", "-f", str(f))


def converge(admin: Rest, cid: str, agent: AgentProc) -> dict[str, Any]:
    t0 = time.monotonic()
    agent.start()
    ten_k: float | None = None
    deadline = t0 + CONVERGE_TIMEOUT_S
    while time.monotonic() < deadline:
        st = admin.call("GET", f"/v3/clusters/{cid}/accesssync")
        present = int(st.get("present") or 0)
        if ten_k is None and present >= TEN_K:
            ten_k = time.monotonic() - t0
        if st.get("synced") and present == st.get("objects") and not st.get("failures"):
            return {"converge_all_s": round(time.monotonic() - t0, 2),
                    "converge_10k_s": None if ten_k is None else round(ten_k, 2),
                    "objects": present, "passes": st.get("passes")}
        time.sleep(STATUS_POLL_S)
    raise SystemExit(f"not converged within {CONVERGE_TIMEOUT_S} s: {st}")


async def direct_create(kubeconfig: Path, n: int) -> float:
    """The baseline: ``n`` RoleBindings created straight against the stand-in, 16 at a time."""
    api_client = await kconfig.new_client_from_config(config_file=str(kubeconfig))
    try:
        core = kclient.CoreV1Api(api_client)
        rbac = kclient.RbacAuthorizationV1Api(api_client)
        ns = "bench-direct"
        await core.create_namespace({"metadata": {"name": ns}})
        sem = asyncio.Semaphore(DIRECT_CONCURRENCY)

        async def one(i: int) -> None:
            body = {"metadata": {"name": f"rb-{i}", "labels": {"bench": "direct"}},
                    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                "name": "view"},
                    "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                  "name": f"u-{i}"}]}
            async with sem:
                await rbac.create_namespaced_role_binding(ns, body, _preload_content=False)

        t0 = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.monotonic() - t0
        await core.delete_namespace(ns)
        return elapsed
    finally:
        await api_client.close()


async def revoke(
    server: ServerProc, sim_url: str, admin_token: str, cid: str, owners: list[tuple[str, str]],
    users: dict[str, str],
) -> dict[str, Any]:
    ctx = ssl.create_default_context(cafile=str(server.ca_path))
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE  # the stand-in's CA is in its kubeconfig; trust it here
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "probe"}}
    proxy_url = f"{server.url}/k8s/clusters/{cid}/api/v1/namespaces/default/configmaps?dryRun=All"
    direct_url = f"{sim_url}/api/v1/namespaces/default/configmaps?dryRun=All"
    api = f"{server.url}/v3"
    times: list[float] = []
    request_s: list[float] = []
    async with aiohttp.ClientSession() as http:
        async def allowed(url: str, bearer: str, tls: ssl.SSLContext) -> bool:
            async with http.post(url, json=body, ssl=tls,
                                 headers={"Authorization": f"Bearer {bearer}"}) as r:
                await r.read()
                if r.status not in (200, 201, 401, 403):
                    raise SystemExit(f"unexpected {r.status} from {url}")
                return r.status in (200, 201)

        async def admin_call(method: str, path: str, doc: Any = None) -> Any:
            async with http.request(method, api + path, json=doc, ssl=ctx,
                                    headers={"Authorization": f"Bearer {admin_token}"}) as r:
                out = await r.json()
                if r.status >= 300:
                    raise SystemExit(f"{method} {path}: {r.status} {out}")
                return out

        for binding_id, bearer in owners:
            deadline = time.monotonic() + REVOKE_TIMEOUT_S
            while not (await allowed(proxy_url, bearer, ctx)
                       and await allowed(direct_url, bearer, insecure)):
                if time.monotonic() > deadline:
                    raise SystemExit("an owner never got access")
                await asyncio.sleep(POLL_S)
            t = time.monotonic()
            await allowed(proxy_url, bearer, ctx)
            request_s.append(time.monotonic() - t)
            user_id = users[binding_id]
            t0 = time.monotonic()
            await admin_call("POST", "/clusterroletemplatebindings", {
                "clusterId": cid, "userId": user_id, "roleTemplateId": "read-only"})
            await admin_call("DELETE", f"/clusterroletemplatebindings/{binding_id}")
            done: dict[str, float] = {}
            while len(done) < 2:
                if time.monotonic() - t0 > REVOKE_TIMEOUT_S:
                    raise SystemExit(f"not refused within {REVOKE_TIMEOUT_S} s: {done}")
                for name, url, tls in (("proxy", proxy_url, ctx), ("direct", direct_url,
                                                                   insecure)):
                    if name not in done and not await allowed(url, bearer, tls):
                        done[name] = time.monotonic() - t0
                await asyncio.sleep(POLL_S)
            times.append(max(done.values()))
    times.sort()
    return {
        "revoke_p50_s": round(statistics.median(times), 3),
        "revoke_p99_s": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3),
        "revoke_max_s": round(times[-1], 3),
        "request_p50_s": round(statistics.median(request_s), 4),
        "changes": len(times),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small population (under a minute)")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--namespaces", type=int, default=200)
    ap.add_argument("--projects", type=int, default=20)
    ap.add_argument("--changes", type=int, default=100)
    args = ap.parse_args()
    if args.quick:
        args.users, args.namespaces, args.projects, args.changes = 200, 40, 4, 20
    tmp = Path(tempfile.mkdtemp(prefix="access-bench-"))
    print(f"work dir: {tmp}", file=sys.stderr)
    hook_port = free_port()
    sim = KubeSimProc(tmp / "sim", [
        "--authorization-mode", "RBAC", "--nodes", "1",
        "--authentication-token-webhook-config-file",
        str(webhook_config(tmp / "webhook.yaml", hook_port))]).start()
    procs: list[Any] = [sim]
    auth: subprocess.Popen[bytes] | None = None
    try:
        (tmp / "data").mkdir()
        filled = fill_store(tmp / "data" / "rancher.db", args.users, args.projects, args.changes)
        cid = filled["cluster"]
        create_namespaces(sim, tmp, cid, filled["projects"], args.namespaces)
        server = ServerProc(tmp / "data", tmp / "server.log", port=free_port())
        server.start()
        procs.append(server)
        admin = Rest(server.url, server.ca_path)
        admin.token = admin.login("admin", ADMIN_PASSWORD)
        log = open(tmp / "kube-api-auth.log", "w")  # noqa: SIM115
        auth = subprocess.Popen(
            [sys.executable, "-m", "kube_api_auth", "--listen-host", "127.0.0.1",
             "--listen-port", str(hook_port), "--kubeconfig", str(sim.kubeconfig),
             "--cluster-name", cid],
            stdout=log, stderr=log, env={**os.environ, "LOG_FORMAT": "json"})
        agent = AgentProc({"CATTLE_SERVER": server.url, "CATTLE_TOKEN": filled["token"],
                           "CATTLE_CA_CHECKSUM": server.ca_checksum}, tmp / "agent.log",
                          args=["import", "--kubeconfig", str(sim.kubeconfig)])
        procs.append(agent)
        result: dict[str, Any] = {"users": args.users, "namespaces": args.namespaces,
                                  "projects": args.projects, "quick": args.quick}
        result.update(converge(admin, cid, agent))
        counted = len(json.loads(kubectl(sim.kubeconfig, "get", LABELLED, "-A", "-l", SELECTOR,
                                         "-o", "json").stdout)["items"])
        if counted != result["objects"]:
            raise SystemExit(f"downstream holds {counted} objects, the server says "
                             f"{result['objects']}")
        direct_s = asyncio.run(direct_create(sim.kubeconfig, counted))
        result["direct_create_s"] = round(direct_s, 2)
        result["converge_ratio"] = round(result["converge_all_s"] / direct_s, 2)
        store = SQLiteStore(tmp / "data" / "rancher.db")
        users = {b.id: b.subject for b in store.list_bindings(cid)}
        store.close()
        result.update(asyncio.run(revoke(server, sim.url, admin.token or "", cid,
                                         filled["owners"], users)))
        print(json.dumps(result), flush=True)
    finally:
        if auth is not None:
            auth.terminate()
            auth.wait(10)
        for p in reversed(procs):
            p.stop()


if __name__ == "__main__":
    main()
