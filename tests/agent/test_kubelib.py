"""The agent loads kubernetes_asyncio's API client alone (not its 850 generated modules), and the
whole library still works afterwards in the same process."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(30)
MAX_LEAN_MODULES = 10

PROBE = f"""
import sys
import cluster_agent.kube
lean = [m for m in sys.modules if m.startswith("kubernetes_asyncio")]
assert len(lean) <= {MAX_LEAN_MODULES}, lean
from kubernetes_asyncio import client, config, watch
from cluster_agent.kubelib import ApiClient
assert client.ApiClient is ApiClient and client.CoreV1Api and client.V1Pod
assert config.load_kube_config and watch.Watch
import kubernetes_asyncio.client.models as models
assert models.V1Node.__name__ == "V1Node"
print(len(lean))
"""


def test_lean_then_whole_library() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=25, check=False)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) <= MAX_LEAN_MODULES
