"""The server's public URL: a setting in the API over the flag's default, used in every command
and manifest the server prints, with a warning while it is a loopback address; both of
Rancher's import commands, the manifest pinning the server's CA by checksum."""

from __future__ import annotations

import yaml

from tests.server_api.conftest import Api


async def test_setting_drives_commands_and_manifest(api: Api) -> None:
    admin = await api.admin()
    status, setting = await api.call("GET", "/v3/settings/server-url", admin)
    assert status == 200 and setting["source"] == "server"
    assert "loopback" in setting["warning"]  # the default: https://localhost:<port>
    status, created = await api.call("POST", "/v3/clusters", admin, json={"name": "before"})
    assert status == 201 and any("loopback" in w for w in created["warnings"])

    for bad, why in (("http://rancher.example.com", "https://"),
                     ("https://rancher.example.com/path", "without path"),
                     ("https://", "no host"), ("https://h:99999", "port")):
        status, body = await api.call("PUT", "/v3/settings/server-url", admin,
                                      json={"value": bad})
        assert status == 422 and why in body["message"], (bad, body)
    status, setting = await api.call("PUT", "/v3/settings/server-url", admin,
                                     json={"value": "https://rancher.example.com:8443/"})
    assert status == 200, setting
    assert setting["value"] == "https://rancher.example.com:8443" and "warning" not in setting

    status, created = await api.call("POST", "/v3/clusters", admin, json={"name": "after"})
    assert status == 201 and "warnings" not in created
    url = "https://rancher.example.com:8443"
    manifest = f"{url}/v3/import/{created['registrationToken']}.yaml"
    assert created["importCommand"] == f"kubectl apply -f {manifest}"
    assert created["insecureImportCommand"] == (
        f"curl --insecure -sfL {manifest} | kubectl apply -f -")
    assert f"CATTLE_SERVER={url}" in created["command"]
    status, text = await api.call("GET", f"/v3/import/{created['registrationToken']}.yaml")
    assert status == 200
    docs = [d for d in yaml.safe_load_all(text) if d]
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    assert secret["stringData"]["url"] == url
    env = {e["name"]: e.get("value") for doc in docs if doc["kind"] == "Deployment"
           for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CATTLE_CA_CHECKSUM"] == api.state.tls.ca_checksum
    # Kubeconfigs point at it too.
    status, kc = await api.call("POST", f"/v3/clusters/{created['id']}?action=generateKubeconfig",
                                admin)
    assert status == 200 and f"{url}/k8s/clusters/{created['id']}" in kc["config"]


async def test_only_those_allowed_change_it(api: Api) -> None:
    admin = await api.admin()
    await api.new_user(admin, "plain")
    user = await api.login("plain", "user-password-for-tests")
    status, body = await api.call("PUT", "/v3/settings/server-url", user,
                                  json={"value": "https://evil.example.com"})
    assert status == 403 and "settings" in body["message"]
    status, setting = await api.call("GET", "/v3/settings/server-url", user)
    assert status == 200 and "evil" not in setting["value"]
