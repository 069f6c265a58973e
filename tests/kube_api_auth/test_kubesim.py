"""kube-api-auth against the Kubernetes stand-in, all real processes: CRDs installed with
kubectl, objects created and changed with kubectl, reviews flip within seconds; and the
stand-in configured with kube-api-auth as its token webhook, used by real kubectl."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from kube_api_auth import hashing
from kube_api_auth.crds import CRD_FILES
from tests.kube_api_auth import kubesim_proc, objects, proc
from tests.kube_api_auth.kubesim_proc import KubeSim, kubectl

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]
FLIP_S = 5.0  # a change in the cluster must change reviews within this
POLL_S = 0.05
CRD_DIR = Path(__file__).resolve().parents[2] / "kube_api_auth" / "crds"
SECRET = "Zx9-user-secret"


def manifests(token_extra: dict[str, Any] | None = None) -> str:
    tok = {**objects.token("kubeconfig-u-x1", "u-x", expires_at=_at(3600)), **(token_extra or {})}
    sec = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "kubeconfig-u-x1-hash", "namespace": objects.NAMESPACE},
        "data": {"hash": base64.b64encode(hashing.create_hash(SECRET).encode()).decode()},
    }
    return yaml.safe_dump_all([sec, tok, objects.user("u-x", groups=["team-a"])])


def _at(seconds_from_now: int) -> str:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds_from_now)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


async def install(sim: KubeSim) -> None:
    await kubectl(sim.kubeconfig, "apply", *(f"-f={CRD_DIR / f}" for f in CRD_FILES))
    await kubectl(sim.kubeconfig, "create", "namespace", objects.NAMESPACE)
    await kubectl(
        sim.kubeconfig,
        "wait",
        "--for=condition=established",
        "--timeout=20s",
        "crd/clusterauthtokens.cluster.cattle.io",
        "crd/clusteruserattributes.cluster.cattle.io",
    )
    await kubectl(sim.kubeconfig, "apply", "-f", "-", stdin=manifests())


async def until(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = FLIP_S
) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s: {what}")
        await asyncio.sleep(POLL_S)
    return time.monotonic() - started


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[KubeSim]:
    started = await kubesim_proc.start(tmp_path)
    try:
        yield started
    finally:
        await started.stop()


async def test_reviews_follow_the_cluster(sim: KubeSim) -> None:
    await install(sim)
    service = await proc.start(
        ["--kubeconfig", str(sim.kubeconfig), "--cluster-name", objects.CLUSTER]
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def error() -> str:
                async with http.post(
                    service.url + "/v1/authenticate?timeout=30s",
                    json=objects.review(f"kubeconfig-u-x1:{SECRET}"),
                ) as resp:
                    if resp.status == 503:
                        return "not ready"
                    status = (await resp.json())["status"]
                    return "" if status["authenticated"] else str(status["error"])

            async def becomes(expected: str) -> float:
                async def check() -> bool:
                    return await error() == expected

                return await until(check, f"review result {expected!r}")

            await becomes("")
            ns = ["-n", objects.NAMESPACE]
            await kubectl(
                sim.kubeconfig,
                "patch",
                "clusteruserattribute",
                "u-x",
                *ns,
                "--type=merge",
                "-p",
                json.dumps({"enabled": False}),
            )
            await becomes("user disabled")
            await kubectl(
                sim.kubeconfig,
                "patch",
                "clusteruserattribute",
                "u-x",
                *ns,
                "--type=merge",
                "-p",
                json.dumps({"enabled": True}),
            )
            await becomes("")
            await kubectl(
                sim.kubeconfig,
                "patch",
                "clusterauthtoken",
                "kubeconfig-u-x1",
                *ns,
                "--type=merge",
                "-p",
                json.dumps({"expiresAt": _at(-5)}),
            )
            await becomes("token expired")
            await kubectl(
                sim.kubeconfig,
                "patch",
                "clusterauthtoken",
                "kubeconfig-u-x1",
                *ns,
                "--type=merge",
                "-p",
                json.dumps({"expiresAt": _at(3600), "enabled": False}),
            )
            await becomes("token disabled")
            await kubectl(
                sim.kubeconfig,
                "patch",
                "clusterauthtoken",
                "kubeconfig-u-x1",
                *ns,
                "--type=merge",
                "-p",
                json.dumps({"enabled": True}),
            )
            await becomes("")
            await kubectl(
                sim.kubeconfig,
                "patch",
                "clusterauthtoken",
                "kubeconfig-u-x1",
                *ns,
                "--type=merge",
                "-p",
                json.dumps({"clusterName": "c-elsewhere"}),
            )
            await becomes("token not valid for this cluster")
            await kubectl(sim.kubeconfig, "delete", "clusterauthtoken", "kubeconfig-u-x1", *ns)
            await becomes("unknown token")
    finally:
        assert await service.stop() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def user_kubeconfig(sim: KubeSim, path: Path, token: str) -> Path:
    admin = yaml.safe_load(sim.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "direct",
                "clusters": [cluster],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [
                    {"name": "direct", "context": {"cluster": cluster["name"], "user": "u"}}
                ],
            }
        )
    )
    return path


async def test_kubectl_through_the_webhook(tmp_path: Path) -> None:
    port = free_port()
    hook = tmp_path / "webhook.yaml"
    hook.write_text(
        (
            Path(__file__).resolve().parents[2]
            / "deploy"
            / "kube-api-auth"
            / "kube-api-authn-webhook.yaml"
        )
        .read_text()
        .replace("127.0.0.1:6440", f"127.0.0.1:{port}")
    )
    sim = await kubesim_proc.start(
        tmp_path, ["--authentication-token-webhook-config-file", str(hook)]
    )
    try:
        await install(sim)
        service = await proc.start(
            [
                "--kubeconfig",
                str(sim.kubeconfig),
                "--listen-port",
                str(port),
                "--cluster-name",
                objects.CLUSTER,
            ]
        )
        try:
            direct = user_kubeconfig(sim, tmp_path / "direct", f"kubeconfig-u-x1:{SECRET}")
            wrong = user_kubeconfig(sim, tmp_path / "wrong", "kubeconfig-u-x1:not-it")

            async def whoami() -> bool:
                rc, out, _ = await kubectl(direct, "auth", "whoami", "-o", "json", check=False)
                if rc != 0:
                    return False
                info = json.loads(out)["status"]["userInfo"]
                assert info["username"] == "u-x"
                assert "team-a" in info["groups"]
                return True

            await until(whoami, "kubectl authenticated through kube-api-auth")
            rc, _, err = await kubectl(wrong, "auth", "whoami", check=False)
            assert rc != 0 and "Unauthorized" in err
            await kubectl(
                sim.kubeconfig,
                "delete",
                "clusterauthtoken",
                "kubeconfig-u-x1",
                "-n",
                objects.NAMESPACE,
            )

            async def refused() -> bool:
                rc, _, err = await kubectl(direct, "auth", "whoami", check=False)
                return rc != 0 and "Unauthorized" in err

            # the API server may cache a success for its cache TTL (~10 s in 1.32)
            await until(refused, "revocation on the direct path", timeout_s=20.0)
        finally:
            assert await service.stop() == 0
    finally:
        await sim.stop()


async def test_in_cluster_service_account_with_least_privilege_rbac(tmp_path: Path) -> None:
    """deploy/'s RBAC suffices (and no more) when kube-api-auth runs on a service account
    token, with the stand-in enforcing RBAC."""
    sim = await kubesim_proc.start(tmp_path, ["--authorization-mode", "RBAC"])
    try:
        await install(sim)
        rbac = Path(__file__).resolve().parents[2] / "deploy" / "kube-api-auth" / "rbac.yaml"
        await kubectl(sim.kubeconfig, "apply", "-f", str(rbac))
        _, token, _ = await kubectl(
            sim.kubeconfig, "create", "token", "kube-api-auth", "-n", objects.NAMESPACE
        )
        sa_dir = tmp_path / "serviceaccount"
        sa_dir.mkdir()
        (sa_dir / "token").write_text(token.strip())
        admin = yaml.safe_load(sim.kubeconfig.read_text())
        ca = base64.b64decode(admin["clusters"][0]["cluster"]["certificate-authority-data"])
        (sa_dir / "ca.crt").write_bytes(ca)
        host, port = sim.url.removeprefix("https://").rsplit(":", 1)
        # the service account can do nothing beyond the Role
        as_sa = user_kubeconfig(sim, tmp_path / "sa.kubeconfig", token.strip())
        rc, _, err = await kubectl(as_sa, "get", "secrets", "-n", "default", check=False)
        assert rc != 0 and "Forbidden" in err
        rc, _, err = await kubectl(
            as_sa, "get", "secret", "kubeconfig-u-x1-hash", "-n", objects.NAMESPACE, check=False
        )
        assert rc != 0 and "Forbidden" in err  # no get: list+watch only
        service = await proc.start(
            ["--service-account-dir", str(sa_dir), "--cluster-name", objects.CLUSTER],
            env={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
            drop_env=["KUBECONFIG", "KUBE_API_AUTH_KUBECONFIG"],
        )
        try:
            async with aiohttp.ClientSession() as http:

                async def accepted() -> bool:
                    async with http.post(
                        service.url + "/v1/authenticate",
                        json=objects.review(f"kubeconfig-u-x1:{SECRET}"),
                    ) as resp:
                        return (
                            resp.status == 200
                            and (await resp.json())["status"]["authenticated"] is True
                        )

                await until(accepted, "a review answered from the service account's watches")
        finally:
            assert await service.stop() == 0
    finally:
        await sim.stop()


async def test_keeps_answering_while_the_api_server_is_gone(sim: KubeSim) -> None:
    await install(sim)
    service = await proc.start(
        ["--kubeconfig", str(sim.kubeconfig), "--cluster-name", objects.CLUSTER]
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def accepted() -> bool:
                async with http.post(
                    service.url + "/v1/authenticate",
                    json=objects.review(f"kubeconfig-u-x1:{SECRET}"),
                ) as resp:
                    return resp.status == 200 and (await resp.json())["status"]["authenticated"]

            await until(accepted, "initial sync")
            await sim.stop()

            async def watch_errors() -> bool:
                async with http.get(service.url + "/metrics") as resp:
                    text = await resp.text()
                return 'reason="error"} ' in text and not all(
                    line.endswith(" 0.0") for line in text.splitlines() if 'reason="error"}' in line
                )

            await until(watch_errors, "the feeder noticing the API server is gone")
            for _ in range(10):
                assert await accepted()
                await asyncio.sleep(0.1)
            async with http.get(service.url + "/healthcheck") as resp:
                assert resp.status == 200
    finally:
        assert await service.stop() == 0
