"""Builders for the Kubernetes objects kube-api-auth reads (as the API would return them)."""

from __future__ import annotations

import base64
from typing import Any

from kube_api_auth import hashing

NAMESPACE = "cattle-system"
CLUSTER = "c-m-abc123"


def token(
    name: str, user: str, *, enabled: bool = True, expires_at: str = "", cluster: str = CLUSTER
) -> dict[str, Any]:
    return {
        "apiVersion": "cluster.cattle.io/v3",
        "kind": "ClusterAuthToken",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "userName": user,
        "enabled": enabled,
        "expiresAt": expires_at,
        "clusterName": cluster,
        "secretRef": {"name": f"{name}-hash", "key": "hash"},
    }


def secret(token_name: str, secret_value: str) -> dict[str, Any]:
    stored = hashing.create_hash(secret_value)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": f"{token_name}-hash", "namespace": NAMESPACE},
        "data": {"hash": base64.b64encode(stored.encode()).decode()},
    }


def user(name: str, *, groups: list[str] | None = None, enabled: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "cluster.cattle.io/v3",
        "kind": "ClusterUserAttribute",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "groups": groups or [],
        "enabled": enabled,
    }


def review(token_value: str, api_version: str = "authentication.k8s.io/v1") -> dict[str, Any]:
    """A TokenReview exactly as kube-apiserver 1.32 sends it (see k8s-reference/webhook)."""
    return {
        "kind": "TokenReview",
        "apiVersion": api_version,
        "metadata": {"creationTimestamp": None},
        "spec": {
            "token": token_value,
            "audiences": ["https://kubernetes.default.svc.cluster.local"],
        },
        "status": {"user": {}},
    }
