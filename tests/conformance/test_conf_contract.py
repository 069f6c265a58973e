"""Contract rules a real kube-apiserver 1.32 showed and the stand-in once broke: strategic merge
patch order, field selector errors, and the watch cache's window of old resourceVersions
(the captures are in ../shared/k8s-reference/rules/). Runs unchanged against the stand-in or the
server that CONFORMANCE_KUBECONFIG names."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from kubernetes_asyncio import client

from .conftest import Kubectl, get_json

pytestmark = pytest.mark.timeout(240)

WATCH_TIMEOUT_S = 2
READ_TIMEOUT_S = 60.0
# more events than the stand-in kept before (10 000) and fewer than a real server writes in its
# 75 s fresh duration: every one of them must replay
BURST_OBJECTS = 5_100
BURST_CONCURRENCY = 32
EDGE_ATTEMPTS = 3  # the window may move between two watches on a busy server
TOO_OLD = re.compile(r"^too old resource version: (\d+) \((\d+)\)$")
SELECTOR_ONLY_METADATA = (
    '"data.k" is not a known field selector: only "metadata.name", "metadata.namespace"'
)


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


async def _request(
    api: client.ApiClient,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: Any = None,
) -> Any:
    """The raw aiohttp response of one call (the caller reads and releases it)."""
    resp = await api.call_api(
        path + (f"?{urlencode(query)}" if query else ""),
        method,
        header_params={"Accept": "application/json", "Content-Type": "application/json"},
        body=body,
        _preload_content=False,
        auth_settings=["BearerToken"],
    )
    return resp[0] if isinstance(resp, tuple) else resp


async def _get(
    api: client.ApiClient, path: str, query: dict[str, str]
) -> tuple[int, str, dict[str, Any]]:
    raw = await _request(api, "GET", path, query)
    try:
        text = (await raw.read()).decode()
    finally:
        raw.release()
    return raw.status, raw.headers.get("Content-Type", ""), json.loads(text)


async def _watch_events(
    api: client.ApiClient, path: str, query: dict[str, str], first_only: bool = False
) -> tuple[int, list[dict[str, Any]]]:
    """(HTTP status, events) of a watch that ends by its timeoutSeconds (or after one event)."""
    raw = await _request(api, "GET", path, {"watch": "1", **query})
    events: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            while line := await raw.content.readline():
                if line.strip():
                    events.append(json.loads(line))
                    if first_only:
                        break
    finally:
        raw.release()
    return raw.status, events


def _container_names(kubectl: Kubectl, name: str, namespace: str) -> list[str]:
    spec = get_json(kubectl, "deployment", name, "-n", namespace)["spec"]["template"]["spec"]
    return [c["name"] for c in spec["containers"]]


def _deployment(name: str, namespace: str, containers: list[str]) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {
                        "containers": [{"name": c, "image": "nginx:1.27"} for c in containers]
                    },
                },
            },
        }
    )


def _smp(kubectl: Kubectl, name: str, namespace: str, spec: dict[str, Any]) -> None:
    body = {"spec": {"template": {"spec": spec}}}
    kubectl(
        "patch", "deployment", name, "-n", namespace, "--type=strategic", "-p", json.dumps(body)
    )


def test_strategic_merge_patch_puts_the_patch_items_first(kubectl: Kubectl, namespace: str) -> None:
    """rules/deployment-smp-*.json: the patch's list items first, then the server-only ones;
    an item the patch changes keeps its place among them; $setElementOrder wins."""
    kubectl("apply", "-f", "-", input=_deployment("one", namespace, ["main"]))
    _smp(kubectl, "one", namespace, {"containers": [{"name": "side", "image": "busybox"}]})
    assert _container_names(kubectl, "one", namespace) == ["side", "main"]

    kubectl("apply", "-f", "-", input=_deployment("two", namespace, ["a", "b"]))
    _smp(
        kubectl,
        "two",
        namespace,
        {
            "containers": [
                {"name": "side", "image": "busybox"},
                {"name": "a", "image": "nginx:1.28"},
            ]
        },
    )
    assert _container_names(kubectl, "two", namespace) == ["side", "a", "b"]
    _smp(
        kubectl,
        "two",
        namespace,
        {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "side"}],
            "containers": [{"name": "side", "image": "busybox:1"}],
        },
    )
    assert _container_names(kubectl, "two", namespace) == ["a", "b", "side"]


async def test_field_selectors_answer_as_each_kind_converts_them(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    """rules/list-*-field-selector*.json, watch-configmaps-unknown-field-selector-400.json."""
    cms = f"/api/v1/namespaces/{namespace}/configmaps"
    unknown = {"fieldSelector": "data.k=v"}
    default_error = _status(400, "BadRequest", SELECTOR_ONLY_METADATA)
    assert await _get(api_client, cms, unknown) == (400, "application/json", default_error)
    everywhere = {"fieldSelector": f"metadata.namespace={namespace},data.k=v"}
    assert await _get(api_client, "/api/v1/configmaps", everywhere) == (
        400,
        "application/json",
        default_error,
    )
    # a watch is refused the same way, before any stream starts
    assert await _get(api_client, cms, {"watch": "1", "timeoutSeconds": "1", **unknown}) == (
        400,
        "application/json",
        default_error,
    )
    own_error = _status(400, "BadRequest", "field label not supported: data.k")
    for resource in ("pods", "secrets"):
        got = await _get(api_client, f"/api/v1/namespaces/{namespace}/{resource}", unknown)
        assert got == (400, "application/json", own_error), resource
    watched = await _get(
        api_client, "/api/v1/pods", {"watch": "1", "timeoutSeconds": "1", **unknown}
    )
    assert watched == (400, "application/json", own_error)
    assert await _get(api_client, cms, {"fieldSelector": "metadata.name"}) == (
        400,
        "application/json",
        _status(
            400,
            "BadRequest",
            "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
        ),
    )
    kubectl("-n", namespace, "create", "secret", "generic", "opaque", "--from-literal=k=v")
    status, _, secrets = await _get(
        api_client, f"/api/v1/namespaces/{namespace}/secrets", {"fieldSelector": "type=Opaque"}
    )
    assert status == 200
    assert [s["metadata"]["name"] for s in secrets["items"]] == ["opaque"]
    status, _, named = await _get(api_client, cms, {"fieldSelector": "metadata.name=none"})
    assert (status, named["items"]) == (200, [])
    bad = kubectl("get", "cm", "-n", namespace, "--field-selector", "data.k=v", check=False)
    assert bad.returncode == 1
    assert bad.stderr.strip().endswith(f'field selector "data.k=v": {SELECTOR_ONLY_METADATA}')


async def test_watch_from_before_a_burst_replays_all_of_it(
    api_client: client.ApiClient, namespace: str
) -> None:
    """rules/watch-old-resourceversion-window.json: the window grows while its events are
    younger than 75 s, so a watch from before a burst of writes replays every event of it."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    status, _, listed = await _get(api_client, path, {})
    assert status == 200
    start = listed["metadata"]["resourceVersion"]
    names = [f"b{i:05d}" for i in range(BURST_OBJECTS)]
    gate = asyncio.Semaphore(BURST_CONCURRENCY)

    async def create(name: str) -> None:
        async with gate:
            raw = await _request(api_client, "POST", path, body={"metadata": {"name": name}})
            raw.release()
            assert raw.status == 201, name

    await asyncio.gather(*(create(n) for n in names))
    raw = await _request(api_client, "DELETE", path)
    raw.release()
    assert raw.status == 200
    status, events = await _watch_events(
        api_client, path, {"resourceVersion": start, "timeoutSeconds": str(WATCH_TIMEOUT_S)}
    )
    assert status == 200
    assert not [e for e in events if e["type"] == "ERROR"], events[:1]
    ours = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    ours = [(t, n) for t, n in ours if n.startswith("b")]
    assert sorted(n for t, n in ours if t == "ADDED") == names  # created concurrently
    assert sorted(n for t, n in ours if t == "DELETED") == names


