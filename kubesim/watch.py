"""Watch streams: history replay from a resourceVersion, live events, bookmarks, watch-list."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from typing import Any

from aiohttp import web

from . import codec, errors, tables
from .conversion import ALIASES, as_version
from .resources import ResourceType
from .selectors import selector_for
from .store import Store

WATCH_DEFAULT_TIMEOUT_S = 1800.0
BOOKMARK_INTERVAL_S = 60.0
BOOKMARK_BEFORE_TIMEOUT_S = 1.0
WATCH_QUEUE_MAX = 100_000
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
BLUEPRINT = "kubernetes.io/initial-events-list-blueprint"

Event = tuple[str, dict[str, Any]]


def _validate(q: Any) -> tuple[bool, str]:
    """Returns (send_initial_events, resourceVersion)."""
    rv = q.get("resourceVersion", "")
    match = q.get("resourceVersionMatch", "")
    sie_raw = q.get("sendInitialEvents")
    if sie_raw is not None:
        causes = []
        if match != "NotOlderThan":
            causes.append(
                {
                    "reason": "FieldValueForbidden",
                    "message": "Forbidden: sendInitialEvents "
                    "requires setting resourceVersionMatch to NotOlderThan",
                    "field": "resourceVersionMatch",
                }
            )
            if match:
                causes.append(
                    {
                        "reason": "FieldValueNotSupported",
                        "message": f'Unsupported value: "{match}": supported values: '
                        '"NotOlderThan"',
                        "field": "resourceVersionMatch",
                    }
                )
        if causes:
            raise errors.invalid_list_options(causes)
        return sie_raw in ("true", "1"), rv
    if match:
        raise errors.invalid_list_options(
            [
                {
                    "reason": "FieldValueForbidden",
                    "message": "Forbidden: resourceVersionMatch is forbidden for watch",
                    "field": "resourceVersionMatch",
                }
            ]
        )
    if rv in ("", "0"):
        # legacy semantics: start with the current state; 1.32 turns rv=0 + bookmarks into a
        # watch-list (initial-events-end bookmark)
        return True, rv
    return False, rv


async def serve_watch(
    store: Store,
    closing_event: asyncio.Event,
    request: web.Request,
    rt: ResourceType,
    ns: str,
    name: str | None,
) -> web.StreamResponse:
    q = request.query
    send_initial, rv = _validate(q)
    field_sel = q.get("fieldSelector", "")
    if name:
        field_sel = ",".join(x for x in (field_sel, f"metadata.name={name}") if x)
    sel = selector_for(rt, q.get("labelSelector", ""), field_sel)
    bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
    legacy_initial_end = bookmarks and (q.get("sendInitialEvents") is not None or rv in {"0", ""})
    try:
        timeout_s = (
            float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else WATCH_DEFAULT_TIMEOUT_S
        )
    except ValueError:
        timeout_s = WATCH_DEFAULT_TIMEOUT_S
    accept = request.headers.get("Accept", "")
    as_table = codec.wants_table(accept)
    include = q.get("includeObject", "Metadata")

    alias = ALIASES.get((rt.group, rt.resource))
    storage_key = alias.storage if alias is not None else (rt.group, rt.resource)

    def convert(obj: dict[str, Any]) -> dict[str, Any]:
        return alias.from_storage(obj) if alias is not None else obj

    def matches(obj: dict[str, Any]) -> bool:
        if ns and obj["metadata"].get("namespace") != ns:
            return False
        return sel.matches(obj)

    # ---- everything up to subscribe() runs without awaiting: replay and live are seamless
    initial: list[Event] = []
    replay: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    if rv and rv != "0" and not send_initial:
        try:
            rv_int = int(rv)
        except ValueError as exc:
            raise errors.unparsable_resource_version(rv) from exc
        try:
            hist = store.history_since(rv_int, *storage_key)
        except errors.StatusError as err:
            return await _error_stream(request, err)
        replay = [
            (ev.type, convert(ev.obj), None if ev.prev is None else convert(ev.prev)) for ev in hist
        ]
    start_rv = store.revision
    if send_initial:
        initial = [
            ("ADDED", o) for o in store.list_items(rt.group, rt.resource, ns or None) if matches(o)
        ]
    queue: asyncio.Queue[Event | None] = asyncio.Queue()
    overflowed = [False]
    seen: set[tuple[str, str]] = set()
    filtered = not sel.empty
    if filtered:
        seen = {
            (o["metadata"].get("namespace", ""), o["metadata"]["name"])
            for o in store.list_items(rt.group, rt.resource, ns or None)
            if matches(o)
        }

    def on_event(etype: str, group: str, resource: str, obj: dict[str, Any]) -> None:
        if (group, resource) != storage_key:
            return
        if ns and obj["metadata"].get("namespace") != ns:
            return
        if overflowed[0]:
            return
        if queue.qsize() >= WATCH_QUEUE_MAX:
            # a consumer this slow is cut off, as kube-apiserver does; the client re-watches
            overflowed[0] = True
            queue.put_nowait(None)
            return
        queue.put_nowait((etype, convert(obj)))

    unsubscribe = store.subscribe(on_event)
    try:
        resp = web.StreamResponse(status=200, headers={"Cache-Control": "no-cache, private"})
        resp.content_type = "application/json"
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        first_table = [True]
        last_rv = [rv if rv and rv != "0" else str(start_rv)]

        def translate(etype: str, obj: dict[str, Any]) -> str | None:
            if not filtered:
                return etype
            key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            now = matches(obj) and etype != "DELETED"
            was = key in seen
            if etype == "DELETED":
                seen.discard(key)
                return "DELETED" if (was and matches(obj)) or was else None
            if now and not was:
                seen.add(key)
                return "ADDED"
            if not now and was:
                seen.discard(key)
                return "DELETED"
            return etype if now else None

        async def send(etype: str, obj: dict[str, Any]) -> None:
            last_rv[0] = obj["metadata"].get("resourceVersion", last_rv[0])
            if as_table and etype not in {"BOOKMARK", "ERROR"}:
                out: dict[str, Any] = tables.to_table(
                    rt,
                    [obj],
                    include,
                    obj["metadata"].get("resourceVersion", ""),
                    None,
                    None,
                    with_columns=first_table[0],
                )
                first_table[0] = False
            else:
                out = as_version(rt, obj)
            await resp.write(
                (json.dumps({"type": etype, "object": out}, separators=(",", ":")) + "\n").encode()
            )

        def bookmark(extra: dict[str, str] | None = None) -> dict[str, Any]:
            md: dict[str, Any] = {"resourceVersion": last_rv[0], "creationTimestamp": None}
            if extra:
                md["annotations"] = extra
            return {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": md}

        for etype, obj in sorted(
            initial, key=lambda e: (e[1]["metadata"].get("namespace", ""), e[1]["metadata"]["name"])
        ):
            await send(etype, obj)
        if send_initial:
            last_rv[0] = str(start_rv)
            if legacy_initial_end:
                blueprint = base64.b64encode(
                    (
                        json.dumps(
                            {
                                "kind": rt.list_kind,
                                "apiVersion": rt.api_version,
                                "metadata": {},
                                "items": None,
                            },
                            separators=(",", ":"),
                        )
                        + "\n"
                    ).encode()
                ).decode()
                await send("BOOKMARK", bookmark({INITIAL_EVENTS_END: "true", BLUEPRINT: blueprint}))
        for etype, obj, prev in replay:
            t = replayed_type(etype, matches(obj), prev is not None and matches(prev))
            if t:
                await send(t, obj)
        deadline = time.monotonic() + timeout_s
        next_bookmark = time.monotonic() + BOOKMARK_INTERVAL_S
        closing = asyncio.ensure_future(closing_event.wait())
        try:
            while True:
                now = time.monotonic()
                remaining = deadline - now
                if bookmarks:
                    remaining = min(remaining - BOOKMARK_BEFORE_TIMEOUT_S, next_bookmark - now)
                if remaining <= 0:
                    if bookmarks and deadline - time.monotonic() <= BOOKMARK_BEFORE_TIMEOUT_S:
                        await send("BOOKMARK", bookmark())
                        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                        break
                    if bookmarks:
                        await send("BOOKMARK", bookmark())
                        next_bookmark = time.monotonic() + BOOKMARK_INTERVAL_S
                        continue
                    break
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, closing}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getter
                    if closing in done:
                        break
                    continue
                item = getter.result()
                if item is None:
                    break
                etype, obj = item
                if not filtered and not sel.matches(obj):
                    continue
                t = translate(etype, obj) if filtered else etype
                if t:
                    await send(t, obj)
        finally:
            closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closing
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp
    except ConnectionResetError:
        return web.StreamResponse()
    finally:
        unsubscribe()


def replayed_type(etype: str, now: bool, before: bool) -> str | None:
    """The type a replayed event has for a filtered watch, from whether the object matches the
    filter now and before the event (kube-apiserver's cacheWatcher.convertToWatchEvent)."""
    if etype == "DELETED":
        return "DELETED" if before or now else None
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    return "DELETED" if before else None


async def _error_stream(request: web.Request, err: errors.StatusError) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Cache-Control": "no-cache, private"})
    resp.content_type = "application/json"
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    await resp.write(
        (
            json.dumps({"type": "ERROR", "object": err.status()}, separators=(",", ":")) + "\n"
        ).encode()
    )
    await resp.write_eof()
    return resp
