"""Conformance: authentication, impersonation, RBAC and the review APIs, driven by real kubectl
and kubernetes_asyncio. Runs against the stand-in, or the server CONFORMANCE_KUBECONFIG names.

Against another server, two more variables let the static-token and webhook scenarios run there
too (each is skipped, naming its variable, when it is not set):

- ``CONFORMANCE_STATIC_TOKEN_KUBECONFIG``: a kubeconfig for that server whose user is a static
  token of its ``--token-auth-file``, from the line ``<token>,alice,alice-uid,"devs"``; alice
  holds no RBAC grants.
- ``CONFORMANCE_TOKEN_WEBHOOK_CONFIG``: the file that server was started with as
  ``--authentication-token-webhook-config-file``, as written by
  ``python -m tests.kubesim_auth.webhook_server <dir>`` (keep it running): it authenticates
  ``webhook-token-bob`` and ``webhook-token-carol``, the users of the reference captures.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException
from multidict import CIMultiDict

from tests.kubesim_auth.captures import load as load_reference
from tests.kubesim_launch import kubesim_argv, start_ready, stop

from .conftest import (
    KUBECTL_TIMEOUT_S,
    STARTUP_TIMEOUT_S,
    Kubectl,
    against_other_server,
    kubectl_argv,
    wait_for,
)

RBAC = "rbac.authorization.k8s.io"
HTTP_TIMEOUT_S = 10.0
REVOCATION_WAIT_S = 20.0  # kube-apiserver caches a successful token lookup for 10 s
RBAC_PROPAGATION_S = 10.0  # a binding reaches a real authorizer in ms; allow a loaded machine
POLL_INTERVAL_S = 0.2
STATIC_TOKEN_ENV = "CONFORMANCE_STATIC_TOKEN_KUBECONFIG"
TOKEN_WEBHOOK_ENV = "CONFORMANCE_TOKEN_WEBHOOK_CONFIG"
STAND_IN_ALICE_TOKEN = "alice-token"
STOP_TIMEOUT_S = 10.0


def _cluster(kubeconfig: str) -> dict[str, Any]:
    """The kubeconfig's cluster with its CA inline: certificate-authority-data and never also
    a certificate-authority file (kubectl refuses a cluster that has both)."""
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    cluster: dict[str, Any] = dict(doc["clusters"][0]["cluster"])
    ca_file = cluster.pop("certificate-authority", None)
    if ca_file and "certificate-authority-data" not in cluster:
        ca = (Path(kubeconfig).parent / ca_file).read_bytes()
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    return cluster


def _token_kubeconfig(kubeconfig: str, token: str, directory: Path) -> str:
    """A kubeconfig for the same server that authenticates with ``token`` only."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": _cluster(kubeconfig)}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }
    path = directory / f"token-{uuid.uuid4().hex[:8]}.kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _kubectl_as(kubeconfig: str, cache_dir: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        kubectl_argv(kubeconfig, cache_dir, *args),
        capture_output=True,
        text=True,
        timeout=KUBECTL_TIMEOUT_S,
        check=False,
    )


def _once_allowed(
    run: Callable[[], subprocess.CompletedProcess[str]], what: str
) -> subprocess.CompletedProcess[str]:
    """Repeat ``run`` until it succeeds: a new binding reaches the authorizer a few ms after the
    write is acknowledged (its informer), so no reader sees it at once."""

    def attempt() -> subprocess.CompletedProcess[str] | None:
        out = run()
        return out if out.returncode == 0 else None

    result: subprocess.CompletedProcess[str] = wait_for(attempt, what, RBAC_PROPAGATION_S)
    return result


def _apply(kubectl: Kubectl, *objs: dict[str, Any]) -> None:
    for obj in objs:
        kubectl("apply", "-f", "-", input=json.dumps(obj))


def _binding(
    kind: str,
    name: str,
    role_kind: str,
    role: str,
    subjects: list[dict[str, Any]],
    namespace: str = "",
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": subjects,
    }


