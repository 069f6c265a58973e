"""The directory providers on the event loop: configuration kept in the store (password encrypted),
login, and keeping directory users' store records true to the directory (groups, enabled) at
login, periodically and on demand. The reconciler then carries every change downstream
(impersonation groups, ClusterUserAttributes, bindings) as it does for local users.

ldap3 is synchronous: every directory call runs in this service's own thread pool, so a directory
that stalls holds at most those threads, never asyncio's default executor that the store and the
audit log use.

A directory user is a store user whose username is its principal id; its groups are group
principal ids. When the directory says the user is gone, disabled, or no longer allowed (or the
provider is turned off), the service disables the store user and clears its groups, and marks it
"disabled by the directory" (a setting) so that it is enabled again when the directory allows it
again; a user an administrator disabled stays disabled."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import weakref
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from rancher_server.auth.providers import activedirectory, openldap
from rancher_server.auth.providers import config as cfgmod
from rancher_server.auth.providers.config import LdapConfig
from rancher_server.auth.providers.constants import (
    DIRECTORY_PASSWORD_HASH,
    LDAP_MAX_THREADS,
    PROVIDERS,
    REFRESH_TICK_S,
    SECRETS_KEY_ENV,
)
from rancher_server.auth.providers.ldap import (
    ConnectionPool,
    DirectoryError,
    DirectoryUser,
    Flavour,
    LoginHints,
    NestedGroupCache,
    TestStep,
    authenticate,
    directory_user,
    lookup,
    snapshot,
    test_connection,
)
from rancher_server.auth.providers.principals import parse_principal
from rancher_server.auth.providers.secretbox import (
    SecretBox,
    SecretError,
    key_source,
    load_box,
)
from rancher_server.state import STATE, ServerState
from rancher_server.store import NotFound, StoreError, User
from rancher_tunnel.logs import get_logger

log = get_logger(component="directory")
T = TypeVar("T")
DISABLED_MARK_PREFIX = "authdir.disabled."  # setting "<prefix><user id>" = "1": we disabled it
MARK_SET = "1"
FLAVOURS: dict[str, Flavour] = {
    openldap.FLAVOUR.name: openldap.FLAVOUR,
    activedirectory.FLAVOUR.name: activedirectory.FLAVOUR,
}


class ProviderDisabled(Exception):
    """Login through a provider that is not enabled."""


class NotAllowed(Exception):
    """The directory accepted the user, but the provider allows only certain principals."""


class StoreDisabled(Exception):
    """The user's store record was disabled by an administrator."""


@dataclass
class RefreshReport:
    provider: str
    started_at: float = 0.0
    duration_s: float = 0.0
    users: int = 0
    changed: int = 0
    disabled: int = 0
    error: str = ""
    stage: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "startedAt": self.started_at,
                "durationS": round(self.duration_s, 3), "users": self.users,
                "changed": self.changed, "disabled": self.disabled, "error": self.error,
                "stage": self.stage}


def is_allowed(cfg: LdapConfig, duser: DirectoryUser) -> bool:
    if not cfg.allowed_principal_ids:
        return True
    allowed = set(cfg.allowed_principal_ids)
    return duser.principal_id in allowed or any(g in allowed for g in duser.groups)


def user_dn(user: User) -> tuple[str, str] | None:
    """(provider, DN) of a directory user's store record; None for a local user."""
    parsed = parse_principal(user.username)
    if parsed is None or parsed[1] != "user":
        return None
    return parsed[0], parsed[2]


@functools.lru_cache(maxsize=8)
def _fingerprint(cfg: LdapConfig) -> str:
    return cfg.fingerprint()  # a frozen config: computed once, not at every login


@dataclass
class _Pools:
    fingerprint: str
    service: ConnectionPool
    auth: ConnectionPool
    nested: NestedGroupCache = field(default_factory=NestedGroupCache)
    hints: LoginHints = field(default_factory=LoginHints)  # login name -> DN, confirmed per login


