"""Proxied requests that stay open (watches, ``logs -f``, exec, attach, port-forward) belong to a
token, a user and the access that let them in. When any of those goes away (the token is revoked
or expires, the user is disabled or deleted, their access to the cluster changes, the cluster is
deleted), the guard closes the request within ``CHECK_INTERVAL_S``: the client reconnects and is
authorized again, or refused."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rancher_server.access.roles import Access, access_of
from rancher_server.auth.principal import Principal
from rancher_server.auth.tokens import principal_of, token_still_usable
from rancher_server.store import NotFound, Store
from rancher_tunnel.logs import get_logger

CHECK_INTERVAL_S = 1.0

log = get_logger(component="proxy-streams")


@dataclass
class OpenRequest:
    principal: Principal
    cluster_id: str
    fingerprint: tuple[Any, ...]
    task: asyncio.Task[Any]
    close: Callable[[], None]  # closes the client's connection
    opened_at: float


def fingerprint_of(principal: Principal, access: Access) -> tuple[Any, ...]:
    """What decides a principal's rights in a cluster: a change of it is a change of access."""
    return (principal.groups, access.cluster_templates,
            tuple(sorted(access.project_templates.items())))


class StreamGuard:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._open: dict[int, OpenRequest] = {}
        self._next = 0
        self.cut_total = 0

    def __len__(self) -> int:
        return len(self._open)

    @contextlib.contextmanager
    def track(
        self, principal: Principal, cluster_id: str, fingerprint: tuple[Any, ...],
        close: Callable[[], None],
    ) -> Iterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._next += 1
        key = self._next
        self._open[key] = OpenRequest(principal, cluster_id, fingerprint, task, close,
                                      time.monotonic())
        try:
            yield
        finally:
            self._open.pop(key, None)

    def revoked(self, req: OpenRequest) -> str | None:
        """Why this request may no longer stay open (None: it may)."""
        store = self._store
        reason = token_still_usable(store, req.principal.token_id, time.time())
        if reason is not None:
            return reason
        try:
            store.get_cluster(req.cluster_id)
        except NotFound:
            return "cluster deleted"
        found = store.token_with_user(req.principal.token_id)  # cached: the read above
        if found is None:
            return "token revoked"
        now = principal_of(store, *found)
        if fingerprint_of(now, access_of(store, now, req.cluster_id)) != req.fingerprint:
            return "access to the cluster changed"
        return None

    def check(self) -> int:
        """Close every open request that lost its right to be open; how many were closed."""
        cut = 0
        for key, req in list(self._open.items()):
            reason = self.revoked(req)
            if reason is None:
                continue
            self._open.pop(key, None)
            log.info("closing a proxied request", cluster=req.cluster_id,
                     user=req.principal.user_id, reason=reason,
                     open_s=round(time.monotonic() - req.opened_at, 1))
            req.close()
            req.task.cancel()
            cut += 1
        self.cut_total += cut
        return cut

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.check()
            except Exception:  # never stop guarding because of one bad round
                log.exception("stream guard round failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CHECK_INTERVAL_S):
                    await stop.wait()


class StreamGuardCollector(Collector):
    def __init__(self, guard: StreamGuard) -> None:
        self._guard = guard

    def collect(self) -> Iterator[Metric]:
        open_now = GaugeMetricFamily("rancher_proxy_open_requests",
                                     "Proxied requests open now (watches, logs, exec, ...)")
        open_now.add_metric([], len(self._guard))
        cut = CounterMetricFamily("rancher_proxy_requests_cut",
                                  "Open proxied requests closed because their token, user or "
                                  "access went away")
        cut.add_metric([], self._guard.cut_total)
        yield from (open_now, cut)
