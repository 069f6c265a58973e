"""The list+watch feeder against an API server that fails on demand: relist on 410 Gone,
reconnect after inactivity, keep serving through an outage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest

from kube_api_auth import review, watch
from kube_api_auth.index import Index
from kube_api_auth.kubeapi import ApiTarget
from kube_api_auth.metrics import Metrics
from tests.kube_api_auth import objects, polling
from tests.kube_api_auth.faultapi import FaultApi

pytestmark = pytest.mark.timeout(30)
WAIT_S = 5.0
POLL_S = 0.02
RES = watch.resources(objects.NAMESPACE)
TOKENS, USERS, SECRETS = (r.path for r in RES)


async def eventually(check: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> float:
    return await polling.until(check, what, timeout_s, POLL_S)


@dataclass
class Setup:
    api: FaultApi
    index: Index
    metrics: Metrics

    def decide(self, token: str) -> review.Result:
        return review.decide(self.index, token, time.time(), objects.CLUSTER).result

    def restarts(self, reason: str) -> float:
        total = 0.0
        for metric in self.metrics.watch_restarts.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels["reason"] == reason:
                    total += sample.value
        return total


async def seed(api: FaultApi) -> None:
    await api.put(TOKENS, objects.token("token-a", "u-a"))
    await api.put(SECRETS, objects.secret("token-a", "pw"))
    await api.put(USERS, objects.user("u-a", groups=["g"]))


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    api = FaultApi()
    url = await api.start()
    await seed(api)
    index, metrics = Index(), Metrics()
    async with aiohttp.ClientSession() as session:
        feeder = watch.Feeder(
            session,
            ApiTarget(url, False),
            index,
            metrics,
            watch.WatchSettings(inactivity_timeout_s=1.0),
        )
        task = asyncio.create_task(feeder.run(RES))
        try:
            yield Setup(api, index, metrics)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await api.stop()


async def test_list_then_watch_events_flip_reviews(setup: Setup) -> None:
    await eventually(setup.index.is_ready, "initial lists")
    assert setup.decide("token-a:pw") is review.Result.OK
    await setup.api.put(TOKENS, {**objects.token("token-a", "u-a"), "enabled": False})
    await eventually(lambda: setup.decide("token-a:pw") is review.Result.DISABLED, "disable")
    await setup.api.put(TOKENS, objects.token("token-a", "u-a"))
    await setup.api.put(USERS, objects.user("u-a", enabled=False))
    await eventually(
        lambda: setup.decide("token-a:pw") is review.Result.USER_DISABLED, "user disable"
    )
    await setup.api.put(USERS, objects.user("u-a"))
    await setup.api.remove(TOKENS, "token-a")
    await eventually(lambda: setup.decide("token-a:pw") is review.Result.UNKNOWN, "revoke")


async def test_gone_relists_and_catches_up(setup: Setup) -> None:
    await eventually(setup.index.is_ready, "initial lists")
    setup.api.outage = True
    await setup.api.drop_watches()
    await setup.api.put(TOKENS, objects.token("token-b", "u-a"))
    await setup.api.put(SECRETS, objects.secret("token-b", "pw2"))
    setup.api.expire_next_watches = len(RES)  # the re-watches get 410 Gone
    setup.api.outage = False
    await eventually(lambda: setup.restarts("gone") >= 1, "a 410 restart")
    await eventually(lambda: setup.decide("token-b:pw2") is review.Result.OK, "relisted")
    assert sum(r.startswith("list ") for r in setup.api.requests) > len(RES)


async def test_inactivity_timeout_reconnects(setup: Setup) -> None:
    await eventually(setup.index.is_ready, "initial lists")
    setup.api.silent_watches = True
    await setup.api.drop_watches()
    await eventually(lambda: setup.restarts("inactivity") >= 1, "an inactivity restart")
    setup.api.silent_watches = False
    await setup.api.drop_watches()
    await setup.api.put(USERS, objects.user("u-a", enabled=False))
    await eventually(
        lambda: setup.decide("token-a:pw") is review.Result.USER_DISABLED, "events after reconnect"
    )


async def test_outage_keeps_serving_then_recovers(setup: Setup) -> None:
    await eventually(setup.index.is_ready, "initial lists")
    setup.api.outage = True
    await setup.api.drop_watches()
    await eventually(lambda: setup.restarts("error") >= 3, "failed reconnects")
    assert setup.decide("token-a:pw") is review.Result.OK  # still served from the index
    assert setup.index.is_ready()
    setup.api.outage = False
    await setup.api.remove(TOKENS, "token-a")
    await eventually(
        lambda: setup.decide("token-a:pw") is review.Result.UNKNOWN, "revocation after the outage"
    )


async def test_retry_after_is_honoured(setup: Setup) -> None:
    await eventually(setup.index.is_ready, "initial lists")
    setup.api.outage = True
    setup.api.outage_retry_after = "2"
    before = setup.restarts("error")
    await setup.api.drop_watches()
    await asyncio.sleep(1.5)
    # per resource: the dropped watch, one 503, then the 2 s asked for (plain backoff
    # would have failed at least five times per resource by now)
    assert setup.restarts("error") - before <= 2 * len(RES)
    setup.api.outage = False
