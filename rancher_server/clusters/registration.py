"""Cluster records and their registration tokens (shown once, stored as a hash)."""

from __future__ import annotations

import secrets
import shlex
from dataclasses import dataclass

from rancher_server.constants import REGISTRATION_TOKEN_BYTES
from rancher_server.store import Cluster, Store
from rancher_server.tunnel.agent_auth import hash_token


@dataclass(frozen=True)
class Registration:
    cluster: Cluster
    token: str

    def agent_command(self, server_url: str, ca_checksum: str) -> str:
        env = {
            "CATTLE_SERVER": server_url,
            "CATTLE_TOKEN": self.token,
            "CATTLE_CA_CHECKSUM": ca_checksum,
        }
        return " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " cluster-agent"


def new_token() -> str:
    return secrets.token_urlsafe(REGISTRATION_TOKEN_BYTES)


def create_cluster(store: Store, name: str) -> Registration:
    token = new_token()
    cluster = store.create_cluster(name, hash_token(token))
    return Registration(cluster, token)


def rotate_token(store: Store, cluster_id: str) -> Registration:
    token = new_token()
    store.set_cluster_token_hash(cluster_id, hash_token(token))
    return Registration(store.get_cluster(cluster_id), token)
