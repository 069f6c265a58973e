"""The agent credential kept in a Secret, through the stand-in's API (kubernetes_asyncio): absent
reads as none, the first save creates the Secret, a later save patches it."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator

import pytest

from cluster_agent.credential import SECRET_KEY, SecretCredentialStore
from cluster_agent.kube import AgentKube
from tests.kube import KubeSimProc, kubectl

pytestmark = pytest.mark.timeout(30)
NAMESPACE = "cattle-system"
SECRET = "cattle-credentials"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeSimProc]:
    proc = KubeSimProc(tmp_path_factory.mktemp("secret"), ["--nodes", "1"]).start()
    try:
        kubectl(proc.kubeconfig, "create", "namespace", NAMESPACE)
        yield proc
    finally:
        proc.stop()


def stored(sim: KubeSimProc) -> str:
    out = kubectl(sim.kubeconfig, "get", "secret", SECRET, "-n", NAMESPACE, "-o", "json")
    return base64.b64decode(json.loads(out.stdout)["data"][SECRET_KEY]).decode()


async def test_load_save_create_then_patch(sim: KubeSimProc) -> None:
    store = SecretCredentialStore(lambda: AgentKube.from_kubeconfig(str(sim.kubeconfig)),
                                  NAMESPACE, SECRET)
    assert await store.load() == ""
    await store.save("first-credential")
    assert stored(sim) == "first-credential"
    await store.save("second-credential")
    assert stored(sim) == "second-credential" and await store.load() == "second-credential"
    labels = subprocess.run(["kubectl", "--kubeconfig", str(sim.kubeconfig), "get", "secret",
                             SECRET, "-n", NAMESPACE, "-o", "jsonpath={.type}"],
                            capture_output=True, text=True, check=True, timeout=20)
    assert labels.stdout == "Opaque"