@dataclass
class DirectoryService:
    state: ServerState
    _executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(
        LDAP_MAX_THREADS, thread_name_prefix="ldap"))
    _pools: dict[str, _Pools] = field(default_factory=dict)
    _box: SecretBox | None = None
    _last_refresh: dict[str, float] = field(default_factory=dict)
    _configs: dict[str, tuple[str | None, LdapConfig]] = field(default_factory=dict)
    reports: dict[str, RefreshReport] = field(default_factory=dict)
    _refresh_lock: dict[str, asyncio.Lock] = field(default_factory=dict)

    # --------------------------------------------------------------------- configuration

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            config = self.state.config
            shared = self.state.store if config.store_url else None
            if key_source(config.data_dir, shared=shared) == "store":
                log.warning("secrets at rest are encrypted with a key kept in the store, beside "
                            "them: set RANCHER_SECRETS_KEY on every replica so that a copy of "
                            "etcd alone does not reveal them", env=SECRETS_KEY_ENV)
            self._box = load_box(config.data_dir, shared=shared)
        return self._box

    def config(self, provider: str) -> LdapConfig:
        """The stored configuration (cached store read; parsed and decrypted once per stored
        value, not at every login). SecretError when the bind password does not decrypt with the
        configured keys."""
        raw = self.state.store.get_setting(cfgmod.setting_name(provider))
        hit = self._configs.get(provider)
        if hit is not None and hit[0] == raw:
            return hit[1]
        cfg = cfgmod.load(provider, raw, self.box)
        self._configs[provider] = (raw, cfg)
        return cfg

    async def save(self, cfg: LdapConfig) -> None:
        await asyncio.to_thread(self.state.store.set_setting, cfgmod.setting_name(cfg.provider),
                                cfgmod.dump(cfg, self.box))
        self._last_refresh.pop(cfg.provider, None)  # refresh with the new settings soon

    async def rewrap_secrets(self) -> int:
        """Re-encrypt stored passwords that were encrypted with an older key (rotation)."""
        done = 0
        for provider in PROVIDERS:
            raw = self.state.store.get_setting(cfgmod.setting_name(provider))
            encrypted = cfgmod.encrypted_password(raw)
            if encrypted and self.box.needs_rewrap(encrypted):
                await self.save(self.config(provider))
                done += 1
        if done:
            log.info("secrets re-encrypted with the current key", count=done)
        return done

    # --------------------------------------------------------------------- LDAP plumbing

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _pools_for(self, cfg: LdapConfig) -> _Pools:
        fp = _fingerprint(cfg)
        pools = self._pools.get(cfg.provider)
        if pools is None or pools.fingerprint != fp:
            if pools is not None:
                pools.service.close()
                pools.auth.close()
            pools = _Pools(fp, ConnectionPool(cfg, service=True),
                           ConnectionPool(cfg, service=False))
            self._pools[cfg.provider] = pools
        return pools

    # --------------------------------------------------------------------- login

    async def login(self, provider: str, login_name: str, password: str) -> User:
        """The store user for these directory credentials (created at the first login, groups
        refreshed). Raises ProviderDisabled, LoginRefused, DirectoryError, NotAllowed,
        StoreDisabled."""
        cfg = self.config(provider)
        if not cfg.enabled:
            raise ProviderDisabled(provider)
        pools = self._pools_for(cfg)
        duser = await self._call(authenticate, pools.service, pools.auth, FLAVOURS[provider],
                                 login_name, password, pools.nested, pools.hints)
        if not is_allowed(cfg, duser):
            raise NotAllowed(duser.principal_id)
        return await self._sync_login(duser)

    async def _sync_login(self, duser: DirectoryUser) -> User:
        store = self.state.store
        user = store.user_by_username(duser.principal_id)
        if user is None:
            try:
                return await asyncio.to_thread(
                    store.create_user, duser.principal_id, duser.display_name,
                    DIRECTORY_PASSWORD_HASH, groups=duser.groups)
            except StoreError:  # created by a concurrent login of the same user
                user = store.user_by_username(duser.principal_id)
                if user is None:
                    raise
        if not user.enabled:
            if not self._marked(user.id):
                raise StoreDisabled(user.id)
            user = await self._set_enabled(user, True)
        return await self._apply_groups(user, duser)

    async def _apply_groups(self, user: User, duser: DirectoryUser) -> User:
        store = self.state.store
        if tuple(sorted(user.groups)) != tuple(sorted(duser.groups)):
            user = await asyncio.to_thread(store.set_user_groups, user.id, duser.groups)
        if duser.display_name and user.display_name != duser.display_name:
            user = await asyncio.to_thread(store.update_user, user.id,
                                           display_name=duser.display_name)
        return user

    def _marked(self, user_id: str) -> bool:
        return self.state.store.get_setting(DISABLED_MARK_PREFIX + user_id) == MARK_SET

    async def _set_enabled(self, user: User, enabled: bool) -> User:
        store = self.state.store
        await asyncio.to_thread(store.set_setting, DISABLED_MARK_PREFIX + user.id,
                                "" if enabled else MARK_SET)
        if not enabled and user.groups:
            await asyncio.to_thread(store.set_user_groups, user.id, ())
        return await asyncio.to_thread(store.update_user, user.id, enabled=enabled)

    # --------------------------------------------------------------------- refresh

    async def _apply(self, cfg: LdapConfig, user: User, duser: DirectoryUser | None,
                     report: RefreshReport) -> None:
        """Make one store user match what the directory says (writes only on a change)."""
        allowed = (cfg.enabled and duser is not None and duser.enabled
                   and is_allowed(cfg, duser))
        if not allowed:
            if user.enabled:
                await self._set_enabled(user, False)
                report.disabled += 1
                log.info("directory user loses access", user_id=user.id, provider=cfg.provider,
                         reason="provider disabled" if not cfg.enabled else "gone" if duser is
                         None else "disabled" if not duser.enabled else "not allowed")
            elif user.groups and self._marked(user.id):
                await asyncio.to_thread(self.state.store.set_user_groups, user.id, ())
            return
        assert duser is not None
        if not user.enabled:
            if not self._marked(user.id):
                return  # an administrator disabled it: leave it so
            user = await self._set_enabled(user, True)
            report.changed += 1
        before = user.groups
        user = await self._apply_groups(user, duser)
        if user.groups != before:
            report.changed += 1

    async def refresh_user(self, user_id: str) -> User:
        """Refresh one directory user now (an administrator's request)."""
        user = self.state.store.get_user(user_id)
        found = user_dn(user)
        if found is None:
            raise NotFound(f"user {user_id!r} is a local user (no directory to refresh from)")
        provider, dn = found
        cfg = self.config(provider)
        report = RefreshReport(provider)
        duser = None
        if cfg.enabled:
            duser = await self._call(lookup, self._pools_for(cfg).service, FLAVOURS[provider],
                                     dn)
        await self._apply(cfg, user, duser, report)
        return self.state.store.get_user(user_id)

    async def refresh_provider(self, provider: str) -> RefreshReport:
        """Refresh every store user of ``provider`` from the directory: one paged read of users
        and one of groups, then only the users whose state changed are written. With
        ``tokenGroupsEnabled`` (AD computes the groups per user), one lookup per user."""
        lock = self._refresh_lock.setdefault(provider, asyncio.Lock())
        async with lock:
            report = RefreshReport(provider, started_at=time.time())
            t0 = time.monotonic()
            try:
                await self._refresh(provider, report)
            except DirectoryError as e:
                report.error, report.stage = e.message, e.stage
                log.warning("directory refresh failed; users keep their last known groups",
                            provider=provider, stage=e.stage, error=e.message)
            except SecretError as e:
                report.error, report.stage = str(e), "config"
                log.error("directory refresh: provider configuration unreadable",
                          provider=provider, error=str(e))
            report.duration_s = time.monotonic() - t0
            self.reports[provider] = report
            if report.users and not report.error:
                log.info("directory refresh done", provider=provider, users=report.users,
                         changed=report.changed, disabled=report.disabled,
                         duration_s=round(report.duration_s, 3))
            self._last_refresh[provider] = time.monotonic()
            return report

    async def _refresh(self, provider: str, report: RefreshReport) -> None:
        users = [u for u in self.state.store.list_users()
                 if (found := user_dn(u)) is not None and found[0] == provider]
        report.users = len(users)
        if not users:
            return
        cfg = self.config(provider)
        flavour = FLAVOURS[provider]
        if not cfg.enabled:
            for u in users:
                await self._apply(cfg, u, None, report)
            return
        pools = self._pools_for(cfg)
        pools.nested.clear()  # logins after this refresh walk the nesting afresh
        if cfg.token_groups_enabled:
            for u in users:
                dn = user_dn(u)
                assert dn is not None
                await self._apply(cfg, u, await self._call(lookup, pools.service, flavour,
                                                           dn[1]), report)
            return
        snap = await self._call(pools.service.run, lambda c: snapshot(c, cfg, flavour))
        for u in users:
            dn = user_dn(u)
            assert dn is not None
            entry = snap.users.get(dn[1].lower())
            duser = None if entry is None else directory_user(
                cfg, flavour, entry, snap.groups_of(cfg, entry))
            await self._apply(cfg, u, duser, report)

    def _due(self, provider: str, now: float) -> bool:
        raw = self.state.store.get_setting(cfgmod.setting_name(provider))
        if not raw:
            return False
        try:
            interval = self.config(provider).refresh_interval_s
        except SecretError:
            return False
        last = self._last_refresh.get(provider)
        return last is None or now - last >= interval

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh each configured provider every ``refreshIntervalS``."""
        with contextlib.suppress(SecretError):
            await self.rewrap_secrets()
        while not stop.is_set():
            for provider in PROVIDERS:
                if stop.is_set():
                    break
                try:
                    if self._due(provider, time.monotonic()):
                        await self.refresh_provider(provider)
                except Exception as e:  # keep refreshing the others; logged, retried next tick
                    log.exception("directory refresh error", provider=provider, error=str(e))
                    self._last_refresh[provider] = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REFRESH_TICK_S)

    # --------------------------------------------------------------------- testing

    async def test(self, cfg: LdapConfig, login_name: str, password: str) -> list[TestStep]:
        return await self._call(test_connection, cfg, FLAVOURS[cfg.provider], login_name,
                                password)

    async def close(self) -> None:
        for pools in self._pools.values():
            pools.service.close()
            pools.auth.close()
        self._pools.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)


_SERVICES: dict[int, DirectoryService] = {}


def directory(state: ServerState) -> DirectoryService:
    key = id(state)
    svc = _SERVICES.get(key)
    if svc is None:
        svc = DirectoryService(state)
        _SERVICES[key] = svc
        weakref.finalize(state, _SERVICES.pop, key, None)
    return svc


async def directory_ctx(app: web.Application) -> AsyncIterator[None]:
    """aiohttp cleanup context: the periodic refresh runs as long as the app."""
    state = app[STATE]
    svc = directory(state)
    stop = asyncio.Event()
    task = asyncio.create_task(svc.run(stop), name="directory-refresh")
    yield
    stop.set()
    await task
    await svc.close()
    _SERVICES.pop(id(state), None)
