"""An aiohttp connector whose connections are tunnel streams: ``aiohttp.ClientSession(
connector=TunnelConnector(session))`` sends every request through the tunnel (TLS end to end
inside the stream for https). No DNS lookup happens locally: the peer resolves the host."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler

from .errors import DialRefused, SessionClosed
from .session import Session

SessionGetter = Callable[[], Awaitable[Session]]


class TunnelConnector(aiohttp.TCPConnector):
    """``session`` is a :class:`Session` or an async callable returning the current one."""

    def __init__(self, session: Session | SessionGetter, **kwargs: Any) -> None:
        kwargs.setdefault("enable_cleanup_closed", False)
        super().__init__(**kwargs)
        self._tunnel = session

    async def _current(self) -> Session:
        if isinstance(self._tunnel, Session):
            return self._tunnel
        return await self._tunnel()

    async def _create_direct_connection(
        self,
        req: aiohttp.ClientRequest,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109
        *,
        client_error: type[Exception] = aiohttp.ClientConnectorError,
    ) -> tuple[asyncio.Transport, ResponseHandler]:
        sslcontext = self._get_ssl_context(req)
        host = req.url.raw_host
        port = req.port
        assert host is not None and port is not None
        server_hostname = (req.server_hostname or host).rstrip(".") if sslcontext else None
        try:
            async with asyncio.timeout(timeout.sock_connect or timeout.connect):
                session = await self._current()
                return await session.create_connection(
                    self._factory, host, port, ssl=sslcontext, server_hostname=server_hostname
                )
        except (DialRefused, SessionClosed) as exc:
            raise client_error(req.connection_key, OSError(111, str(exc))) from exc
