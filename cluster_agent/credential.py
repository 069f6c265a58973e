"""The cluster agent's own credential: issued by the server at the agent's first registration
(answer header ``X-API-Tunnel-Agent-Credential``), presented on every later connection instead of
relying on the registration token (``docs/security.md``, "Agent identity").

Where it is kept, from the configuration:

- ``CATTLE_CREDENTIAL_FILE``: a file of the agent's own, created with mode 0600 (``cluster-agent
  import`` sets one per server and cluster);
- ``CATTLE_CREDENTIAL_SECRET``: key ``agentCredential`` of that Secret in ``CATTLE_NAMESPACE``
  (default ``cattle-system``), read and written through the cluster's API with the agent's token
  (the import manifest sets it to the agent's own Secret);
- neither: in memory only (a restarted agent is refused until an administrator resets the
  cluster's agent credential), which the agent says at start.
"""

from __future__ import annotations

import base64
import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

import aiohttp

from cluster_agent.config import AgentConfig, ConfigError
from cluster_agent.kube import AgentKube, KubeError
from rancher_tunnel.logs import get_logger

CREDENTIAL_HEADER = "X-API-Tunnel-Agent-Credential"
CREDENTIAL_FILE_MODE = 0o600
MAX_CREDENTIAL_CHARS = 512
SECRET_KEY = "agentCredential"
HTTP_NOT_FOUND = 404
MERGE_PATCH = "application/merge-patch+json"

log = get_logger(component="agent-credential")


class CredentialStore(Protocol):
    async def load(self) -> str: ...

    async def save(self, credential: str) -> None: ...


class MemoryCredentialStore:
    def __init__(self) -> None:
        self._value = ""

    async def load(self) -> str:
        return self._value

    async def save(self, credential: str) -> None:
        self._value = credential


class FileCredentialStore:
    """One file, replaced atomically (a temporary file of mode 0600 in the same directory)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self) -> str:
        try:
            return self.path.read_text().strip()[:MAX_CREDENTIAL_CHARS]
        except FileNotFoundError:
            return ""

    async def save(self, credential: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".credential-", dir=self.path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w") as f:
                f.write(credential)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, CREDENTIAL_FILE_MODE)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class SecretCredentialStore:
    """Key ``agentCredential`` of a Secret, through the cluster's API server (kubernetes_asyncio,
    :class:`~cluster_agent.kube.AgentKube`: its retry loop for 429, 5xx and lost connections)."""

    def __init__(self, kube: Callable[[], AgentKube], namespace: str, name: str) -> None:
        self._kube = kube
        self._secrets = f"/api/v1/namespaces/{namespace}/secrets"
        self._name = name
        self._namespace = namespace

    async def load(self) -> str:
        try:
            async with self._kube() as kube:
                status, doc = await kube.request_json(
                    "GET", f"{self._secrets}/{self._name}", accept=frozenset({HTTP_NOT_FOUND}))
        except KubeError as e:
            raise ConfigError(f"cannot read Secret {self._name}: {e}") from e
        if status == HTTP_NOT_FOUND:
            return ""
        raw = (doc.get("data") or {}).get(SECRET_KEY, "")
        return base64.b64decode(raw).decode()[:MAX_CREDENTIAL_CHARS] if raw else ""

    async def save(self, credential: str) -> None:
        data = {SECRET_KEY: base64.b64encode(credential.encode()).decode()}
        try:
            async with self._kube() as kube:
                status, _ = await kube.request_json(
                    "PATCH", f"{self._secrets}/{self._name}", body={"data": data},
                    content_type=MERGE_PATCH, accept=frozenset({HTTP_NOT_FOUND}))
                if status != HTTP_NOT_FOUND:
                    return
                body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
                        "metadata": {"name": self._name, "namespace": self._namespace}}
                await kube.request_json("POST", self._secrets, body=body)
        except KubeError as e:
            raise ConfigError(f"cannot write Secret {self._name}: {e}") from e


def store_for(config: AgentConfig) -> CredentialStore:
    if config.credential_file:
        return FileCredentialStore(Path(config.credential_file))
    if config.credential_secret:
        return SecretCredentialStore(lambda: AgentKube.from_config(config), config.namespace,
                                     config.credential_secret)
    return MemoryCredentialStore()


class AgentCredential:
    """Adds the credential to the connection's headers and keeps the one the server issues."""

    def __init__(self, store: CredentialStore) -> None:
        self._store = store
        self.value = ""

    async def load(self) -> None:
        self.value = await self._store.load()
        if isinstance(self._store, MemoryCredentialStore):
            log.warning("the agent credential is kept in memory only: set CATTLE_CREDENTIAL_FILE "
                        "or CATTLE_CREDENTIAL_SECRET so a restarted agent can reconnect")

    def headers(self) -> dict[str, str]:
        return {CREDENTIAL_HEADER: self.value} if self.value else {}

    def trace_config(self) -> aiohttp.TraceConfig:
        """Saves a credential found on the server's answer before the session starts."""
        trace = aiohttp.TraceConfig()

        async def on_end(_: Any, __: SimpleNamespace, params: Any) -> None:
            issued = params.response.headers.get(CREDENTIAL_HEADER, "")
            if issued and issued != self.value:
                await self._store.save(issued[:MAX_CREDENTIAL_CHARS])
                self.value = issued
                log.info("agent credential received and stored")

        trace.on_request_end.append(on_end)
        return trace