@pytest.fixture
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="conf-auth-") as tmp:
        yield Path(tmp)


@pytest.fixture
def cluster_names(kubectl: Kubectl) -> Iterator[list[tuple[str, str]]]:
    """Cluster-scoped objects a test creates, deleted afterwards: (resource, name)."""
    created: list[tuple[str, str]] = []
    yield created
    for resource, name in created:
        kubectl("delete", resource, name, "--ignore-not-found", check=False)


def _sa_token(kubectl: Kubectl, namespace: str, name: str) -> str:
    kubectl("-n", namespace, "create", "serviceaccount", name)
    return kubectl("-n", namespace, "create", "token", name).stdout.strip()


def test_impersonation_refused_then_allowed_after_bindings(
    kubectl: Kubectl,
    kubeconfig: str,
    kubectl_cache_dir: str,
    namespace: str,
    scratch: Path,
    cluster_names: list[tuple[str, str]],
) -> None:
    sa_user = f"system:serviceaccount:{namespace}:imp"
    as_imp = _token_kubeconfig(kubeconfig, _sa_token(kubectl, namespace, "imp"), scratch)
    target = f"allowed-{uuid.uuid4().hex[:6]}"

    # (kubectl auth whoami hides a 403 behind "the selfsubjectreviews API is not enabled ...")
    refused = _kubectl_as(as_imp, kubectl_cache_dir, "get", "configmaps", "--as", target)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f'Error from server (Forbidden): users "{target}" is forbidden: User "{sa_user}" cannot '
        'impersonate resource "users" in API group "" at the cluster scope'
    )

    role = f"imp-{uuid.uuid4().hex[:6]}"
    cluster_names.extend([("clusterrolebinding", role), ("clusterrole", role)])
    _apply(
        kubectl,
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": role},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["users"],
                    "verbs": ["impersonate"],
                    "resourceNames": [target],
                }
            ],
        },
        _binding(
            "ClusterRoleBinding",
            role,
            "ClusterRole",
            role,
            [{"kind": "ServiceAccount", "name": "imp", "namespace": namespace}],
        ),
    )
    allowed = _once_allowed(
        lambda: _kubectl_as(
            as_imp, kubectl_cache_dir, "auth", "whoami", "--as", target, "-o", "json"
        ),
        "the impersonation grant",
    )
    info = json.loads(allowed.stdout)["status"]["userInfo"]
    assert info == {"username": target, "groups": ["system:authenticated"]}
    other = _kubectl_as(as_imp, kubectl_cache_dir, "get", "configmaps", "--as", "someone-else")
    assert 'users "someone-else" is forbidden' in other.stderr

    # impersonating a service account is checked in its namespace: a RoleBinding grants it
    sa_target = f"system:serviceaccount:{namespace}:builder"
    refused = _kubectl_as(as_imp, kubectl_cache_dir, "get", "configmaps", "--as", sa_target)
    assert refused.stderr.strip() == (
        f'Error from server (Forbidden): serviceaccounts "builder" is forbidden: User "{sa_user}" '
        f'cannot impersonate resource "serviceaccounts" in API group "" in the namespace '
        f'"{namespace}"'
    )
    _apply(
        kubectl,
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "Role",
            "metadata": {"name": "sa-impersonator", "namespace": namespace},
            "rules": [
                {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["impersonate"]}
            ],
        },
        _binding(
            "RoleBinding",
            "imp-sa",
            "Role",
            "sa-impersonator",
            [{"kind": "ServiceAccount", "name": "imp", "namespace": namespace}],
            namespace,
        ),
    )
    allowed = _once_allowed(
        lambda: _kubectl_as(
            as_imp, kubectl_cache_dir, "auth", "whoami", "--as", sa_target, "-o", "json"
        ),
        "the service account impersonation grant",
    )
    info = json.loads(allowed.stdout)["status"]["userInfo"]
    assert info["username"] == sa_target
    assert info["groups"] == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]


