"""``/v3/connect`` and ``/v3/connect/register``: agents authenticate before the upgrade (401
otherwise), then one :class:`Session` runs over the websocket until either side ends it."""

from __future__ import annotations

import asyncio
import dataclasses

from aiohttp import web

from rancher_server.state import STATE, ServerState
from rancher_server.store import StoreError
from rancher_server.tunnel.agent_auth import (
    CREDENTIAL_HEADER,
    VIA_CREDENTIAL,
    AgentIdentity,
    TunnelAuthError,
    authenticate,
    hash_token,
    new_agent_credential,
)
from rancher_server.tunnel.bounds import account_session_end, host_handler, report_handler
from rancher_tunnel.constants import WS_MAX_MESSAGE_BYTES
from rancher_tunnel.frames import Role
from rancher_tunnel.logs import get_logger
from rancher_tunnel.session import MessageHandler, Session

log = get_logger(component="tunnel-endpoint")


def _unauthorized(reason: str) -> web.Response:
    return web.json_response(
        {"type": "error", "status": 401, "code": "Unauthorized", "message": reason}, status=401
    )


async def _serve(request: web.Request, register: bool) -> web.StreamResponse:
    state: ServerState = request.app[STATE]
    if state.shutting_down:
        return web.json_response({"message": "server is shutting down"}, status=503)
    ws = web.WebSocketResponse(
        max_msg_size=WS_MAX_MESSAGE_BYTES, compress=False, autoping=True, heartbeat=None
    )
    try:
        identity: AgentIdentity = authenticate(state.store, request.headers, register)
        if identity.issue_credential:
            credential = new_agent_credential()
            digest = hash_token(credential)
            issued = await asyncio.to_thread(
                state.store.issue_agent_credential, identity.cluster.id, digest
            )
            if not issued:  # another agent registered first
                raise TunnelAuthError("this cluster's agent has already registered")
            identity = dataclasses.replace(
                identity, via=VIA_CREDENTIAL, secret_hash=digest, issue_credential=False
            )
            ws.headers[CREDENTIAL_HEADER] = credential
            log.info("agent credential issued", cluster=identity.cluster.id)
    except TunnelAuthError as e:
        log.warning("agent refused", reason=str(e), peer=request.remote)
        return _unauthorized(str(e))
    except StoreError as e:
        log.warning("agent refused: storage failed", error=str(e), peer=request.remote)
        return web.json_response(
            {"type": "error", "status": 503, "code": "ServiceUnavailable",
             "message": "storage is unavailable; retry later"}, status=503)
    if (
        register
        and identity.role == "cluster"
        and identity.via == VIA_CREDENTIAL
        and (
            identity.api_address != identity.cluster.api_endpoint
            or identity.ca_cert_pem != identity.cluster.ca_cert
        )
    ):
        state.store.record_registration(
            identity.cluster.id, identity.api_address, identity.ca_cert_pem
        )
    await ws.prepare(request)
    on_message: MessageHandler | None = None
    holder: list[Session] = []
    if identity.role == "cluster":
        on_message = report_handler(
            state.sessions, identity.cluster.id, lambda: holder[0] if holder else None
        )
    else:  # a node agent reports its host
        on_message = host_handler(state.sessions, identity, lambda: holder[0] if holder else None)
    session = Session(
        ws, Role.SERVER, name=identity.session_key, limits=state.limits, on_message=on_message
    )
    holder.append(session)
    slog = log.bind(session=identity.session_key, role=identity.role)
    state.collector.sessions_total += 1
    await state.sessions.add(identity, session)
    slog.info("agent connected", register=register)
    try:
        await session.run()
    finally:
        holder.clear()  # the handler's way back to the session: a cycle once the session ends
        state.sessions.remove(identity, session)
        st = session.stats
        state.collector.closed_bytes_in += st.bytes_in
        state.collector.closed_bytes_out += st.bytes_out
        account_session_end(state.collector, session, identity.session_key)
        slog.info("agent disconnected", reason=session.close_reason)
    return ws


async def connect(request: web.Request) -> web.StreamResponse:
    return await _serve(request, register=False)


async def connect_register(request: web.Request) -> web.StreamResponse:
    return await _serve(request, register=True)


def routes() -> list[web.RouteDef]:
    return [web.get("/v3/connect", connect), web.get("/v3/connect/register", connect_register)]
