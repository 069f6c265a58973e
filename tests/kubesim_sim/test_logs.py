"""pods/<p>/log: buffers appended through the admin endpoint, the query options, follow
streaming flushed per line, and the answers for pods that cannot serve logs."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from .conftest import SimServer, make_pod, running_pod, wait_for

pytestmark = pytest.mark.timeout(30)
READ_TIMEOUT_S = 5.0


async def append(
    s: aiohttp.ClientSession, srv: SimServer, pod: str, text: str, container: str = ""
) -> None:
    q = f"?container={container}" if container else ""
    async with s.post(f"{srv.url}/_kubesim/namespaces/default/pods/{pod}/log{q}", data=text) as r:
        assert r.status == 204, await r.text()


async def test_log_options(sim_server: SimServer) -> None:
    srv = sim_server
    await running_pod(srv.store, "web")
    base = f"{srv.url}/api/v1/namespaces/default/pods/web/log"
    async with aiohttp.ClientSession() as s:
        await append(s, srv, "web", "one\ntwo\n")
        await append(s, srv, "web", "three")
        async with s.get(base) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "text/plain"
            assert await r.text() == "one\ntwo\nthree\n"
        async with s.get(base, params={"tailLines": "2"}) as r:
            assert await r.text() == "two\nthree\n"
        async with s.get(base, params={"tailLines": "0"}) as r:
            assert await r.text() == ""
        async with s.get(base, params={"limitBytes": "5"}) as r:
            assert await r.text() == "one\nt"
        async with s.get(base, params={"timestamps": "true", "tailLines": "1"}) as r:
            stamp, _, line = (await r.text()).partition(" ")
            assert (
                line == "three\n"
                and stamp.endswith("Z")
                and len(stamp) == len("2026-11-26T14:34:41.123456789Z")
            )
        async with s.get(base, params={"sinceSeconds": "3600"}) as r:
            assert await r.text() == "one\ntwo\nthree\n"
        async with s.get(base, params={"tailLines": "-1"}) as r:
            assert r.status == 422 and (await r.json())["reason"] == "Invalid"
        async with s.get(base, params={"container": "nope"}) as r:
            body = await r.json()
            assert r.status == 400 and body["message"] == "container nope is not valid for pod web"
        async with s.get(base, params={"previous": "true"}) as r:
            assert r.status == 400
            assert (await r.json())[
                "message"
            ] == 'previous terminated container "main" in pod "web" not found'
        async with s.post(f"{srv.url}/_kubesim/namespaces/default/pods/web/restart") as r:
            assert r.status == 204
        await append(s, srv, "web", "after restart")
        async with s.get(base, params={"previous": "true"}) as r:
            assert await r.text() == "one\ntwo\nthree\n"
        async with s.get(base) as r:
            assert await r.text() == "after restart\n"
    pod = srv.store.get_item("", "pods", "default", "web")
    assert pod is not None and pod["status"]["containerStatuses"][0]["restartCount"] == 1


async def test_follow_streams_each_line(sim_server: SimServer) -> None:
    srv = sim_server
    await running_pod(srv.store, "tail")
    async with aiohttp.ClientSession() as s:
        await append(s, srv, "tail", "before")
        async with s.get(
            f"{srv.url}/api/v1/namespaces/default/pods/tail/log", params={"follow": "true"}
        ) as r:
            assert r.status == 200 and r.headers.get("Transfer-Encoding") == "chunked"
            assert await asyncio.wait_for(r.content.readline(), READ_TIMEOUT_S) == b"before\n"
            for i in range(3):
                await append(s, srv, "tail", f"line {i}")
                assert (
                    await asyncio.wait_for(r.content.readline(), READ_TIMEOUT_S)
                    == f"line {i}\n".encode()
                )
            # deleting the pod ends the stream
            srv.store.delete_item("", "pods", "default", "tail")
            assert await asyncio.wait_for(r.content.read(), READ_TIMEOUT_S) == b""


async def test_logs_of_pods_without_a_running_container(sim_server: SimServer) -> None:
    srv = sim_server
    srv.store.create_item(
        "",
        "pods",
        {
            "metadata": {"name": "lonely", "namespace": "default"},
            "spec": {
                "schedulerName": "no-such-scheduler",
                "containers": [{"name": "main", "image": "busybox"}],
            },
        },
    )
    make_pod(srv.store, "two", containers=("a", "b"))
    srv.store.create_item(
        "",
        "nodes",
        {
            "metadata": {"name": "fake"},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]},
        },
    )
    srv.store.create_item(
        "",
        "pods",
        {
            "metadata": {"name": "bound", "namespace": "default"},
            "spec": {"nodeName": "fake", "containers": [{"name": "main", "image": "busybox"}]},
        },
    )
    async with aiohttp.ClientSession() as s:
        async with s.get(f"{srv.url}/api/v1/namespaces/default/pods/lonely/log") as r:
            assert r.status == 204  # as recorded from kube-apiserver for a pod with no node
        async with s.get(f"{srv.url}/api/v1/namespaces/default/pods/two/log") as r:
            assert r.status == 400
            assert (await r.json())[
                "message"
            ] == "a container name must be specified for pod two, choose one of: [a b]"
        async with s.get(f"{srv.url}/api/v1/namespaces/default/pods/bound/log") as r:
            body = await r.json()
            assert r.status == 500 and "reason" not in body
            assert body["message"] == (
                'Get "https://127.0.0.1:10250/containerLogs/default/bound/main": '
                "dial tcp 127.0.0.1:10250: connect: connection refused"
            )


async def test_container_exit_restarts_or_completes(sim_server: SimServer) -> None:
    srv = sim_server
    await running_pod(srv.store, "svc")
    srv.store.create_item(
        "",
        "pods",
        {
            "metadata": {"name": "job", "namespace": "default"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}],
            },
        },
    )
    async with aiohttp.ClientSession() as s:
        await wait_for(
            lambda: (
                (srv.store.get_item("", "pods", "default", "job") or {})
                .get("status", {})
                .get("phase")
                == "Running"
            ),
            what="job running",
        )
        await append(s, srv, "job", "working")
        async with s.get(
            f"{srv.url}/api/v1/namespaces/default/pods/job/log", params={"follow": "true"}
        ) as follow:
            assert await asyncio.wait_for(follow.content.readline(), READ_TIMEOUT_S) == b"working\n"
            async with s.post(f"{srv.url}/_kubesim/namespaces/default/pods/job/exit?code=0") as r:
                assert r.status == 204
            assert await asyncio.wait_for(follow.content.read(), READ_TIMEOUT_S) == b""  # ended
        job = srv.store.get_item("", "pods", "default", "job")
        assert job is not None and job["status"]["phase"] == "Succeeded"
        term = job["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 0 and term["reason"] == "Completed"
        async with s.get(f"{srv.url}/api/v1/namespaces/default/pods/job/log") as r:
            assert await r.text() == "working\n"  # a completed container's log stays readable
        # restartPolicy Always: kubelet restarts the container
        async with s.post(f"{srv.url}/_kubesim/namespaces/default/pods/svc/exit?code=2") as r:
            assert r.status == 204
        svc = srv.store.get_item("", "pods", "default", "svc")
        assert svc is not None and svc["status"]["phase"] == "Running"
        cs = svc["status"]["containerStatuses"][0]
        assert cs["restartCount"] == 1 and cs["lastState"]["terminated"]["exitCode"] == 2
        async with s.post(f"{srv.url}/_kubesim/namespaces/default/pods/job/exit") as r:
            assert r.status == 400 and "not running" in (await r.json())["message"]
