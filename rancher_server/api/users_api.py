"""Users (``/v3/users``): holders of a global role allowing ``users`` (``admin``,
``users-manage``) create, list, update (enable/disable, groups), delete and set passwords; everyone
reads themselves (``?me=true``) and changes their own password. Making, unmaking or touching an
administrator needs an administrator."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rancher_server.api import schemas
from rancher_server.api.authz import allowed_globally, require_no_escalation
from rancher_server.api.resources import collection, user_resource
from rancher_server.api.spec import Ctx, endpoint
from rancher_server.auth.audit import audit_now
from rancher_server.auth.http import ApiError
from rancher_server.auth.passwords import hash_password_async, verify_password_async
from rancher_server.store import NotFound

ADMIN_TEMPLATE = "admin"


def _guard_admin_change(ctx: Ctx, user_id: str | None, admin_field: object) -> None:
    """Granting or removing "admin", or changing an administrator, needs what "admin" holds."""
    touches_admin = admin_field is not None or (
        user_id is not None and ctx.state.store.get_user(user_id).is_admin)
    if touches_admin:
        require_no_escalation(ctx.state, ctx.user, ADMIN_TEMPLATE)


@endpoint("GET", "/v3/users", "List users (?me=true, or without a global role allowing list "
          "users: only the caller)",
          returns="collection:User",
          query={"me": "'true': only the calling user"}, response="collection of users")
async def list_users(ctx: Ctx) -> web.Response:
    if ctx.request.query.get("me") == "true" or not allowed_globally(
            ctx.state, ctx.user, "users", "list"):
        users = [ctx.state.store.get_user(ctx.user.user_id)]
    else:
        users = ctx.state.store.list_users()
    return collection("user", (user_resource(u) for u in users))


@endpoint("POST", "/v3/users", "Create a user with a password (global role \"user\"; "
          "admin: true adds \"admin\")", needs=("users", "create"), returns="User",
          body=schemas.USER_CREATE, status=201, response="the user")
async def create_user(ctx: Ctx) -> web.Response:
    b = ctx.body
    _guard_admin_change(ctx, None, b.get("admin") or None)
    pw_hash = await hash_password_async(b["password"])
    user = await asyncio.to_thread(
        ctx.state.store.create_user, b["username"], b.get("name", ""), pw_hash,
        is_admin=bool(b.get("admin", False)), groups=b.get("groups", []),
    )
    if b.get("enabled") is False:
        user = await asyncio.to_thread(ctx.state.store.update_user, user.id, enabled=False)
    await audit_now(ctx.state, ctx.user, "user.create", f"user:{user.id}", "success", ctx.remote)
    return web.json_response(user_resource(user), status=201)


@endpoint("POST", "/v3/users", "Change the caller's own password", action="changepassword",
          returns="Empty",
          body=schemas.CHANGE_PASSWORD, response="empty object")
async def change_password(ctx: Ctx) -> web.Response:
    user = ctx.state.store.get_user(ctx.user.user_id)
    if not await verify_password_async(ctx.body["currentPassword"], user.password_hash):
        await audit_now(ctx.state, ctx.user, "user.changepassword", f"user:{user.id}",
                        "failure", ctx.remote)
        raise ApiError(422, "the current password is wrong")
    pw_hash = await hash_password_async(ctx.body["newPassword"])
    await asyncio.to_thread(ctx.state.store.update_user, user.id, password_hash=pw_hash)
    await audit_now(ctx.state, ctx.user, "user.changepassword", f"user:{user.id}", "success",
                    ctx.remote)
    return web.json_response({})


def _visible_user_id(ctx: Ctx) -> str:
    user_id = ctx.request.match_info["id"]
    if user_id != ctx.user.user_id and not allowed_globally(ctx.state, ctx.user, "users", "get"):
        raise NotFound(f"user {user_id!r} not found")
    return user_id


@endpoint("GET", "/v3/users/{id}", "Get a user (a global role allowing get users: any; "
          "others: themselves)",
          returns="User")
async def get_user(ctx: Ctx) -> web.Response:
    return web.json_response(user_resource(ctx.state.store.get_user(_visible_user_id(ctx))))


@endpoint("PUT", "/v3/users/{id}", "Update a user: display name, enabled, groups, admin",
          needs=("users", "update"), body=schemas.USER_UPDATE, returns="User")
async def update_user(ctx: Ctx) -> web.Response:
    user_id = ctx.request.match_info["id"]
    b = ctx.body
    _guard_admin_change(ctx, user_id, b.get("admin"))
    if user_id == ctx.user.user_id and (b.get("enabled") is False or b.get("admin") is False):
        raise ApiError(422, "administrators cannot disable themselves or drop their own admin "
                            "right (ask another administrator)")
    store = ctx.state.store
    user = await asyncio.to_thread(
        store.update_user, user_id, display_name=b.get("name"), enabled=b.get("enabled"),
        is_admin=b.get("admin"),
    )
    if "groups" in b and b["groups"] is not None:
        user = await asyncio.to_thread(store.set_user_groups, user_id, b["groups"])
    changed = ",".join(sorted(k for k in b if k in schemas.USER_UPDATE["properties"]))
    await audit_now(ctx.state, ctx.user, "user.update", f"user:{user_id}", f"success {changed}",
                    ctx.remote)
    return web.json_response(user_resource(user))


@endpoint("POST", "/v3/users/{id}", "Set a user's password", needs=("users", "update"),
          action="setpassword", body=schemas.SET_PASSWORD, returns="User")
async def set_password(ctx: Ctx) -> web.Response:
    user_id = ctx.request.match_info["id"]
    _guard_admin_change(ctx, user_id, None)
    pw_hash = await hash_password_async(ctx.body["newPassword"])
    user = await asyncio.to_thread(ctx.state.store.update_user, user_id, password_hash=pw_hash)
    await audit_now(ctx.state, ctx.user, "user.setpassword", f"user:{user_id}", "success",
                    ctx.remote)
    return web.json_response(user_resource(user))


@endpoint("DELETE", "/v3/users/{id}", "Delete a user with its tokens and bindings",
          needs=("users", "delete"), response="the deleted user", returns="User")
async def delete_user(ctx: Ctx) -> web.Response:
    user_id = ctx.request.match_info["id"]
    if user_id == ctx.user.user_id:
        raise ApiError(422, "administrators cannot delete themselves")
    _guard_admin_change(ctx, user_id, None)
    user = ctx.state.store.get_user(user_id)
    await asyncio.to_thread(ctx.state.store.delete_user, user_id)
    await audit_now(ctx.state, ctx.user, "user.delete", f"user:{user_id}", "success", ctx.remote)
    return web.json_response(user_resource(user))