def test_whoami_and_can_i_as_impersonated_user(kubectl: Kubectl, namespace: str) -> None:
    user = f"jane-{uuid.uuid4().hex[:6]}"
    out = kubectl("auth", "whoami", "-o", "json", user=user, groups=("g1", "g1,g2"))
    info = json.loads(out.stdout)["status"]["userInfo"]
    assert info == {"username": user, "groups": ["g1", "g1,g2", "system:authenticated"]}
    table = kubectl("auth", "whoami", user=user).stdout.splitlines()
    assert table[1].split() == ["Username", user]

    denied = kubectl("auth", "can-i", "list", "pods", "-n", namespace, user=user, check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    _apply(
        kubectl,
        _binding(
            "RoleBinding",
            "jane-view",
            "ClusterRole",
            "view",
            [{"kind": "User", "apiGroup": RBAC, "name": user}],
            namespace,
        ),
    )
    granted = _once_allowed(
        lambda: kubectl("auth", "can-i", "list", "pods", "-n", namespace, user=user, check=False),
        "the view binding",
    )
    assert granted.stdout.strip() == "yes"
    assert (
        kubectl(
            "auth", "can-i", "delete", "pods", "-n", namespace, user=user, check=False
        ).stdout.strip()
        == "no"
    )
    assert (
        kubectl(
            "auth", "can-i", "list", "pods", "-n", "default", user=user, check=False
        ).stdout.strip()
        == "no"
    )
    rules = kubectl("auth", "can-i", "--list", "-n", namespace, user=user).stdout
    pods = [" ".join(line.split()) for line in rules.splitlines() if line.startswith("pods ")]
    assert pods
    assert all(row.endswith("[get list watch]") for row in pods)


def test_forbidden_answers_name_the_impersonated_user(kubectl: Kubectl, namespace: str) -> None:
    out = kubectl("get", "configmaps", "-n", namespace, user="nobody", check=False)
    assert out.returncode == 1
    assert out.stderr.strip() == (
        'Error from server (Forbidden): configmaps is forbidden: User "nobody" cannot list '
        f'resource "configmaps" in API group "" in the namespace "{namespace}"'
    )
    out = kubectl("get", "deployment", "web", "-n", namespace, user="nobody", check=False)
    assert out.stderr.strip() == (
        'Error from server (Forbidden): deployments.apps "web" is forbidden: User "nobody" cannot '
        f'get resource "deployments" in API group "apps" in the namespace "{namespace}"'
    )
    out = kubectl("get", "nodes", user="nobody", check=False)
    assert out.stderr.strip() == (
        'Error from server (Forbidden): nodes is forbidden: User "nobody" cannot list resource '
        '"nodes" in API group "" at the cluster scope'
    )


async def test_forbidden_status_body_for_a_service_account(
    kubectl: Kubectl, kubeconfig: str, namespace: str, scratch: Path
) -> None:
    token = _sa_token(kubectl, namespace, "reader")
    body = await _raw_get(kubeconfig, f"/api/v1/namespaces/{namespace}/configmaps/cm1", token)
    assert body == (
        403,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": f'configmaps "cm1" is forbidden: User "system:serviceaccount:{namespace}:'
            f'reader" cannot get resource "configmaps" in API group "" in the namespace '
            f'"{namespace}"',
            "reason": "Forbidden",
            "details": {"name": "cm1", "kind": "configmaps"},
            "code": 403,
        },
    )
    assert (await _raw_get(kubeconfig, "/api/v1/namespaces", "not-a-valid-token")) == (
        401,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        },
    )


async def _raw_get(
    kubeconfig: str,
    path: str,
    token: str | None,
    extra_headers: Sequence[tuple[str, str]] = (),
    as_admin: bool = False,
) -> tuple[int, Any]:
    cluster = _cluster(kubeconfig)
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    headers: list[tuple[str, str]] = [("Accept", "application/json"), *extra_headers]
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    if as_admin:
        _admin_credentials(kubeconfig, ctx, headers)
    timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(cluster["server"] + path, ssl=ctx, headers=CIMultiDict(headers)) as resp,
    ):
        if resp.content_type == "application/json":
            return resp.status, await resp.json()
        return resp.status, await resp.text()


