"""The GitHub and OpenID Connect providers on the event loop: configuration in the store (client
secret encrypted), the pending logins of the redirect flow (state, PKCE verifier, nonce; single
use, expiring) and of the device flow, kept in the store so that the provider's callback or the
CLI's next poll may reach any replica (keyed by a SHA-256 of the state or handle, the record
encrypted), login completion into a store user (as the directory providers do, through
:class:`.service.DirectoryService`'s user bookkeeping), the user's provider token kept encrypted
for refreshes, and the periodic group refresh.

What a refresh can see: GitHub, with the user's stored token, reads ``/user``, ``/user/orgs`` and
``/user/teams`` again (a revoked token takes access away). OpenID Connect, with the refresh token
the issuer gave at login (when it gave one, e.g. scope ``offline_access``), asks for a new ID
token and reads its groups claim; a refused refresh token (session ended, user disabled in the
issuer) takes access away. Without a refresh token only the next login updates the groups."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
import weakref
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from aiohttp import web

from rancher_server.auth.providers import github, oidc
from rancher_server.auth.providers import oauthconfig as ocfg
from rancher_server.auth.providers.config import setting_name
from rancher_server.auth.providers.constants import (
    DIRECTORY_PASSWORD_HASH,
    GITHUB,
    OAUTH_PROVIDERS,
    OIDC,
    REFRESH_TICK_S,
)
from rancher_server.auth.providers.ldap import DirectoryUser
from rancher_server.auth.providers.oauthcommon import (
    CredentialRefused,
    DeviceSlowDown,
    Identity,
    OAuthError,
    ProviderUnreachable,
)
from rancher_server.auth.providers.oauthconfig import OAuthConfig
from rancher_server.auth.providers.principals import parse_principal
from rancher_server.auth.providers.secretbox import SecretError
from rancher_server.auth.providers.service import (
    NotAllowed,
    ProviderDisabled,
    RefreshReport,
    directory,
)
from rancher_server.state import STATE, ServerState
from rancher_server.store import StoreError, User
from rancher_tunnel.logs import get_logger

log = get_logger(component="oauth")
PENDING_TTL_S = 600.0  # a login must come back from the provider within this
MAX_PENDING = 10_000  # pending logins kept (redirect and device flows together); the oldest go
PENDING_PREFIX = "oauthpending."  # encryption context: binds each record to its key
STATE_BYTES = 32
DEVICE_DEFAULT_INTERVAL_S = 5  # RFC 8628's default polling interval
DEVICE_SLOW_DOWN_S = 5  # RFC 8628 3.5: what each slow_down adds to the interval
CREDENTIAL_PREFIX = "oauthcred."  # setting "<prefix><user id>": the user's provider token


class DevicePending(Exception):
    """The user has not entered the device login's code yet: poll again after ``interval``."""

    def __init__(self, interval_s: int) -> None:
        super().__init__("authorization pending")
        self.interval_s = interval_s


@dataclass(frozen=True)
class DeviceLogin:
    device_code: str
    interval_s: int
    expires_at: float  # wall clock: replicas share it


class StateMismatch(Exception):
    """A callback whose state is unknown, expired, used, or not this browser's."""


@dataclass(frozen=True)
class Pending:
    provider: str
    redirect_uri: str
    response: str  # "cookie" (browser) or "json"
    nonce: str
    code_verifier: str
    created: float  # wall clock: replicas share it


def is_allowed(cfg: OAuthConfig, ident: Identity) -> bool:
    if not cfg.allowed_principal_ids:
        return True
    allowed = set(cfg.allowed_principal_ids)
    return ident.principal_id in allowed or any(g in allowed for g in ident.groups)


def oauth_provider_of(user: User) -> str | None:
    parsed = parse_principal(user.username)
    if parsed is None or parsed[1] != "user" or parsed[0] not in OAUTH_PROVIDERS:
        return None
    return parsed[0]


