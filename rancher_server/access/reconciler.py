"""The one writer of everything the server keeps in a downstream cluster (RBAC, impersonation
accounts, the authorized endpoint's objects): a loop that makes the cluster equal
:func:`~rancher_server.access.desired.desired_objects`.

- What is there comes from watches (:class:`Informer`) of our labelled objects and of namespaces
  (their project annotation), so drift (``kubectl edit`` or ``delete`` of our binding) and a new
  namespace of a project wake the loop within one event.
- What should be there is recomputed on every store change (listener) and every
  ``RESYNC_S`` (token expiry); passes coalesce.
- Writes: create; replace with the resourceVersion we saw (a 409 refetches once); a changed
  ``roleRef`` is delete then create (the API server refuses to change it); deletes of ours not
  wanted. An object that fails (422, 403, timeout) is logged once, counted, shown in
  :meth:`ClusterReconciler.status` and retried with backoff; it never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from typing import Any

from rancher_server.access.desired import (
    ACE_KINDS,
    CLUSTER_ROLE_BINDINGS,
    CRDS,
    MANAGED_KINDS,
    NAMESPACES,
    PROJECT_ANNOTATION,
    ROLE_BINDINGS,
    SELECTOR,
    DKey,
    Inputs,
    Kind,
    desired_objects,
    ensured_objects,
)
from rancher_server.access.endpoint_config import get_config
from rancher_server.access.informer import Informer, key_of
from rancher_server.access.templates import Catalog
from rancher_server.clusters.kube import Kube, KubeError
from rancher_server.store import Store
from rancher_tunnel.logs import get_logger

RESYNC_S = 30.0  # recompute even when nothing changed (token expiry)
DEBOUNCE_S = 0.02  # let a burst of store writes land before a pass
WRITE_CONCURRENCY = 16
RETRY_BASE_S = 0.5
RETRY_CAP_S = 30.0
INITIAL_SYNC_TIMEOUT_S = 30.0
SLOW_PASS_S = 1.0  # a pass this long is logged even when it wrote nothing
KINDS_BY_NAME: dict[str, Kind] = {k.name: k for k in (*MANAGED_KINDS, NAMESPACES, CRDS)}

log = get_logger(component="reconciler")


@dataclass
class Failure:
    status: int
    reason: str
    message: str
    since: float
    attempts: int
    next_at: float

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "message": self.message,
                "since": self.since, "attempts": self.attempts}


@dataclass
class Counters:
    passes: int = 0
    writes: int = 0
    failures: int = 0
    last_pass_s: float = 0.0


def _differs(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    for key, value in desired.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            have = (current.get("metadata") or {}).get("labels") or {}
            if any(have.get(k) != v for k, v in (value.get("labels") or {}).items()):
                return True
            continue
        if current.get(key) != value:
            return True
    return False


def _with_current_meta(desired: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """``desired`` with the live object's metadata (resourceVersion, annotations, foreign labels)
    and our labels on top: a replace that keeps what others put in metadata."""
    cur_meta = current.get("metadata") or {}
    meta = {k: v for k, v in cur_meta.items() if k in ("name", "namespace", "resourceVersion",
                                                         "annotations", "uid")}
    meta["labels"] = {**(cur_meta.get("labels") or {}), **desired["metadata"]["labels"]}
    return {**desired, "metadata": meta}


class ClusterReconciler:
    """Keeps one cluster equal to the store's desired state. ``run()`` until cancelled."""

    def __init__(self, store: Store, kube: Kube) -> None:
        self._store = store
        self.kube = kube
        self.cluster_id = kube.cluster_id
        self._wake = asyncio.Event()
        self._requested = 0
        self._completed = 0
        self._done = asyncio.Condition()
        self.failures: dict[DKey, Failure] = {}
        self.counters = Counters()
        self.last_synced_at: float | None = None
        self.desired_count = 0
        self.informers: dict[str, Informer] = {
            k.name: Informer(kube, k.list_path, SELECTOR, self.wake, k.name)
            for k in MANAGED_KINDS
        }
        self.namespaces = Informer(kube, NAMESPACES.list_path, "", self.wake, "Namespace")
        self._crds_ready = False

    # Triggers ------------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()

    async def sync(self, timeout_s: float) -> None:
        """Wait until a pass that started after this call has finished (its failures are in
        ``failures``). TimeoutError after ``timeout_s``."""
        self._requested += 1
        target = self._requested
        self._wake.set()
        async with asyncio.timeout(timeout_s), self._done:
            await self._done.wait_for(lambda: self._completed >= target)

    # The loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for inf in (*self.informers.values(), self.namespaces):
                tg.create_task(inf.run(), name=f"informer-{self.cluster_id}-{inf.name}")
            tg.create_task(self._loop(), name=f"reconcile-{self.cluster_id}")

    async def _wait_synced(self) -> None:
        needed = [self.namespaces.synced] + [
            inf.synced for name, inf in self.informers.items()
            if KINDS_BY_NAME[name] not in ACE_KINDS
        ]
        for ev in needed:
            await ev.wait()

    async def _loop(self) -> None:
        async with asyncio.timeout(INITIAL_SYNC_TIMEOUT_S):
            await self._wait_synced()
        while True:
            now = time.monotonic()
            next_retry = min((f.next_at for f in self.failures.values()), default=now + RESYNC_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, min(RESYNC_S, next_retry - now))):
                    await self._wake.wait()
            await asyncio.sleep(DEBOUNCE_S)
            self._wake.clear()
            target = self._requested
            started = time.monotonic()
            writes_before = self.counters.writes
            try:
                await self._pass()
            except Exception:  # a bug here must not stop the cluster's reconciliation for good
                log.exception("reconcile pass failed", cluster=self.cluster_id)
            self.counters.passes += 1
            self.counters.last_pass_s = time.monotonic() - started
            writes = self.counters.writes - writes_before
            if writes or self.counters.last_pass_s > SLOW_PASS_S:
                log.info("reconcile pass", cluster=self.cluster_id, writes=writes,
                         objects=self.desired_count, failing=len(self.failures),
                         seconds=round(self.counters.last_pass_s, 3))
            async with self._done:
                self._completed = max(self._completed, target)
                self._done.notify_all()

    def _inputs(self) -> Inputs:
        store = self._store
        return Inputs(
            cluster_id=self.cluster_id,
            catalog=Catalog.load(store),
            users=store.list_users(),
            bindings=store.list_bindings(self.cluster_id),
            global_bindings=store.list_global_bindings(),
            projects=store.list_projects(self.cluster_id),
            namespaces={name: obj for (_, name), obj in self.namespaces.items.items()},
            ace=get_config(store, self.cluster_id),
            tokens=store.list_tokens(),
            now=time.time(),
        )

    async def _pass(self) -> None:
        inputs = await asyncio.to_thread(self._inputs)
        desired = desired_objects(inputs)
        self.desired_count = len(desired)
        for key in list(self.failures):
            if key not in desired and key[0] in {k.name for k in MANAGED_KINDS}:
                self.failures.pop(key)  # no longer wanted: nothing to retry
        await self._ensure(ensured_objects(inputs, desired))
        sem = asyncio.Semaphore(WRITE_CONCURRENCY)
        for kind in MANAGED_KINDS:
            inf = self.informers[kind.name]
            if kind in ACE_KINDS and not inf.synced.is_set():
                continue  # the CRDs are not served yet: next pass
            todo = []
            for key, obj in desired.items():
                if key[0] != kind.name:
                    continue
                current = inf.items.get((key[1], key[2]))
                if current is None or _differs(current, obj):
                    todo.append(self._attempt(sem, key, self._put(kind, key, obj, current)))
            await asyncio.gather(*todo)
        for kind in reversed(MANAGED_KINDS):
            inf = self.informers[kind.name]
            unwanted = [
                (ns, name) for (ns, name) in list(inf.items)
                if (kind.name, ns, name) not in desired
            ]
            await asyncio.gather(*(
                self._attempt(sem, (kind.name, ns, name), self._delete(kind, ns, name))
                for ns, name in unwanted
            ))
        if not self.failures:
            self.last_synced_at = time.time()

    async def _attempt(self, sem: asyncio.Semaphore, key: DKey, op: Any) -> None:
        failure = self.failures.get(key)
        if failure is not None and failure.next_at > time.monotonic():
            op.close()  # backing off: not this pass
            return
        async with sem:
            try:
                await op
            except KubeError as e:
                self._failed(key, e)
                return
        if self.failures.pop(key, None) is not None:
            log.info("object reconciled after failures", cluster=self.cluster_id,
                     kind=key[0], namespace=key[1], name=key[2])

    def _failed(self, key: DKey, e: KubeError) -> None:
        now = time.monotonic()
        old = self.failures.get(key)
        attempts = (old.attempts if old else 0) + 1
        delay = random.uniform(RETRY_BASE_S, min(RETRY_CAP_S, RETRY_BASE_S * 2**attempts))
        self.failures[key] = Failure(
            e.status, e.reason, e.message, old.since if old else time.time(), attempts,
            now + delay,
        )
        self.counters.failures += 1
        if old is None or (old.status, old.reason) != (e.status, e.reason):
            log.warning("object failed; retrying with backoff", cluster=self.cluster_id,
                        kind=key[0], namespace=key[1], name=key[2], status=e.status,
                        reason=e.reason, error=e.message)

    # Writes --------------------------------------------------------------------------------

    async def _ensure(self, objs: list[tuple[Kind, dict[str, Any]]]) -> None:
        """Namespaces and CRDs: created when missing, never changed or deleted."""
        crds = [obj for kind, obj in objs if kind is CRDS]
        for kind, obj in objs:
            name = obj["metadata"]["name"]
            if kind is NAMESPACES and ("", name) in self.namespaces.items:
                continue
            if kind is CRDS and self._crds_ready:
                continue
            try:
                created = await self.kube.call("POST", kind.list_path, body=obj)
                self.counters.writes += 1
                if kind is NAMESPACES:
                    self.namespaces.observe(created)
            except KubeError as e:
                if e.status != 409:  # AlreadyExists is what we wanted
                    self._failed((kind.name, "", name), e)
                    continue
            self.failures.pop((kind.name, "", name), None)
        if crds and not any(k[0] == CRDS.name for k in self.failures):
            self._crds_ready = True

    async def _put(
        self, kind: Kind, key: DKey, obj: dict[str, Any], current: dict[str, Any] | None
    ) -> None:
        _, ns, name = key
        inf = self.informers[kind.name]
        if current is None:
            try:
                inf.observe(await self.kube.call("POST", kind.collection(ns), body=obj))
                self.counters.writes += 1
                return
            except KubeError as e:
                if e.status != 409:
                    raise
            # Exists without our label, or our cache is behind: look at it, then replace.
            current = await self.kube.call("GET", kind.item(ns, name))
            if not _differs(current, obj):
                inf.observe(current)
                return
        if kind in (CLUSTER_ROLE_BINDINGS, ROLE_BINDINGS) and current.get("roleRef") != obj[
            "roleRef"
        ]:
            await self._delete(kind, ns, name)  # roleRef is immutable: delete, then create
            inf.observe(await self.kube.call("POST", kind.collection(ns), body=obj))
            self.counters.writes += 1
            return
        try:
            updated = await self.kube.call(
                "PUT", kind.item(ns, name), body=_with_current_meta(obj, current)
            )
        except KubeError as e:
            if e.status != 409:
                raise
            fresh = await self.kube.call("GET", kind.item(ns, name))  # changed under us
            updated = await self.kube.call(
                "PUT", kind.item(ns, name), body=_with_current_meta(obj, fresh)
            )
        inf.observe(updated)
        self.counters.writes += 1

    async def _delete(self, kind: Kind, ns: str, name: str) -> None:
        try:
            await self.kube.call("DELETE", kind.item(ns, name))
            self.counters.writes += 1
        except KubeError as e:
            if e.status != 404:
                raise
        self.informers[kind.name].forget((ns, name))

    # Namespaces and projects ---------------------------------------------------------------

    async def set_namespace_project(self, namespace: str, project_ref: str) -> dict[str, Any]:
        """Move a namespace into a project (``<cluster>:<project>``; "" takes it out): one
        annotation, merge-patched. The rights follow in the next pass."""
        patch = {"metadata": {"annotations": {PROJECT_ANNOTATION: project_ref or None}}}
        obj = await self.kube.call(
            "PATCH", NAMESPACES.item("", namespace), body=patch,
            content_type="application/merge-patch+json",
        )
        self.namespaces.observe(obj)
        self.wake()
        return obj

    def observe_namespace(self, obj: dict[str, Any]) -> None:
        """A namespace the proxy just created (its watch event may still be on its way)."""
        if key_of(obj)[1]:
            self.namespaces.observe(obj)
            self.wake()

    def namespace_projects(self) -> dict[str, str]:
        """Namespace name -> its project annotation ("" when none)."""
        out = {}
        for (_, name), obj in self.namespaces.items.items():
            ann = (obj.get("metadata") or {}).get("annotations") or {}
            out[name] = str(ann.get(PROJECT_ANNOTATION) or "")
        return out

    # What the API and metrics show ---------------------------------------------------------

    def status(self) -> dict[str, Any]:
        watches = {
            name: inf.last_error for name, inf in (*self.informers.items(),
                                                   ("Namespace", self.namespaces))
            if inf.last_error
        }
        return {
            "synced": not self.failures and self.last_synced_at is not None,
            "lastSyncedAt": self.last_synced_at,
            "objects": self.desired_count,
            "present": sum(len(inf.items) for inf in self.informers.values()),
            "passes": self.counters.passes,
            "failures": [
                {"kind": k[0], "namespace": k[1], "name": k[2], **f.to_json()}
                for k, f in sorted(self.failures.items())
            ],
            "watchErrors": watches,
        }