def _admin_credentials(
    kubeconfig: str, ctx: ssl.SSLContext, headers: list[tuple[str, str]]
) -> None:
    """Load the admin kubeconfig's client certificate (inline or files) into ``ctx``, or its
    token into headers."""
    user = yaml.safe_load(Path(kubeconfig).read_text())["users"][0]["user"]
    if user.get("token"):
        headers.append(("Authorization", f"Bearer {user['token']}"))
        return
    base = Path(kubeconfig).parent
    if user.get("client-certificate") and user.get("client-key"):
        ctx.load_cert_chain(base / user["client-certificate"], base / user["client-key"])
        return
    if not user.get("client-certificate-data"):
        pytest.skip(
            "needs an admin kubeconfig with a token or a client certificate (not an exec or "
            "auth-provider plugin)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp, "c.pem"), Path(tmp, "k.pem")
        cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        ctx.load_cert_chain(cert, key)


async def test_impersonation_header_errors(kubeconfig: str, namespace: str) -> None:
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, text = await _raw_get(
        kubeconfig, path, None, [("Impersonate-Group", "devs")], as_admin=True
    )
    assert (status, text) == (
        500,
        f'Internal Server Error: "{path}": requested [{{Group  devs    }}] without impersonating '
        "a user\n",
    )
    status, body = await _raw_get(
        kubeconfig,
        f"{path}/cm1",
        None,
        [("Impersonate-User", "nobody"), ("Impersonate-Group", "g1"), ("Impersonate-Group", "g2")],
        as_admin=True,
    )
    assert (status, body["message"]) == (
        403,
        'configmaps "cm1" is forbidden: User "nobody" cannot get resource "configmaps" in API '
        f'group "" in the namespace "{namespace}"',
    )
    status, body = await _raw_get(
        kubeconfig,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        None,
        [("Impersonate-User", "")],
        as_admin=True,
    )
    assert status == 405  # GET on a create-only resource: the empty user header was ignored


async def test_anonymous_requests(kubeconfig: str, namespace: str) -> None:
    status, version = await _raw_get(kubeconfig, "/version", None)
    assert status == 200
    assert "gitVersion" in version
    status, body = await _raw_get(kubeconfig, f"/api/v1/namespaces/{namespace}/configmaps", None)
    assert status == 403
    assert body["message"] == (
        'configmaps is forbidden: User "system:anonymous" cannot list resource "configmaps" in '
        f'API group "" in the namespace "{namespace}"'
    )


async def test_create_token_then_token_review(
    kubectl: Kubectl, api_client: client.ApiClient, namespace: str
) -> None:
    token = _sa_token(kubectl, namespace, "builder")
    authn = client.AuthenticationV1Api(api_client)
    review = await authn.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{namespace}:builder"
    assert review.status.user.groups == [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]
    sa = await client.CoreV1Api(api_client).read_namespaced_service_account("builder", namespace)
    assert review.status.user.uid == sa.metadata.uid
    (credential,) = review.status.user.extra["authentication.kubernetes.io/credential-id"]
    assert credential.startswith("JTI=")

    kubectl("-n", namespace, "delete", "serviceaccount", "builder")
    deadline = time.monotonic() + REVOCATION_WAIT_S
    while True:
        review = await authn.create_token_review(
            client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
        )
        if not review.status.authenticated:
            break
        assert time.monotonic() < deadline, "token still valid after its ServiceAccount was deleted"
        await asyncio.sleep(POLL_INTERVAL_S)


async def test_token_request_audiences_and_duration(
    kubectl: Kubectl, api_client: client.ApiClient, namespace: str
) -> None:
    kubectl("-n", namespace, "create", "serviceaccount", "aud")
    token = kubectl(
        "-n", namespace, "create", "token", "aud", "--audience", "vault", "--duration", "20m"
    ).stdout.strip()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["aud"] == ["vault"]
    assert claims["exp"] - claims["iat"] == 1200
    assert claims["sub"] == f"system:serviceaccount:{namespace}:aud"
    authn = client.AuthenticationV1Api(api_client)
    review = await authn.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token, audiences=["vault"]))
    )
    assert review.status.authenticated is True
    assert review.status.audiences == ["vault"]
    review = await authn.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    assert not review.status.authenticated
    too_short = kubectl("-n", namespace, "create", "token", "aud", "--duration", "1m", check=False)
    assert too_short.returncode == 1
    assert "may not specify a duration less than 10 minutes" in too_short.stderr


