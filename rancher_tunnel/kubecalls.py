"""What the server's and the cluster agent's Kubernetes clients share (both on kubernetes_asyncio,
``rancher_server/clusters/kube.py`` and ``cluster_agent/kube.py``; the agents never import the
server, so it lives here): the typed error an API call raises, read from the API server's
``Status``; which errors are retried and after how long (429 with ``Retry-After``, 5xx, no
answer); and the events of a watch response, one JSON object per line, bounded in size."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

MAX_ATTEMPTS = 4
RETRY_BASE_S = 0.5
RETRY_CAP_S = 10.0
MAX_ERROR_BODY_CHARS = 300
MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class KubeError(Exception):
    """The API server answered a call with an error Status (``status`` 0: no answer at all)."""

    def __init__(self, status: int, reason: str, message: str, what: str) -> None:
        super().__init__(f"{what}: {status} {reason}: {message}"[: MAX_ERROR_BODY_CHARS * 2])
        self.status = status
        self.reason = reason
        self.message = message[:MAX_ERROR_BODY_CHARS]
        self.retry_after_s: float | None = None


async def error_from(resp: aiohttp.ClientResponse, what: str) -> KubeError:
    """The error of an answer with a status >= 300: reason and message from its ``Status``."""
    text = (await resp.text(errors="replace"))[: MAX_ERROR_BODY_CHARS * 4]
    reason, message = resp.reason or "", text[:MAX_ERROR_BODY_CHARS]
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and doc.get("kind") == "Status":
            reason = str(doc.get("reason") or reason)
            message = str(doc.get("message") or message)
    except ValueError:
        pass
    err = KubeError(resp.status, reason, message, what)
    retry_after = resp.headers.get("Retry-After")
    if retry_after and retry_after.isdigit():
        err.retry_after_s = float(retry_after)
    return err


def retry_delay(err: KubeError, attempt: int) -> float | None:
    """Seconds to wait before attempt ``attempt + 1`` (None: give up and raise ``err``): the
    server's Retry-After, else full-jitter exponential backoff."""
    if attempt >= MAX_ATTEMPTS or not (err.status == 0 or err.status in RETRYABLE_STATUSES):
        return None
    return err.retry_after_s or random.uniform(0, min(RETRY_CAP_S, RETRY_BASE_S * 2**attempt))


async def watch_events(
    resp: aiohttp.ClientResponse, what: str,
    connection_errors: tuple[type[BaseException], ...],
) -> AsyncIterator[dict[str, Any]]:
    """The events of a watch answer (status already checked) until the API server ends it. A lost
    connection, a line over ``MAX_WATCH_LINE_BYTES`` or one that is not JSON (the stream is
    broken: start over) raise :class:`KubeError` with status 0."""
    buf = bytearray()
    try:
        async for chunk in resp.content.iter_any():
            buf += chunk
            while (nl := buf.find(b"\n")) >= 0:
                line = bytes(buf[:nl])
                del buf[: nl + 1]
                if line.strip():
                    event = json.loads(line)
                    if isinstance(event, dict):
                        yield event
            if len(buf) > MAX_WATCH_LINE_BYTES:
                raise KubeError(0, "EventTooLarge", "a watch event is too large", what)
    except connection_errors as e:
        raise KubeError(0, "Unreachable", str(e) or type(e).__name__, what) from e
    except ValueError as e:
        raise KubeError(0, "BadEvent", str(e)[:MAX_ERROR_BODY_CHARS], what) from e
