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
import ssl
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Protocol

import aiohttp

from cluster_agent.config import AgentConfig, ConfigError
from rancher_tunnel.logs import get_logger

CREDENTIAL_HEADER = "X-API-Tunnel-Agent-Credential"
CREDENTIAL_FILE_MODE = 0o600
MAX_CREDENTIAL_CHARS = 512
SECRET_KEY = "agentCredential"
SECRET_API_TIMEOUT_S = 10.0
MAX_ERROR_CHARS = 200

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
    """Key ``agentCredential`` of a Secret, through the cluster's API server."""

    def __init__(self, config: AgentConfig, namespace: str, name: str) -> None:
        self._base = f"https://{config.api_address}/api/v1/namespaces/{namespace}/secrets"
        self._name = name
        self._namespace = namespace
        self._headers = {"Authorization": f"Bearer {config.api_token}"}
        self._ssl = ssl.create_default_context(cadata=config.api_ca_pem or None)

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=SECRET_API_TIMEOUT_S), headers=self._headers
        )

    async def load(self) -> str:
        async with self._session() as http, http.get(
            f"{self._base}/{self._name}", ssl=self._ssl
        ) as resp:
            if resp.status == 404:
                return ""
            if resp.status != 200:
                text = (await resp.text())[:MAX_ERROR_CHARS]
                raise ConfigError(f"cannot read Secret {self._name}: HTTP {resp.status}: {text}")
            doc = await resp.json()
        raw = (doc.get("data") or {}).get(SECRET_KEY, "")
        return base64.b64decode(raw).decode()[:MAX_CREDENTIAL_CHARS] if raw else ""

    async def save(self, credential: str) -> None:
        data = {SECRET_KEY: base64.b64encode(credential.encode()).decode()}
        async with self._session() as http:
            async with http.patch(
                f"{self._base}/{self._name}", json={"data": data}, ssl=self._ssl,
                headers={"Content-Type": "application/merge-patch+json"},
            ) as resp:
                if resp.status == 200:
                    return
                if resp.status != 404:
                    text = (await resp.text())[:MAX_ERROR_CHARS]
                    raise ConfigError(
                        f"cannot write Secret {self._name}: HTTP {resp.status}: {text}")
            body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
                    "metadata": {"name": self._name, "namespace": self._namespace}}
            async with http.post(self._base, json=body, ssl=self._ssl) as resp:
                if resp.status not in (200, 201):
                    text = (await resp.text())[:MAX_ERROR_CHARS]
                    raise ConfigError(
                        f"cannot create Secret {self._name}: HTTP {resp.status}: {text}")


def store_for(config: AgentConfig) -> CredentialStore:
    if config.credential_file:
        return FileCredentialStore(Path(config.credential_file))
    if config.credential_secret:
        return SecretCredentialStore(config, config.namespace, config.credential_secret)
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
