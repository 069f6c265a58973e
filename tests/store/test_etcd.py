"""What only the etcd store has: several replicas on one etcd, races between them, restarts of
the store and of etcd, cascades larger than one transaction."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rancher_server.store import Conflict, StorageUnavailable
from rancher_server.store.etcd import MAX_TXN_OPS, EtcdStore
from tests.store.conftest import EtcdMember

SEEN_WITHIN_S = 1.0
RACE_ROUNDS = 5


def _wait_for(check: Callable[[], bool], timeout: float = SEEN_WITHIN_S) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not seen within {timeout} s")
        time.sleep(0.005)
    return time.monotonic() - started


def test_replicas_see_each_others_writes_within_a_second(
    open_etcd: Callable[[], EtcdStore],
) -> None:
    a, b = open_etcd(), open_etcd()
    fired = threading.Event()
    b.add_listener(fired.set)
    u = a.create_user("alice", "", "hash", groups=["devs"])
    t = a.create_token(u.id, "sh", kind="api", description="", expires_at=None)
    assert fired.wait(SEEN_WITHIN_S)
    _wait_for(lambda: b.token_with_user(t.id) is not None)
    c = b.create_cluster("prod", "th")
    b.create_binding(c.id, "group", "devs", "cluster-member")
    _wait_for(lambda: len(a.bindings_for(u.id, u.groups, c.id)) == 1)
    assert b.token_with_user(t.id) is not None  # cached on b ...
    a.delete_token(t.id)  # ... and revoked on a: b refuses it within a second
    _wait_for(lambda: b.token_with_user(t.id) is None)
    assert a.revision == b.revision or _wait_for(lambda: a.revision == b.revision) >= 0


@pytest.mark.parametrize("what", ["user", "cluster"])
def test_uniqueness_race_between_replicas_has_one_winner(
    open_etcd: Callable[[], EtcdStore], what: str,
) -> None:
    a, b = open_etcd(), open_etcd()
    for round_ in range(RACE_ROUNDS):
        name = f"{what}-{round_}"
        barrier = threading.Barrier(2)
        results: list[str] = []

        def create(store: EtcdStore, name: str = name, barrier: threading.Barrier = barrier,
                   results: list[str] = results) -> None:
            barrier.wait()
            try:
                if what == "user":
                    store.create_user(name, "", "hash")
                else:
                    store.create_cluster(name, f"hash-{id(store)}-{name}")
                results.append("won")
            except Conflict:
                results.append("conflict")

        threads = [threading.Thread(target=create, args=(s,)) for s in (a, b)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(10)
        assert sorted(results) == ["conflict", "won"]
    listed = a.list_users() if what == "user" else a.list_clusters()
    assert len(listed) == RACE_ROUNDS


def test_a_restarted_store_resumes_from_etcd(open_etcd: Callable[[], EtcdStore]) -> None:
    first = open_etcd()
    u = first.create_user("alice", "", "hash", is_admin=True)
    c = first.create_cluster("prod", "th")
    b = first.create_binding(c.id, "user", u.id, "cluster-owner")
    first.set_setting("server-url", "https://x")
    first.close()
    again = open_etcd()
    assert again.get_user(u.id).is_admin and again.get_binding(b.id) == b
    assert [p.name for p in again.list_projects(c.id)] == ["Default", "System"]
    assert again.get_setting("server-url") == "https://x"


def test_cascade_larger_than_one_transaction(open_etcd: Callable[[], EtcdStore]) -> None:
    s = open_etcd()
    u = s.create_user("alice", "", "hash")
    tokens = [s.create_token(u.id, "sh", kind="login", description="", expires_at=None)
              for _ in range(MAX_TXN_OPS + 20)]
    s.delete_user(u.id)
    assert s.list_tokens() == [] and s.token_with_user(tokens[0].id) is None
    assert s.user_by_username("alice") is None
    assert s.create_user("alice", "", "hash").username == "alice"  # the name is free again


def test_etcd_down_reads_go_on_writes_fail_then_both_recover(tmp_path: Path) -> None:
    member = EtcdMember(tmp_path / "data")
    member.start()
    a = b = None
    try:
        a, b = EtcdStore(member.url), EtcdStore(member.url)
        u = a.create_user("alice", "", "hash")
        t = a.create_token(u.id, "sh", kind="api", description="", expires_at=None)
        _wait_for(lambda: b.token_with_user(t.id) is not None)
        member.stop(kill=True)
        assert a.token_with_user(t.id) is not None  # from memory
        with pytest.raises(StorageUnavailable):
            a.create_cluster("prod", "th")
        member.start()
        c = _retry(lambda: a.create_cluster("prod", "th"))
        _wait_for(lambda: b.cluster_by_token_hash("th") == c, timeout=10)  # b's watch resumed
    finally:
        for s in (a, b):
            if s is not None:
                s.close()
        member.stop()


def _retry(call: Callable[[], object], timeout: float = 10) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except StorageUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
