"""Access control end to end, through the real interfaces: the REST API, kubectl through the
server's proxy and through the direct context (kube-api-auth as the stand-in's token webhook), for
each built-in cluster and project template: granted, weakened, removed; disabled and deleted
users; namespaces moving between projects; drift undone; one failing object not stopping the
others; and after each change, our labelled objects downstream equal the desired set exactly."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rancher_server.access.desired import SELECTOR, Inputs, desired_objects
from rancher_server.access.endpoint_config import AceConfig
from rancher_server.access.templates import Catalog
from rancher_server.store import SQLiteStore
from tests.e2e.ace_stack import ace_stack
from tests.kube import KubeSimProc, kubectl
from tests.procs import ServerProc, free_port, metrics, upper_echo_server, wait_until
from tests.rest import Rest

pytestmark = pytest.mark.slow

PASSWORD = "user-password-for-access-1"
GRANTED_WITHIN_S = 5.0
DENIED_WITHIN_S = 10.0
DRIFT_UNDONE_WITHIN_S = 10.0
POLL_S = 0.2
PROJECT_ANNOTATION = "field.cattle.io/projectId"
CREATE_ARGS = {"clusterrole": ["--verb=get", "--resource=pods"],
               "role": ["--verb=get", "--resource=pods"]}
# Refused by RBAC or the proxy (403), or not authenticated on the direct path (401: no token
# synced there).
DENIALS = ("forbidden", "unauthorized", "must be logged in", "may not access cluster")
LABELLED_KINDS = ("clusterroles,clusterrolebindings,rolebindings,serviceaccounts,secrets,"
                  "clusteruserattributes,clusterauthtokens")


@dataclass
class Stack:
    tmp: Path
    sim: KubeSimProc
    server: ServerProc
    admin: Rest
    cluster: str
    n: int = 0

    def user(self, name: str, direct: bool = True) -> tuple[dict[str, Any], Path]:
        """A new user and a kubeconfig with its proxy (``edge``) and direct contexts."""
        self.n += 1
        name = f"{name}{self.n}"
        user = self.admin.call("POST", "/v3/users", {"username": name, "password": PASSWORD})
        rest = Rest(self.server.url, self.server.ca_path)
        rest.token = rest.login(name, PASSWORD)
        # A project binding is enough to be a member: bind read-only on Default to get in.
        default = self.project("Default")
        b = self.admin.call("POST", "/v3/projectroletemplatebindings", {
            "projectId": default, "userId": user["id"], "roleTemplateId": "read-only"})
        out = rest.call("POST", f"/v3/clusters/{self.cluster}?action=generateKubeconfig")
        self.admin.call("DELETE", f"/v3/projectroletemplatebindings/{b['id']}")
        kc = self.tmp / f"{name}.kubeconfig"
        kc.write_text(out["config"])
        contexts = {c["name"] for c in yaml.safe_load(out["config"])["contexts"]}
        assert contexts == ({"edge", "edge-direct"} if direct else {"edge"})
        return user, kc

    def project(self, name: str) -> str:
        for p in self.admin.call("GET", f"/v3/projects?clusterId={self.cluster}")["data"]:
            if p["name"] == name:
                return str(p["id"])
        return str(self.admin.call("POST", "/v3/projects",
                                   {"clusterId": self.cluster, "name": name})["id"])

    def namespace(self, name: str, project_ref: str = "") -> str:
        doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace",
                               "metadata": {"name": name}}
        if project_ref:
            doc["metadata"]["annotations"] = {PROJECT_ANNOTATION: project_ref}
        f = self.tmp / f"ns-{name}.json"
        f.write_text(json.dumps(doc))
        kubectl(self.sim.kubeconfig, "apply", "-f", str(f))
        return name

    def bind(self, user: dict[str, Any], template: str, project_ref: str = "") -> str:
        if project_ref:
            b = self.admin.call("POST", "/v3/projectroletemplatebindings", {
                "projectId": project_ref, "userId": user["id"], "roleTemplateId": template})
        else:
            b = self.admin.call("POST", "/v3/clusterroletemplatebindings", {
                "clusterId": self.cluster, "userId": user["id"], "roleTemplateId": template})
        return str(b["id"])

    def unbind(self, binding_id: str) -> None:
        kind = "project" if binding_id.startswith("prtb-") else "cluster"
        self.admin.call("DELETE", f"/v3/{kind}roletemplatebindings/{binding_id}")


def can(kc: Path, context: str, verb: str, resource: str, namespace: str = "") -> bool:
    """What the API server answers this user on this path (a real request, not can-i)."""
    ns = ["-n", namespace] if namespace else []
    if verb == "list":
        r = kubectl(kc, "--context", context, "get", resource, *ns, "-o", "name", check=False)
    elif verb == "create":
        name = f"probe-{time.monotonic_ns()}"
        extra = CREATE_ARGS.get(resource, [])
        r = kubectl(kc, "--context", context, "create", resource, name, *extra, *ns, check=False)
        if r.returncode == 0:
            kubectl(kc, "--context", context, "delete", resource, name, *ns, "--wait=false",
                    check=False)
    else:
        raise AssertionError(verb)
    err = r.stderr.lower()
    if r.returncode != 0 and not any(w in err for w in DENIALS):
        raise AssertionError(f"unexpected kubectl failure: {r.stderr}")
    return r.returncode == 0


def both(kc: Path, verb: str, resource: str, namespace: str = "") -> tuple[bool, bool]:
    return can(kc, "edge", verb, resource, namespace), can(kc, "edge-direct", verb, resource,
                                                           namespace)


def within(seconds: float, pred: Any, what: str) -> float:
    t0 = time.monotonic()
    wait_until(pred, seconds, POLL_S, what=what)
    return time.monotonic() - t0


def downstream_objects(stack: Stack) -> set[tuple[str, str, str]]:
    r = kubectl(stack.sim.kubeconfig, "get", LABELLED_KINDS, "-A", "-l", SELECTOR, "-o", "json")
    return {(o["kind"], o["metadata"].get("namespace", ""), o["metadata"]["name"])
            for o in json.loads(r.stdout)["items"]}


def desired_now(stack: Stack) -> set[tuple[str, str, str]]:
    spaces = json.loads(kubectl(stack.sim.kubeconfig, "get", "ns", "-o", "json").stdout)
    store = SQLiteStore(stack.server.data_dir / "rancher.db")
    try:
        cfg = stack.admin.call("GET", f"/v3/clusters/{stack.cluster}/authorizedendpoint")
        inputs = Inputs(
            cluster_id=stack.cluster, catalog=Catalog.load(store), users=store.list_users(),
            bindings=store.list_bindings(stack.cluster),
            global_bindings=store.list_global_bindings(),
            projects=store.list_projects(stack.cluster),
            namespaces={n["metadata"]["name"]: n for n in spaces["items"]},
            ace=AceConfig(enabled=bool(cfg["enabled"])), tokens=store.list_tokens(),
            now=time.time(),
        )
        return set(desired_objects(inputs))
    finally:
        store.close()


def assert_exact(stack: Stack) -> None:
    """Our labelled objects downstream are exactly the desired set: nothing missing or stale."""
    def equal() -> bool:
        return downstream_objects(stack) == desired_now(stack)

    wait_until(equal, DENIED_WITHIN_S, 0.5, what="downstream equals the desired set")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("access")
    with ace_stack(tmp) as s:
        admin = s["admin"]
        assert isinstance(admin, Rest)
        cid = str(s["cluster"])
        admin.call("PUT", f"/v3/clusters/{cid}/authorizedendpoint", {"enabled": True})
        sim, server = s["sim"], s["server"]
        assert isinstance(sim, KubeSimProc) and isinstance(server, ServerProc)
        yield Stack(tmp, sim, server, admin, cid)


CLUSTER_CASES = [
    # template, (verb, resource, namespace) it allows, one it does not
    ("cluster-owner", ("create", "clusterrole"), None),
    ("cluster-member", ("create", "configmap", "default"), ("create", "clusterrole")),
    ("read-only", ("list", "configmaps", "default"), ("create", "configmap", "default")),
]


def _args(check: tuple[str, ...]) -> tuple[str, str, str]:
    verb, resource, *ns = check
    return verb, resource, ns[0] if ns else ""


@pytest.mark.parametrize(("template", "allowed", "refused"), CLUSTER_CASES)
def test_cluster_template_granted_weakened_removed(
    stack: Stack, template: str, allowed: tuple[str, ...], refused: tuple[str, ...] | None,
) -> None:
    user, kc = stack.user("c")
    verb, resource, ns = _args(allowed)
    # (The direct path is not tried before the grant: a real kube-apiserver caches a refused
    # token as long as an accepted one, which would hide the grant for that long.)
    assert not can(kc, "edge", verb, resource, ns)
    binding = stack.bind(user, template)
    within(GRANTED_WITHIN_S, lambda: both(kc, verb, resource, ns) == (True, True), "granted")
    if refused is not None:
        assert both(kc, *_args(refused)) == (False, False)
    assert_exact(stack)
    if template != "read-only":  # weakened: the same user moved to read-only
        weaker = stack.bind(user, "read-only")
        stack.unbind(binding)
        binding = weaker
        within(DENIED_WITHIN_S, lambda: both(kc, verb, resource, ns) == (False, False),
               "weakened")
        assert both(kc, "list", "configmaps", "default") == (True, True)
        assert_exact(stack)
    stack.unbind(binding)
    within(DENIED_WITHIN_S,
           lambda: both(kc, "list", "configmaps", "default") == (False, False), "removed")
    assert_exact(stack)


PROJECT_CASES = [
    ("project-owner", ("create", "role")),
    ("project-member", ("create", "configmap")),
    ("read-only", ("list", "configmaps")),
]


@pytest.mark.parametrize(("template", "allowed"), PROJECT_CASES)
def test_project_template_applies_in_the_project_only(
    stack: Stack, template: str, allowed: tuple[str, str],
) -> None:
    user, kc = stack.user("p")
    web = stack.project(f"web-{template}")
    inside = stack.namespace(f"in-{template}", web)
    outside = stack.namespace(f"out-{template}")
    verb, resource = allowed
    binding = stack.bind(user, template, web)
    within(GRANTED_WITHIN_S, lambda: both(kc, verb, resource, inside) == (True, True), "granted")
    assert both(kc, "list", "configmaps", outside) == (False, False)
    assert both(kc, "create", "clusterrole") == (False, False)
    if template == "read-only":
        assert both(kc, "create", "configmap", inside) == (False, False)
    assert_exact(stack)
    stack.unbind(binding)
    within(DENIED_WITHIN_S, lambda: both(kc, "list", "configmaps", inside) == (False, False),
           "removed")


@pytest.mark.parametrize("template", ["project-owner", "project-member"])
def test_project_template_granted_weakened_removed(stack: Stack, template: str) -> None:
    """A project binding weakened to the project's read-only template: writes in the project's
    namespace refused on both paths within 10 s, reads kept; the binding removed: reads refused."""
    user, kc = stack.user("pw")
    proj = stack.project(f"weak-{template}")
    ns = stack.namespace(f"weak-{template}", proj)
    binding = stack.bind(user, template, proj)
    within(GRANTED_WITHIN_S, lambda: both(kc, "create", "configmap", ns) == (True, True),
           "granted")
    assert_exact(stack)
    weaker = stack.bind(user, "read-only", proj)
    stack.unbind(binding)
    within(DENIED_WITHIN_S, lambda: both(kc, "create", "configmap", ns) == (False, False),
           "weakened")
    assert both(kc, "list", "configmaps", ns) == (True, True)
    assert_exact(stack)
    stack.unbind(weaker)
    within(DENIED_WITHIN_S, lambda: both(kc, "list", "configmaps", ns) == (False, False),
           "removed")
    assert_exact(stack)


def test_namespace_moved_to_another_project_moves_the_rights(stack: Stack) -> None:
    user, kc = stack.user("mover")
    a, b = stack.project("team-a"), stack.project("team-b")
    ns = stack.namespace("moving", a)
    stack.bind(user, "project-member", a)
    within(GRANTED_WITHIN_S, lambda: both(kc, "create", "configmap", ns) == (True, True), "in a")
    # Moved through the REST API: the rights leave with it.
    moved = stack.admin.call("PUT", f"/v3/clusters/{stack.cluster}/namespaces/{ns}",
                             {"projectId": b})
    assert moved["projectId"] == b
    within(DENIED_WITHIN_S, lambda: both(kc, "list", "configmaps", ns) == (False, False),
           "moved out")
    listed = stack.admin.call("GET", f"/v3/clusters/{stack.cluster}/namespaces")["data"]
    assert {"name": ns, "projectId": b} in [{k: n[k] for k in ("name", "projectId")}
                                            for n in listed]
    # Moved back with kubectl (the annotation): picked up by the watch.
    kubectl(stack.sim.kubeconfig, "annotate", "namespace", ns, f"{PROJECT_ANNOTATION}={a}",
            "--overwrite")
    within(GRANTED_WITHIN_S, lambda: both(kc, "create", "configmap", ns) == (True, True),
           "moved back")
    assert_exact(stack)


def test_project_member_creates_namespaces_in_their_project_only(stack: Stack) -> None:
    user, kc = stack.user("creator")
    proj = stack.project("makers")
    stack.bind(user, "project-member", proj)
    doc = {"apiVersion": "v1", "kind": "Namespace",
           "metadata": {"name": "made-by-member", "annotations": {PROJECT_ANNOTATION: proj}}}
    f = stack.tmp / "made.json"
    f.write_text(json.dumps(doc))
    wait_until(lambda: kubectl(kc, "--context", "edge", "create", "-f", str(f),
                               check=False).returncode == 0, GRANTED_WITHIN_S, POLL_S,
               what="namespace created through the proxy")
    # Usable at once: the project's rights are in place before the answer.
    assert can(kc, "edge", "create", "configmap", "made-by-member")
    # Not without the annotation, not in another project.
    doc["metadata"] = {"name": "stray"}
    f.write_text(json.dumps(doc))
    r = kubectl(kc, "--context", "edge", "create", "-f", str(f), check=False)
    assert r.returncode != 0 and "forbidden" in r.stderr.lower() and PROJECT_ANNOTATION in r.stderr
    other = stack.project("not-theirs")
    doc["metadata"] = {"name": "stray", "annotations": {PROJECT_ANNOTATION: other}}
    f.write_text(json.dumps(doc))
    r = kubectl(kc, "--context", "edge", "create", "-f", str(f), check=False)
    assert r.returncode != 0 and "forbidden" in r.stderr.lower()


def test_disabled_and_deleted_users_are_denied_on_both_paths(stack: Stack) -> None:
    user, kc = stack.user("gone")
    stack.bind(user, "cluster-member")
    within(GRANTED_WITHIN_S, lambda: both(kc, "create", "configmap", "default") == (True, True),
           "granted")
    stack.admin.call("PUT", f"/v3/users/{user['id']}", {"enabled": False})
    within(DENIED_WITHIN_S, lambda: both(kc, "list", "configmaps", "default") == (False, False),
           "disabled")
    stack.admin.call("PUT", f"/v3/users/{user['id']}", {"enabled": True})
    within(GRANTED_WITHIN_S, lambda: both(kc, "list", "configmaps", "default") == (True, True),
           "enabled again")
    stack.admin.call("DELETE", f"/v3/users/{user['id']}")
    within(DENIED_WITHIN_S, lambda: both(kc, "list", "configmaps", "default") == (False, False),
           "deleted")
    assert_exact(stack)


def test_drift_is_undone(stack: Stack) -> None:
    user, kc = stack.user("drift")
    binding = stack.bind(user, "cluster-member")
    within(GRANTED_WITHIN_S, lambda: both(kc, "create", "configmap", "default") == (True, True),
           "granted")
    admin_kc = stack.sim.kubeconfig
    name = f"cattle-{binding}-edit"
    # Deleted with kubectl: back within seconds.
    kubectl(admin_kc, "delete", "clusterrolebinding", name)
    within(DRIFT_UNDONE_WITHIN_S, lambda: kubectl(
        admin_kc, "get", "clusterrolebinding", name, check=False).returncode == 0, "recreated")
    # Edited (subjects given to someone else): put back.
    patch = json.dumps({"subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                                      "name": "mallory"}]})
    kubectl(admin_kc, "patch", "clusterrolebinding", name, "--type", "merge", "-p", patch)

    def restored() -> bool:
        crb = json.loads(kubectl(admin_kc, "get", "clusterrolebinding", name, "-o",
                                 "json").stdout)
        return [s["name"] for s in crb["subjects"]] == [user["id"]]

    within(DRIFT_UNDONE_WITHIN_S, restored, "subjects restored")
    # Replaced by one with another roleRef (roleRef is immutable: delete + create): put back.
    kubectl(admin_kc, "delete", "clusterrolebinding", name)
    kubectl(admin_kc, "create", "clusterrolebinding", name, "--clusterrole", "cluster-admin",
            "--user", user["id"], check=False)

    def role_ref() -> str:
        r = kubectl(admin_kc, "get", "clusterrolebinding", name, "-o", "json", check=False)
        return str(json.loads(r.stdout)["roleRef"]["name"]) if r.returncode == 0 else ""

    within(DRIFT_UNDONE_WITHIN_S, lambda: role_ref() == "edit", "roleRef restored")
    assert both(kc, "create", "clusterrole") == (False, False)
    assert_exact(stack)


def test_one_failing_object_does_not_stop_the_others(stack: Stack) -> None:
    cid = stack.cluster
    stack.admin.call("PUT", f"/v3/clusters/{cid}/authorizedendpoint", {"enabled": False})
    user, kc = stack.user("blocked", direct=False)
    token_id = yaml.safe_load(kc.read_text())["users"][0]["user"]["token"].split(":")[0]
    # Someone else's immutable Secret holds the name of this token's hash Secret: replacing it
    # is refused with 422 (a real API server's rule), whatever we do.
    squatter = {"apiVersion": "v1", "kind": "Secret", "immutable": True,
                "metadata": {"name": token_id, "namespace": "cattle-system"},
                "data": {"hash": "c3F1YXR0ZXI="}}
    f = stack.tmp / "squatter.json"
    f.write_text(json.dumps(squatter))
    kubectl(stack.sim.kubeconfig, "create", "namespace", "cattle-system", check=False)
    kubectl(stack.sim.kubeconfig, "create", "-f", str(f))
    stack.admin.call("PUT", f"/v3/clusters/{cid}/authorizedendpoint", {"enabled": True})
    stack.bind(user, "cluster-member")

    def failing() -> list[dict[str, Any]]:
        state = stack.admin.call("GET", f"/v3/clusters/{cid}/accesssync")
        return [f for f in state["failures"] if f["name"] == token_id]

    within(DENIED_WITHIN_S, failing, "failure visible")
    failure = failing()[0]
    assert failure["kind"] == "Secret" and failure["status"] == 422, failure
    assert failure["reason"] == "Invalid"
    # Everything else converged: the user works through the proxy.
    within(GRANTED_WITHIN_S, lambda: can(kc, "edge", "create", "configmap", "default"),
           "others converged")
    # The squatter goes: the retry (with backoff) puts ours in place.
    kubectl(stack.sim.kubeconfig, "delete", "secret", token_id, "-n", "cattle-system")
    within(40.0, lambda: not failing(), "failure cleared")
    assert_exact(stack)


CUT_WITHIN_S = 10.0


def _open(kc: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["kubectl", "--kubeconfig", str(kc), "--context", "edge", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _ended_within(proc: subprocess.Popen[str], seconds: float) -> float:
    t0 = time.monotonic()
    try:
        proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"an open request outlived its revocation: {proc.args!r}") from None
    return time.monotonic() - t0


OPENED_WITHIN_S = 15.0
OPEN = "rancher_proxy_open_requests"
CUT = "rancher_proxy_requests_cut_total"


def proxy_metrics(stack: Stack) -> dict[str, float]:
    return metrics(stack.server.url + "/metrics", stack.server.ca_path)


def all_open(stack: Stack, opened: list[subprocess.Popen[str]]) -> bool:
    """The proxy holds as many open requests as were opened, on two readings apart (a watch's
    list or an exec's pod lookup, counted for an instant, is not its long request)."""
    if any(p.poll() is not None for p in opened):
        return True  # the assertion after the wait says which
    if proxy_metrics(stack)[OPEN] != len(opened):
        return False
    time.sleep(0.3)
    return proxy_metrics(stack)[OPEN] == len(opened)


def _forwarding(pf: subprocess.Popen[str], local: int) -> socket.socket:
    """Waits for ``kubectl port-forward`` to listen, then opens a connection through it and
    checks one round trip: the forward is live end to end, with a data stream open."""
    assert pf.stdout is not None
    line = pf.stdout.readline()
    assert "Forwarding from" in line, (line, pf.poll())
    c = socket.create_connection(("127.0.0.1", local), timeout=CUT_WITHIN_S)
    try:
        c.sendall(b"held open")
        assert c.recv(100) == b"HELD OPEN"
    except BaseException:
        c.close()
        raise
    return c


@pytest.mark.parametrize("revoke", ["token", "binding", "user"])
def test_open_watch_logs_exec_and_port_forward_are_cut_on_revocation(
    stack: Stack, revoke: str,
) -> None:
    user, kc = stack.user(f"cut-{revoke}")
    binding = stack.bind(user, "cluster-member")
    within(GRANTED_WITHIN_S, lambda: can(kc, "edge", "create", "configmap", "default"),
           "granted")
    echo, echo_thread = upper_echo_server()
    pod_name = f"held-{revoke}"
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": pod_name, "namespace": "default",
                        "annotations": {"kubesim.io/port-8080": str(echo.getsockname()[1])}},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "ports": [{"containerPort": 8080}]}]}}
    kubectl(stack.sim.kubeconfig, "apply", "-f", "-", input=json.dumps(pod))
    wait_until(lambda: json.loads(kubectl(
        stack.sim.kubeconfig, "get", "pod", pod_name, "-n", "default", "-o", "json"
    ).stdout).get("status", {}).get("phase") == "Running", 20, 0.2, what="pod running")
    local = free_port()
    opened = [
        _open(kc, "get", "configmaps", "-n", "default", "-w"),
        _open(kc, "logs", "-f", pod_name, "-n", "default"),
        _open(kc, "exec", pod_name, "-n", "default", "--", "sleep", "60"),
        _open(kc, "port-forward", f"pod/{pod_name}", f"{local}:8080", "-n", "default"),
    ]
    conn: socket.socket | None = None
    try:
        conn = _forwarding(opened[-1], local)
        # All four are open through the proxy (not merely started) before the revocation:
        # one refused at its start would prove nothing.
        within(OPENED_WITHIN_S, lambda: all_open(stack, opened), "all four open")
        assert all(p.poll() is None for p in opened), [p.poll() for p in opened]
        cut_before = proxy_metrics(stack)[CUT]
        if revoke == "token":
            token_id = yaml.safe_load(kc.read_text())["users"][0]["user"]["token"].split(":")[0]
            stack.admin.call("DELETE", f"/v3/tokens/{token_id}")
        elif revoke == "binding":
            stack.unbind(binding)
        else:
            stack.admin.call("PUT", f"/v3/users/{user['id']}", {"enabled": False})
        t0 = time.monotonic()
        for p in opened:
            _ended_within(p, max(0.0, t0 + CUT_WITHIN_S - time.monotonic()))
        # The guard cut them (not a failure of their own).
        assert proxy_metrics(stack)[CUT] - cut_before == len(opened)
        # The connection through the forward ends with it.
        conn.settimeout(max(0.1, t0 + CUT_WITHIN_S - time.monotonic()))
        with contextlib.suppress(ConnectionResetError):
            assert conn.recv(100) == b""
    finally:
        if conn is not None:
            conn.close()
        for p in opened:
            if p.poll() is None:
                p.kill()
                p.communicate()
        echo.close()
        echo_thread.join(5)
    assert not can(kc, "edge", "list", "configmaps", "default")
