from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from rancher_server.store import SQLiteStore
from rancher_server.tunnel.agent_auth import TunnelAuthError, authenticate, hash_token


def params(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path / "db")
    s.create_cluster("c", hash_token("good-token"))
    return s


def test_cluster_agent_identity(store: SQLiteStore) -> None:
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----").decode()
    ident = authenticate(
        store,
        {
            "X-API-Tunnel-Token": "good-token",
            "X-API-Tunnel-Params": params(
                {"role": "cluster", "cluster": {"address": "10.43.0.1:443", "caCert": ca}}
            ),
        },
        register=True,
    )
    assert ident.issue_credential
    assert ident.role == "cluster" and ident.session_key == ident.cluster.id
    assert ident.api_address == "10.43.0.1:443"
    assert ident.ca_cert_pem.startswith("-----BEGIN")


def test_node_agent_identity(store: SQLiteStore) -> None:
    ident = authenticate(
        store,
        {
            "X-API-Tunnel-Token": "good-token",
            "X-API-Tunnel-Params": params({"node": {"name": "worker-1"}}),
        },
    )
    assert ident.session_key == f"{ident.cluster.id}:worker-1"


@pytest.mark.parametrize(
    "headers,reason",
    [
        ({}, "missing"),
        ({"X-API-Tunnel-Token": "bad"}, "invalid tunnel token"),
        ({"X-API-Tunnel-Token": "x" * 10000}, "missing or invalid"),
        ({"X-API-Tunnel-Token": "good-token", "X-API-Tunnel-Params": "%%%"}, "base64"),
        ({"X-API-Tunnel-Token": "good-token", "X-API-Tunnel-Params": params([1])}, "object"),
        (
            {
                "X-API-Tunnel-Token": "good-token",
                "X-API-Tunnel-Params": params({"role": "node", "node": {"name": "../etc"}}),
            },
            "node name",
        ),
        (
            {
                "X-API-Tunnel-Token": "good-token",
                "X-API-Tunnel-Params": params({"cluster": {"address": "a b"}}),
            },
            "address",
        ),
        (
            {
                "X-API-Tunnel-Token": "good-token",
                "X-API-Tunnel-Params": params({"role": "martian"}),
            },
            "role",
        ),
        ({"X-API-Tunnel-Token": "good-token", "X-API-Tunnel-Params": "A" * 200_000}, "too large"),
    ],
)
def test_rejections(store: SQLiteStore, headers: dict[str, str], reason: str) -> None:
    with pytest.raises(TunnelAuthError, match=reason):
        authenticate(store, headers)
