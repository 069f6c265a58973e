"""Application-facing stream objects: an accepted or opened :class:`TunnelStream`, and the
:class:`IncomingStream` a stream handler receives before it decides to accept or refuse."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from .transport import TunnelTransport

if TYPE_CHECKING:
    from .session import Session

STREAM_READER_LIMIT_BYTES = 64 * 1024  # asyncio.StreamReader limit (it pauses at twice this)


class TunnelStream:
    """An open tunnel stream. Use it either as a byte pipe (``read``/``write``, backed by
    asyncio's ``StreamReader``/``StreamWriter``) or hand it a protocol with :meth:`attach`."""

    def __init__(self, transport: TunnelTransport) -> None:
        self.transport = transport
        self._attached = False
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def stream_id(self) -> int:
        return self.transport.stream_id

    @property
    def target(self) -> str:
        return self.transport.target

    def attach(self, protocol: asyncio.BaseProtocol) -> TunnelTransport:
        """Run ``protocol`` over this stream (``connection_made`` is called now)."""
        if self._attached:
            raise RuntimeError("stream already has a protocol")
        self._attached = True
        self.transport.attach(protocol)
        return self.transport

    def streams(
        self, limit: int = STREAM_READER_LIMIT_BYTES
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The stream as an asyncio ``(StreamReader, StreamWriter)`` pair."""
        if self._reader is None or self._writer is None:
            loop = asyncio.get_running_loop()
            reader = asyncio.StreamReader(limit=limit, loop=loop)
            protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
            self.attach(protocol)
            self._reader = reader
            self._writer = asyncio.StreamWriter(self.transport, protocol, reader, loop)
        return self._reader, self._writer

    async def read(self, max_bytes: int = -1) -> bytes:
        """Up to ``max_bytes`` (all until EOF with -1); b"" at EOF."""
        return await self.streams()[0].read(max_bytes)

    async def readexactly(self, nbytes: int) -> bytes:
        return await self.streams()[0].readexactly(nbytes)

    async def write(self, data: bytes) -> None:
        """Write and wait until the tunnel's flow control lets more be written."""
        writer = self.streams()[1]
        writer.write(data)
        await writer.drain()

    def write_eof(self) -> None:
        """Half-close: we send nothing more; reading continues."""
        self.transport.write_eof()

    def reset(self, reason: str = "reset") -> None:
        """Abort both directions now."""
        self.transport._session._reset_stream(self.stream_id, reason)
        self.transport._connection_lost(None)

    async def aclose(self) -> None:
        """Flush, half-close our side and stop reading."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        else:
            self.transport.close()


class IncomingStream:
    """A stream the peer asked to open; the handler must :meth:`accept` or :meth:`refuse` it."""

    def __init__(self, session: Session, stream_id: int, target: str) -> None:
        self._session = session
        self.stream_id = stream_id
        self.target = target
        self.answered = False

    async def accept(self) -> TunnelStream:
        if self.answered:
            raise RuntimeError("stream already answered")
        self.answered = True
        return TunnelStream(self._session._accept_incoming(self.stream_id, self.target))

    async def refuse(self, reason: str) -> None:
        if self.answered:
            raise RuntimeError("stream already answered")
        self.answered = True
        self._session._refuse_incoming(self.stream_id, reason)
