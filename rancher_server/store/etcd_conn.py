"""The etcd v3 connection of the etcd store: synchronous gRPC calls (``Txn``, paged ``Range``) and
one watch stream read on its own thread. etcd's API messages and stubs are aetcd's generated code
(``aetcd.rpc``) over a synchronous ``grpc`` channel: the store's methods are synchronous, and a
blocking unary call is cheaper than a hop to an asyncio loop (``docs/architecture.md``)."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from aetcd import rpc
from aetcd.rpc import rpc_pb2_grpc

from rancher_server.store.base import StorageUnavailable

ETCD_RPC_TIMEOUT_S = 5.0  # one Txn or Range page, over every member it tries
ETCD_TRY_TIMEOUT_S = 2.0  # one try on one member (a proposal lost with a dead leader never ends)
ROUND_PAUSE_S = 0.2  # before another round over the members, when some are up but not ready
MIN_TRY_S = 0.05  # the least time left to a try on the next member
RANGE_PAGE_KEYS = 1000  # keys per Range page at load (stays far under gRPC's 4 MiB message limit)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
WATCH_RETRY_S = 0.5  # pause before re-opening a broken watch stream (on the next member)
WATCH_HEARTBEAT_S = 1.0  # a watch that heard nothing for this long asks etcd for progress
WATCH_DEAD_AFTER_S = 3.0  # and one that heard nothing for this long moves to the next member
NO_LEADER = "etcdserver: no leader"
# A watch on a member cut off from the others ends (etcd's "require leader") instead of staying
# open and silent, so it moves to a member that has a quorum.
REQUIRE_LEADER = (("hasleader", "true"),)
# Reconnect soon after a member returns (gRPC's defaults back off up to 120 s, and a channel
# waiting out its backoff fails every call at once); a connect that hangs (a paused host) gives
# up after a second.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.initial_reconnect_backoff_ms", 200),
                   ("grpc.min_reconnect_backoff_ms", 1000),
                   ("grpc.max_reconnect_backoff_ms", 2000)]
ETCD_SCHEME = "etcd://"
ETCDS_SCHEME = "etcds://"  # TLS: the CA, and a client certificate, from RANCHER_ETCD_* files
ETCD_CA_ENV, ETCD_CERT_ENV, ETCD_KEY_ENV = (
    "RANCHER_ETCD_CAFILE", "RANCHER_ETCD_CERTFILE", "RANCHER_ETCD_KEYFILE")

Compare = Any  # rpc.Compare (generated protobuf messages carry no static types)
RequestOp = Any  # rpc.RequestOp
KeyValue = Any  # mvccpb.KeyValue
WatchEvent = Any  # mvccpb.Event


def parse_endpoints(url: str) -> list[str]:
    """``etcd[s]://host:port[,host:port]`` -> ``["host:port", ...]``."""
    scheme = next((s for s in (ETCD_SCHEME, ETCDS_SCHEME) if url.startswith(s)), None)
    if scheme is None:
        raise ValueError(f"an etcd store is named etcd://host:port[,host:port] (etcds:// for "
                         f"TLS), not {url!r}")
    hosts = [h.strip() for h in url[len(scheme):].strip("/").split(",") if h.strip()]
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
class _TxnOutcome:
    succeeded: bool
    revision: int
    responses: list[Any]  # the failure branch's, as asked


@dataclass(frozen=True)
class EtcdTLS:
    """What an ``etcds://`` connection presents and trusts (PEM bytes)."""

    ca_pem: bytes
    cert_pem: bytes | None = None
    key_pem: bytes | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> EtcdTLS:
        """``RANCHER_ETCD_CAFILE`` (required), ``RANCHER_ETCD_CERTFILE`` and
        ``RANCHER_ETCD_KEYFILE`` (a client certificate, for etcd's ``--client-cert-auth``)."""
        ca = env.get(ETCD_CA_ENV, "")
        cert, key = env.get(ETCD_CERT_ENV, ""), env.get(ETCD_KEY_ENV, "")
        if not ca:
            raise ValueError(f"etcds:// needs {ETCD_CA_ENV}: the CA that signed etcd's "
                             "serving certificate")
        if bool(cert) != bool(key):
            raise ValueError(f"{ETCD_CERT_ENV} and {ETCD_KEY_ENV} go together")
        try:
            return cls(Path(ca).read_bytes(), Path(cert).read_bytes() if cert else None,
                       Path(key).read_bytes() if key else None)
        except OSError as e:
            raise ValueError(f"cannot read etcd's TLS files: {e}") from e

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca_pem,
                                            private_key=self.key_pem,
                                            certificate_chain=self.cert_pem)


