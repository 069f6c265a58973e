"""A local connection whose tunnel stream is refused ends with end-of-stream, never a reset:
its request may already be in the socket, unread, and a socket closed with unread input resets
the connection (so the client's read failed or returned EOF depending on timing)."""

from __future__ import annotations

import asyncio
import socket

from rancher_tunnel.splice import _refuse


async def test_refused_connection_reads_eof_even_with_its_request_unread() -> None:
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    accepted: asyncio.Future[asyncio.Transport] = loop.create_future()

    class Held(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            transport.pause_reading()  # the request stays in the socket, unread
            accepted.set_result(transport)

    server = await loop.create_server(Held, sock=listener)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        transport = await asyncio.wait_for(accepted, 5)
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        await asyncio.sleep(0.05)  # the request has reached the server's socket
        _refuse(transport)
        assert await loop.run_in_executor(None, client.recv, 100) == b""
    finally:
        client.close()
        server.close()
        await server.wait_closed()
