"""CRDs served and withdrawn at runtime; the Forbidden message shapes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kubesim.authhooks import forbidden_message
from kubesim.authtypes import RequestAttributes, UserInfo
from kubesim.server import KubeSim

AGG_ACCEPT = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
SETTLE_S = 0.05
REF = Path("/work/shared/k8s-reference/status")

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "things.demo.example.com"},
    "spec": {
        "group": "demo.example.com",
        "scope": "Cluster",
        "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": False,
                "schema": {"openAPIV3Schema": {"type": "object"}},
            },
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"n": {"type": "integer"}}},
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            },
        ],
    },
}


async def _json(resp: aiohttp.ClientResponse) -> Any:
    return json.loads(await resp.read())


async def test_crd_lifecycle(http: aiohttp.ClientSession, sim: KubeSim) -> None:
    async with http.get("/apis", headers={"Accept": AGG_ACCEPT}) as r:
        etag_before = r.headers["Etag"]
    async with http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", json=CRD) as r:
        assert r.status == 201
    await asyncio.sleep(SETTLE_S)
    crd = sim.store.get_item(
        "apiextensions.k8s.io", "customresourcedefinitions", "", "things.demo.example.com"
    )
    assert crd is not None
    assert {c["type"] for c in crd["status"]["conditions"]} == {"NamesAccepted", "Established"}
    async with http.get("/apis", headers={"Accept": AGG_ACCEPT}) as r:
        assert r.headers["Etag"] != etag_before
        doc = await _json(r)
    group = next(g for g in doc["items"] if g["metadata"].get("name") == "demo.example.com")
    assert [v["version"] for v in group["versions"]] == ["v1", "v1beta1"]
    async with http.get("/apis/demo.example.com") as r:
        assert (await _json(r))["preferredVersion"]["version"] == "v1"
    async with http.get("/openapi/v3") as r:
        assert "apis/demo.example.com/v1" in (await _json(r))["paths"]
    path = "/apis/demo.example.com/v1/things"
    async with http.post(
        path,
        json={
            "apiVersion": "demo.example.com/v1",
            "kind": "Thing",
            "metadata": {"name": "t"},
            "spec": {"n": 1},
            "status": {"ignored": True},
        },
    ) as r:
        created = await _json(r)
    assert r.status == 201 and created["metadata"]["generation"] == 1
    assert "status" not in created  # status is a subresource
    async with http.get("/apis/demo.example.com/v1beta1/things/t") as r:
        assert (await _json(r))["apiVersion"] == "demo.example.com/v1beta1"
    async with http.get("/apis/demo.example.com/v1beta1/things") as r:
        listed = await _json(r)
    assert listed["apiVersion"] == "demo.example.com/v1beta1"
    assert listed["items"][0]["apiVersion"] == "demo.example.com/v1beta1"
    async with http.put(f"{path}/t/status", json={**created, "status": {"ok": True}}) as r:
        assert (await _json(r))["status"] == {"ok": True}
    async with http.patch(
        f"{path}/t",
        data=b'{"spec":{"n":2}}',
        headers={"Content-Type": "application/strategic-merge-patch+json"},
    ) as r:
        assert r.status == 415  # custom resources take no strategic merge patch
    async with http.delete(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/things.demo.example.com"
    ) as r:
        assert r.status == 200
    await asyncio.sleep(SETTLE_S)
    async with http.get(path) as r:
        assert r.status == 404
    assert sim.store.registry.by_group_resource("demo.example.com", "things") is None


def _ref(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((REF / f"{name}.json").read_text())["response"]["body"]
    return body


@pytest.mark.skipif(not REF.exists(), reason="reference captures not available")
@pytest.mark.parametrize(
    ("ref", "attrs"),
    [
        (
            "forbidden-alice-token-403",
            RequestAttributes(UserInfo("alice"), "list", "", "v1", "configmaps", namespace="st"),
        ),
        (
            "forbidden-alice-cluster-scoped-403",
            RequestAttributes(UserInfo("alice"), "list", "", "v1", "nodes"),
        ),
        (
            "forbidden-impersonated-user-get-403",
            RequestAttributes(
                UserInfo("nobody"), "get", "", "v1", "configmaps", namespace="st", name="cm1"
            ),
        ),
        (
            "forbidden-alice-create-deployment-403",
            RequestAttributes(
                UserInfo("alice"), "create", "apps", "v1", "deployments", namespace="st"
            ),
        ),
    ],
)
def test_forbidden_shapes(ref: str, attrs: RequestAttributes) -> None:
    assert forbidden_message(attrs, "").status() == _ref(ref)


def test_custom_resource_schema_validation() -> None:
    from kubesim import errors
    from kubesim.crd import resource_types
    from kubesim.validation import validate_workload

    crd = json.loads(json.dumps(CRD))
    spec_schema = crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec_schema["required"] = ["n"]
    spec_schema["properties"]["color"] = {"type": "string", "enum": ["red", "blue"]}
    rt = next(r for r in resource_types(crd) if r.version == "v1")
    ok = {
        "apiVersion": "demo.example.com/v1",
        "kind": "Thing",
        "metadata": {"name": "t"},
        "spec": {"n": 1, "color": "red"},
    }
    validate_workload(rt, ok)
    bad = dict(ok, spec={"n": "one", "color": "pink"})
    with pytest.raises(errors.StatusError) as info:
        validate_workload(rt, bad)
    assert info.value.code == 422
    assert info.value.message == (
        'Thing.demo.example.com "t" is invalid: [spec.n: Invalid value: "string": spec.n in body '
        'must be of type integer: "string", spec.color: Unsupported value: "pink": supported '
        'values: "red", "blue"]'
    )
    with pytest.raises(errors.StatusError) as info:
        validate_workload(rt, dict(ok, spec={}))
    assert info.value.message == 'Thing.demo.example.com "t" is invalid: spec.n: Required value'
