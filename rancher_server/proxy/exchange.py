"""One request and its answer over a :class:`LeanPool` connection: the request head the caller
serialised, the client's body streamed after it (size-capped), the answer passed back (small
ones in one write, the rest streamed). The proxy uses it toward a cluster's API server, the
replicas' forwarder toward the replica that holds a cluster's tunnel."""

from __future__ import annotations

import ssl
from collections.abc import Callable

from aiohttp import web

from rancher_server.proxy.lean import LeanPool, Response, UpstreamError, send_request
from rancher_server.proxy.status import status_response
from rancher_tunnel.errors import DialRefused, SessionClosed
from rancher_tunnel.logs import get_logger

MAX_PROXY_BODY_BYTES = 32 * 1024 * 1024  # kube-apiserver itself caps most bodies at 3 MiB
BODY_CHUNK_BYTES = 256 * 1024
MAX_BUFFERED_RESPONSE_BYTES = 256 * 1024  # answers up to this size are sent in one write

log = get_logger(component="proxy")


class BodyTooLarge(Exception):
    pass


def body_framing(request: web.Request) -> bytes:
    """The framing header of the request's body as it goes on (none, a length, or chunked)."""
    if not request.body_exists:
        return b""
    length = request.content_length
    return b"Content-Length: %d\r\n" % length if length is not None \
        else b"Transfer-Encoding: chunked\r\n"


async def exchange(
    request: web.Request, pool: LeanPool, head: bytes, what: str,
    on_status: Callable[[int], None] | None = None,
) -> web.StreamResponse:
    """``what`` names the other end in errors ("cluster c-x is unavailable: ...")."""
    method = request.method
    try:
        if request.body_exists:
            upstream = await _send_with_body(pool, head, request,
                                             chunked=request.content_length is None)
        else:
            upstream = await send_request(
                pool, head, head_request=method == "HEAD", retry_stale=True
            )
    except BodyTooLarge:
        return status_response(413, f"request body exceeds {MAX_PROXY_BODY_BYTES} bytes")
    except (UpstreamError, ConnectionError, OSError, ssl.SSLError, DialRefused, SessionClosed,
            TimeoutError) as e:
        log.warning("upstream request failed", upstream=what, error=repr(e))
        return status_response(503, f"{what} is unavailable: {e}")
    conn = upstream.conn
    try:
        if on_status is not None:
            on_status(upstream.status)
        headers_out = upstream.headers
        size = upstream.length
        if size is not None and size <= MAX_BUFFERED_RESPONSE_BYTES and method != "HEAD":
            # Small answers (most GETs) go out as one write: head and body in one TLS record.
            try:
                body = await conn.read_all() if size else b""
            except UpstreamError as e:
                return status_response(502, f"{what} ended the answer: {e}")
            return web.Response(
                status=upstream.status, reason=upstream.reason, headers=headers_out, body=body
            )
        out = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers_out
        )
        declared = upstream.declared_length
        if declared is not None and upstream.status not in (204, 304):
            out.content_length = declared
        await out.prepare(request)
        try:
            while chunk := await conn.read():
                await out.write(chunk)
            await out.write_eof()
        except ConnectionResetError:  # the client went away (kubectl logs -f ended)
            log.debug("client ended mid-stream", upstream=what)
        except UpstreamError as e:
            log.info("upstream ended mid-stream", upstream=what, error=str(e))
            if request.transport is not None:
                request.transport.close()
        return out
    finally:
        conn.release()


async def _send_with_body(
    pool: LeanPool, head: bytes, request: web.Request, *, chunked: bool
) -> Response:
    conn = await pool.acquire()
    try:
        answer = conn.send(head)
        total = 0
        try:
            async for chunk in request.content.iter_chunked(BODY_CHUNK_BYTES):
                total += len(chunk)
                if total > MAX_PROXY_BODY_BYTES:
                    raise BodyTooLarge()
                if answer.done():
                    conn.abandon_request()  # answered early: the rest of the body is not sent
                    break
                conn.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                await conn.drain()
            else:
                if chunked:
                    conn.write(b"0\r\n\r\n")
        except UpstreamError:
            if not answer.done() or answer.cancelled() or answer.exception() is not None:
                raise
            conn.abandon_request()  # answered, then closed while the body was still going
        return await answer
    except BaseException:
        conn.close()
        raise
