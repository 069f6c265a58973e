"""Authenticating an agent before the websocket upgrade.

We keep Rancher's header convention so its tooling and docs apply: ``X-API-Tunnel-Token``
carries the cluster's registration token and ``X-API-Tunnel-Params`` a base64 JSON document
describing the agent:

    {"role": "cluster", "cluster": {"address": "host:port", "caCert": "<base64 PEM>",
                                    "token": "<the agent's service-account token>"}}
    {"role": "node", "node": {"name": "node-1", ...facts}}

The token is looked up by its SHA-256 (tokens are 256-bit random, so a fast hash is safe; only the
hash is stored). Anything malformed or unknown answers 401 before the upgrade, without saying which
part was wrong beyond a short reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from rancher_server.constants import MAX_TUNNEL_PARAMS_BYTES, MAX_TUNNEL_TOKEN_BYTES
from rancher_server.store import Cluster, Store

TOKEN_HEADER = "X-API-Tunnel-Token"
PARAMS_HEADER = "X-API-Tunnel-Params"
NODE_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
ADDRESS_RE = re.compile(r"^[A-Za-z0-9.\-:\[\]]{1,255}$")


class TunnelAuthError(Exception):
    """The agent could not be authenticated; the message is safe to send back."""


@dataclass(frozen=True)
class AgentIdentity:
    cluster: Cluster
    role: str  # "cluster" or "node"
    node_name: str = ""
    api_address: str = ""
    ca_cert_pem: str = ""
    sa_token: str = field(default="", repr=False)  # the agent's credential, kept in memory only
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def session_key(self) -> str:
        return self.cluster.id if self.role == "cluster" else f"{self.cluster.id}:{self.node_name}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _decode_params(raw: str) -> dict[str, Any]:
    if len(raw) > MAX_TUNNEL_PARAMS_BYTES * 4 // 3 + 4:
        raise TunnelAuthError("tunnel params too large")
    try:
        data = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError) as e:
        raise TunnelAuthError("tunnel params are not base64 JSON") from e
    if not isinstance(data, dict):
        raise TunnelAuthError("tunnel params must be a JSON object")
    return data


def authenticate(store: Store, headers: Any) -> AgentIdentity:
    token = headers.get(TOKEN_HEADER, "")
    if not token or len(token) > MAX_TUNNEL_TOKEN_BYTES:
        raise TunnelAuthError("missing or invalid tunnel token")
    cluster = store.cluster_by_token_hash(hash_token(token))
    if cluster is None:
        raise TunnelAuthError("invalid tunnel token")
    params = _decode_params(headers.get(PARAMS_HEADER, "")) if headers.get(PARAMS_HEADER) else {}
    role = params.get("role") or ("node" if "node" in params else "cluster")
    if role == "cluster":
        info = params.get("cluster") or {}
        if not isinstance(info, dict):
            raise TunnelAuthError("cluster params must be an object")
        address = str(info.get("address", ""))
        if address and not ADDRESS_RE.match(address):
            raise TunnelAuthError("invalid cluster API address")
        ca = info.get("caCert", "")
        ca_pem = ""
        if ca:
            try:
                ca_pem = base64.b64decode(str(ca), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError) as e:
                raise TunnelAuthError("caCert is not base64 PEM") from e
        sa_token = str(info.get("token", ""))
        if len(sa_token) > MAX_TUNNEL_PARAMS_BYTES:
            raise TunnelAuthError("agent token too large")
        return AgentIdentity(
            cluster=cluster,
            role="cluster",
            api_address=address,
            ca_cert_pem=ca_pem,
            sa_token=sa_token,
        )
    if role == "node":
        node = params.get("node") or {}
        if not isinstance(node, dict):
            raise TunnelAuthError("node params must be an object")
        name = str(node.get("name", ""))
        if not NODE_NAME_RE.match(name):
            raise TunnelAuthError("invalid node name")
        return AgentIdentity(cluster=cluster, role="node", node_name=name, facts=node)
    raise TunnelAuthError("unknown agent role")
