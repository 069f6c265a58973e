"""Watch streams over real HTTP: event order, bookmarks, watch-list, 410, tables, selectors."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from kubesim.server import KubeSim

CM_PATH = "/api/v1/namespaces/default/configmaps"
EVENT_WAIT_S = 5.0
TABLE_ACCEPT = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


async def read_events(resp: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    return [json.loads(line) async for line in resp.content if line.strip()]


def cm(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": labels or {}},
        "data": {"k": "1"},
    }


async def test_watch_from_rv_in_order_noop_patch_and_final_bookmark(
    http: aiohttp.ClientSession, sim: KubeSim
) -> None:
    rv = sim.store.revision
    q = f"?watch=1&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=2"
    async with http.get(CM_PATH + q) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        first = sim.store.create_item("", "configmaps", cm("alpha"))
        line = await asyncio.wait_for(resp.content.readline(), EVENT_WAIT_S)
        assert json.loads(line)["type"] == "ADDED"  # flushed before the stream ends
        async with http.patch(
            CM_PATH + "/alpha",
            data=b'{"data":{"k":"2"}}',
            headers={"Content-Type": "application/merge-patch+json"},
        ) as r:
            assert r.status == 200
        async with http.patch(
            CM_PATH + "/alpha",
            data=b'{"data":{"k":"2"}}',
            headers={"Content-Type": "application/merge-patch+json"},
        ) as r:
            assert r.status == 200  # no change: no event
        async with http.delete(CM_PATH + "/alpha") as r:
            assert r.status == 200
        started = time.monotonic()
        rest = await read_events(resp)
    assert 0.5 < time.monotonic() - started < 3.5
    assert [e["type"] for e in rest] == ["MODIFIED", "DELETED", "BOOKMARK"]
    assert rest[0]["object"]["data"] == {"k": "2"}
    assert int(rest[1]["object"]["metadata"]["resourceVersion"]) > int(
        first["metadata"]["resourceVersion"]
    )
    bm = rest[2]["object"]
    assert bm == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(sim.store.revision), "creationTimestamp": None},
    }


async def test_watch_list_initial_events_then_end_bookmark(
    http: aiohttp.ClientSession, sim: KubeSim
) -> None:
    for name in ("b", "a"):
        sim.store.create_item("", "configmaps", cm(name))
    q = (
        "?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    async with http.get(CM_PATH + q) as resp:
        events = await read_events(resp)
    names = [e["object"]["metadata"].get("name") for e in events if e["type"] == "ADDED"]
    assert names == ["a", "b", "kube-root-ca.crt"]
    end = events[3]
    assert end["type"] == "BOOKMARK"
    ann = end["object"]["metadata"]["annotations"]
    assert ann["k8s.io/initial-events-end"] == "true"
    assert "kubernetes.io/initial-events-list-blueprint" in ann


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "sendInitialEvents=true&resourceVersionMatch=Exact&resourceVersion=1",
            'ListOptions.meta.k8s.io "" is invalid: [resourceVersionMatch: Forbidden: '
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan, "
            'resourceVersionMatch: Unsupported value: "Exact": supported values: "NotOlderThan"]',
        ),
        (
            "sendInitialEvents=true",
            'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ),
    ],
)
async def test_watch_list_validation_422(
    http: aiohttp.ClientSession, query: str, message: str
) -> None:
    async with http.get(f"{CM_PATH}?watch=1&{query}") as resp:
        body = await resp.json()
    assert resp.status == 422 and body["message"] == message


async def test_expired_resource_version_is_error_event(
    http: aiohttp.ClientSession, sim: KubeSim
) -> None:
    async with http.get(CM_PATH + "?watch=1&resourceVersion=1&timeoutSeconds=5") as resp:
        assert resp.status == 200
        events = await read_events(resp)
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: 1 ({sim.store.compacted_revision})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]


async def test_table_watch_sends_columns_once(http: aiohttp.ClientSession, sim: KubeSim) -> None:
    rv = sim.store.revision
    async with http.get(
        f"{CM_PATH}?watch=true&resourceVersion={rv}&timeoutSeconds=1",
        headers={"Accept": TABLE_ACCEPT},
    ) as resp:
        sim.store.create_item("", "configmaps", cm("t1"))
        sim.store.create_item("", "configmaps", cm("t2"))
        events = await read_events(resp)
    assert [e["object"]["kind"] for e in events] == ["Table", "Table"]
    assert [c["name"] for c in events[0]["object"]["columnDefinitions"]] == ["Name", "Data", "Age"]
    assert events[1]["object"]["columnDefinitions"] is None
    assert events[1]["object"]["rows"][0]["cells"][0] == "t2"


async def test_label_selector_watch_translates_moves(
    http: aiohttp.ClientSession, sim: KubeSim
) -> None:
    obj = sim.store.create_item("", "configmaps", cm("s", {"app": "x"}))
    rv = sim.store.revision
    async with http.get(
        f"{CM_PATH}?watch=1&labelSelector=app%3Dx&resourceVersion={rv}&timeoutSeconds=1"
    ) as resp:
        moved = dict(obj, metadata={**obj["metadata"], "labels": {"app": "y"}})
        moved = sim.store.update_item("", "configmaps", moved)
        back = dict(moved, metadata={**moved["metadata"], "labels": {"app": "x"}})
        sim.store.update_item("", "configmaps", back)
        events = await read_events(resp)
    assert [e["type"] for e in events] == ["DELETED", "ADDED"]


async def test_watch_single_object_by_name(http: aiohttp.ClientSession, sim: KubeSim) -> None:
    rv = sim.store.revision
    q = f"?watch=1&fieldSelector=metadata.name%3Done&resourceVersion={rv}&timeoutSeconds=1"
    async with http.get(CM_PATH + q) as resp:
        sim.store.create_item("", "configmaps", cm("other"))
        sim.store.create_item("", "configmaps", cm("one"))
        events = await read_events(resp)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "one")]


async def test_events_k8s_io_is_a_view_of_core_events(
    http: aiohttp.ClientSession, sim: KubeSim
) -> None:
    path = "/apis/events.k8s.io/v1/namespaces/default/events"
    rv = sim.store.revision
    async with http.get(f"{path}?watch=1&resourceVersion={rv}&timeoutSeconds=1") as resp:
        sim.store.create_item(
            "",
            "events",
            {
                "metadata": {"name": "e1", "namespace": "default"},
                "involvedObject": {"kind": "Pod", "name": "p"},
                "reason": "Started",
                "message": "hello",
                "type": "Normal",
                "count": 2,
            },
        )
        events = await read_events(resp)
    assert [e["type"] for e in events] == ["ADDED"]
    ev = events[0]["object"]
    assert ev["apiVersion"] == "events.k8s.io/v1"
    assert (ev["regarding"], ev["note"], ev["deprecatedCount"]) == (
        {"kind": "Pod", "name": "p"},
        "hello",
        2,
    )
    async with http.get(f"{path}?fieldSelector=regarding.name%3Dp") as r:
        listed = await r.json()
    assert [i["metadata"]["name"] for i in listed["items"]] == ["e1"]
    created = {
        "metadata": {"name": "e2"},
        "regarding": {"kind": "Node", "name": "n"},
        "note": "from v1",
        "reason": "R",
        "type": "Warning",
        "eventTime": "2026-11-26T00:00:00.000000Z",
        "reportingController": "x",
        "reportingInstance": "y",
        "action": "A",
    }
    async with http.post(path, json=created) as r:
        assert r.status == 201
    core = sim.store.get_item("", "events", "default", "e2")
    assert core is not None and core["message"] == "from v1"
    assert core["involvedObject"] == {"kind": "Node", "name": "n"}


async def test_slow_consumer_is_cut_off(
    http: aiohttp.ClientSession, sim: KubeSim, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubesim import watch

    monkeypatch.setattr(watch, "WATCH_QUEUE_MAX", 3)
    rv = sim.store.revision
    async with http.get(f"{CM_PATH}?watch=1&resourceVersion={rv}&timeoutSeconds=30") as resp:
        await asyncio.sleep(0.1)
        for i in range(10):
            sim.store.create_item("", "configmaps", cm(f"burst-{i}"))
        events = await asyncio.wait_for(read_events(resp), EVENT_WAIT_S)
    assert 0 < len(events) <= 3


async def test_client_disconnect_ends_the_watch(http: aiohttp.ClientSession, sim: KubeSim) -> None:
    before = sim.store.subscriber_count
    resp = await http.get(f"{CM_PATH}?watch=1&timeoutSeconds=300")
    await asyncio.wait_for(resp.content.readline(), EVENT_WAIT_S)  # kube-root-ca.crt
    assert sim.store.subscriber_count == before + 1
    resp.close()  # drop the connection
    deadline = time.monotonic() + EVENT_WAIT_S
    while sim.store.subscriber_count > before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert sim.store.subscriber_count == before
