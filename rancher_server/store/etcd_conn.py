"""The etcd v3 connection of the etcd store: synchronous gRPC calls (``Txn``, paged ``Range``) and
one watch stream read on its own thread. etcd's API messages and stubs are aetcd's generated code
(``aetcd.rpc``) over a synchronous ``grpc`` channel: the store's methods are synchronous, and a
blocking unary call is cheaper than a hop to an asyncio loop (``docs/architecture.md``)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from aetcd import rpc
from aetcd.rpc import rpc_pb2_grpc

from rancher_server.store.base import StorageUnavailable

ETCD_RPC_TIMEOUT_S = 5.0  # one Txn or Range page
RANGE_PAGE_KEYS = 1000  # keys per Range page at load (stays far under gRPC's 4 MiB message limit)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
WATCH_RETRY_S = 0.5  # pause before re-opening a broken watch stream
ETCD_SCHEME = "etcd://"

Compare = Any  # rpc.Compare (generated protobuf messages carry no static types)
RequestOp = Any  # rpc.RequestOp
KeyValue = Any  # mvccpb.KeyValue
WatchEvent = Any  # mvccpb.Event


def parse_endpoints(url: str) -> list[str]:
    """``etcd://host:port[,host:port]`` -> ``["host:port", ...]``."""
    if not url.startswith(ETCD_SCHEME):
        raise ValueError(f"an etcd store is named etcd://host:port[,host:port], not {url!r}")
    hosts = [h.strip() for h in url[len(ETCD_SCHEME):].strip("/").split(",") if h.strip()]
    if not hosts or any(":" not in h for h in hosts):
        raise ValueError(f"every etcd endpoint needs HOST:PORT in {url!r}")
    return hosts


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key that starts with ``prefix`` (etcd's range_end)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def put_op(key: bytes, value: bytes) -> RequestOp:
    return rpc.RequestOp(request_put=rpc.PutRequest(key=key, value=value))


def delete_op(key: bytes, end: bytes = b"") -> RequestOp:
    return rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=key, range_end=end))


def absent(key: bytes) -> Compare:
    return rpc.Compare(key=key, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL,
                       create_revision=0)


def same_object(key: bytes, create_revision: int) -> Compare:
    """The key still holds the object we read (not deleted, not deleted and re-created)."""
    return rpc.Compare(key=key, target=rpc.Compare.CREATE, result=rpc.Compare.EQUAL,
                       create_revision=create_revision)


def unchanged(key: bytes, mod_revision: int) -> Compare:
    return rpc.Compare(key=key, target=rpc.Compare.MOD, result=rpc.Compare.EQUAL,
                       mod_revision=mod_revision)


def nothing_written_since(prefix: bytes, seen_revision: int) -> Compare:
    """No key under ``prefix`` was created or changed after ``seen_revision`` (true when the range
    is empty): a cascade that read the children at ``seen_revision`` misses none."""
    return rpc.Compare(key=prefix, range_end=prefix_end(prefix), target=rpc.Compare.MOD,
                       result=rpc.Compare.LESS, mod_revision=seen_revision + 1)


@dataclass(frozen=True)
class Loaded:
    revision: int
    kvs: list[KeyValue]