async def test_self_subject_access_review_through_kubernetes_asyncio(
    api_client: client.ApiClient,
) -> None:
    authz = client.AuthorizationV1Api(api_client)
    body = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(
            non_resource_attributes=client.V1NonResourceAttributes(path="/version", verb="get")
        )
    )
    review = await authz.create_self_subject_access_review(body)
    assert review.status.allowed is True
    with pytest.raises(ApiException) as info:
        await authz.create_self_subject_access_review(
            client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec())
        )
    assert info.value.status == 422


# --------------------------------------------------------------------------- static tokens


@pytest.fixture(scope="module")
def stand_in_with_tokens() -> Iterator[str | None]:
    """Against the stand-in, the admin kubeconfig of a second stand-in started with a static
    token file (alice) and the demo token webhook; None against another server, whose tokens
    and webhook the variables in the module docstring describe."""
    if against_other_server():
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="conf-auth-tokens-") as tmp:
        work = Path(tmp)
        tokens = work / "tokens.csv"
        tokens.write_text(f'{STAND_IN_ALICE_TOKEN},alice,alice-uid,"devs"\n')
        webhook, webhook_ready = start_ready(
            [sys.executable, "-m", "tests.kubesim_auth.webhook_server", tmp],
            work / "webhook.log",
            STARTUP_TIMEOUT_S,
        )
        webhook_config = str(webhook_ready["kubeconfig"])
        try:
            cmd = kubesim_argv(
                work / "kc",
                [
                    "--authorization-mode",
                    "RBAC",
                    "--token-auth-file",
                    str(tokens),
                    "--authentication-token-webhook-config-file",
                    webhook_config,
                ],
                cert_dir=work / "pki",
            )
            proc, ready = start_ready(cmd, work / "kubesim.log", STARTUP_TIMEOUT_S)
            try:
                yield str(ready["kubeconfig"])
            finally:
                stop(proc, STOP_TIMEOUT_S)
        finally:
            stop(webhook, STOP_TIMEOUT_S)


@pytest.fixture
def static_token_kubeconfig(stand_in_with_tokens: str | None, scratch: Path) -> str:
    """A kubeconfig whose user is the static-token user alice."""
    if stand_in_with_tokens is not None:
        return _token_kubeconfig(stand_in_with_tokens, STAND_IN_ALICE_TOKEN, scratch)
    path = os.environ.get(STATIC_TOKEN_ENV)
    if not path:
        pytest.skip(
            f"{STATIC_TOKEN_ENV} is not set: the server's --token-auth-file needs the line "
            '<token>,alice,alice-uid,"devs" and this variable a kubeconfig with that token'
        )
    return path


@pytest.fixture
def token_webhook_server(stand_in_with_tokens: str | None, kubeconfig: str) -> str:
    """An admin kubeconfig of a server whose token webhook is tests.kubesim_auth.webhook_server."""
    if stand_in_with_tokens is not None:
        return stand_in_with_tokens
    config = os.environ.get(TOKEN_WEBHOOK_ENV)
    if not config:
        pytest.skip(
            f"{TOKEN_WEBHOOK_ENV} is not set: the server needs "
            "--authentication-token-webhook-config-file from "
            "python -m tests.kubesim_auth.webhook_server, and this variable that file"
        )
    assert Path(config).is_file(), f"{TOKEN_WEBHOOK_ENV}={config} is not a file"
    return kubeconfig


