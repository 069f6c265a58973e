"""The dial-out loop shared by both agents: register, connect, serve the session, reconnect with
exponential backoff and full jitter (a healthy session resets the backoff). A 401 or 403 from the
server is not a network failure: the agent says once that its credentials were refused, retries
at the longest interval only, and keeps trying (they may be restored)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import aiohttp

from cluster_agent.config import AgentConfig
from cluster_agent.connstate import ConnState, classify, describe
from cluster_agent.constants import (
    CONNECT_TIMEOUT_S,
    RECONNECT_CAP_S,
    RECONNECT_INITIAL_S,
    STABLE_SESSION_S,
)
from cluster_agent.credential import AgentCredential
from rancher_tunnel.backoff import backoff
from rancher_tunnel.constants import WS_MAX_MESSAGE_BYTES
from rancher_tunnel.envlimits import limits_from_env
from rancher_tunnel.frames import Role
from rancher_tunnel.logs import get_logger
from rancher_tunnel.session import MessageHandler, Session, StreamHandler

TOKEN_HEADER = "X-API-Tunnel-Token"
PARAMS_HEADER = "X-API-Tunnel-Params"


def tunnel_headers(config: AgentConfig, params: Mapping[str, Any]) -> dict[str, str]:
    return {
        TOKEN_HEADER: config.token,
        PARAMS_HEADER: base64.b64encode(json.dumps(params).encode()).decode(),
    }


class AgentConnection:
    """Keeps one tunnel to the server open until :meth:`stop`."""

    def __init__(
        self,
        config: AgentConfig,
        params: Mapping[str, Any],
        on_stream: StreamHandler,
        ssl_context: Any,
        name: str,
        on_session: Callable[[Session], Coroutine[Any, Any, None]] | None = None,
        credential: AgentCredential | None = None,
        on_message: MessageHandler | None = None,
    ) -> None:
        """``on_session`` runs beside each session (cancelled when it ends); ``on_message`` gets
        the typed messages the server sends on any session (from its first frame on)."""
        self._config = config
        self._on_message = on_message
        self._credential = credential
        self._on_session = on_session
        self._headers = tunnel_headers(config, params)
        self._on_stream = on_stream
        self._ssl = ssl_context
        self._name = name
        self._stop = asyncio.Event()
        self._limits = limits_from_env()
        self._session: Session | None = None
        self.connected = asyncio.Event()
        self.sessions_started = 0
        self.state = ConnState.CONNECTING
        self.state_detail = describe(self.state, None)
        self.credentials_refused = 0  # attempts the server answered with 401 / 403
        self.log = get_logger(component="agent", session=name)

    def _failed(self, exc: BaseException) -> None:
        """Record a failed attempt; a refusal of our credentials is logged once per episode."""
        state = classify(exc)
        status = getattr(exc, "status", None)
        if state is ConnState.CREDENTIALS_REFUSED:
            self.credentials_refused += 1
            if self.state is not ConnState.CREDENTIALS_REFUSED:
                self.log.error("the server refused this agent's credentials", status=status)
        elif state is ConnState.SERVER_REFUSED:
            self.log.error(
                "server refused the tunnel", status=status, message=getattr(exc, "message", "")
            )
        else:
            self.log.warning("cannot reach the server", error=str(exc) or type(exc).__name__)
        self.state, self.state_detail = state, describe(state, status)

    @property
    def session(self) -> Session | None:
        """The live session, if connected."""
        return self._session

    async def stop(self) -> None:
        self._stop.set()
        if self._session is not None:
            await self._session.close(1001, "agent stopping")

    async def run(self) -> None:
        delays = backoff(initial_s=RECONNECT_INITIAL_S, cap_s=RECONNECT_CAP_S)
        registered = False
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S)
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=1, force_close=True)
        # The agent's own credential (issued at first registration) rides on every attempt.
        traces = [self._credential.trace_config()] if self._credential is not None else []
        async with aiohttp.ClientSession(
            timeout=timeout, connector=connector, trace_configs=traces
        ) as http:
            while not self._stop.is_set():
                path = "/v3/connect" if registered else "/v3/connect/register"
                started = time.monotonic()
                try:
                    async with http.ws_connect(
                        self._config.server + path,
                        headers={
                            **self._headers,
                            **(self._credential.headers() if self._credential else {}),
                        },
                        max_msg_size=WS_MAX_MESSAGE_BYTES,
                        compress=0,
                        autoping=True,
                        heartbeat=None,
                    ) as ws:
                        registered = True
                        session = Session(
                            ws,
                            Role.AGENT,
                            name=self._name,
                            on_stream=self._on_stream,
                            on_message=self._on_message,
                            limits=self._limits,
                        )
                        self._session = session
                        self.sessions_started += 1
                        self.state = ConnState.CONNECTED
                        self.state_detail = describe(self.state, None)
                        self.connected.set()
                        self.log.info("tunnel connected", path=path)
                        companion = (
                            asyncio.create_task(self._on_session(session), name="agent-report")
                            if self._on_session is not None
                            else None
                        )
                        try:
                            await session.run()
                        finally:
                            self.connected.clear()
                            self.state = ConnState.CONNECTING
                            self.state_detail = describe(self.state, None)
                            self._session = None
                            if companion is not None:
                                companion.cancel()
                                with contextlib.suppress(asyncio.CancelledError, Exception):
                                    await companion
                        self.log.info("tunnel closed", reason=session.close_reason)
                except (aiohttp.ClientError, OSError, TimeoutError) as e:
                    self._failed(e)
                if self._stop.is_set():
                    break
                if time.monotonic() - started >= STABLE_SESSION_S:
                    delays = backoff(initial_s=RECONNECT_INITIAL_S, cap_s=RECONNECT_CAP_S)
                # refused credentials are not fixed by hammering the server
                refused = self.state is ConnState.CREDENTIALS_REFUSED
                delay = RECONNECT_CAP_S if refused else next(delays)
                self.log.info("reconnecting", delay_s=round(delay, 3))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
