"""``cluster-agent import`` checks everything before it changes anything in the cluster: the
agent's settings, the kubeconfig, and the server (reachable, its CA matching the checksum).
Only then does it create the agent's identity in the cluster."""

from __future__ import annotations

import asyncio
import os

import aiohttp

from cluster_agent.cacert import CAChecksumMismatch, server_ssl_context
from cluster_agent.config import ConfigError, from_env
from cluster_agent.constants import EXIT_CA_MISMATCH, EXIT_CONFIG_ERROR
from cluster_agent.kubeconfig import load

EXIT_SERVER_UNREACHABLE = 1


class PreflightFailed(Exception):
    """Something the import needs is wrong; ``exit_code`` and the message say what."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def check(kubeconfig: str) -> None:
    """Raise :class:`PreflightFailed` unless the import can go through."""
    try:
        target = load(kubeconfig)
        # The settings the agent will run with (the import provides the API server's own).
        config = from_env({**os.environ, "CATTLE_K8S_API": target.address})
    except ConfigError as e:
        raise PreflightFailed(str(e), EXIT_CONFIG_ERROR) from e
    try:
        asyncio.run(server_ssl_context(config))
    except CAChecksumMismatch as e:
        raise PreflightFailed(str(e), EXIT_CA_MISMATCH) from e
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise PreflightFailed(
            f"the server {config.server} cannot be reached ({e or type(e).__name__}); nothing "
            "was changed in the cluster: start the server or check CATTLE_SERVER, then run "
            "the import again", EXIT_SERVER_UNREACHABLE) from e
