"""The OpenAPI document lists every API route the app serves, with its actions."""

from __future__ import annotations

from tests.server_api.conftest import Api

NON_API_PREFIXES = ("/ping", "/healthz", "/metrics", "/v3/settings/cacerts", "/v3/connect",
                    "/k8s/", "/ui")  # /ui: the web UI's page, assets and cookie session


async def test_openapi_lists_every_route(api: Api) -> None:
    status, doc = await api.call("GET", "/v3/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.")
    served = set()
    for route in api.client.app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method in ("HEAD", "*") or not path or path.startswith(NON_API_PREFIXES):
            continue
        served.add((path, route.method.lower()))
    documented = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert served, "no API routes found"
    assert served == documented
    login = doc["paths"]["/v3-public/localProviders/local"]["post"]
    assert login["security"] == []
    action = next(p for p in login["parameters"] if p["name"] == "action")
    assert action["schema"]["enum"] == ["login"]
    kube = doc["paths"]["/v3/clusters/{id}"]["post"]
    assert "generateKubeconfig" in next(
        p for p in kube["parameters"] if p["name"] == "action")["schema"]["enum"]
    tokens = doc["paths"]["/v3/tokens"]["post"]
    assert len(tokens["requestBody"]["content"]["application/json"]["schema"]["oneOf"]) == 2


async def test_every_schema_reference_resolves(api: Api) -> None:
    _, doc = await api.call("GET", "/v3/openapi.json")
    refs: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                refs.append(node["$ref"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc["paths"])
    assert refs
    names = {r.removeprefix("#/components/schemas/") for r in refs}
    assert names <= set(doc["components"]["schemas"])
    assert {"User", "Token", "Cluster", "Binding", "Kubeconfig"} <= names
    ok = doc["paths"]["/v3/users"]["get"]["responses"]["200"]["content"]["application/json"]
    assert ok["schema"]["properties"]["data"]["items"] == {"$ref": "#/components/schemas/User"}
