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

Agent identity (``docs/security.md``, "Agent identity"): the registration token only admits a
cluster agent once, at its first registration (``/v3/connect/register``), which issues the cluster's
own agent credential (answer header ``X-API-Tunnel-Agent-Credential``; stored as its SHA-256).
From then on a cluster agent must present that credential (same header on the request); the
registration token alone can no longer open or replace the cluster's session nor change its API
address and CA. Node agents may use either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from rancher_server.constants import MAX_TUNNEL_PARAMS_BYTES, MAX_TUNNEL_TOKEN_BYTES
from rancher_server.store import Cluster, Store

TOKEN_HEADER = "X-API-Tunnel-Token"
PARAMS_HEADER = "X-API-Tunnel-Params"
CREDENTIAL_HEADER = "X-API-Tunnel-Agent-Credential"
AGENT_CREDENTIAL_BYTES = 32  # 256-bit random, like registration tokens
VIA_TOKEN = "registration-token"
VIA_CREDENTIAL = "agent-credential"
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
    via: str = VIA_TOKEN  # which secret authenticated it (VIA_TOKEN or VIA_CREDENTIAL)
    secret_hash: str = field(default="", repr=False)  # its SHA-256: re-checked while connected
    issue_credential: bool = False  # first registration: the endpoint issues the credential

    @property
    def session_key(self) -> str:
        return self.cluster.id if self.role == "cluster" else f"{self.cluster.id}:{self.node_name}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_agent_credential() -> str:
    return secrets.token_urlsafe(AGENT_CREDENTIAL_BYTES)


def still_valid(store: Store, identity: AgentIdentity) -> bool:
    """Whether the secret this session authenticated with still names its cluster (a rotated
    registration token, a reset credential or a deleted cluster make it False)."""
    if identity.via == VIA_CREDENTIAL:
        cluster = store.cluster_by_agent_credential_hash(identity.secret_hash)
    else:
        cluster = store.cluster_by_token_hash(identity.secret_hash)
    return cluster is not None and cluster.id == identity.cluster.id


def _authenticate_secret(store: Store, headers: Any) -> tuple[Cluster, str, str]:
    """The cluster, how (VIA_*) and the secret's hash, from the credential or the token."""
    credential = headers.get(CREDENTIAL_HEADER, "")
    if credential:
        if len(credential) > MAX_TUNNEL_TOKEN_BYTES:
            raise TunnelAuthError("invalid agent credential")
        digest = hash_token(credential)
        cluster = store.cluster_by_agent_credential_hash(digest)
        if cluster is None:
            raise TunnelAuthError("invalid agent credential")
        return cluster, VIA_CREDENTIAL, digest
    token = headers.get(TOKEN_HEADER, "")
    if not token or len(token) > MAX_TUNNEL_TOKEN_BYTES:
        raise TunnelAuthError("missing or invalid tunnel token")
    digest = hash_token(token)
    cluster = store.cluster_by_token_hash(digest)
    if cluster is None:
        raise TunnelAuthError("invalid tunnel token")
    return cluster, VIA_TOKEN, digest


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


def authenticate(store: Store, headers: Any, register: bool = False) -> AgentIdentity:
    cluster, via, digest = _authenticate_secret(store, headers)
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
        issue = False
        if via == VIA_TOKEN:
            if store.has_agent_credential(cluster.id):
                raise TunnelAuthError(
                    "this cluster's agent has its own credential: the registration token "
                    "alone cannot open its session"
                )
            if not register:
                raise TunnelAuthError("register first at /v3/connect/register")
            issue = True
        return AgentIdentity(
            cluster=cluster,
            role="cluster",
            api_address=address,
            ca_cert_pem=ca_pem,
            sa_token=sa_token,
            via=via,
            secret_hash=digest,
            issue_credential=issue,
        )
    if role == "node":
        node = params.get("node") or {}
        if not isinstance(node, dict):
            raise TunnelAuthError("node params must be an object")
        name = str(node.get("name", ""))
        if not NODE_NAME_RE.match(name):
            raise TunnelAuthError("invalid node name")
        return AgentIdentity(
            cluster=cluster, role="node", node_name=name, facts=node, via=via, secret_hash=digest
        )
    raise TunnelAuthError("unknown agent role")
