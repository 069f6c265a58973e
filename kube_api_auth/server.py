"""The aiohttp application: ``POST /v1/authenticate``, ``GET /healthcheck``, ``GET /metrics``."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kube_api_auth import review
from kube_api_auth.constants import DEFAULT_MAX_REVIEWS_PER_S, DEFAULT_REVIEW_BURST, MAX_BODY_BYTES
from kube_api_auth.index import Index
from kube_api_auth.metrics import Metrics
from kube_api_auth.ratelimit import TokenBucket

AUTHENTICATE_PATH = "/v1/authenticate"
HEALTH_PATH = "/healthcheck"
METRICS_PATH = "/metrics"


@dataclass(frozen=True)
class ReviewSettings:
    cluster_name: str = ""
    max_reviews_per_s: float = DEFAULT_MAX_REVIEWS_PER_S
    review_burst: int = DEFAULT_REVIEW_BURST
    max_body_bytes: int = MAX_BODY_BYTES


INDEX_KEY = web.AppKey("index", Index)
METRICS_KEY = web.AppKey("metrics", Metrics)


def _status(code: int, reason: str, message: str) -> web.Response:
    """A Kubernetes-style Status body, for requests that are not answered with a review."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.Response(
        status=code, body=json.dumps(body).encode(), content_type="application/json"
    )


def make_app(index: Index, metrics: Metrics, settings: ReviewSettings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[INDEX_KEY] = index
    app[METRICS_KEY] = metrics
    bucket = TokenBucket(settings.max_reviews_per_s, settings.review_burst, time.monotonic())
    children = metrics.review_children
    observe = metrics.latency.observe
    rejected = metrics.rejected
    cluster_name = settings.cluster_name
    max_body = settings.max_body_bytes

    async def authenticate(request: web.Request) -> web.Response:
        started = time.perf_counter()
        if not bucket.take(time.monotonic()):
            rejected.labels(code="429").inc()
            resp = _status(429, "TooManyRequests", "review rate limit exceeded")
            resp.headers["Retry-After"] = "1"
            return resp
        length = request.content_length
        try:
            if length is not None and length > max_body:
                raise web.HTTPRequestEntityTooLarge(max_size=max_body, actual_size=length)
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            rejected.labels(code="413").inc()
            resp = _status(413, "RequestEntityTooLarge", f"body larger than {max_body} bytes")
            resp.force_close()  # do not read the rest of the body to keep the connection
            return resp
        try:
            asked = review.parse_review(body)
        except review.MalformedReviewError as exc:
            rejected.labels(code="400").inc()
            return _status(400, "BadRequest", f"malformed TokenReview: {exc}")
        if not index.is_ready():
            rejected.labels(code="503").inc()
            # an error, not a denial: kube-apiserver would cache a denial
            return _status(503, "ServiceUnavailable", "token index not synced yet")
        decision = review.decide(index, asked.token, time.time(), cluster_name)
        children[decision.result].inc()
        answer = web.Response(
            body=json.dumps(review.render(asked.api_version, decision)).encode(),
            content_type="application/json",
        )
        observe(time.perf_counter() - started)
        return answer

    async def healthcheck(_request: web.Request) -> web.Response:
        if index.is_ready():
            return web.Response(text="ok")
        return web.Response(status=503, text="index not synced")

    async def metrics_handler(_request: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest(metrics.registry))
        resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return resp

    app.router.add_post(AUTHENTICATE_PATH, authenticate)
    app.router.add_get(HEALTH_PATH, healthcheck)
    app.router.add_get(METRICS_PATH, metrics_handler)
    return app
