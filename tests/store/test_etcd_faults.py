"""The etcd store under etcd's faults, on three members of the test's own (``etcd_cluster``): the
member a store talks to killed (kill -9) or hung (SIGSTOP); every member down; one replica cut off
from etcd while another writes. What must hold: reads answer from memory throughout, writes move to
another member within seconds (or answer ``StorageUnavailable`` quickly when none is left), the
watch resumes by itself on another member, and no acknowledged write is lost."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from rancher_server.store import StorageUnavailable
from rancher_server.store.etcd import EtcdStore
from rancher_server.store.etcd_conn import (
    ETCD_RPC_TIMEOUT_S,
    WATCH_DEAD_AFTER_S,
    EtcdConnection,
    absent,
    put_op,
)
from rancher_server.store.etcd_open import open_etcd
from tests.store.conftest import EtcdCluster

# A write after kill -9 of a member: at once when it followed; when it led, the proposal
# forwarded to it is lost and the write is sent again after ETCD_TRY_TIMEOUT_S (2 s).
FAILOVER_WITHIN_S = 4.5
SEEN_WITHIN_S = 1.0  # a write through another store, once the watch has moved
UNREACHABLE_FAILS_WITHIN_S = 0.5  # every member refusing connections
RECOVERED_WITHIN_S = 10.0


@pytest.fixture
def stores() -> Iterator[Callable[..., EtcdStore]]:
    opened: list[EtcdStore] = []

    def open_one(url: str, stale_read_max_s: float = 0.0) -> EtcdStore:
        s = open_etcd(url, stale_read_max_s, prefix=b"/faults/")
        opened.append(s)
        return s

    yield open_one
    for s in opened:
        s.close()


def _url(cluster: EtcdCluster, order: list[int]) -> str:
    return "etcd://" + ",".join(cluster.members[i].endpoint for i in order)


def _wait(pred: Callable[[], object], timeout: float, what: str) -> float:
    started = time.monotonic()
    while not pred():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.005)
    return time.monotonic() - started


def _retry(call: Callable[[], object], timeout: float) -> float:
    """Seconds until ``call()`` stops raising StorageUnavailable."""
    started = time.monotonic()
    while True:
        try:
            call()
            return time.monotonic() - started
        except StorageUnavailable:
            if time.monotonic() - started > timeout:
                raise
            time.sleep(0.1)


def test_killed_member_fails_over_with_no_error_and_nothing_lost(
        etcd_cluster: EtcdCluster, stores: Callable[..., EtcdStore]) -> None:
    a = stores(_url(etcd_cluster, [0, 1, 2]))
    b = stores(_url(etcd_cluster, [2, 1, 0]))  # on another member: its feed is not disturbed
    acked = [a.create_user(f"before-{i}", "", "h").id for i in range(5)]
    tok = a.create_token(acked[0], "sh", kind="api", description="", expires_at=None)
    victim = etcd_cluster.member_at(a.connection.endpoint)
    assert victim is etcd_cluster.members[0]

    victim.stop(kill=True)
    killed = time.monotonic()
    assert a.token_with_user(tok.id) is not None and len(a.list_users()) == 5  # from memory
    # The very next write succeeds: no StorageUnavailable reaches the caller.
    acked.append(a.create_user("after-0", "", "h").id)
    first_write_s = time.monotonic() - killed
    assert first_write_s < FAILOVER_WITHIN_S, first_write_s
    assert a.connection.endpoint != victim.endpoint
    acked += [a.create_user(f"after-{i}", "", "h").id for i in range(1, 5)]
    # The watch is on another member: b's writes reach a within a second.
    t0 = time.monotonic()
    from_b = b.create_user("from-b", "", "h")
    seen_s = _wait(lambda: a.user_by_username("from-b") is not None, SEEN_WITHIN_S,
                   "a write through b seen by a")
    acked.append(from_b.id)
    print(f"kill -9 of a's member: first write {first_write_s:.3f} s, "
          f"b's write seen by a {time.monotonic() - t0:.3f} s ({seen_s:.3f} s after its ack)")

    # The member comes back on its data and catches up; then the leader is killed: a proposal
    # forwarded to it is lost, and the write is sent again (and still succeeds).
    victim.start()
    leader = etcd_cluster.leader()
    leader.stop(kill=True)
    t0 = time.monotonic()
    acked.append(a.create_user("after-leader-kill", "", "h").id)
    leader_write_s = time.monotonic() - t0
    assert leader_write_s < FAILOVER_WITHIN_S, leader_write_s
    _wait(lambda: b.user_by_username("after-leader-kill") is not None, SEEN_WITHIN_S * 5,
          "b sees a's write")
    print(f"kill -9 of the leader ({leader.name}): the next write took {leader_write_s:.3f} s")
    leader.start()

    # Nothing acknowledged is missing: in both replicas' memory and in a fresh load from etcd.
    fresh = stores(_url(etcd_cluster, [1, 0, 2]))
    for s in (a, b, fresh):
        assert set(acked) <= {u.id for u in s.list_users()}, s.connection.endpoint


def test_hung_member_watch_and_writes_move_on(
        etcd_cluster: EtcdCluster, stores: Callable[..., EtcdStore]) -> None:
    a = stores(_url(etcd_cluster, [0, 1, 2]))
    b = stores(_url(etcd_cluster, [2, 1, 0]))
    a.create_user("before", "", "h")
    hung = etcd_cluster.members[0]
    hung.pause()
    try:
        paused = time.monotonic()
        # Nothing comes from the hung member: the watch gives up on it and moves, and calls
        # move with it.
        moved_s = _wait(lambda: a.connection.endpoint != hung.endpoint, WATCH_DEAD_AFTER_S + 2,
                        "the watch leaves the hung member")
        assert a.user_by_username("before") is not None
        write_s = _retry(lambda: a.create_user("after", "", "h"), ETCD_RPC_TIMEOUT_S * 2)
        b.create_user("from-b", "", "h")
        _wait(lambda: a.user_by_username("from-b") is not None, SEEN_WITHIN_S,
              "b's write seen by a")
        print(f"SIGSTOP of a's member: watch moved after {moved_s:.2f} s, a write "
              f"{write_s:.2f} s later ({time.monotonic() - paused:.2f} s in all)")
    finally:
        hung.resume()


def test_all_members_killed_writes_fail_fast_reads_serve_then_recover(
        etcd_cluster: EtcdCluster, stores: Callable[..., EtcdStore]) -> None:
    a = stores(etcd_cluster.url)
    u = a.create_user("alice", "", "h")
    tok = a.create_token(u.id, "sh", kind="api", description="", expires_at=None)
    for m in etcd_cluster.members:
        m.stop(kill=True)
    t0 = time.monotonic()
    with pytest.raises(StorageUnavailable, match="etcd is unreachable") as failed:
        a.create_cluster("prod", "th")
    fail_s = time.monotonic() - t0
    assert fail_s < UNREACHABLE_FAILS_WITHIN_S, fail_s
    for m in etcd_cluster.members:  # the message names every member it tried
        assert m.endpoint in str(failed.value)
    # Reads answer from memory for as long as etcd is away (here: 3 s, polled).
    serving_until = time.monotonic() + 3.0
    while time.monotonic() < serving_until:
        assert a.token_with_user(tok.id) is not None and a.get_user(u.id).username == "alice"
        time.sleep(0.05)
    assert a.connection.watch_silent_s() > 2.5

    etcd_cluster.start()  # same ports, same data
    back = time.monotonic()
    write_s = _retry(lambda: a.create_cluster("prod", "th"), RECOVERED_WITHIN_S)
    # A second replica's change, made after the restart, reaches a: its watch resumed.
    b = stores(_url(etcd_cluster, [2, 1, 0]))
    b.delete_token(tok.id)
    _wait(lambda: a.token_with_user(tok.id) is None, SEEN_WITHIN_S, "b's revocation seen by a")
    assert a.connection.watch_silent_s() < 2.0
    print(f"all members killed: writes failed in {fail_s * 1000:.1f} ms; after the restart "
          f"the first write in {write_s:.2f} s ({time.monotonic() - back:.2f} s to revocation)")


def test_all_members_hung_writes_fail_within_the_rpc_timeout_then_recover(
        etcd_cluster: EtcdCluster, stores: Callable[..., EtcdStore]) -> None:
    a = stores(etcd_cluster.url)
    u = a.create_user("alice", "", "h")
    for m in etcd_cluster.members:
        m.pause()
    try:
        t0 = time.monotonic()
        with pytest.raises(StorageUnavailable,
                           match=r"unreachable \(this Txn may have been applied\).*no answer"):
            a.create_cluster("prod", "th")
        fail_s = time.monotonic() - t0
        assert fail_s < ETCD_RPC_TIMEOUT_S + 1, fail_s
        assert a.get_user(u.id).username == "alice"
    finally:
        for m in etcd_cluster.members:
            m.resume()
    # The failed write may have been applied once the members resumed (its message says so,
    # as etcd's own client does): a new one goes under another name.
    write_s = _retry(lambda: a.create_cluster("prod-2", "th-2"), RECOVERED_WITHIN_S)
    b = stores(_url(etcd_cluster, [2, 1, 0]))
    b.create_user("from-b", "", "h")
    _wait(lambda: a.user_by_username("from-b") is not None, SEEN_WITHIN_S, "b's write seen by a")
    print(f"all members hung: a write failed after {fail_s:.2f} s; after SIGCONT the next "
          f"write succeeded in {write_s:.2f} s")


def test_replica_cut_off_from_etcd_catches_up_and_bounds_stale_tokens(
        etcd_cluster: EtcdCluster, stores: Callable[..., EtcdStore]) -> None:
    # a reaches etcd through one member only: killing it cuts a off while b (through the other
    # two, a quorum) goes on writing.
    stale_max = 4.0
    a = stores(_url(etcd_cluster, [0]), stale_read_max_s=stale_max)
    b = stores(_url(etcd_cluster, [1, 2]))
    u = b.create_user("alice", "", "h")
    tok = b.create_token(u.id, "sh", kind="api", description="", expires_at=None)
    _wait(lambda: a.token_with_user(tok.id) is not None, SEEN_WITHIN_S, "a sees the token")
    etcd_cluster.members[0].stop(kill=True)
    b.delete_token(tok.id)  # revoked while a cannot hear of it (2 s more if m0 led)
    b.create_user("meanwhile", "", "h")
    # The risk the bound is for: a still trusts the revoked token...
    assert a.connection.watch_silent_s() < stale_max
    assert a.token_with_user(tok.id) is not None
    # ...until its picture is older than the bound; then it trusts no token (other reads go on).
    _wait(lambda: a.connection.watch_silent_s() > stale_max, stale_max + 1, "the bound passes")
    with pytest.raises(StorageUnavailable, match="RANCHER_ETCD_STALE_READ_MAX_S"):
        a.token_with_user(tok.id)
    assert a.get_user(u.id).username == "alice"
    with pytest.raises(StorageUnavailable):
        a.create_user("on-a", "", "h")
    etcd_cluster.members[0].start()
    back = time.monotonic()
    _wait(lambda: a.user_by_username("meanwhile") is not None, RECOVERED_WITHIN_S,
          "a catches up with what b wrote while it was cut off")
    assert a.token_with_user(tok.id) is None  # the revocation, and tokens are trusted again
    a.create_user("on-a", "", "h")
    print(f"cut-off replica caught up {time.monotonic() - back:.2f} s after its member returned")


class _LostAnswer(grpc.RpcError, grpc.Call):  # type: ignore[misc]
    """What a caller sees when the member applied its write and died before answering."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "Socket closed"

    def initial_metadata(self) -> None:
        return None

    def trailing_metadata(self) -> None:
        return None

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


