"""The HTTP surface compared with the recorded kube-apiserver answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubesim.server import KubeSim

REF = Path("/work/shared/k8s-reference")
AGG_ACCEPT = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
)
TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
    "g=meta.k8s.io,application/json"
)
CM = "/api/v1/namespaces/default/configmaps"
needs_ref = pytest.mark.skipif(not REF.exists(), reason="reference captures not available")


async def body(resp: aiohttp.ClientResponse) -> Any:
    return json.loads(await resp.read())


async def test_version_and_legacy_discovery(http: aiohttp.ClientSession) -> None:
    async with http.get("/version") as r:
        v = await body(r)
    assert (v["major"], v["minor"]) == ("1", "32")
    async with http.get("/api") as r:
        assert (await body(r))["versions"] == ["v1"]
    async with http.get("/apis/apps") as r:
        assert (await body(r))["preferredVersion"] == {"groupVersion": "apps/v1", "version": "v1"}
    async with http.get("/apis/nosuch.example.com/v1/things") as r:
        assert r.status == 404 and await r.text() == "404 page not found\n"


@needs_ref
@pytest.mark.parametrize(
    "gv",
    [
        "api_v1.json",
        "apis/apps/v1.json",
        "apis/rbac.authorization.k8s.io/v1.json",
        "apis/coordination.k8s.io/v1.json",
    ],
)
async def test_resource_lists_match_reference(http: aiohttp.ClientSession, gv: str) -> None:
    ref = json.loads((REF / "discovery" / gv).read_text())
    path = "/api/v1" if gv == "api_v1.json" else "/" + gv.removesuffix(".json")
    async with http.get(path) as r:
        ours = await body(r)
    assert ours["groupVersion"] == ref["groupVersion"]
    ref_by_name = {e["name"]: e for e in ref["resources"]}
    for e in ours["resources"]:
        assert e == ref_by_name[e["name"]], e["name"]


@needs_ref
async def test_aggregated_discovery_etag_304_and_406(http: aiohttp.ClientSession) -> None:
    ref = json.loads((REF / "discovery/aggregated/api.json").read_text())
    ref_cm = next(
        r for r in ref["items"][0]["versions"][0]["resources"] if r["resource"] == "configmaps"
    )
    async with http.get("/api?timeout=32s", headers={"Accept": AGG_ACCEPT}) as r:
        assert r.headers["Content-Type"] == (
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        )
        assert r.headers["Cache-Control"] == "public" and r.headers["Vary"] == "Accept"
        etag = r.headers["Etag"]
        doc = await body(r)
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == "apidiscovery.k8s.io/v2"
    ours_cm = next(
        r for r in doc["items"][0]["versions"][0]["resources"] if r["resource"] == "configmaps"
    )
    assert ours_cm == ref_cm
    async with http.get("/api", headers={"Accept": AGG_ACCEPT, "If-None-Match": etag}) as r:
        assert r.status == 304
    v3 = "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList"
    async with http.get("/apis", headers={"Accept": v3}) as r:
        assert r.status == 406
    beta = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    async with http.get("/apis", headers={"Accept": beta}) as r:
        assert (await body(r))["apiVersion"] == "apidiscovery.k8s.io/v2beta1"


async def test_openapi_v3_index_hash_and_redirect(http: aiohttp.ClientSession) -> None:
    async with http.get("/openapi/v3") as r:
        assert r.headers["Content-Type"] == "text/plain; charset=utf-8"
        index = await body(r)
    url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
    async with http.get(url) as r:
        assert r.headers["Cache-Control"] == "public, immutable"
        doc = await body(r)
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    async with http.get("/openapi/v3/apis/apps/v1?hash=WRONG", allow_redirects=False) as r:
        assert r.status == 301 and r.headers["Location"] == url
    async with http.get("/openapi/v2") as r:
        assert (await body(r))["swagger"] == "2.0"


def _ref_status(name: str) -> tuple[int, dict[str, Any]]:
    d = json.loads((REF / "status" / f"{name}.json").read_text())
    return d["response"]["status"], d["response"]["body"]


async def _setup_st(http: aiohttp.ClientSession) -> None:
    async with http.post("/api/v1/namespaces", json={"metadata": {"name": "st"}}) as r:
        assert r.status == 201
    async with http.post(
        "/api/v1/namespaces/st/configmaps", json={"metadata": {"name": "cm1"}, "data": {"k": "v"}}
    ) as r:
        assert r.status == 201


STATUS_CASES = [
    ("get-missing-configmap-404", "GET", "/api/v1/namespaces/st/configmaps/missing", None, {}),
    (
        "delete-missing-configmap-404",
        "DELETE",
        "/api/v1/namespaces/st/configmaps/missing",
        None,
        {},
    ),
    ("get-unknown-resource-404", "GET", "/api/v1/namespaces/st/widgets", None, {}),
    (
        "create-existing-configmap-409-alreadyexists",
        "POST",
        "/api/v1/namespaces/st/configmaps",
        b'{"metadata":{"name":"cm1"}}',
        {"Content-Type": "application/json"},
    ),
    (
        "create-in-missing-namespace-404",
        "POST",
        "/api/v1/namespaces/nonexistent-ns/configmaps",
        b'{"metadata":{"name":"x"}}',
        {"Content-Type": "application/json"},
    ),
    (
        "create-namespace-mismatch-400",
        "POST",
        "/api/v1/namespaces/st/configmaps",
        b'{"metadata":{"name":"x","namespace":"other"}}',
        {"Content-Type": "application/json"},
    ),
    (
        "create-missing-name-422",
        "POST",
        "/api/v1/namespaces/st/configmaps",
        b'{"metadata":{}}',
        {"Content-Type": "application/json"},
    ),
    (
        "create-unsupported-content-type-415",
        "POST",
        "/api/v1/namespaces/st/configmaps",
        b"x",
        {"Content-Type": "text/plain"},
    ),
    (
        "create-protobuf-garbage-body-json-accept",
        "POST",
        "/api/v1/namespaces/st/configmaps",
        bytes(range(64)),
        {"Content-Type": "application/vnd.kubernetes.protobuf", "Accept": "application/json"},
    ),
    (
        "post-to-named-resource-405",
        "POST",
        "/api/v1/namespaces/st/configmaps/cm1",
        b"{}",
        {"Content-Type": "application/json"},
    ),
    (
        "patch-plain-json-content-type-415",
        "PATCH",
        "/api/v1/namespaces/st/configmaps/cm1",
        b"{}",
        {"Content-Type": "application/json"},
    ),
    (
        "put-name-mismatch-400",
        "PUT",
        "/api/v1/namespaces/st/configmaps/cm1",
        b'{"metadata":{"name":"other-name"}}',
        {"Content-Type": "application/json"},
    ),
    (
        "put-stale-resourceversion-409-conflict",
        "PUT",
        "/api/v1/namespaces/st/configmaps/cm1",
        b'{"metadata":{"name":"cm1","resourceVersion":"1"}}',
        {"Content-Type": "application/json"},
    ),
    (
        "create-malformed-json-400",
        "POST",
        "/api/v1/namespaces/st/configmaps",
        b"{not json",
        {"Content-Type": "application/json"},
    ),
    (
        "get-unacceptable-accept-406",
        "GET",
        "/api/v1/namespaces/st/configmaps/cm1",
        None,
        {"Accept": "application/xml"},
    ),
    (
        "list-rvmatch-without-rv-422",
        "GET",
        "/api/v1/namespaces/st/configmaps?resourceVersionMatch=Exact",
        None,
        {},
    ),
]


@needs_ref
@pytest.mark.parametrize(
    ("ref", "method", "path", "data", "headers"), STATUS_CASES, ids=[c[0] for c in STATUS_CASES]
)
async def test_status_bodies_match_reference(
    http: aiohttp.ClientSession,
    ref: str,
    method: str,
    path: str,
    data: bytes | None,
    headers: dict[str, str],
) -> None:
    await _setup_st(http)
    code, want = _ref_status(ref)
    async with http.request(method, path, data=data, headers=headers) as r:
        got = await body(r)
        assert r.status == code
        assert r.headers["Content-Type"] == "application/json"
    assert got == want


async def test_status_shapes_with_variable_parts(http: aiohttp.ClientSession) -> None:
    await _setup_st(http)
    async with http.post(
        "/api/v1/namespaces/st/configmaps",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    ) as r:
        got = await body(r)
    assert r.status == 400 and got["reason"] == "BadRequest"
    assert got["message"].startswith(
        "the object provided is unrecognized (must be of type ConfigMap): couldn't get "
        "version/kind; json parse error: "
    )
    async with http.delete(
        "/api/v1/namespaces/st/configmaps/cm1", json={"preconditions": {"resourceVersion": "1"}}
    ) as r:
        got = await body(r)
    assert r.status == 409 and got["message"].startswith(
        'Operation cannot be fulfilled on ConfigMap "cm1": the ResourceVersion in the '
        "precondition (1) does not match the ResourceVersion in record ("
    )
    async with http.get("/api/v1/namespaces/st/configmaps?watch=1&resourceVersion=abc") as r:
        got = await body(r)
    assert r.status == 500 and got["message"] == (
        'resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax'
    )


async def test_tables_and_partial_metadata(http: aiohttp.ClientSession) -> None:
    await _setup_st(http)
    async with http.get(
        "/api/v1/namespaces/st/configmaps?limit=500", headers={"Accept": TABLE_ACCEPT}
    ) as r:
        table = await body(r)
    assert table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Data", "Age"]
    row = next(r for r in table["rows"] if r["cells"][0] == "cm1")
    assert row["cells"][1] == 1 and row["object"]["kind"] == "PartialObjectMetadata"
    async with http.get(
        "/api/v1/namespaces/st/configmaps?includeObject=Object", headers={"Accept": TABLE_ACCEPT}
    ) as r:
        assert (await body(r))["rows"][0]["object"]["kind"] == "ConfigMap"
    accept = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"
    async with http.get("/api/v1/namespaces/st/configmaps", headers={"Accept": accept}) as r:
        pl = await body(r)
    assert pl["kind"] == "PartialObjectMetadataList"
    assert {i["metadata"]["name"] for i in pl["items"]} == {"cm1", "kube-root-ca.crt"}


async def test_dry_run_delete_and_deletecollection(http: aiohttp.ClientSession) -> None:
    await _setup_st(http)
    async with http.delete("/api/v1/namespaces/st/configmaps/cm1?dryRun=All") as r:
        assert r.status == 200 and (await body(r))["metadata"]["name"] == "cm1"
    async with http.delete("/api/v1/namespaces/st/configmaps?labelSelector=nomatch%3Dtrue") as r:
        got = await body(r)
    assert got["kind"] == "ConfigMapList" and got["items"] == []
    async with http.delete("/api/v1/namespaces/st/configmaps/cm1") as r:
        got = await body(r)
    assert got["status"] == "Success" and got["details"]["name"] == "cm1"


async def test_scale_subresource(http: aiohttp.ClientSession, sim: KubeSim) -> None:
    dep = {
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    async with http.post("/apis/apps/v1/namespaces/default/deployments", json=dep) as r:
        assert r.status == 201
    async with http.patch(
        "/apis/apps/v1/namespaces/default/deployments/d/scale",
        data=b'{"spec":{"replicas":3}}',
        headers={"Content-Type": "application/merge-patch+json"},
    ) as r:
        scale = await body(r)
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
    stored = sim.store.get_item("apps", "deployments", "default", "d")
    assert stored is not None and stored["spec"]["replicas"] == 3


async def test_list_at_future_resource_versions(
    http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubesim import verbs

    monkeypatch.setattr(verbs, "FUTURE_RV_WAIT_S", 0.2)
    q = "resourceVersion=99999999"
    async with http.get(f"{CM}?{q}&resourceVersionMatch=Exact") as r:
        got = await body(r)
    assert r.status == 500
    assert got["message"] == "etcdserver: mvcc: required revision is a future revision"
    assert "reason" not in got
    async with http.get(f"{CM}?{q}") as r:
        got = await body(r)
    assert r.status == 504 and got["reason"] == "Timeout"
    assert got["message"].startswith("Timeout: Too large resource version: 99999999, current: ")
    async with http.get(f"{CM}?resourceVersion=1&resourceVersionMatch=Exact") as r:
        got = await body(r)
    assert (r.status, got["message"]) == (
        410,
        "The resourceVersion for the provided list is too old.",
    )


async def test_get_as_partial_object_metadata(http: aiohttp.ClientSession) -> None:
    accept = "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io"
    async with http.get(f"{CM}/kube-root-ca.crt", headers={"Accept": accept}) as r:
        got = await body(r)
    assert got["kind"] == "PartialObjectMetadata" and "data" not in got
    assert got["metadata"]["name"] == "kube-root-ca.crt"


async def test_server_side_apply_rejects_undeclared_fields(http: aiohttp.ClientSession) -> None:
    cfg = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"bogus":1}'
    async with http.patch(
        f"{CM}/a?fieldManager=t", data=cfg, headers={"Content-Type": "application/apply-patch+yaml"}
    ) as r:
        got = await body(r)
    assert r.status == 400
    assert got["message"] == (
        "failed to create typed patch object (default/a; v1, Kind=ConfigMap): .bogus: field not "
        "declared in schema"
    )
    async with http.patch(
        f"{CM}/a", data=cfg, headers={"Content-Type": "application/apply-patch+yaml"}
    ) as r:
        assert r.status == 422  # fieldManager is required for apply


async def test_unknown_fields_warn_by_default_and_are_dropped(
    http: aiohttp.ClientSession, sim: KubeSim
) -> None:
    obj = {"metadata": {"name": "w"}, "data": {"k": "v"}, "bogus": 1}
    async with http.post(CM, json=obj) as r:
        assert r.status == 201
        assert r.headers.getall("Warning") == ['299 - "unknown field \\"bogus\\""']
        assert "bogus" not in await body(r)
    stored = sim.store.get_item("", "configmaps", "default", "w")
    assert stored is not None and "bogus" not in stored
    async with http.post(
        f"{CM}?fieldValidation=Strict", json=dict(obj, metadata={"name": "s"})
    ) as r:
        got = await body(r)
    assert r.status == 400 and got["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "bogus"'
    )


@needs_ref
async def test_protobuf_only_client_gets_protobuf_status(http: aiohttp.ClientSession) -> None:
    import base64

    await _setup_st(http)
    ref = json.loads((REF / "status/create-protobuf-garbage-body-protobuf-accept.json").read_text())
    want = base64.b64decode(ref["response"]["body_base64"])
    pb = "application/vnd.kubernetes.protobuf"
    async with http.post(
        "/api/v1/namespaces/st/configmaps",
        data=bytes(range(64)),
        headers={"Content-Type": pb, "Accept": pb},
    ) as r:
        got = await r.read()
        assert r.status == 400 and r.headers["Content-Type"] == pb
    assert got == want


TABLE_REFS = [
    ("namespaces.json", "", "namespaces"),
    ("configmaps-tr.json", "", "configmaps"),
    ("pods-all-namespaces.json", "", "pods"),
    ("nodes.json", "", "nodes"),
    ("deployments-tr.json", "apps", "deployments"),
    ("clusterroles-limit-2.json", "rbac.authorization.k8s.io", "clusterroles"),
]


@needs_ref
@pytest.mark.parametrize(("ref", "group", "resource"), TABLE_REFS, ids=[t[0] for t in TABLE_REFS])
def test_table_columns_match_reference(ref: str, group: str, resource: str) -> None:
    from kubesim import tables
    from kubesim.resources import Registry

    rt = Registry().by_group_resource(group, resource)
    assert rt is not None
    want = json.loads((REF / "tables" / ref).read_text())["response"]["body"]["columnDefinitions"]
    got = [c for c, _ in tables.columns_for(rt)]
    assert [(c["name"], c["type"], c["format"], c["priority"]) for c in got] == [
        (c["name"], c["type"], c["format"], c["priority"]) for c in want
    ]


async def test_workload_validation(http: aiohttp.ClientSession) -> None:
    dep = {
        "metadata": {"name": "d"},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c"}]},
            }
        },
    }
    async with http.post("/apis/apps/v1/namespaces/default/deployments", json=dep) as r:
        got = await body(r)
    assert r.status == 422 and got["reason"] == "Invalid"
    assert got["message"] == (
        'Deployment.apps "d" is invalid: [spec.selector: Required value, '
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"d"}: '
        "`selector` does not match template `labels`, "
        "spec.template.spec.containers[0].image: Required value]"
    )
    async with http.post(
        "/api/v1/namespaces/default/pods", json={"metadata": {"name": "p"}, "spec": {}}
    ) as r:
        got = await body(r)
    assert got["message"] == 'Pod "p" is invalid: spec.containers: Required value'


def test_cert_dir_holds_ca_serving_and_admin_material(sim: KubeSim) -> None:
    import os

    cert_dir = Path(sim.options.cert_dir or "")
    assert (cert_dir / "ca.crt").read_bytes() == sim.ca_pem
    for key in ("apiserver.key", "admin.key"):
        assert os.stat(cert_dir / key).st_mode & 0o777 == 0o600
    assert (cert_dir / "admin.crt").read_bytes() == sim.pki.admin.cert_pem


async def test_pod_binding_and_eviction(http: aiohttp.ClientSession, sim: KubeSim) -> None:
    pods = "/api/v1/namespaces/default/pods"
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    async with http.post(pods, json=pod) as r:
        assert r.status == 201
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "n1"},
    }
    rv = sim.store.revision
    async with http.post(f"{pods}/p/binding", json=binding) as r:
        assert r.status == 201 and (await body(r))["status"] == "Success"
    bound = [e.obj for e in sim.store.history_since(rv) if e.resource == "pods"]
    assert bound[0]["spec"]["nodeName"] == "n1"
    async with http.post(f"{pods}/p/binding", json=binding) as r:
        assert r.status in (404, 409)  # already bound (or gone: no node n1 exists)
    async with http.post(pods, json=dict(pod, metadata={"name": "q"})) as r:
        assert r.status == 201
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"}}
    async with http.post(f"{pods}/q/eviction", json=eviction) as r:
        assert r.status == 201
    assert sim.store.get_item("", "pods", "default", "q") is None
