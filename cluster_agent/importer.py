"""``cluster-agent import``: bring an existing cluster under the server from outside it.

Given a kubeconfig the user already has (admin on that cluster), it creates the agent's identity in
the cluster (namespace ``cattle-system``, ServiceAccount ``cattle``, bound to ``cluster-admin`` as
Rancher's import manifest does), obtains a token for it (TokenRequest), and then runs the cluster
agent from this machine against the cluster's API server, so the cluster appears in the server and
its kubectl traffic goes through the server's proxy.

    CATTLE_SERVER=... CATTLE_TOKEN=... CATTLE_CA_CHECKSUM=... \
        cluster-agent import --kubeconfig ~/.kube/config
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import hashlib
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from cluster_agent.config import ConfigError
from cluster_agent.kube import AgentKube, KubeError
from cluster_agent.kubeconfig import load
from rancher_tunnel.version import version_line

NAMESPACE = "cattle-system"
ACCOUNT = "cattle"
BINDING = "cattle-admin-binding"
TOKEN_EXPIRATION_S = 365 * 24 * 3600
HTTP_CONFLICT = 409  # the object exists already: importing twice is fine
CREDENTIAL_KEY_CHARS = 16


def identity_objects() -> list[tuple[str, dict[str, Any]]]:
    labels = {"cattle.io/creator": "rancher-py"}
    return [
        (
            "/api/v1/namespaces",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": NAMESPACE, "labels": labels},
            },
        ),
        (
            f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": ACCOUNT, "namespace": NAMESPACE, "labels": labels},
            },
        ),
        (
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": BINDING, "labels": labels},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NAMESPACE}],
            },
        ),
    ]


async def provision(kubeconfig: str) -> str:
    """Create the agent's account (idempotent: 409 is fine) and return a token for it."""
    try:
        async with AgentKube.from_kubeconfig(kubeconfig) as kube:
            for collection, obj in identity_objects():
                await kube.request_json(
                    "POST", collection, body=obj, accept=frozenset({HTTP_CONFLICT}))
            path = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/{ACCOUNT}/token"
            body = {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": TOKEN_EXPIRATION_S},
            }
            _, doc = await kube.request_json("POST", path, body=body)
    except KubeError as e:
        raise ConfigError(f"cannot set up the agent's identity: {e}") from e
    token = (doc.get("status") or {}).get("token", "")
    if not token:
        raise ConfigError("the cluster returned an empty token")
    return str(token)


def _write_private(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)


def _memory_file(name: str, data: str) -> str | None:
    """A file that exists only in this process's memory (Linux memfd): nothing on disk, gone
    with the process however it ends (kill -9 included). Its path is ``/proc/self/fd/N``."""
    create = getattr(os, "memfd_create", None)
    if create is None or not os.path.isdir("/proc/self/fd"):
        return None
    fd: int = create(name, 0)  # no MFD_CLOEXEC: the agent reads it in this process only
    os.write(fd, data.encode())
    return f"/proc/self/fd/{fd}"


def _remove_on_signals(path: Path) -> None:
    """Remove ``path`` at exit and on SIGTERM/SIGINT/SIGHUP arriving before the agent installs its
    own handlers (the agent then exits normally on those, and ``atexit`` removes it)."""
    atexit.register(shutil.rmtree, path, ignore_errors=True)

    def on_signal(signum: int, _: object) -> None:
        shutil.rmtree(path, ignore_errors=True)
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)


def default_credential_file(kubeconfig: str, server: str, api_address: str) -> str:
    """Beside the kubeconfig, one file per (server, cluster API server)."""
    key = hashlib.sha256(f"{server}\n{api_address}".encode()).hexdigest()[:CREDENTIAL_KEY_CHARS]
    return str(Path(kubeconfig).resolve().parent / f"rancher-agent-{key}.credential")


def prepare_env(kubeconfig: str, credential_file: str = "") -> dict[str, str]:
    """Provision the agent's identity and return the environment the agent runs with. The
    service-account token never touches the disk where memfd exists; elsewhere it is in a private
    temporary directory removed at exit and on signals."""
    target = load(kubeconfig)
    token = asyncio.run(provision(kubeconfig))
    env = {
        "CATTLE_K8S_API": target.address,
        "CATTLE_CREDENTIAL_FILE": credential_file or os.environ.get("CATTLE_CREDENTIAL_FILE")
        or default_credential_file(
            kubeconfig, os.environ.get("CATTLE_SERVER", ""), target.address),
    }
    token_path = _memory_file("cattle-token", token)
    ca_path = _memory_file("cattle-ca", target.ca_pem)
    if token_path is not None and ca_path is not None:
        return {**env, "CATTLE_K8S_TOKEN_FILE": token_path, "CATTLE_K8S_CA_FILE": ca_path}
    d = Path(tempfile.mkdtemp(prefix="cattle-import-"))  # 0700
    _remove_on_signals(d)
    _write_private(d / "token", token)
    (d / "ca.crt").write_text(target.ca_pem)
    return {
        **env, "CATTLE_K8S_CA_FILE": str(d / "ca.crt"), "CATTLE_K8S_TOKEN_FILE": str(d / "token"),
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="cluster-agent import",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=version_line("cluster-agent"))
    p.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config"),
    )
    p.add_argument(
        "--credential-file", default="",
        help="where the agent keeps the credential the server issues it (mode 0600; default: "
             "beside the kubeconfig, one per server and cluster; env CATTLE_CREDENTIAL_FILE)",
    )
    return p.parse_args(argv)
