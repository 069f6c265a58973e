"""The import manifest: ``kubectl apply -f https://<server>/v3/import/<registration token>.yaml``
runs the agents inside a cluster, like Rancher's import command.

What it creates, all in namespace ``cattle-system``:
- ServiceAccount ``cattle`` bound to ``cluster-admin``: the cluster agent manages per-user
  impersonation accounts and role bindings for the server, which needs it (as Rancher's does);
- ServiceAccount ``cattle-node`` with no rights at all: node agents never call the API;
- Secret ``cattle-credentials-<hash>`` with the server URL and registration token; the cluster
  agent adds its own credential to it (``agentCredential``) at its first registration;
- Deployment ``cattle-cluster-agent`` (one replica, probes on the agent's /healthz) and
  DaemonSet ``cattle-node-agent`` (every node, the fallback tunnel), both as non-root with a
  read-only root filesystem and no privilege escalation."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

NAMESPACE = "cattle-system"
DEFAULT_AGENT_IMAGE = "rancher-py/agent:0.1.0"
HEALTH_PORT = 8090
AGENT_CPU_REQUEST = "50m"
AGENT_MEMORY_REQUEST = "64Mi"
AGENT_MEMORY_LIMIT = "256Mi"


HOST_ROOT = "/host"  # where the node agent sees the host (CATTLE_HOST_ROOT)
HOST_DIRS = ("proc", "sys", "run")

def _security() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _env(secret: str, ca_checksum: str) -> list[dict[str, Any]]:
    return [
        {"name": "CATTLE_SERVER", "valueFrom": {"secretKeyRef": {"name": secret, "key": "url"}}},
        {"name": "CATTLE_TOKEN", "valueFrom": {"secretKeyRef": {"name": secret, "key": "token"}}},
        {"name": "CATTLE_CA_CHECKSUM", "value": ca_checksum},
        {"name": "CATTLE_HEALTH_LISTEN", "value": f"0.0.0.0:{HEALTH_PORT}"},
    ]


def _container(name: str, command: str, env: list[dict[str, Any]], image: str) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/healthz", "port": HEALTH_PORT}, "periodSeconds": 15}
    return {
        "name": name,
        "image": image,
        "command": [command],
        "env": env,
        "ports": [{"name": "health", "containerPort": HEALTH_PORT}],
        "readinessProbe": probe,
        "livenessProbe": {**probe, "failureThreshold": 8},
        "resources": {
            "requests": {"cpu": AGENT_CPU_REQUEST, "memory": AGENT_MEMORY_REQUEST},
            "limits": {"memory": AGENT_MEMORY_LIMIT},
        },
        "securityContext": _security(),
    }


def import_manifest(
    server_url: str, token: str, ca_checksum: str, image: str = DEFAULT_AGENT_IMAGE
) -> str:
    secret = "cattle-credentials-" + hashlib.sha256(token.encode()).hexdigest()[:8]
    labels = {"app": "cattle-cluster-agent"}
    node_labels = {"app": "cattle-node-agent"}
    env = _env(secret, ca_checksum)
    node_env = [
        *env,
        {"name": "CATTLE_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "cattle", "namespace": NAMESPACE},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "cattle-node", "namespace": NAMESPACE},
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "cattle-admin-binding"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "cattle", "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": secret, "namespace": NAMESPACE},
            "stringData": {"url": server_url, "token": token},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "cattle-cluster-agent", "namespace": NAMESPACE, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "cattle",
                        "containers": [_container(
                            "cluster-agent", "cluster-agent",
                            [*env, {"name": "CATTLE_CREDENTIAL_SECRET", "value": secret}], image,
                        )],
                    },
                },
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {
                "name": "cattle-node-agent",
                "namespace": NAMESPACE,
                "labels": node_labels,
            },
            "spec": {
                "selector": {"matchLabels": node_labels},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": node_labels},
                    "spec": {
                        "serviceAccountName": "cattle-node",
                        "automountServiceAccountToken": False,
                        "tolerations": [{"operator": "Exists"}],
                        "containers": [{
                            **_container("node-agent", "node-agent",
                                         [*node_env, {"name": "CATTLE_HOST_ROOT",
                                                      "value": HOST_ROOT}], image),
                            "volumeMounts": [
                                {"name": f"host-{d}", "mountPath": f"{HOST_ROOT}/{d}",
                                 "readOnly": True} for d in HOST_DIRS],
                        }],
                        # The node's facts and stats: /proc and /sys, and /run for the
                        # container runtime's socket (its presence only), read-only.
                        "volumes": [
                            {"name": f"host-{d}", "hostPath": {"path": f"/{d}",
                                                               "type": "Directory"}}
                            for d in HOST_DIRS],
                    },
                },
            },
        },
    ]
    return yaml.safe_dump_all(docs, sort_keys=False)
