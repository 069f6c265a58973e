"""Byte relay between two asyncio transports at protocol level (no StreamReader copies), with
back-pressure both ways: when one side's write buffer is full, the other side stops reading."""

from __future__ import annotations

import asyncio
from typing import cast


class RelayProtocol(asyncio.Protocol):
    """One side of a relay. ``peer`` is the protocol of the other side."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: RelayProtocol | None = None
        self._pending: list[bytes] = []
        self._eof_pending = False
        self.got_eof = False
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def link(self, peer: RelayProtocol) -> None:
        """Connect to the other side and flush what arrived before it existed."""
        self.peer = peer
        peer.peer = self
        for side in (self, peer):
            if side._pending and side.peer is not None and side.peer.transport is not None:
                side.peer.transport.write(b"".join(side._pending))
                side._pending.clear()
            if side._eof_pending:
                side._forward_eof()

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is None or peer.transport is None:
            self._pending.append(data)
            return
        peer.transport.write(data)

    def eof_received(self) -> bool:
        self.got_eof = True
        if self.peer is not None and self.peer.got_eof:
            # Both directions are finished: nothing more can flow.
            self._forward_eof()
            if self.transport is not None:
                self.transport.close()
            return True
        if self.peer is None:
            self._eof_pending = True
        else:
            self._forward_eof()
        return True  # keep our write side open until the peer finishes

    def _forward_eof(self) -> None:
        peer = self.peer
        if peer is None or peer.transport is None or peer.transport.is_closing():
            return
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        else:
            peer.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            peer.transport.close()
