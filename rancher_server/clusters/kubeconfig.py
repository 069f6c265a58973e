"""Kubeconfig documents for the authentication proxy (a pure function; no I/O).

One cluster and one context per downstream cluster, each pointing at
``<server>/k8s/clusters/<cluster id>``, with the server's CA embedded as
``certificate-authority-data``; one user entry carrying the bearer token; the first cluster is the
current context. Context names are the clusters' names (unique in the store), like Rancher's; a
cluster with the authorized endpoint enabled also gets a ``<name>-direct`` context that reaches
its API server without the server."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import yaml


@dataclass(frozen=True)
class KubeconfigCluster:
    id: str
    name: str
    # Authorized cluster endpoint: host:port of the downstream API server and its CA (PEM).
    direct_endpoint: str = ""
    direct_ca_pem: str = ""


def proxy_url(server_url: str, cluster_id: str) -> str:
    return f"{server_url.rstrip('/')}/k8s/clusters/{cluster_id}"


def build_kubeconfig(
    server_url: str, ca_pem: bytes, clusters: Sequence[KubeconfigCluster], token: str,
    user_name: str,
) -> str:
    if not clusters:
        raise ValueError("a kubeconfig needs at least one cluster")
    ca_data = base64.b64encode(ca_pem).decode()
    entries = [
        (c.name, proxy_url(server_url, c.id), ca_data) for c in clusters
    ] + [
        # With the authorized endpoint on, a context that goes straight to the cluster with the
        # same token (kube-api-auth checks it there), usable when the server is down.
        (f"{c.name}-direct", f"https://{c.direct_endpoint}",
         base64.b64encode(c.direct_ca_pem.encode()).decode())
        for c in clusters if c.direct_endpoint
    ]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": ca}}
            for name, server, ca in entries
        ],
        "users": [{"name": user_name, "user": {"token": token}}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": user_name}}
            for name, _, _ in entries
        ],
        "current-context": clusters[0].name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
