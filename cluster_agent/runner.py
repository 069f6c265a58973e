"""Process entry shared by both agents: configuration, CA check, the connection loop, signals,
and the exit codes (2: bad configuration, 3: the server's CA does not match the checksum)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any

import aiohttp

from cluster_agent.cacert import CAChecksumMismatch, server_ssl_context
from cluster_agent.config import AgentConfig, ConfigError, Target, from_env
from cluster_agent.connection import AgentConnection
from cluster_agent.constants import EXIT_CA_MISMATCH, EXIT_CONFIG_ERROR
from cluster_agent.credential import AgentCredential, store_for
from cluster_agent.dial import DialStats, make_dial_handler
from cluster_agent.health import start_health
from cluster_agent.reporter import Reporter
from rancher_tunnel import logs
from rancher_tunnel.backoff import backoff
from rancher_tunnel.process import run_until_signalled
from rancher_tunnel.session import Session


async def _trust_the_server(config: AgentConfig, stop: asyncio.Event) -> ssl.SSLContext | None:
    """The TLS context for the server; a server that cannot be reached yet (it may start after
    us) is retried with backoff and a log line, never a traceback. None: stopped meanwhile."""
    log = logs.get_logger(component="main")
    for delay in backoff():
        try:
            return await server_ssl_context(config)
        except CAChecksumMismatch:
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            log.warning("server not reachable yet; retrying", server=config.server,
                        error=str(e) or type(e).__name__, retry_in_s=round(delay, 2))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()
        if stop.is_set():
            return None
    return None


SessionHook = Callable[[Session], Coroutine[Any, Any, None]]


def node_dial_targets(config: AgentConfig) -> AgentConfig:
    """A node agent carries the tunnel only to reach its cluster's API server: whatever
    ``CATTLE_ALLOWED_TARGETS`` says, it may dial that address and nothing else."""
    log = logs.get_logger(component="main")
    if not config.api_address:
        return replace(config, allowed=())
    api = Target.parse(config.api_address)
    if config.allowed and config.allowed != (api,):
        log.warning("a node agent dials only its cluster's API server; "
                    "CATTLE_ALLOWED_TARGETS is ignored", api_server=config.api_address)
    return replace(config, allowed=(api,))


async def run_agent(
    config: AgentConfig, params: Mapping[str, Any], name: str, stop: asyncio.Event,
    on_session: SessionHook | None = None,
) -> None:
    """``on_session`` runs beside each tunnel session (the node agent's host reports); the
    cluster agent's picture reporter is built here."""
    if params.get("role") == "node":
        config = node_dial_targets(config)
    ctx = await _trust_the_server(config, stop)
    if ctx is None:
        return  # stopped before the server was reachable
    credential = AgentCredential(store_for(config))
    await credential.load()
    reporter = (
        Reporter(config, config.report_interval_s) if params.get("role") == "cluster" else None
    )
    dials = DialStats()
    conn = AgentConnection(
        config,
        params,
        make_dial_handler(config, dials),
        ctx,
        name=name,
        on_session=reporter.run if reporter is not None else on_session,
        credential=credential,
        on_message=reporter.on_message if reporter is not None else None,
    )
    health = (
        await start_health(conn, config.health_listen, reporter, dials)
        if config.health_listen else None
    )
    task = asyncio.create_task(conn.run(), name="agent-connection")
    stopper = asyncio.create_task(stop.wait(), name="agent-stop")
    informers = (
        asyncio.create_task(reporter.run_informers(), name="agent-informers")
        if reporter is not None and config.api_address else None
    )
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await conn.stop()
        stopper.cancel()
        await task
        if informers is not None:
            informers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await informers
        if health is not None:
            await health.cleanup()


def agent_main(
    service: str, describe: Callable[[AgentConfig], tuple[Mapping[str, Any], str]],
    on_session: Callable[[AgentConfig], SessionHook] | None = None,
) -> None:
    """Run an agent process; ``describe`` gives its tunnel params and session name;
    ``on_session`` (given the configuration) what runs beside each session."""
    logs.configure(service)
    log = logs.get_logger(component="main")
    try:
        config = from_env()
    except ConfigError as e:
        log.error("bad configuration", error=str(e))
        problems = "\n".join(f"  - {line}" for line in str(e).splitlines())
        print(f"{service}: the configuration is not usable:\n{problems}\n"
              f"({service} --help lists every variable)", file=sys.stderr)
        sys.exit(EXIT_CONFIG_ERROR)
    params, name = describe(config)
    try:
        hook = on_session(config) if on_session is not None else None
        run_until_signalled(lambda stop: run_agent(config, params, name, stop, hook))
    except CAChecksumMismatch as e:
        log.error("refusing to connect", error=str(e))
        sys.exit(EXIT_CA_MISMATCH)