def test_static_token_user(
    static_token_kubeconfig: str, kubectl_cache_dir: str, scratch: Path
) -> None:
    as_alice = static_token_kubeconfig
    whoami = _kubectl_as(as_alice, kubectl_cache_dir, "auth", "whoami", "-o", "json")
    assert whoami.returncode == 0, whoami.stderr
    assert json.loads(whoami.stdout)["status"]["userInfo"] == {
        "username": "alice",
        "uid": "alice-uid",
        "groups": ["devs", "system:authenticated"],
    }
    denied = _kubectl_as(as_alice, kubectl_cache_dir, "get", "configmaps", "-n", "default")
    assert denied.returncode == 1
    assert denied.stderr.strip() == (
        'Error from server (Forbidden): configmaps is forbidden: User "alice" cannot list '
        'resource "configmaps" in API group "" in the namespace "default"'
    )
    can_i = _kubectl_as(as_alice, kubectl_cache_dir, "auth", "can-i", "create", "pods")
    assert (can_i.returncode, can_i.stdout.strip()) == (1, "no")
    bad = _kubectl_as(_token_kubeconfig(as_alice, "wrong", scratch), kubectl_cache_dir, "get", "ns")
    assert bad.stderr.strip() == "error: You must be logged in to the server (Unauthorized)"


async def test_legacy_service_account_token_secret(
    kubectl: Kubectl, api_client: client.ApiClient, namespace: str
) -> None:
    kubectl("-n", namespace, "create", "serviceaccount", "legacy")
    _apply(
        kubectl,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "legacy-token",
                "namespace": namespace,
                "annotations": {"kubernetes.io/service-account.name": "legacy"},
            },
            "type": "kubernetes.io/service-account-token",
        },
    )
    core = client.CoreV1Api(api_client)
    deadline = time.monotonic() + REVOCATION_WAIT_S
    while True:
        secret = await core.read_namespaced_secret("legacy-token", namespace)
        if secret.data and secret.data.get("token"):
            break
        assert time.monotonic() < deadline, "the token controller did not fill the secret"
        await asyncio.sleep(POLL_INTERVAL_S)
    assert base64.b64decode(secret.data["namespace"]).decode() == namespace
    assert b"BEGIN CERTIFICATE" in base64.b64decode(secret.data["ca.crt"])
    token = base64.b64decode(secret.data["token"]).decode()
    authn = client.AuthenticationV1Api(api_client)
    review = await authn.create_token_review(
        client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token))
    )
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{namespace}:legacy"


def test_token_webhook_users(
    token_webhook_server: str, kubectl_cache_dir: str, scratch: Path
) -> None:
    golden = load_reference("webhook/kubectl-auth-whoami-webhook-users.json")
    cases = {
        "webhook-token-bob": next(v for k, v in golden.items() if k.startswith("bob")),
        "webhook-token-carol": next(v for k, v in golden.items() if k.startswith("carol")),
    }
    for token, expected in cases.items():
        kc = _token_kubeconfig(token_webhook_server, token, scratch)
        for command, want in expected.items():
            args = command.split()[1:]
            if args[:2] == ["get", "ns"]:
                args = args[:2] + (["default"] if "default" in args else [])
            out = _kubectl_as(kc, kubectl_cache_dir, *args)
            assert out.returncode == want["exit_code"], (command, out.stderr)
            if args[:2] == ["auth", "whoami"] and "-o" not in args:
                assert out.stdout == want["stdout"]
            elif "-o" in args:
                got = json.loads(out.stdout)["status"]
                assert got == json.loads(want["stdout"])["status"]
            elif want["exit_code"]:
                assert out.stderr == want["stderr"]
    unknown = _kubectl_as(
        _token_kubeconfig(token_webhook_server, "nope", scratch),
        kubectl_cache_dir,
        "auth",
        "whoami",
    )
    assert unknown.stderr == "error: You must be logged in to the server (Unauthorized)\n"
