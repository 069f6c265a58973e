"""The audit log writer, one background task (off the event loop) writing batches:

- :meth:`AuditWriter.write_now` (REST changes, logins, refused logins): the caller waits until its
  entry is committed (``synchronous=FULL``), so an acknowledged request is in the log even after
  kill -9. Entries waiting together are committed in one transaction (group commit): a burst
  costs one fsync per batch, not per request.
- :meth:`AuditWriter.add` (the proxy, per forwarded request): queued and written within
  :data:`AUDIT_FLUSH_INTERVAL_S`. A crash loses at most that interval of proxy entries (see
  ``docs/security.md``, "Audit durability")."""

from __future__ import annotations

import asyncio
import contextlib
import time

from rancher_server.auth.constants import (
    AUDIT_FLUSH_INTERVAL_S,
    AUDIT_MAX_PENDING_ENTRIES,
    AUDIT_RETENTION_S,
    HOUSEKEEPING_INTERVAL_S,
)
from rancher_server.store import AuditEntry, Store, StoreError
from rancher_tunnel.logs import get_logger

log = get_logger(component="audit")


class AuditWriter:
    def __init__(self, store: Store, flush_interval_s: float = AUDIT_FLUSH_INTERVAL_S) -> None:
        self._store = store
        self._interval_s = flush_interval_s
        self._pending: list[AuditEntry] = []
        self._last_used: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._durable: list[tuple[AuditEntry, asyncio.Future[None]]] = []
        self._wake: asyncio.Event | None = None
        self._closed = False
        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_INTERVAL_S
        self.dropped = 0
        self.written = 0

    def add(self, entry: AuditEntry) -> None:
        if self._closed:
            self._write_sync([entry], {})
            return
        if len(self._pending) >= AUDIT_MAX_PENDING_ENTRIES:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.warning("audit queue full, entries dropped", dropped=self.dropped)
            return
        self._pending.append(entry)
        self._ensure_task()

    def token_used(self, token_id: str, ts: float) -> None:
        """Remember a token's last use; written with the next audit batch (never one write per
        request, and no background task of its own)."""
        if not self._closed:
            self._last_used[token_id] = ts

    async def write_now(self, entry: AuditEntry) -> None:
        """Durable before it returns; raises the store's error if it could not be written."""
        if self._closed:
            await asyncio.to_thread(self._store.append_audit, [entry])
            self.written += 1
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._durable.append((entry, done))
        self._ensure_task()
        assert self._wake is not None
        self._wake.set()
        await done

    async def _commit_durable(self) -> None:
        waiting, self._durable = self._durable, []
        if not waiting:
            return
        try:
            await asyncio.to_thread(self._store.append_audit, [e for e, _ in waiting])
        except Exception as e:
            for _, fut in waiting:
                if not fut.done():
                    fut.set_exception(e)
            return
        self.written += len(waiting)
        for _, fut in waiting:
            if not fut.done():
                fut.set_result(None)

    def _ensure_task(self) -> None:
        if self._task is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the server's loop (CLI): write directly
            self._write_sync(self._take_pending(), self._take_last_used())
            return
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run(), name="audit-writer")

    def _take_pending(self) -> list[AuditEntry]:
        batch, self._pending = self._pending, []
        return batch

    def _take_last_used(self) -> dict[str, float]:
        touched, self._last_used = self._last_used, {}
        return touched

    def _write_sync(self, batch: list[AuditEntry], touched: dict[str, float]) -> None:
        try:
            self._store.touch_tokens(touched)
            self._store.append_audit(batch)
            self.written += len(batch)
        except (StoreError, Exception) as e:  # the store may be closed at the very end
            self.dropped += len(batch)
            log.warning("audit write failed", error=str(e), entries=len(batch))

    async def flush(self) -> None:
        batch, touched = self._take_pending(), self._take_last_used()
        if batch or touched:
            await asyncio.to_thread(self._write_sync, batch, touched)

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + HOUSEKEEPING_INTERVAL_S
        wall = time.time()
        tokens = await asyncio.to_thread(self._store.purge_expired_tokens, wall)
        entries = await asyncio.to_thread(self._store.purge_audit, wall - AUDIT_RETENTION_S)
        failures = await asyncio.to_thread(self._store.purge_login_failures, wall)
        pending = await asyncio.to_thread(self._store.purge_pending_logins, wall)
        if tokens or entries or failures or pending:
            log.info("housekeeping", expired_tokens=tokens, old_audit_entries=entries,
                     forgotten_login_failures=failures, expired_pending_logins=pending)

    async def _run(self) -> None:
        assert self._wake is not None
        next_flush = time.monotonic() + self._interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), max(0.0, next_flush - time.monotonic()))
            self._wake.clear()
            await self._commit_durable()  # never waits for the interval
            if self._closed:
                return
            if time.monotonic() < next_flush:
                continue
            next_flush = time.monotonic() + self._interval_s
            try:
                await self.flush()
                await self._housekeeping()
            except Exception as e:  # keep the writer alive; the next interval retries
                log.warning("audit writer error", error=str(e))

    async def close(self) -> None:
        """Stop the background task and write what is pending; later entries are written
        synchronously (the server is draining its last requests)."""
        task, self._task = self._task, None
        self._closed = True
        if task is not None and self._wake is not None:
            self._wake.set()  # the task commits what waits, then ends (never cut mid-commit)
            await task
        await self._commit_durable()
        await self.flush()