class _LosingConnection(EtcdConnection):
    """Applies the first Txn on etcd, then loses its answer."""

    lost = 0

    def _kv_for(self, endpoint: str) -> Any:
        real = super()._kv_for(endpoint)
        conn = self

        class Stub:
            def Txn(self, request: Any, **kw: Any) -> Any:
                resp = real.Txn(request, **kw)
                if conn.lost == 0:
                    conn.lost += 1
                    raise _LostAnswer()
                return resp

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        return Stub()


def test_a_write_applied_whose_answer_was_lost_is_not_applied_twice(
        etcd_cluster: EtcdCluster) -> None:
    conn = _LosingConnection([m.endpoint for m in etcd_cluster.members])
    try:
        key, unique = b"/lost/users/u1", b"/lost/unique/alice"
        ok, revision, _ = conn.guarded_txn(
            [absent(key), absent(unique)], [put_op(key, b'{"n":1}'), put_op(unique, b"u1")])
        assert conn.lost == 1  # the first answer was lost; the resend found the write applied
        assert ok  # not a Conflict with itself
        kvs = conn.range_prefix(b"/lost/").kvs
        assert [(bytes(kv.key), int(kv.mod_revision)) for kv in kvs] == \
            [(unique, revision), (key, revision)]
        # A genuine conflict is still one.
        ok, _, _ = conn.guarded_txn([absent(unique)], [put_op(unique, b"u2")])
        assert not ok
    finally:
        conn.close()
