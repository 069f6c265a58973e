"""Server settings over the REST API: ``server-url``, the public URL agents, kubeconfigs and
import commands use (see :mod:`rancher_server.clusters.public_url`)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rancher_server.api.clusters_api import server_url
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.auth.audit import audit_now
from rancher_server.auth.http import ApiError
from rancher_server.clusters.public_url import (
    MAX_URL_CHARS,
    SETTING,
    BadURL,
    loopback_warning,
    validate,
)

SERVER_URL_BODY = {
    "type": "object",
    "properties": {"value": {"type": "string", "maxLength": MAX_URL_CHARS,
                             "description": "https://HOST[:PORT] agents and users reach"}},
    "required": ["value"],
    "additionalProperties": False,
}


def _resource(ctx: Ctx) -> web.Response:
    stored = ctx.state.store.get_setting(SETTING)
    value = server_url(ctx)
    out: dict[str, object] = {
        "type": "setting", "id": SETTING, "name": SETTING, "value": value,
        "source": "setting" if stored else "server",
    }
    warning = loopback_warning(value)
    if warning:
        out["warning"] = warning
    return web.json_response(out)


@endpoint("GET", "/v3/settings/server-url", "The server's public URL (agents, kubeconfigs and "
          "import commands use it), with a warning while it is a loopback address",
          response="the setting")
async def get_server_url(ctx: Ctx) -> web.Response:
    return _resource(ctx)


@endpoint("PUT", "/v3/settings/server-url", "Set the server's public URL (https://HOST[:PORT])",
          needs=("settings", "update"), body=SERVER_URL_BODY, response="the setting")
async def set_server_url(ctx: Ctx) -> web.Response:
    try:
        url = validate(ctx.body["value"])
    except BadURL as e:
        raise ApiError(422, f"value: {e}") from e
    await asyncio.to_thread(ctx.state.store.set_setting, SETTING, url)
    await audit_now(ctx.state, ctx.user, "setting.update", f"setting:{SETTING}",
                    f"success {url}", ctx.remote)
    return _resource(ctx)
