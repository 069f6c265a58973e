"""An exec upgraded to a websocket through the proxy, whose agent is killed under it: the client's
websocket is closed with 1011, never fed an HTTP response (real kubesim, server and agent)."""

from __future__ import annotations

import json
import signal
import ssl

import aiohttp
import pytest

from tests.e2e.test_proxy_e2e import Stack, _wait_running, stack  # noqa: F401 (fixture)
from tests.kube import kubectl

pytestmark = pytest.mark.timeout(90)

CLOSE_WITHIN_S = 20.0
WS_CLOSE_INTERNAL_ERROR = 1011


async def test_exec_websocket_is_closed_with_1011_when_the_agent_dies(stack: Stack) -> None:  # noqa: F811
    kc = stack.kubeconfig_for(stack.admin, "admin-dies")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sleeper", "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }
    kubectl(kc, "apply", "-f", "-", input=json.dumps(pod))
    _wait_running(kc, "sleeper")
    url = (
        f"{stack.server.url}/k8s/clusters/{stack.cluster_id}/api/v1/namespaces/default/pods/"
        "sleeper/exec?command=sleep&command=60&stdout=true&stderr=true"
    )
    ctx = ssl.create_default_context(cafile=str(stack.server.ca_path))
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            url,
            ssl=ctx,
            headers={"Authorization": f"Bearer {stack.admin.token}"},
            protocols=("v4.channel.k8s.io",),
        ) as ws,
    ):
        assert stack.agent.proc is not None
        stack.agent.proc.send_signal(signal.SIGKILL)
        stack.agent.proc.wait(10)
        msg = await ws.receive(timeout=CLOSE_WITHIN_S)
        while msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
            msg = await ws.receive(timeout=CLOSE_WITHIN_S)  # channel frames sent before
        assert msg.type is aiohttp.WSMsgType.CLOSE, msg
        assert ws.close_code == WS_CLOSE_INTERNAL_ERROR