class EtcdConnection:
    """Synchronous calls to one of the endpoints, moving to the next when one is unreachable."""

    def __init__(self, endpoints: Sequence[str]) -> None:
        self._endpoints = list(endpoints)
        self._current = 0
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._kv: Any = None
        self._open()

    @property
    def endpoint(self) -> str:
        return self._endpoints[self._current]

    def _open(self) -> None:
        options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        self._channel = grpc.insecure_channel(self.endpoint, options=options)
        self._kv = rpc_pb2_grpc.KVStub(self._channel)

    def channel(self) -> grpc.Channel:
        assert self._channel is not None
        return self._channel

    def _failover(self) -> None:
        with self._lock:
            if len(self._endpoints) > 1:
                old = self._channel
                self._current = (self._current + 1) % len(self._endpoints)
                self._open()
                if old is not None:
                    old.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._kv, method)(request, timeout=ETCD_RPC_TIMEOUT_S)
        except grpc.RpcError as e:
            code = e.code() if isinstance(e, grpc.Call) else None
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                self._failover()
            detail = e.details() if isinstance(e, grpc.Call) else str(e)
            raise StorageUnavailable(f"etcd at {self.endpoint} failed: {code}: {detail}") from e

    def txn(self, compares: Sequence[Compare], ops: Sequence[RequestOp]) -> tuple[bool, int]:
        """One transaction: ``(succeeded, revision of the store after it)``."""
        resp = self._call("Txn", rpc.TxnRequest(compare=list(compares), success=list(ops)))
        return bool(resp.succeeded), int(resp.header.revision)

    def guarded_txn(self, compares: Sequence[Compare],
                    ops: Sequence[RequestOp]) -> tuple[bool, int, int]:
        """``ops`` if every compare holds: ``(succeeded, revision of the store after it,
        newest mod revision among the compared keys that exist)``. On failure that last figure
        is the revision of a write this replica's watch will deliver as an event (the write that
        made a compare fail), which a progress notice from etcd 3.4 may run ahead of."""
        keys = list(dict.fromkeys(bytes(c.key) for c in compares))
        resp = self._call("Txn", rpc.TxnRequest(
            compare=list(compares), success=list(ops),
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=k, keys_only=True))
                     for k in keys]))
        seen = 0
        if not resp.succeeded:
            for r in resp.responses:
                for kv in r.response_range.kvs:
                    seen = max(seen, int(kv.mod_revision))
        return bool(resp.succeeded), int(resp.header.revision), seen

    def put_if_absent(self, key: bytes, ops: Sequence[RequestOp],
                      also_absent: Sequence[bytes]) -> str:
        """``ops`` if ``key`` and ``also_absent`` are all absent: "copied"; else "present" if
        ``key`` exists, "conflict" if only another key (a unique name taken) does."""
        resp = self._call("Txn", rpc.TxnRequest(
            compare=[absent(k) for k in (key, *also_absent)], success=list(ops),
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key, count_only=True))]))
        if resp.succeeded:
            return "copied"
        return "present" if resp.responses[0].response_range.count else "conflict"

    def range_prefix(self, prefix: bytes) -> Loaded:
        """Every key under ``prefix`` at one revision, read in pages."""
        end = prefix_end(prefix)
        key, revision, kvs = prefix, 0, []
        while True:
            resp = self._call("Range", rpc.RangeRequest(key=key, range_end=end,
                                                        limit=RANGE_PAGE_KEYS, revision=revision))
            revision = revision or int(resp.header.revision)
            kvs.extend(resp.kvs)
            if not resp.more or not resp.kvs:
                return Loaded(revision, kvs)
            key = bytes(resp.kvs[-1].key) + b"\0"

    def delete_range(self, key: bytes, end: bytes) -> int:
        """Deletes ``[key, end)``; how many keys were deleted."""
        resp = self._call("DeleteRange", rpc.DeleteRangeRequest(key=key, range_end=end))
        return int(resp.deleted)

    def range_raw(self, request: Any) -> Any:
        return self._call("Range", request)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()


class Watch:
    """One watch stream on ``prefix`` from a revision, read on a named daemon thread. Events go to
    ``on_events(revision, events)``; a compacted start revision calls ``on_compacted()`` (the
    store reloads); a broken stream is re-opened from the last revision seen."""

    def __init__(
        self, conn: EtcdConnection, prefix: bytes, start_revision: int,
        on_events: Callable[[int, list[WatchEvent]], None], on_compacted: Callable[[], int],
        on_broken: Callable[[str], None],
    ) -> None:
        self._conn = conn
        self._prefix = prefix
        self._next = start_revision
        self._on_events = on_events
        self._on_compacted = on_compacted
        self._on_broken = on_broken
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = threading.Event()
        self._stream: Any = None
        self._thread = threading.Thread(target=self._run, name="etcd-watch", daemon=True)
        self._thread.start()

    def request_progress(self) -> None:
        """Ask etcd for a progress notice (the revision up to which every event has been sent)."""
        self._requests.put(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))

    def _request_iter(self, requests: queue.SimpleQueue[Any]) -> Iterator[Any]:
        yield rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=self._prefix, range_end=prefix_end(self._prefix), start_revision=self._next,
            progress_notify=True))
        while not self._closed.is_set():
            item = requests.get()
            if item is None:
                return
            yield item

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                self._requests = queue.SimpleQueue()
                stub = rpc_pb2_grpc.WatchStub(self._conn.channel())
                self._stream = stub.Watch(self._request_iter(self._requests))
                for resp in self._stream:
                    if resp.compact_revision:
                        self._next = self._on_compacted() + 1
                        break
                    if resp.canceled:
                        break
                    if resp.created:
                        continue
                    if resp.events:
                        revision = max(int(e.kv.mod_revision) for e in resp.events)
                    else:  # a progress notice: every event up to header.revision was sent
                        revision = int(resp.header.revision)
                    self._on_events(revision, list(resp.events))
                    self._next = max(self._next, revision + 1)
            except grpc.RpcError as e:
                if self._closed.is_set():
                    return
                self._on_broken(str(e.code()) if isinstance(e, grpc.Call) else str(e))
            except Exception as e:  # never let the feed die silently
                self._on_broken(f"{type(e).__name__}: {e}")
            self._requests.put(None)  # end the old request iterator
            if self._closed.wait(WATCH_RETRY_S):
                return

    def close(self) -> None:
        self._closed.set()
        self._requests.put(None)
        if self._stream is not None:
            self._stream.cancel()
        self._thread.join(ETCD_RPC_TIMEOUT_S)
