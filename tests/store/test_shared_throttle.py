"""Login throttling per deployment: two etcd stores on one etcd (two replicas) count the same
failed logins, concurrent failures through both are all counted, and two replicas racing to
create the shared CA secret end with the same one."""

from __future__ import annotations

import threading
from collections.abc import Callable

from rancher_server.auth.throttle import LoginThrottle
from rancher_server.store.etcd import EtcdStore

THREADS_PER_REPLICA = 2
FAILURES_PER_THREAD = 15


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def throttle(store: EtcdStore, clock: Clock) -> LoginThrottle:
    return LoginThrottle(free_failures=3, base_s=1.0, max_s=8.0, window_s=60.0, max_keys=10,
                         clock=clock, records=store, scope="pair")


def test_failures_recorded_on_one_replica_are_counted_on_the_other(
    open_etcd: Callable[[], EtcdStore],
) -> None:
    clock = Clock()
    a, b = throttle(open_etcd(), clock), throttle(open_etcd(), clock)
    a.failure("10.0.0.1 admin")
    assert b.failure("10.0.0.1 admin") == 2  # the second guess, wherever it lands
    assert b.retry_after("10.0.0.1 admin") == 0.0
    a.failure("10.0.0.1 admin")
    assert b.retry_after("10.0.0.1 admin") == 1.0  # locked on every replica
    assert b.failures("10.0.0.1 admin") == 3 and len(b) == 0  # nothing kept in process
    clock.now += 1.0
    b.failure("10.0.0.1 admin")
    assert a.retry_after("10.0.0.1 admin") == 2.0
    assert a.retry_after("10.0.0.2 admin") == 0.0
    b.lock("10.0.0.1 admin", 8.0)
    assert a.retry_after("10.0.0.1 admin") == 8.0
    a.success("10.0.0.1 admin")
    assert b.retry_after("10.0.0.1 admin") == 0.0 and b.failures("10.0.0.1 admin") == 0
    clock.now += 100.0
    a.failure("10.0.0.1 admin")
    clock.now += 61.0  # past the window: forgotten, on both
    assert b.failures("10.0.0.1 admin") == 0


def test_concurrent_failures_through_two_replicas_are_all_counted(
    open_etcd: Callable[[], EtcdStore],
) -> None:
    clock = Clock()
    stores = [open_etcd(), open_etcd()]
    barrier = threading.Barrier(len(stores) * THREADS_PER_REPLICA)
    errors: list[BaseException] = []

    def guess(store: EtcdStore) -> None:
        t = LoginThrottle(1000, 1.0, 8.0, 60.0, 10, clock=clock, records=store, scope="address")
        barrier.wait()
        try:
            for _ in range(FAILURES_PER_THREAD):
                t.failure("203.0.113.9")
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=guess, args=(s,)) for s in stores
               for _ in range(THREADS_PER_REPLICA)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    counted = LoginThrottle(1000, 1.0, 8.0, 60.0, 10, clock=clock, records=stores[0],
                            scope="address").failures("203.0.113.9")
    assert counted == len(threads) * FAILURES_PER_THREAD


def test_two_replicas_racing_for_the_ca_secret_get_the_same(
    open_etcd: Callable[[], EtcdStore],
) -> None:
    a, b = open_etcd(), open_etcd()
    barrier = threading.Barrier(2)
    got: dict[str, str] = {}

    def create(store: EtcdStore, name: str) -> None:
        barrier.wait()
        got[name] = store.put_secret_if_absent("serving-ca", f"ca of {name}")

    threads = [threading.Thread(target=create, args=(s, n)) for s, n in ((a, "a"), (b, "b"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert got["a"] == got["b"] in ("ca of a", "ca of b")
    assert a.get_secret("serving-ca") == b.get_secret("serving-ca") == got["a"]
