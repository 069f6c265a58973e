"""``pods/<p>/portforward`` over websocket, to a local TCP port declared for the pod.

Declaring ports: annotate the pod with ``kubesim.io/port-<containerPort>: "<local port>"``
(or ``"<host>:<port>"``); a forward to ``<containerPort>`` then connects to that local
address. A port with no annotation behaves like a pod with nothing listening (the error
kubelet reports, on the error stream).

Two framings are served, chosen by the websocket subprotocol:

- ``SPDY/3.1+portforward.k8s.io`` (kubectl >= 1.30, KEP 4006 "tunneling"): the websocket
  messages carry a SPDY/3.1 byte stream. Per forwarded connection the client opens an
  ``error`` and a ``data`` stream (headers ``streamType``, ``port``, ``requestID``); the server
  replies to each, copies bytes between the data stream and the local port, and writes an
  error message on the error stream when the connection fails.
- ``v4.channel.k8s.io`` / ``portforward.k8s.io`` / none (kubelet's websocket port-forward, used
  by client libraries): ``?ports=P1,P2``; per port a data channel ``2i`` and an error channel
  ``2i+1``, each starting with the port as 2 bytes little endian, then raw data.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from kubesim.errors import StatusError
from kubesim.sim import spdy
from kubesim.sim.context import SimContext
from kubesim.sim.podcheck import kubelet_unreachable
from kubesim.sim.store_api import Obj
from kubesim.sim.streaming_util import status_response
from kubesim.sim.util import name_of, namespace_of, uid_of
from rancher_tunnel.logs import get_logger

log = get_logger(component="kubesim.sim.portforward")

PORT_ANNOTATION_PREFIX = "kubesim.io/port-"
SPDY_TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
CHANNEL_PROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
CONNECT_TIMEOUT_S = 5.0
READ_CHUNK_BYTES = 32 * 1024
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
CLOSE_TIMEOUT_S = 2.0


def target_for(pod: Obj, port: int) -> tuple[str, int] | None:
    value = (pod.get("metadata", {}).get("annotations") or {}).get(
        f"{PORT_ANNOTATION_PREFIX}{port}"
    )
    if not value:
        return None
    host, _, p = str(value).rpartition(":")
    try:
        return (host or "127.0.0.1", int(p))
    except ValueError:
        return None


def refused_message(pod: Obj, port: int) -> str:
    """What kubelet/containerd write on the error stream when nothing listens on the port."""
    return (
        f"error forwarding port {port} to pod {name_of(pod)}, uid {uid_of(pod)}: failed to connect "
        f'to localhost:{port} inside namespace "{name_of(pod)}", IPv4: dial tcp4 127.0.0.1:{port}: '
        f"connect: connection refused IPv6 dial tcp6 [::1]:{port}: connect: connection refused "
    )


async def _connect(pod: Obj, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    target = target_for(pod, port)
    if target is None:
        raise ConnectionRefusedError(refused_message(pod, port))
    try:
        return await asyncio.wait_for(asyncio.open_connection(*target), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise ConnectionRefusedError(refused_message(pod, port)) from exc


async def serve_portforward(request: web.Request, pod: Obj, ctx: SimContext) -> web.StreamResponse:
    if not pod.get("spec", {}).get("nodeName"):
        return status_response(
            StatusError(400, "BadRequest", f"pod {name_of(pod)} does not have a host assigned")
        )
    ws = web.WebSocketResponse(
        protocols=(SPDY_TUNNEL_PROTOCOL, *CHANNEL_PROTOCOLS), max_msg_size=MAX_MESSAGE_BYTES
    )
    ready = ws.can_prepare(request)
    if not ready.ok:
        return status_response(StatusError(400, "BadRequest", "Upgrade request required"))
    ports: list[int] = []
    if ready.protocol != SPDY_TUNNEL_PROTOCOL:
        try:
            ports = _parse_ports(request)
        except StatusError as err:
            return status_response(err)
    await ws.prepare(request)
    with ctx.streams.track():
        try:
            unreachable = kubelet_unreachable(
                ctx, pod, f"/portForward/{namespace_of(pod)}/{name_of(pod)}", verb="Post"
            )
            if unreachable is not None:
                log.info("port-forward to a node without kubelet", pod=name_of(pod))
            elif ready.protocol == SPDY_TUNNEL_PROTOCOL:
                await _SpdyTunnel(ws, pod).run()
            else:
                await _channels(ws, pod, ports)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), CLOSE_TIMEOUT_S)
    return ws


def _parse_ports(request: web.Request) -> list[int]:
    ports: list[int] = []
    for raw in request.query.getall("ports", []):
        for part in raw.split(","):
            try:
                port = int(part)
            except ValueError as exc:
                raise StatusError(400, "BadRequest", f'unable to parse "{part}" as a port') from exc
            if not 0 < port < 65536:
                raise StatusError(400, "BadRequest", f"port {port} must be > 0 and < 65536")
            ports.append(port)
    if not ports:
        raise StatusError(400, "BadRequest", "at least 1 port must be specified")
    return ports


# -- kubelet's websocket channel framing -------------------------------------------------------
async def _channels(ws: web.WebSocketResponse, pod: Obj, ports: list[int]) -> None:
    writers: dict[int, asyncio.StreamWriter] = {}
    pumps: list[asyncio.Task[None]] = []
    for i, port in enumerate(ports):
        prefix = struct.pack("<H", port)
        await ws.send_bytes(bytes([2 * i]) + prefix)
        await ws.send_bytes(bytes([2 * i + 1]) + prefix)
    for i, port in enumerate(ports):
        try:
            reader, writer = await _connect(pod, port)
        except ConnectionRefusedError as exc:
            await ws.send_bytes(bytes([2 * i + 1]) + str(exc).encode())
            continue
        writers[2 * i] = writer
        pumps.append(asyncio.create_task(_socket_to_ws(reader, ws, 2 * i), name=f"pf-port-{port}"))

    async def client() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            w = writers.get(msg.data[0])
            if w is not None and not w.is_closing():
                w.write(msg.data[1:])
                await w.drain()

    reader_task = asyncio.create_task(client(), name="pf-client")
    try:
        if pumps:
            await asyncio.wait({reader_task, *pumps}, return_when=asyncio.FIRST_COMPLETED)
        else:
            await ws.close()
    finally:
        for t in (reader_task, *pumps):
            t.cancel()
        await asyncio.gather(reader_task, *pumps, return_exceptions=True)
        for w in writers.values():
            w.close()


async def _socket_to_ws(
    reader: asyncio.StreamReader, ws: web.WebSocketResponse, channel: int
) -> None:
    while data := await reader.read(READ_CHUNK_BYTES):
        await ws.send_bytes(bytes([channel]) + data)


# -- SPDY tunneled in websocket messages -------------------------------------------------------
@dataclass
class _Pair:
    request_id: str
    port: int
    error_id: int = 0
    data_id: int = 0
    pending: list[bytes] = field(default_factory=list)
    client_fin: bool = False
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task[None] | None = None


class _SpdyTunnel:
    def __init__(self, ws: web.WebSocketResponse, pod: Obj) -> None:
        self._ws = ws
        self._pod = pod
        self._codec = spdy.SpdyCodec()
        self._lock = asyncio.Lock()
        self._pairs: dict[str, _Pair] = {}
        self._by_stream: dict[int, _Pair] = {}
        self._last_stream = 0

    async def _send(self, build: Callable[..., bytes], *args: object) -> None:
        async with self._lock:  # header compression state demands encode order == send order
            if self._ws.closed:
                return
            frame = build(*args)
            with contextlib.suppress(ConnectionError):
                await self._ws.send_bytes(frame)

    async def run(self) -> None:
        try:
            async for msg in self._ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                for frame in self._codec.feed(msg.data):
                    if not await self._handle(frame):
                        return
        except spdy.SpdyError as exc:
            log.warning("bad SPDY from client", error=str(exc))
            await self._send(self._codec.encode_goaway, self._last_stream, spdy.RST_PROTOCOL_ERROR)
        finally:
            tasks = [p.task for p in self._pairs.values() if p.task is not None]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for p in self._pairs.values():
                if p.writer is not None:
                    p.writer.close()

    async def _handle(self, frame: spdy.Frame) -> bool:
        if isinstance(frame, spdy.DataFrame):
            pair = self._by_stream.get(frame.stream_id)
            if pair is not None and frame.stream_id == pair.data_id:
                if pair.writer is not None and not pair.writer.is_closing():
                    pair.writer.write(frame.data)
                    await pair.writer.drain()
                    if frame.fin and pair.writer.can_write_eof():
                        pair.writer.write_eof()
                else:
                    pair.pending.append(frame.data)
                if frame.fin:
                    pair.client_fin = True
            return True
        if frame.type == spdy.SYN_STREAM:
            await self._syn_stream(frame)
        elif frame.type == spdy.RST_STREAM:
            pair = self._by_stream.get(frame.stream_id)
            if pair is not None and pair.writer is not None:
                pair.writer.close()
        elif frame.type == spdy.PING:
            await self._send(self._codec.encode_ping, frame.value)
        elif frame.type == spdy.GOAWAY:
            return False
        return True

    async def _syn_stream(self, frame: spdy.ControlFrame) -> None:
        self._last_stream = max(self._last_stream, frame.stream_id)
        h = {k: v[0] if v else "" for k, v in frame.headers.items()}
        stream_type, request_id = h.get("streamtype", ""), h.get("requestid", "")
        try:
            port = int(h.get("port", ""))
        except ValueError:
            await self._send(
                self._codec.encode_rst_stream, frame.stream_id, spdy.RST_PROTOCOL_ERROR
            )
            return
        if stream_type not in ("error", "data"):
            await self._send(
                self._codec.encode_rst_stream, frame.stream_id, spdy.RST_PROTOCOL_ERROR
            )
            return
        pair = self._pairs.setdefault(request_id, _Pair(request_id, port))
        if stream_type == "error":
            pair.error_id = frame.stream_id
        else:
            pair.data_id = frame.stream_id
        self._by_stream[frame.stream_id] = pair
        await self._send(self._codec.encode_syn_reply, frame.stream_id, {}, False)
        if pair.error_id and pair.data_id and pair.task is None:
            pair.task = asyncio.create_task(self._forward(pair), name=f"pf-{request_id}")

    async def _forward(self, pair: _Pair) -> None:
        try:
            reader, writer = await _connect(self._pod, pair.port)
        except ConnectionRefusedError as exc:
            await self._send(self._codec.encode_data, pair.error_id, str(exc).encode(), True)
            await self._send(self._codec.encode_data, pair.data_id, b"", True)
            return
        pair.writer = writer
        for chunk in pair.pending:
            writer.write(chunk)
        pair.pending.clear()
        if pair.client_fin and writer.can_write_eof():
            writer.write_eof()
        try:
            while data := await reader.read(READ_CHUNK_BYTES):
                await self._send(self._codec.encode_data, pair.data_id, data, False)
        except OSError as exc:
            log.info("forwarded connection failed", port=pair.port, error=str(exc))
        finally:
            writer.close()
            await self._send(self._codec.encode_data, pair.data_id, b"", True)
            await self._send(self._codec.encode_data, pair.error_id, b"", True)