async def test_watch_is_too_old_only_before_the_window(
    api_client: client.ApiClient, namespace: str
) -> None:
    """status/watch-too-old-resourceversion-410.json and the window's edge: HTTP 200 always;
    ``too old resource version: X (Y)`` only for X < Y; from Y the watch replays."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    query = {"timeoutSeconds": str(WATCH_TIMEOUT_S)}
    for _ in range(EDGE_ATTEMPTS):
        status, events = await _watch_events(
            api_client, path, {"resourceVersion": "1", **query}, first_only=True
        )
        assert status == 200
        if not events or events[0]["type"] != "ERROR":  # a fresh server still holds rv 1
            assert all(e["type"] in ("ADDED", "MODIFIED", "DELETED") for e in events)
            return
        error = events[0]["object"]
        assert {k: error[k] for k in ("kind", "status", "reason", "code")} == {
            "kind": "Status",
            "status": "Failure",
            "reason": "Expired",
            "code": 410,
        }
        match = TOO_OLD.match(error["message"])
        assert match and match.group(1) == "1", error["message"]
        edge = int(match.group(2))
        status, at_edge = await _watch_events(
            api_client, path, {"resourceVersion": str(edge), **query}, first_only=True
        )
        assert status == 200
        status, before = await _watch_events(
            api_client, path, {"resourceVersion": str(edge - 1), **query}, first_only=True
        )
        assert status == 200
        if before and before[0]["object"].get("message") != (
            f"too old resource version: {edge - 1} ({edge})"
        ):
            continue  # the window moved between the watches: measure again
        assert not at_edge or at_edge[0]["type"] != "ERROR", at_edge
        assert before and before[0]["type"] == "ERROR"
        return
    pytest.fail("the watch cache's window kept moving")


async def test_filtered_watch_replays_by_the_object_before_each_event(
    api_client: client.ApiClient, namespace: str
) -> None:
    """A label-filtered watch from an old resourceVersion sees an object that came to match as
    ADDED (it did not match when created), as a real watch cache does."""
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    _, _, listed = await _get(api_client, path, {})
    start = listed["metadata"]["resourceVersion"]
    name = f"f-{uuid.uuid4().hex[:6]}"
    raw = await _request(
        api_client, "POST", path, body={"metadata": {"name": name, "labels": {"tier": "db"}}}
    )
    raw.release()
    assert raw.status == 201
    core = client.CoreV1Api(api_client)
    await core.patch_namespaced_config_map(
        name, namespace, {"metadata": {"labels": {"tier": "web"}}}
    )
    status, events = await _watch_events(
        api_client,
        path,
        {
            "resourceVersion": start,
            "labelSelector": "tier=web",
            "timeoutSeconds": str(WATCH_TIMEOUT_S),
        },
    )
    assert status == 200
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", name)]
