"""Trusting the server: with ``CATTLE_CA_CHECKSUM`` set, download the server's CA from
``/v3/settings/cacerts`` and refuse it unless its SHA-256 matches."""

from __future__ import annotations

import hashlib
import hmac
import ssl

import aiohttp

from cluster_agent.config import AgentConfig
from cluster_agent.constants import CA_FETCH_TIMEOUT_S


class CAChecksumMismatch(Exception):
    """The server's CA does not match CATTLE_CA_CHECKSUM: we must not connect."""


async def fetch_ca(server: str) -> str:
    """The CA PEM the server publishes. Fetched without verification: the checksum is the check."""
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    timeout = aiohttp.ClientTimeout(total=CA_FETCH_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as http,
        http.get(f"{server}/v3/settings/cacerts", ssl=insecure) as resp,
    ):
        resp.raise_for_status()
        data = await resp.json()
    value = data.get("value") if isinstance(data, dict) else None
    if not isinstance(value, str) or "BEGIN CERTIFICATE" not in value:
        raise CAChecksumMismatch("the server did not return a CA certificate")
    return value


async def server_ssl_context(config: AgentConfig) -> ssl.SSLContext:
    """The TLS context used for every connection to the server."""
    if config.ca_checksum:
        pem = await fetch_ca(config.server)
        got = hashlib.sha256(pem.encode()).hexdigest()
        if not hmac.compare_digest(got, config.ca_checksum):
            raise CAChecksumMismatch(
                f"the server's CA checksum {got} does not match CATTLE_CA_CHECKSUM "
                f"{config.ca_checksum}; refusing to connect"
            )
        ctx = ssl.create_default_context(cadata=pem)
    elif config.ca_cert_file:
        ctx = ssl.create_default_context(cafile=config.ca_cert_file)
    else:
        ctx = ssl.create_default_context()
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
