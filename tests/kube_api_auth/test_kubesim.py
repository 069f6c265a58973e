"""kube-api-auth against the Kubernetes stand-in, all real processes: CRDs installed with
kubectl, objects created and changed with kubectl, reviews flip within seconds; and the
stand-in configured with kube-api-auth as its token webhook, used by real kubectl."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from kube_api_auth import hashing
from kube_api_auth.crds import CRD_FILES
from tests.kube_api_auth import kubesim_proc, objects, polling, proc
from tests.kube_api_auth.kubesim_proc import KubeSim, kubectl
from tests.procs import free_port

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
    return await polling.until(check, what, timeout_s, POLL_S)


async def accepted(http: aiohttp.ClientSession, service: proc.Process) -> bool:
    """Whether the service authenticates the test user's token right now."""
    async with http.post(
        service.url + "/v1/authenticate",
        json=objects.review(f"kubeconfig-u-x1:{SECRET}"),
    ) as resp:
        return resp.status == 200 and (await resp.json())["status"]["authenticated"] is True


def watching(sim: KubeSim) -> list[str]:
    """kube-api-auth's arguments to list+watch the stand-in as its admin."""
    return ["--kubeconfig", str(sim.kubeconfig), "--cluster-name", objects.CLUSTER]


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[KubeSim]:
    async with kubesim_proc.running(tmp_path) as started:
        yield started


async def test_reviews_follow_the_cluster(sim: KubeSim) -> None:
    await install(sim)
    async with proc.running(watching(sim)) as service, aiohttp.ClientSession() as http:

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

        async def patch(kind: str, name: str, change: dict[str, Any]) -> None:
            await kubectl(
                sim.kubeconfig,
                "patch",
                kind,
                name,
                "-n",
                objects.NAMESPACE,
                "--type=merge",
                "-p",
                json.dumps(change),
            )

        await becomes("")
        for kind, name, change, expected in [
            ("clusteruserattribute", "u-x", {"enabled": False}, "user disabled"),
            ("clusteruserattribute", "u-x", {"enabled": True}, ""),
            ("clusterauthtoken", "kubeconfig-u-x1", {"expiresAt": _at(-5)}, "token expired"),
            (
                "clusterauthtoken",
                "kubeconfig-u-x1",
                {"expiresAt": _at(3600), "enabled": False},
                "token disabled",
            ),
            ("clusterauthtoken", "kubeconfig-u-x1", {"enabled": True}, ""),
            (
                "clusterauthtoken",
                "kubeconfig-u-x1",
                {"clusterName": "c-elsewhere"},
                "token not valid for this cluster",
            ),
        ]:
            await patch(kind, name, change)
            await becomes(expected)
        await kubectl(
            sim.kubeconfig, "delete", "clusterauthtoken", "kubeconfig-u-x1", "-n", objects.NAMESPACE
        )
        await becomes("unknown token")


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
            / "control-plane"
            / "kube-api-authn-webhook.yaml"
        )
        .read_text()
        .replace("127.0.0.1:6440", f"127.0.0.1:{port}")
    )
    async with kubesim_proc.running(
        tmp_path, ["--authentication-token-webhook-config-file", str(hook)]
    ) as sim:
        await install(sim)
        async with proc.running([*watching(sim), "--listen-port", str(port)]):
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


async def test_in_cluster_service_account_with_least_privilege_rbac(tmp_path: Path) -> None:
    """deploy/'s RBAC suffices (and no more) when kube-api-auth runs on a service account
    token, with the stand-in enforcing RBAC."""
    async with kubesim_proc.running(tmp_path, ["--authorization-mode", "RBAC"]) as sim:
        await install(sim)
        rbac = Path(__file__).resolve().parents[2] / "deploy/kube-api-auth/base/rbac.yaml"
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
        async with (
            proc.running(
                ["--service-account-dir", str(sa_dir), "--cluster-name", objects.CLUSTER],
                env={"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port},
                drop_env=["KUBECONFIG", "KUBE_API_AUTH_KUBECONFIG"],
            ) as service,
            aiohttp.ClientSession() as http,
        ):
            await until(
                lambda: accepted(http, service),
                "a review answered from the service account's watches",
            )


async def test_keeps_answering_while_the_api_server_is_gone(sim: KubeSim) -> None:
    await install(sim)
    async with proc.running(watching(sim)) as service, aiohttp.ClientSession() as http:
        await until(lambda: accepted(http, service), "initial sync")
        await sim.stop()

        async def watch_errors() -> bool:
            async with http.get(service.url + "/metrics") as resp:
                text = await resp.text()
            return 'reason="error"} ' in text and not all(
                line.endswith(" 0.0") for line in text.splitlines() if 'reason="error"}' in line
            )

        await until(watch_errors, "the feeder noticing the API server is gone")
        for _ in range(10):
            assert await accepted(http, service)
            await asyncio.sleep(0.1)
        async with http.get(service.url + "/healthcheck") as resp:
            assert resp.status == 200
