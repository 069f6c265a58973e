"""The last line of defence for every request: storage failures are a 503 with a clear message
(logged once per cause, not once per request), bad encodings and values a client sent are a 400,
and anything unexpected a 500 with a JSON body and no traceback. On ``/k8s/`` paths the body is a
Kubernetes ``Status``."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from rancher_server.store import StorageUnavailable
from rancher_tunnel.logs import get_logger

log = get_logger(component="errors")
STORAGE_LOG_INTERVAL_S = 60.0  # the same storage failure is logged again at most this often
STORAGE_UNAVAILABLE_MESSAGE = "storage is unavailable; retry later (the server log has the cause)"
_last_logged: dict[str, float] = {}


def _log_storage_once(cause: str) -> None:
    now = time.monotonic()
    if now - _last_logged.get(cause, -STORAGE_LOG_INTERVAL_S) >= STORAGE_LOG_INTERVAL_S:
        _last_logged.clear()
        _last_logged[cause] = now
        log.error("storage failure", cause=cause)


def json_error(request: web.Request, status: int, message: str) -> web.Response:
    body: dict[str, Any]
    if request.path.startswith("/k8s/"):
        reason = {400: "BadRequest", 503: "ServiceUnavailable"}.get(status, "InternalError")
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": status}
    else:
        code = {400: "InvalidBodyContent", 503: "ServiceUnavailable"}.get(status, "ServerError")
        body = {"type": "error", "status": status, "code": code, "message": message}
    return web.json_response(body, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except web.HTTPException:
        raise
    except StorageUnavailable as e:
        _log_storage_once(str(e))
        return json_error(request, 503, STORAGE_UNAVAILABLE_MESSAGE)
    except UnicodeError:
        return json_error(request, 400, "a header or parameter is not valid in its encoding "
                          "(headers must be Latin-1, paths and queries UTF-8)")
    except RecursionError:
        return json_error(request, 400, "the request is nested too deeply")
    except OverflowError:
        return json_error(request, 400, "a number in the request is out of range")
    except (ConnectionError, TimeoutError):
        raise
    except Exception as e:
        log.exception("unexpected error", path=request.path, error=type(e).__name__)
        return json_error(request, 500, "internal error; see the server log")