@dataclass
class OAuthService:
    state: ServerState
    _meta: dict[str, oidc.Metadata] = field(default_factory=dict)
    _last_refresh: dict[str, float] = field(default_factory=dict)
    reports: dict[str, RefreshReport] = field(default_factory=dict)

    # ------------------------------------------------------------------ configuration

    def config(self, provider: str) -> OAuthConfig:
        return ocfg.load(provider, self.state.store.get_setting(setting_name(provider)),
                         directory(self.state).box)

    async def save(self, cfg: OAuthConfig) -> None:
        await asyncio.to_thread(self.state.store.set_setting, setting_name(cfg.provider),
                                ocfg.dump(cfg, directory(self.state).box))
        self._meta.pop(cfg.provider, None)
        self._last_refresh.pop(cfg.provider, None)

    async def _metadata(self, cfg: OAuthConfig) -> oidc.Metadata:
        meta = self._meta.get(cfg.provider)
        if meta is None or not meta.fresh or meta.issuer.rstrip("/") != cfg.issuer.rstrip("/"):
            meta = await asyncio.to_thread(oidc.discover, cfg)
            self._meta[cfg.provider] = meta
        return meta

    async def test(self, cfg: OAuthConfig) -> list[tuple[str, bool, str]]:
        fn = github.test_steps if cfg.provider == GITHUB else oidc.test_steps
        return await asyncio.to_thread(fn, cfg)

    # ------------------------------------------------------------------ logins in flight

    @staticmethod
    def _key(kind: str, handle: str) -> str:
        return kind + "/" + hashlib.sha256(handle.encode()).hexdigest()

    async def _remember(self, kind: str, handle: str, record: Pending | DeviceLogin,
                        expires_at: float) -> None:
        key = self._key(kind, handle)
        await asyncio.to_thread(self.state.store.put_pending_login, key,
                                self._seal(key, record), expires_at, MAX_PENDING)

    def _seal(self, key: str, record: Pending | DeviceLogin) -> str:
        return directory(self.state).box.encrypt(json.dumps(asdict(record)),
                                                 PENDING_PREFIX + key)

    def _open(self, key: str, value: str | None) -> dict[str, Any] | None:
        if value is None:
            return None
        try:
            doc = json.loads(directory(self.state).box.decrypt(value, PENDING_PREFIX + key))
        except (SecretError, ValueError):  # the key was rotated away meanwhile: start again
            return None
        return doc if isinstance(doc, dict) else None

    # ------------------------------------------------------------------ the redirect flow

    def _enabled(self, provider: str) -> OAuthConfig:
        cfg = self.config(provider)
        if not cfg.enabled:
            raise ProviderDisabled(provider)
        return cfg

    async def begin(self, provider: str, redirect_uri: str, response: str) -> tuple[str, str]:
        """(the provider's authorize URL, the state) of a new login."""
        cfg = self._enabled(provider)
        now = time.time()
        state = secrets.token_urlsafe(STATE_BYTES)
        pending = Pending(provider, redirect_uri, response, secrets.token_urlsafe(STATE_BYTES),
                          secrets.token_urlsafe(STATE_BYTES), now)
        if provider == GITHUB:
            url = github.authorize_url(cfg, redirect_uri, state)
        else:
            meta = await self._metadata(cfg)
            url = oidc.authorize_url(cfg, meta, redirect_uri, state, pending.nonce,
                                     pending.code_verifier)
        await self._remember("state", state, pending, now + PENDING_TTL_S)
        return url, state

    async def take(self, provider: str, state: str, bound_state: str) -> Pending:
        """The pending login of a callback's state (used once, on whichever replica). The state
        must also be the one this browser was given (its cookie): another's callback URL logs
        nobody in."""
        doc = None
        if state:
            key = self._key("state", state)
            # Taken whatever its age (the expiry is told apart below) so that it is used up.
            doc = self._open(key, await asyncio.to_thread(
                self.state.store.take_pending_login, key, float("-inf")))
        pending = Pending(**doc) if doc is not None else None
        if pending is None or pending.provider != provider:
            raise StateMismatch("unknown or already used state")
        if time.time() - pending.created > PENDING_TTL_S:
            raise StateMismatch("the login took too long; start again")
        if not secrets.compare_digest(state.encode(), bound_state.encode()):
            raise StateMismatch("the state is not the one this browser was given")
        return pending

    async def complete(self, provider: str, pending: Pending, code: str) -> User:
        """Exchange the code, read who the user is, and make their store user."""
        cfg = self._enabled(provider)
        try:
            return await self._complete(cfg, pending, code)
        except ProviderUnreachable as e:  # the answer says only the stage: the log says why
            log.warning("oauth login: provider unreachable", provider=provider, stage=e.stage,
                        error=e.message)
            raise

    async def _complete(self, cfg: OAuthConfig, pending: Pending, code: str) -> User:
        provider = cfg.provider
        if provider == GITHUB:
            token = await asyncio.to_thread(github.exchange, cfg, pending.redirect_uri, code)
            ident = await asyncio.to_thread(github.identity, cfg, token)
        else:
            meta = await self._metadata(cfg)
            token = await asyncio.to_thread(oidc.exchange, cfg, meta, pending.redirect_uri,
                                            code, pending.code_verifier)
            claims = oidc.validate_id_token(cfg, meta, token, pending.nonce)
            ident = oidc.identity(cfg, claims)
        if not is_allowed(cfg, ident):
            raise NotAllowed(ident.principal_id)
        user = await self._sync(ident)
        await self._keep_credential(user, token)
        return user

    async def device_begin(self, provider: str) -> dict[str, Any]:
        """Start a device login (for the CLI) at GitHub or the OIDC issuer: what to show the
        user, and the handle to poll with (the provider's device_code stays here)."""
        cfg = self._enabled(provider)
        if provider == GITHUB:
            doc = await asyncio.to_thread(github.device_code, cfg)
        else:
            doc = await asyncio.to_thread(oidc.device_code, cfg, await self._metadata(cfg))
        interval = int(doc.get("interval") or DEVICE_DEFAULT_INTERVAL_S)
        expires_in = float(doc.get("expires_in") or PENDING_TTL_S)
        handle = secrets.token_urlsafe(STATE_BYTES)
        expires_at = time.time() + expires_in
        await self._remember("device", handle, DeviceLogin(
            doc["device_code"], interval, expires_at), expires_at)
        out = {"deviceHandle": handle, "userCode": doc["user_code"],
               "verificationUri": doc["verification_uri"], "interval": interval,
               "expiresIn": int(expires_in)}
        if isinstance(doc.get("verification_uri_complete"), str):
            out["verificationUriComplete"] = doc["verification_uri_complete"]
        return out

    async def device_poll(self, provider: str, handle: str) -> User:
        """The user once they entered the code at the provider. Raises DevicePending,
        StateMismatch (unknown or expired handle) and what :meth:`complete` raises."""
        cfg = self._enabled(provider)
        store, key = self.state.store, self._key("device", handle)
        doc = self._open(key, await asyncio.to_thread(store.get_pending_login, key,
                                                      time.time()))
        if doc is None:
            raise StateMismatch("unknown or expired device login; start again")
        login = DeviceLogin(**doc)
        meta = None if provider == GITHUB else await self._metadata(cfg)
        try:
            if meta is None:
                token = await asyncio.to_thread(github.poll_device, cfg, login.device_code)
            else:
                token = await asyncio.to_thread(oidc.poll_device, cfg, meta, login.device_code)
        except DeviceSlowDown:
            # For this and every later poll, on any replica (the provider keeps answering
            # slow_down otherwise): the client polls at the interval this answer gives it. Not
            # brought back if a concurrent poll finished the login.
            login = replace(login, interval_s=login.interval_s + DEVICE_SLOW_DOWN_S)
            await asyncio.to_thread(store.replace_pending_login, key, self._seal(key, login),
                                    time.time())
            raise DevicePending(login.interval_s) from None
        if token is None:
            raise DevicePending(login.interval_s)
        await asyncio.to_thread(store.take_pending_login, key, float("-inf"))
        if meta is None:
            ident = await asyncio.to_thread(github.identity, cfg, token)
        else:  # no nonce in the device flow (RFC 8628); signature, issuer, audience, expiry
            ident = oidc.identity(cfg, oidc.validate_id_token(cfg, meta, token, None))
        if not is_allowed(cfg, ident):
            raise NotAllowed(ident.principal_id)
        user = await self._sync(ident)
        await self._keep_credential(user, token)
        return user

    async def _sync(self, ident: Identity) -> User:
        svc = directory(self.state)
        duser = DirectoryUser(dn=ident.principal_id, principal_id=ident.principal_id,
                              display_name=ident.display_name, login_name=ident.login_name,
                              groups=ident.groups, enabled=True)
        store = self.state.store
        if store.user_by_username(ident.principal_id) is None:
            try:
                return await asyncio.to_thread(
                    store.create_user, ident.principal_id, ident.display_name,
                    DIRECTORY_PASSWORD_HASH, groups=ident.groups)
            except StoreError:
                pass  # a concurrent first login: go on with the user it made
        return await svc._sync_login(duser)

    async def _keep_credential(self, user: User, token: dict[str, Any]) -> None:
        kept = {k: token[k] for k in ("access_token", "refresh_token", "token_type")
                if isinstance(token.get(k), str)}
        if user.username.startswith(OIDC) and "refresh_token" not in kept:
            kept = {}  # nothing a refresh could use
        name = CREDENTIAL_PREFIX + user.id
        value = directory(self.state).box.encrypt(json.dumps(kept), name) if kept else ""
        await asyncio.to_thread(self.state.store.set_setting, name, value)

    def _credential(self, user: User) -> dict[str, Any] | None:
        name = CREDENTIAL_PREFIX + user.id
        raw = self.state.store.get_setting(name)
        if not raw:
            return None
        try:
            doc = json.loads(directory(self.state).box.decrypt(raw, name))
        except (SecretError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    # ------------------------------------------------------------------ refresh

    async def _lookup(self, cfg: OAuthConfig, user: User) -> Identity | None:
        """What the provider says now; None when it refuses the user's credential. Raises
        OAuthError (the user keeps what they had) and LookupError (nothing to refresh with)."""
        cred = self._credential(user)
        if cred is None:
            raise LookupError("no stored credential")
        try:
            if cfg.provider == GITHUB:
                return await asyncio.to_thread(github.identity, cfg, cred)
            meta = await self._metadata(cfg)
            token = await asyncio.to_thread(oidc.refresh, cfg, meta, cred["refresh_token"])
            claims = oidc.validate_id_token(cfg, meta, token, None)
        except CredentialRefused:
            return None
        if token.get("refresh_token"):  # a rotated refresh token replaces the old one
            await self._keep_credential(user, token)
        ident = oidc.identity(cfg, claims)
        return ident if ident.principal_id == user.username else None

    async def refresh_user(self, user: User, report: RefreshReport | None = None) -> User:
        provider = oauth_provider_of(user)
        assert provider is not None
        report = report or RefreshReport(provider)
        cfg = self.config(provider)
        svc = directory(self.state)
        ident: Identity | None = None
        if cfg.enabled:
            try:
                ident = await self._lookup(cfg, user)
            except LookupError:
                return user  # groups change at the next login only
        allowed = ident is not None and is_allowed(cfg, ident)
        if not allowed:
            if user.enabled:
                await svc._set_enabled(user, False)
                report.disabled += 1
                log.info("oauth user loses access", user_id=user.id, provider=provider,
                         reason="provider disabled" if not cfg.enabled else "credential "
                         "refused" if ident is None else "not allowed")
            return self.state.store.get_user(user.id)
        assert ident is not None
        if not user.enabled:
            if not svc._marked(user.id):
                return user
            user = await svc._set_enabled(user, True)
            report.changed += 1
        before = user.groups
        user = await svc._apply_groups(user, DirectoryUser(
            dn=ident.principal_id, principal_id=ident.principal_id,
            display_name=ident.display_name, login_name=ident.login_name, groups=ident.groups,
            enabled=True))
        if user.groups != before:
            report.changed += 1
        return user

    async def refresh_provider(self, provider: str) -> RefreshReport:
        report = RefreshReport(provider, started_at=time.time())
        t0 = time.monotonic()
        users = [u for u in self.state.store.list_users() if oauth_provider_of(u) == provider]
        report.users = len(users)
        for user in users:
            try:
                await self.refresh_user(user, report)
            except OAuthError as e:  # unreachable or a bad answer: keep the last known state
                report.error, report.stage = e.message, e.stage
                log.warning("oauth refresh failed; users keep their last known groups",
                            provider=provider, stage=e.stage, error=e.message)
                break
        report.duration_s = time.monotonic() - t0
        self.reports[provider] = report
        self._last_refresh[provider] = time.monotonic()
        return report

    def _due(self, provider: str, now: float) -> bool:
        if not self.state.store.get_setting(setting_name(provider)):
            return False
        try:
            interval = self.config(provider).refresh_interval_s
        except SecretError:
            return False
        last = self._last_refresh.get(provider)
        return last is None or now - last >= interval

    async def rewrap_secrets(self) -> int:
        """Re-encrypt client secrets and users' provider tokens that were encrypted with an
        older key (rotation: RANCHER_SECRETS_OLD_KEYS)."""
        box, store, done = directory(self.state).box, self.state.store, 0
        for provider in OAUTH_PROVIDERS:
            encrypted = ocfg.encrypted_secret(store.get_setting(setting_name(provider)))
            if encrypted and box.needs_rewrap(encrypted):
                await self.save(self.config(provider))
                done += 1
        for user in store.list_users():
            name = CREDENTIAL_PREFIX + user.id
            raw = store.get_setting(name) if oauth_provider_of(user) else None
            if raw and box.needs_rewrap(raw):
                value = box.encrypt(box.decrypt(raw, name), name)
                await asyncio.to_thread(store.set_setting, name, value)
                done += 1
        if done:
            log.info("oauth secrets re-encrypted with the current key", count=done)
        return done

    async def run(self, stop: asyncio.Event) -> None:
        with contextlib.suppress(SecretError):
            await self.rewrap_secrets()
        while not stop.is_set():
            for provider in OAUTH_PROVIDERS:
                try:
                    if self._due(provider, time.monotonic()):
                        await self.refresh_provider(provider)
                except Exception as e:  # keep refreshing; logged, retried next period
                    log.exception("oauth refresh error", provider=provider, error=str(e))
                    self._last_refresh[provider] = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REFRESH_TICK_S)


_SERVICES: dict[int, OAuthService] = {}


def oauth(state: ServerState) -> OAuthService:
    key = id(state)
    svc = _SERVICES.get(key)
    if svc is None:
        svc = OAuthService(state)
        _SERVICES[key] = svc
        weakref.finalize(state, _SERVICES.pop, key, None)
    return svc


async def oauth_ctx(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context: the periodic refresh runs as long as the app."""
    state = app[STATE]
    stop = asyncio.Event()
    task = asyncio.create_task(oauth(state).run(stop), name="oauth-refresh")
    yield
    stop.set()
    await task
    _SERVICES.pop(id(state), None)