def open_connection(url: str) -> EtcdConnection:
    """The connection a store URL names: TLS for ``etcds://`` (files from the environment)."""
    tls = EtcdTLS.from_env() if url.startswith(ETCDS_SCHEME) else None
    return EtcdConnection(parse_endpoints(url), tls=tls)


@dataclass(frozen=True)
class Loaded:
    revision: int
    kvs: list[KeyValue]


def _failure(e: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    if isinstance(e, grpc.Call):
        return e.code(), str(e.details())
    return None, str(e)


def _never_sent(code: grpc.StatusCode | None, detail: str) -> bool:
    """The request cannot have reached etcd's log: no connection was made, or the member said it
    has no leader (it proposes nothing then). Another member may take it again safely."""
    return code == grpc.StatusCode.UNAVAILABLE and (
        "failed to connect" in detail.lower() or NO_LEADER in detail)


class EtcdConnection:
    """Synchronous calls to one of the endpoints (one gRPC channel kept per endpoint), moving to
    the next when one is unreachable. A call that cannot have reached the member it was sent to
    (connection refused, no leader) goes to the next member at once; a read also after a broken
    call; every call is bounded by one deadline (``ETCD_RPC_TIMEOUT_S``) over all its tries. A
    write whose fate is unknown (the member died or hung while it was in flight) is not sent
    again: it answers ``StorageUnavailable``, as etcd's own client does."""

    def __init__(self, endpoints: Sequence[str], rpc_timeout_s: float = ETCD_RPC_TIMEOUT_S,
                 tls: EtcdTLS | None = None) -> None:
        if not endpoints:
            raise ValueError("no etcd endpoint")
        self._credentials = tls.credentials() if tls is not None else None
        self._endpoints = list(endpoints)
        self._timeout = rpc_timeout_s
        self._current = 0
        self._lock = threading.Lock()
        self._channels: dict[str, grpc.Channel] = {}
        self._kv: dict[str, Any] = {}
        self._closed = False
        self._watch_current_at = time.monotonic()

    @property
    def endpoint(self) -> str:
        return self._endpoints[self._current]

    @property
    def endpoints(self) -> list[str]:
        return list(self._endpoints)

    def channel_for(self, endpoint: str) -> grpc.Channel:
        with self._lock:
            ch = self._channels.get(endpoint)
            if ch is None:
                if self._closed:
                    raise StorageUnavailable("the etcd connection is closed")
                ch = (grpc.insecure_channel(endpoint, options=CHANNEL_OPTIONS)
                      if self._credentials is None else
                      grpc.secure_channel(endpoint, self._credentials, options=CHANNEL_OPTIONS))
                self._channels[endpoint] = ch
                self._kv[endpoint] = rpc_pb2_grpc.KVStub(ch)
            return ch

    def channel(self) -> grpc.Channel:
        """The channel to the member calls go to now."""
        return self.channel_for(self.endpoint)

    def _kv_for(self, endpoint: str) -> Any:
        self.channel_for(endpoint)
        return self._kv[endpoint]

    def failover_from(self, endpoint: str) -> str:
        """Calls move to the next endpoint, unless another caller moved them off ``endpoint``
        already (two callers seeing one dead member move once, not twice)."""
        with self._lock:
            if self._endpoints[self._current] == endpoint and len(self._endpoints) > 1:
                self._current = (self._current + 1) % len(self._endpoints)
            return self._endpoints[self._current]

    def _failover(self) -> None:
        self.failover_from(self.endpoint)

    # How current this replica's picture is: the watch says when etcd last confirmed it.
    def note_watch_current(self) -> None:
        self._watch_current_at = time.monotonic()

    def watch_silent_s(self) -> float:
        """Seconds since the watch last heard from etcd (under ``WATCH_HEARTBEAT_S`` when all is
        well): how long changes made elsewhere (a revoked token) may have gone unseen."""
        return time.monotonic() - self._watch_current_at

    def _untried(self, tried: Sequence[str]) -> str | None:
        """The member calls go to now, or if this call failed there already, the next one after
        it that it has not tried (another thread may have moved calls back to a member that
        failed for this call)."""
        with self._lock:
            n = len(self._endpoints)
            for i in range(n):
                endpoint = self._endpoints[(self._current + i) % n]
                if endpoint not in tried:
                    return endpoint
        return None

    def _settle_on(self, endpoint: str) -> None:
        """A retry succeeded on ``endpoint``: calls go there from now on."""
        with self._lock:
            self._current = self._endpoints.index(endpoint)

    def _call(self, method: str, request: Any, *, read: bool = False,
              resend: Any = None) -> tuple[Any, int]:
        """``(response, tries)``. A try that failed for want of a member is tried on the next: a
        read always; a write if it cannot have reached etcd, or if ``resend`` (the same write in a
        form that is safe to send twice) is given, which later tries send instead. Each try gets
        at most ``ETCD_TRY_TIMEOUT_S``; the call as a whole ``ETCD_RPC_TIMEOUT_S``. When every
        member has been tried and some were up (no leader yet, or too slow), tries go round again
        after a pause until the deadline; when all refused connections, the call fails at once."""
        deadline = time.monotonic() + self._timeout
        tried: list[str] = []
        failures: list[str] = []
        answering = False  # some member of this round is up (no leader yet, or slow)
        maybe_applied = False  # a write: some try may have reached etcd's log
        attempts = 0
        endpoint = self.endpoint
        while True:
            tried.append(endpoint)
            attempts += 1
            budget = min(deadline - time.monotonic(), ETCD_TRY_TIMEOUT_S)
            try:
                resp = getattr(self._kv_for(endpoint), method)(
                    resend if resend is not None and attempts > 1 else request,
                    timeout=max(budget, MIN_TRY_S), metadata=REQUIRE_LEADER)
            except grpc.RpcError as e:
                code, detail = _failure(e)
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    detail = f"no answer in {budget:.1f} s"
                failures.append(f"{endpoint}: {code.name if code else 'error'}: {detail}")
                if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise StorageUnavailable(f"etcd {method} failed at {failures[-1]}") from e
                self.failover_from(endpoint)
                never_sent = _never_sent(code, detail)
                maybe_applied = maybe_applied or not never_sent
                # A member that is up but has no leader, or did not answer in time, may answer
                # the next round (an election ends); members refusing connections will not.
                answering = answering or "failed to connect" not in detail.lower()
                following = None
                if read or never_sent or resend is not None:
                    following = self._untried(tried)
                    if following is None and answering and deadline - time.monotonic() > \
                            ROUND_PAUSE_S + MIN_TRY_S:
                        time.sleep(ROUND_PAUSE_S)
                        tried, answering = [], False
                        following = self.endpoint
                if following is None or time.monotonic() >= deadline:
                    what = ("etcd is unreachable" if read or not maybe_applied
                            else f"etcd is unreachable (this {method} may have been applied)")
                    raise StorageUnavailable(f"{what}: {'; '.join(failures)}") from e
                endpoint = following
                continue
            if attempts > 1:
                self._settle_on(endpoint)
            return resp, attempts

    def _txn(self, compares: Sequence[Compare], ops: Sequence[RequestOp],
             failure: Sequence[RequestOp] = ()) -> _TxnOutcome:
        """One transaction, sent again on another member when the one it went to died or hung
        with it in flight (a leader killed loses the proposals forwarded to it). Sending it twice
        is safe: the second time its failure branch also reads every key it puts, and a compare
        that failed because the first one was applied after all finds them holding exactly its
        values (under its lease), so it answers "succeeded" at that write's revision. Without
        compares the writes themselves are the same twice (puts of the same values, deletes)."""
        puts = [(bytes(op.request_put.key), bytes(op.request_put.value),
                 int(op.request_put.lease)) for op in ops if op.HasField("request_put")]
        resend = rpc.TxnRequest(
            compare=list(compares), success=list(ops),
            failure=[*failure, *(rpc.RequestOp(request_range=rpc.RangeRequest(key=k))
                                 for k, _, _ in puts)])
        resp, tries = self._call(
            "Txn", rpc.TxnRequest(compare=list(compares), success=list(ops), failure=list(failure)),
            resend=resend)
        responses = list(resp.responses)
        if not resp.succeeded and tries > 1 and puts:
            found = [r.response_range.kvs for r in responses[len(failure):]]
            if len(found) == len(puts) and all(
                    len(kvs) == 1 and bytes(kvs[0].value) == value and int(kvs[0].lease) == lease
                    for kvs, (_, value, lease) in zip(found, puts, strict=True)):
                revision = max(int(kvs[0].mod_revision) for kvs in found)
                return _TxnOutcome(True, revision, [])
        return _TxnOutcome(bool(resp.succeeded), int(resp.header.revision),
                           responses[:len(failure)])

    def txn(self, compares: Sequence[Compare], ops: Sequence[RequestOp]) -> tuple[bool, int]:
        """One transaction: ``(succeeded, revision of the store after it)``."""
        out = self._txn(compares, ops)
        return out.succeeded, out.revision

    def guarded_txn(self, compares: Sequence[Compare],
                    ops: Sequence[RequestOp]) -> tuple[bool, int, int]:
        """``ops`` if every compare holds: ``(succeeded, revision of the store after it,
        newest mod revision among the compared keys that exist)``. On failure that last figure
        is the revision of a write this replica's watch will deliver as an event (the write that
        made a compare fail), which a progress notice from etcd 3.4 may run ahead of."""
        keys = list(dict.fromkeys(bytes(c.key) for c in compares))
        out = self._txn(compares, ops,
                        [rpc.RequestOp(request_range=rpc.RangeRequest(key=k, keys_only=True))
                         for k in keys])
        seen = 0
        if not out.succeeded:
            for r in out.responses:
                for kv in r.response_range.kvs:
                    seen = max(seen, int(kv.mod_revision))
        return out.succeeded, out.revision, seen

    def put_if_absent(self, key: bytes, ops: Sequence[RequestOp],
                      also_absent: Sequence[bytes]) -> str:
        """``ops`` if ``key`` and ``also_absent`` are all absent: "copied"; else "present" if
        ``key`` exists, "conflict" if only another key (a unique name taken) does."""
        out = self._txn([absent(k) for k in (key, *also_absent)], ops,
                        [rpc.RequestOp(request_range=rpc.RangeRequest(key=key, count_only=True))])
        if out.succeeded:
            return "copied"
        return "present" if out.responses[0].response_range.count else "conflict"

    def range_prefix(self, prefix: bytes) -> Loaded:
        """Every key under ``prefix`` at one revision, read in pages."""
        end = prefix_end(prefix)
        key, revision, kvs = prefix, 0, []
        while True:
            resp, _ = self._call("Range", rpc.RangeRequest(
                key=key, range_end=end, limit=RANGE_PAGE_KEYS, revision=revision), read=True)
            revision = revision or int(resp.header.revision)
            kvs.extend(resp.kvs)
            if not resp.more or not resp.kvs:
                return Loaded(revision, kvs)
            key = bytes(resp.kvs[-1].key) + b"\0"

    def delete_range(self, key: bytes, end: bytes) -> int:
        """Deletes ``[key, end)``; how many keys were deleted."""
        resp, _ = self._call("DeleteRange", rpc.DeleteRangeRequest(key=key, range_end=end),
                             resend=rpc.DeleteRangeRequest(key=key, range_end=end))
        return int(resp.deleted)

    def range_raw(self, request: Any) -> Any:
        return self._call("Range", request, read=True)[0]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            channels = list(self._channels.values())
            self._channels.clear()
            self._kv.clear()
        for ch in channels:
            ch.close()


class _Stream:
    """One open watch stream: its requests, the call, and when it last heard from etcd."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.call: Any = None
        self.heard_at = time.monotonic()
        self.asked_at = 0.0
        self.silenced = False  # cancelled by the guard: etcd stopped answering


class Watch:
    """One watch stream on ``prefix`` from a revision, read on a named daemon thread. Events go to
    ``on_events(revision, events)``; a compacted start revision calls ``on_compacted()`` (the
    store reloads); a broken stream is re-opened from the last revision seen, on the next member.
    A guard thread asks etcd for a progress notice when the stream has been quiet for
    ``WATCH_HEARTBEAT_S`` and cancels it when nothing at all came for ``WATCH_DEAD_AFTER_S`` (a
    hung member keeps its connection open and says nothing); every answer tells the connection
    that this replica's picture is current (``EtcdConnection.watch_silent_s``)."""

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
        self._broken = ""  # what broke the stream, reported once per outage and kind of failure
        self._failed = 0  # streams broken in a row: a pause after trying every member once
        self._closed = threading.Event()
        self._stream: _Stream | None = None
        self._thread = threading.Thread(target=self._run, name="etcd-watch", daemon=True)
        self._guard = threading.Thread(target=self._keep_alive, name="etcd-watch-guard",
                                       daemon=True)
        self._thread.start()
        self._guard.start()

    def request_progress(self) -> None:
        """Ask etcd for a progress notice (the revision up to which every event has been sent)."""
        stream = self._stream
        if stream is not None:
            stream.requests.put(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))

    def _request_iter(self, stream: _Stream) -> Iterator[Any]:
        yield rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
            key=self._prefix, range_end=prefix_end(self._prefix), start_revision=self._next,
            progress_notify=True))
        while not self._closed.is_set():
            item = stream.requests.get()
            if item is None:
                return
            yield item

    def _keep_alive(self) -> None:
        while not self._closed.wait(WATCH_HEARTBEAT_S / 2):
            stream = self._stream
            if stream is None or stream.call is None:
                continue
            now = time.monotonic()
            quiet = now - stream.heard_at
            if quiet >= WATCH_DEAD_AFTER_S:
                stream.silenced = True
                stream.call.cancel()
            elif quiet >= WATCH_HEARTBEAT_S and now - stream.asked_at >= WATCH_HEARTBEAT_S:
                stream.asked_at = now
                stream.requests.put(
                    rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))

    def _run(self) -> None:
        while not self._closed.is_set():
            stream = _Stream(self._conn.endpoint)
            try:
                stub = rpc_pb2_grpc.WatchStub(self._conn.channel_for(stream.endpoint))
                stream.call = stub.Watch(self._request_iter(stream), metadata=REQUIRE_LEADER)
                self._stream = stream
                for resp in stream.call:
                    stream.heard_at = time.monotonic()
                    if resp.compact_revision:
                        self._next = self._on_compacted() + 1
                        break
                    if resp.canceled:
                        self._report("canceled", f"etcd at {stream.endpoint} ended the watch: "
                                     f"{resp.cancel_reason or 'no reason given'}")
                        break
                    if resp.created:
                        continue
                    if resp.events:
                        revision = max(int(e.kv.mod_revision) for e in resp.events)
                    else:  # a progress notice: every event up to header.revision was sent
                        revision = int(resp.header.revision)
                    self._broken, self._failed = "", 0
                    self._on_events(revision, list(resp.events))
                    self._conn.note_watch_current()
                    self._next = max(self._next, revision + 1)
                else:
                    self._report("closed", f"etcd at {stream.endpoint} closed the watch")
            except grpc.RpcError as e:
                if self._closed.is_set():
                    return
                code, detail = _failure(e)
                if stream.silenced:
                    self._report("silent", f"etcd at {stream.endpoint} said nothing for "
                                 f"{WATCH_DEAD_AFTER_S:g} s")
                else:
                    name = code.name if code else "error"
                    self._report(name, f"{name} at {stream.endpoint}: {detail}")
            except StorageUnavailable as e:  # a reload after compaction failed: try again
                self._report("reload", str(e))
            except Exception as e:  # never let the feed die silently
                self._report(type(e).__name__, f"{type(e).__name__}: {e}")
            self._stream = None
            stream.requests.put(None)  # end the old request iterator
            if self._closed.is_set():
                return
            self._conn.failover_from(stream.endpoint)
            self._failed += 1
            if self._failed >= len(self._conn.endpoints) and self._closed.wait(WATCH_RETRY_S):
                return

    def _report(self, kind: str, cause: str) -> None:
        """``on_broken(cause)`` once per kind of failure while the watch is down (not once per
        retry on every member)."""
        if kind != self._broken:
            self._broken = kind
            self._on_broken(cause)

    def close(self) -> None:
        self._closed.set()
        stream = self._stream
        if stream is not None:
            stream.requests.put(None)
            if stream.call is not None:
                stream.call.cancel()
        self._thread.join(ETCD_RPC_TIMEOUT_S)
        self._guard.join(ETCD_RPC_TIMEOUT_S)
