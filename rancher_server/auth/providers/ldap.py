"""What OpenLDAP and Active Directory share, on ldap3 (synchronous: the service runs it in its own
thread pool): connections (LDAPS, StartTLS or plain, a configured CA, failover over the
configured servers, a small pool of bound connections), the user lookup and password check, group
membership (member / uniqueMember / memberUid searches, memberOf, nested groups walked to a
bounded depth), a whole-directory snapshot for the periodic refresh, and the connection test that
says which step failed.

Nothing here touches the store or the event loop."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rancher_server.auth.providers.config import TLS_LDAPS, TLS_STARTTLS, LdapConfig
from rancher_server.auth.providers.constants import (
    LDAP_CONNECT_TIMEOUT_S,
    LDAP_FILTER_CHUNK,
    LDAP_PAGE_SIZE,
    LDAP_POOL_MAX_CONNECTIONS,
    LDAP_RECEIVE_TIMEOUT_S,
    LOGIN_HINT_MAX_ENTRIES,
    LOGIN_SEARCH_SIZE_LIMIT,
    MAX_DIRECTORY_GROUPS_PER_USER,
    MAX_NESTED_GROUP_DEPTH,
    NESTED_GROUP_CACHE_MAX_ENTRIES,
    NESTED_GROUP_CACHE_S,
)
from rancher_server.auth.providers.ldap3lib import (
    BASE,
    NONE,
    SIMPLE,
    SUBTREE,
    Connection,
    Server,
    Tls,
    escape_filter_chars,
    to_dn,
)
from rancher_server.auth.providers.ldap3lib import exceptions as lexc
from rancher_server.auth.providers.principals import group_principal, header_safe, user_principal

# The steps of talking to a directory, as the connection test names them.
STAGE_DNS = "dns"
STAGE_CONNECT = "connect"
STAGE_TLS = "tls"
STAGE_BIND = "bind"
STAGE_SEARCH = "search"
STAGE_GROUPS = "group lookup"
STAGE_LOGIN = "login"
RESULT_SUCCESS = 0
RESULT_SIZE_LIMIT_EXCEEDED = 4
RESULT_NO_SUCH_OBJECT = 32
RESULT_INVALID_CREDENTIALS = 49
T = TypeVar("T")


class DirectoryError(Exception):
    """Talking to the directory failed at ``stage`` (the message never holds a password)."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


class DirectoryUnavailable(DirectoryError):
    """The directory cannot be reached (name, connection, TLS or a timeout)."""


class LoginRefused(Exception):
    """The directory says no: unknown or ambiguous user, wrong password, disabled account.
    ``reason`` is for the log and the audit entry, never for the client."""

    def __init__(self, reason: str, dn: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.dn = dn


@dataclass(frozen=True)
class Entry:
    dn: str
    attrs: dict[str, list[str]]  # lower-cased attribute names
    raw: dict[str, list[bytes]] = field(default_factory=dict)

    def first(self, name: str) -> str:
        values = self.attrs.get(name.lower()) or []
        return values[0] if values else ""

    def values(self, name: str) -> list[str]:
        return self.attrs.get(name.lower()) or []


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    principal_id: str
    display_name: str
    login_name: str
    groups: tuple[str, ...]  # group principal ids, sorted
    enabled: bool


class Flavour:
    """Generic LDAP (OpenLDAP). Active Directory overrides the hooks."""

    name = "openldap"

    def login_filter(self, cfg: LdapConfig, login_name: str) -> str:
        return f"({cfg.user_login_attribute}={escape_filter_chars(login_name)})"

    def user_attributes(self, cfg: LdapConfig) -> tuple[str, ...]:
        return ()

    def enabled(self, entry: Entry) -> bool:
        return True

    def transitive_groups(self, conn: Connection, cfg: LdapConfig, entry: Entry) -> (
            list[Entry] | None):
        """All groups of the user at once, when the directory computes them (AD tokenGroups);
        None: walk the membership instead."""
        return None


def _lower_keys(d: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for k, v in (d or {}).items():
        vals = v if isinstance(v, list) else [v]
        out[str(k).lower()] = [x for x in vals if x is not None and x != []]
    return out


def _entries(response: Iterable[dict[str, Any]] | None) -> list[Entry]:
    out = []
    for item in response or ():
        if item.get("type") != "searchResEntry":
            continue
        attrs = {k: [x if isinstance(x, str) else x.decode("utf-8", "replace") for x in v]
                 for k, v in _lower_keys(item.get("attributes")).items()}
        out.append(Entry(str(item["dn"]), attrs, _lower_keys(item.get("raw_attributes"))))
    return out


def _is_tls_problem(text: str) -> bool:
    low = text.lower()
    return any(w in low for w in ("ssl", "tls", "certificate", "handshake", "wrap"))


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:500]


# ----------------------------------------------------------------------------------- connections

def make_server(cfg: LdapConfig, host: str) -> Server:
    tls = None
    if cfg.tls in (TLS_LDAPS, TLS_STARTTLS):
        tls = Tls(validate=ssl.CERT_REQUIRED, ca_certs_data=cfg.certificate or None,
                  version=ssl.PROTOCOL_TLS_CLIENT)
    return Server(host, port=cfg.effective_port, use_ssl=cfg.tls == TLS_LDAPS, tls=tls,
                  get_info=NONE, connect_timeout=LDAP_CONNECT_TIMEOUT_S)


def open_connection(cfg: LdapConfig, host: str, dn: str | None, password: str | None) -> (
        Connection):
    """An open (and, with ``dn``, bound) connection to ``host``; DirectoryError naming the step
    that failed."""
    conn = Connection(
        make_server(cfg, host), user=dn, password=password, authentication=SIMPLE if dn else None,
        auto_bind="NONE", receive_timeout=LDAP_RECEIVE_TIMEOUT_S, raise_exceptions=False,
        read_only=True, auto_referrals=False, auto_escape=False, check_names=False,
    )
    try:
        conn.open(read_server_info=False)
    except lexc.LDAPException as e:
        stage = STAGE_TLS if cfg.tls == TLS_LDAPS and _is_tls_problem(str(e)) else STAGE_CONNECT
        raise DirectoryUnavailable(stage, f"{host}:{cfg.effective_port}: {_describe(e)}") from e
    if cfg.tls == TLS_STARTTLS:
        try:
            ok = conn.start_tls(read_server_info=False)
        except (lexc.LDAPException, ssl.SSLError, OSError) as e:
            _close(conn)
            raise DirectoryUnavailable(STAGE_TLS, f"{host}: StartTLS: {_describe(e)}") from e
        if not ok:
            _close(conn)
            raise DirectoryUnavailable(STAGE_TLS, f"{host}: server refused StartTLS: "
                                                  f"{conn.result.get('description')}")
    if dn:
        try:
            bound = conn.bind()
        except lexc.LDAPException as e:
            _close(conn)
            raise DirectoryUnavailable(STAGE_BIND, f"{host}: {_describe(e)}") from e
        if not bound:
            desc = conn.result.get("description")
            _close(conn)
            raise DirectoryError(STAGE_BIND, f"the directory refused the service account's bind "
                                             f"({desc})")
    return conn


def _close(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.unbind()


def open_any(cfg: LdapConfig, dn: str | None, password: str | None) -> Connection:
    """The first configured server that answers (failover in the configured order)."""
    last: DirectoryError | None = None
    for host in cfg.servers:
        try:
            return open_connection(cfg, host, dn, password)
        except DirectoryUnavailable as e:
            last = e
    if last is None:
        raise DirectoryUnavailable(STAGE_CONNECT, "no server configured")
    raise last


RETRYABLE = (lexc.LDAPCommunicationError, lexc.LDAPSessionTerminatedByServerError)


class ConnectionPool:
    """Bound connections to one provider's directory, for one purpose ("service": searches as the
    service account; "auth": connections rebound as the user to check a password). Each
    connection is used by one thread at a time."""

    def __init__(self, cfg: LdapConfig, *, service: bool) -> None:
        self.cfg = cfg
        self._service = service
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _new(self) -> Connection:
        if self._service:
            return open_any(self.cfg, self.cfg.service_account_dn or None,
                            self.cfg.service_account_password or None)
        return open_any(self.cfg, None, None)

    def _acquire(self) -> Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return self._new()

    def _release(self, conn: Connection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < LDAP_POOL_MAX_CONNECTIONS:
                self._idle.append(conn)
                return
        _close(conn)

    def run(self, fn: Callable[[Connection], T]) -> T:
        """``fn`` on a pooled connection; a connection the server dropped (restart, idle timeout)
        is replaced once."""
        for attempt in (1, 2):
            conn = self._acquire()
            try:
                result = fn(conn)
            except RETRYABLE as e:
                _close(conn)
                if attempt == 2:
                    raise DirectoryUnavailable(STAGE_CONNECT, _describe(e)) from e
                continue
            except BaseException:
                _close(conn)
                raise
            self._release(conn)
            return result
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)


# ------------------------------------------------------------------------------------ searching

def search(conn: Connection, base: str, filt: str, attrs: list[str], *, scope: str = SUBTREE,
           size_limit: int = 0, stage: str = STAGE_SEARCH) -> list[Entry]:
    ok = conn.search(base, filt, search_scope=scope, attributes=attrs or ["1.1"],
                     size_limit=size_limit)
    code = conn.result.get("result", RESULT_SUCCESS)
    if not ok and code not in (RESULT_SUCCESS, RESULT_SIZE_LIMIT_EXCEEDED, RESULT_NO_SUCH_OBJECT):
        raise DirectoryError(stage, f"search under {base!r} failed: "
                                    f"{conn.result.get('description')} "
                                    f"{conn.result.get('message') or ''}".strip())
    return _entries(conn.response)


def _and(*parts: str) -> str:
    parts = tuple(p if p.startswith("(") else f"({p})" for p in parts if p)
    return parts[0] if len(parts) == 1 else "(&" + "".join(parts) + ")"


def user_filter(cfg: LdapConfig, flavour: Flavour, login_name: str) -> str:
    return _and(f"objectClass={escape_filter_chars(cfg.user_object_class)}",
                cfg.user_search_filter, flavour.login_filter(cfg, login_name))


def find_user(conn: Connection, cfg: LdapConfig, flavour: Flavour, login_name: str) -> Entry:
    attrs = sorted({*_user_attrs(cfg), *flavour.user_attributes(cfg)})
    found = search(conn, cfg.user_search_base, user_filter(cfg, flavour, login_name), attrs,
                   size_limit=LOGIN_SEARCH_SIZE_LIMIT)
    if not found:
        raise LoginRefused("no such user")
    if len(found) > 1:
        raise LoginRefused("login name matches several entries")
    return found[0]


def read_user(conn: Connection, cfg: LdapConfig, flavour: Flavour, dn: str) -> Entry | None:
    """The user's entry by DN (None: deleted, or no longer a user under the search base)."""
    attrs = sorted({*_user_attrs(cfg), *flavour.user_attributes(cfg)})
    found = search(conn, dn, _and(f"objectClass={escape_filter_chars(cfg.user_object_class)}",
                                  cfg.user_search_filter), attrs, scope=BASE)
    if not found or not _under(found[0].dn, cfg.user_search_base):
        return None
    return found[0]


def _under(dn: str, base: str) -> bool:
    d, b = dn.lower().replace(" ", ""), base.lower().replace(" ", "")
    return not b or d == b or d.endswith("," + b)


def _user_attrs(cfg: LdapConfig) -> list[str]:
    attrs = {cfg.user_login_attribute, cfg.user_name_attribute}
    if cfg.user_member_attribute:
        attrs.add(cfg.user_member_attribute)
    if not cfg.member_value_is_dn:
        attrs.add(cfg.group_member_user_attribute)
    return sorted(a for a in attrs if a)


def check_password(pool: ConnectionPool, dn: str, password: str) -> None:
    """LoginRefused unless ``dn`` binds with ``password``. An empty password is refused here:
    LDAP treats it as an unauthenticated bind that "succeeds" (RFC 4513, 5.1.2)."""
    if not password:
        raise LoginRefused("empty password", dn)

    def bind(conn: Connection) -> bool:
        # A pooled connection, rebound: no TLS handshake per login. It is only ever used for
        # binds, and after a refused bind the server holds it anonymous (RFC 4511, 4.2.1).
        try:
            return bool(conn.rebind(user=dn, password=password, authentication=SIMPLE))
        finally:
            conn.password = None  # the user's password is not kept in an idle connection

    try:
        ok = pool.run(bind)
    except lexc.LDAPBindError as e:  # rebind raises on invalid credentials
        raise LoginRefused("wrong password", dn) from e
    if not ok:
        raise LoginRefused("wrong password", dn)


def group_base(cfg: LdapConfig) -> str:
    return cfg.group_search_base or cfg.user_search_base


def _group_filter(cfg: LdapConfig, member_filter: str) -> str:
    return _and(f"objectClass={escape_filter_chars(cfg.group_object_class)}",
                cfg.group_search_filter, member_filter)


def _or(attr: str, values: list[str]) -> str:
    parts = [f"({attr}={escape_filter_chars(v)})" for v in values]
    return parts[0] if len(parts) == 1 else "(|" + "".join(parts) + ")"


def user_group_dns(conn: Connection, cfg: LdapConfig, flavour: Flavour, entry: Entry,
                   nested: NestedGroupCache | None = None,
                   direct: list[Entry] | None = None) -> list[str]:
    """The DNs of the user's groups: memberOf, groups naming the user in the mapping attribute,
    the directory's own transitive list (AD tokenGroups) and, if nesting is on, the groups of
    those groups up to MAX_NESTED_GROUP_DEPTH (from ``nested`` when it has them). ``direct``:
    the groups naming the user, already read with the user's entry (one search less)."""
    found: dict[str, str] = {}  # lower-cased DN -> DN as the directory spells it
    transitive = flavour.transitive_groups(conn, cfg, entry)
    if transitive is not None:
        for g in transitive:
            found.setdefault(g.dn.lower(), g.dn)
        return sorted(found.values(), key=str.lower)
    if cfg.user_member_attribute:
        for dn in entry.values(cfg.user_member_attribute):
            found.setdefault(dn.lower(), dn)
    value = entry.dn if cfg.member_value_is_dn else entry.first(cfg.group_member_user_attribute)
    base = group_base(cfg)
    if direct is None and value and base:
        direct = search(conn, base, _group_filter(
            cfg, _or(cfg.group_member_mapping_attribute, [value])), [], stage=STAGE_GROUPS)
    for g in direct or ():
        found[g.dn.lower()] = g.dn
    if cfg.nested_group_membership_enabled and base:
        key = tuple(sorted(found))
        cached = nested.get(key) if nested is not None else None
        if cached is None:
            cached = _nested_groups(conn, cfg, base, found)
            if nested is not None:
                nested.put(key, cached)
        for dn in cached:
            found.setdefault(dn.lower(), dn)
    return sorted(found.values(), key=str.lower)


def _nested_groups(conn: Connection, cfg: LdapConfig, base: str, direct: dict[str, str]) -> (
        tuple[str, ...]):
    """The groups that hold ``direct`` (lower-cased DN -> DN) through nesting, up to
    MAX_NESTED_GROUP_DEPTH levels (cycles stop): one search per level and chunk."""
    found = dict(direct)
    frontier = list(direct.values())
    for _ in range(MAX_NESTED_GROUP_DEPTH):
        nxt: list[str] = []
        for i in range(0, len(frontier), LDAP_FILTER_CHUNK):
            chunk = frontier[i:i + LDAP_FILTER_CHUNK]
            for g in search(conn, base, _group_filter(cfg, _or(
                    cfg.group_member_mapping_attribute, chunk)), [], stage=STAGE_GROUPS):
                if g.dn.lower() not in found:
                    found[g.dn.lower()] = g.dn
                    nxt.append(g.dn)
        if not nxt:
            break
        frontier = nxt
    return tuple(dn for key, dn in found.items() if key not in direct)


class NestedGroupCache:
    """The groups a set of direct groups is nested in, kept NESTED_GROUP_CACHE_S between logins:
    nesting (a team inside a division) changes far less often than membership, and walking it
    costs a search per level on every login. Only the nesting is cached: a user's own entry, its
    password and its direct groups are read from the directory at every login. The periodic
    refresh never uses it (it reads the whole directory) and clears it, so a login after a
    refresh sees no nesting older than that refresh; at worst a login within
    NESTED_GROUP_CACHE_S of a change in nesting gets the old nesting until the next refresh.
    Keyed by the sorted, lower-cased direct group DNs; thread-safe."""

    def __init__(self, ttl_s: float = NESTED_GROUP_CACHE_S,
                 max_entries: int = NESTED_GROUP_CACHE_MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, ...], tuple[float, tuple[str, ...]]] = {}

    def get(self, direct: tuple[str, ...]) -> tuple[str, ...] | None:
        with self._lock:
            hit = self._entries.get(direct)
            if hit is None:
                return None
            if self._clock() >= hit[0]:
                del self._entries[direct]
                return None
            return hit[1]

    def put(self, direct: tuple[str, ...], nested: tuple[str, ...]) -> None:
        with self._lock:
            if len(self._entries) >= self._max:
                self._entries.clear()  # bounded; a full cache is rebuilt by the next logins
            self._entries[direct] = (self._clock() + self._ttl_s, nested)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


class LoginHints:
    """The DN each login name found at its last successful login (bounded, least recently used
    dropped; thread-safe). Only a hint: it lets a returning user's login read its entry and the
    groups naming that DN in one search (:func:`find_user_with_groups`), and that search itself
    says whether the hint still holds (else the login takes the three-step path). Nothing is
    decided from it: the entry, the password, the account state and the membership are all
    read from the directory at every login."""

    def __init__(self, max_entries: int = LOGIN_HINT_MAX_ENTRIES) -> None:
        self._max = max_entries
        self._lock = threading.Lock()
        self._dns: OrderedDict[str, str] = OrderedDict()

    def get(self, login_name: str) -> str | None:
        with self._lock:
            dn = self._dns.get(login_name)
            if dn is not None:
                self._dns.move_to_end(login_name)
            return dn

    def put(self, login_name: str, dn: str) -> None:
        with self._lock:
            self._dns[login_name] = dn
            self._dns.move_to_end(login_name)
            while len(self._dns) > self._max:
                self._dns.popitem(last=False)

    def drop(self, login_name: str) -> None:
        with self._lock:
            self._dns.pop(login_name, None)

    def clear(self) -> None:
        with self._lock:
            self._dns.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._dns)


def _dn_parts(dn: str) -> list[str]:
    return [p.strip().lower() for p in to_dn(dn)] if dn else []


def common_base(a: str, b: str) -> str:
    """The deepest DN that both ``a`` and ``b`` are at or under ("" if none: two naming
    contexts)."""
    pa, pb = _dn_parts(a), _dn_parts(b)
    common: list[str] = []
    for x, y in zip(reversed(pa), reversed(pb), strict=False):
        if x != y:
            break
        common.append(x)
    return ",".join(reversed(common))


def _same_dn(a: str, b: str) -> bool:
    return _dn_parts(a) == _dn_parts(b)


def combined_lookup_possible(cfg: LdapConfig) -> bool:
    """Whether a login can read the user and the groups naming its DN in one search: groups
    list members by DN, the directory does not compute the groups itself (tokenGroups), and the
    user and group search bases share a subtree."""
    return (cfg.member_value_is_dn and not cfg.token_groups_enabled and bool(group_base(cfg))
            and bool(common_base(cfg.user_search_base, group_base(cfg))))


def find_user_with_groups(conn: Connection, cfg: LdapConfig, flavour: Flavour, login_name: str,
                          hinted_dn: str) -> tuple[Entry, list[Entry]] | None:
    """One search, under the subtree both search bases share, for the user search's filter OR
    the direct-group search's filter with ``hinted_dn`` as the member: the user's entry and its
    groups, when the user search would find exactly that one entry. None when the answer is not
    exactly that (no entry or another DN for the login name, several, an entry that cannot be
    told to be a user or a group): the caller then takes the three-step path, which decides as
    it always did (an unknown or ambiguous name is refused there)."""
    gbase = group_base(cfg)
    user_part = user_filter(cfg, flavour, login_name)
    group_part = _group_filter(cfg, _or(cfg.group_member_mapping_attribute, [hinted_dn]))
    attrs = sorted({*_user_attrs(cfg), *flavour.user_attributes(cfg), "objectClass"})
    found = search(conn, common_base(cfg.user_search_base, gbase), f"(|{user_part}{group_part})",
                   attrs)
    user_class, group_class = cfg.user_object_class.lower(), cfg.group_object_class.lower()
    user: Entry | None = None
    groups: list[Entry] = []
    for e in found:
        classes = {c.lower() for c in e.values("objectClass")}
        is_user, is_group = user_class in classes, group_class in classes
        if is_user == is_group:
            return None  # both or neither as far as we can see: let the separate searches say
        if is_user:
            if user is not None or not _same_dn(e.dn, hinted_dn) or not _under(
                    e.dn, cfg.user_search_base):
                return None  # another entry has this login name (or the hint is stale)
            user = e
        elif _under(e.dn, gbase):
            if any(v.lower() == login_name.lower() for v in e.values(
                    cfg.user_login_attribute)):
                return None  # a group that may have matched as the user: be sure instead
            groups.append(e)
        # a group outside the group search base: the direct-group search would not see it
    return None if user is None else (user, groups)


def group_principals(provider: str, dns: Iterable[str]) -> tuple[str, ...]:
    out = sorted({group_principal(provider, dn) for dn in dns}, key=str.lower)
    out = [p for p in out if header_safe(p)]
    return tuple(out[:MAX_DIRECTORY_GROUPS_PER_USER])


def directory_user(cfg: LdapConfig, flavour: Flavour, entry: Entry, group_dns: Iterable[str]) -> (
        DirectoryUser):
    return DirectoryUser(
        dn=entry.dn, principal_id=user_principal(cfg.provider, entry.dn),
        display_name=entry.first(cfg.user_name_attribute) or entry.first(
            cfg.user_login_attribute),
        login_name=entry.first(cfg.user_login_attribute),
        groups=group_principals(cfg.provider, group_dns), enabled=flavour.enabled(entry),
    )


def authenticate(service: ConnectionPool, auth: ConnectionPool, flavour: Flavour,
                 login_name: str, password: str,
                 nested: NestedGroupCache | None = None,
                 hints: LoginHints | None = None) -> DirectoryUser:
    """The directory user for these credentials; LoginRefused or DirectoryError otherwise.
    Three round trips when ``nested`` knows the user's nesting: the user search, the bind as
    the user, the search of the groups that name the user. Two when ``hints`` knows the DN the
    login name found last time and the directory still says so: one search for the user and its
    groups (:func:`find_user_with_groups`), then the bind."""
    cfg = service.cfg
    entry: Entry | None = None
    direct: list[Entry] | None = None
    hinted = hints.get(login_name) if hints is not None else None
    if hinted is not None and combined_lookup_possible(cfg):
        both = service.run(lambda c: find_user_with_groups(c, cfg, flavour, login_name, hinted))
        if both is not None:
            entry, direct = both
        elif hints is not None:
            hints.drop(login_name)
    if entry is None:
        entry = service.run(lambda c: find_user(c, cfg, flavour, login_name))
    found = entry
    try:
        check_password(auth, found.dn, password)
    except LoginRefused as e:
        if flavour.enabled(found):
            raise
        # AD refuses a disabled account's bind (data 533) as it refuses a wrong password: the
        # reason (log, connection test) says disabled, the client sees the same 401 either way.
        raise LoginRefused("account disabled in the directory", found.dn) from e
    if not flavour.enabled(found):
        raise LoginRefused("account disabled in the directory", found.dn)
    dns = service.run(lambda c: user_group_dns(c, cfg, flavour, found, nested, direct))
    if hints is not None and combined_lookup_possible(cfg):
        hints.put(login_name, found.dn)
    return directory_user(cfg, flavour, found, dns)


def lookup(service: ConnectionPool, flavour: Flavour, dn: str) -> DirectoryUser | None:
    """The user's current state by DN (None: no longer in the directory)."""
    cfg = service.cfg

    def one(conn: Connection) -> DirectoryUser | None:
        entry = read_user(conn, cfg, flavour, dn)
        if entry is None:
            return None
        return directory_user(cfg, flavour, entry, user_group_dns(conn, cfg, flavour, entry))

    return service.run(one)


# -------------------------------------------------------------------------- whole-directory view

@dataclass
class Snapshot:
    """Every user and group under the search bases, read with paged searches: the periodic
    refresh computes each user's groups from it in memory (two searches instead of several per
    user)."""

    users: dict[str, Entry]  # lower-cased DN -> entry
    groups: dict[str, Entry]
    member_index: dict[str, set[str]]  # lower-cased member value -> lower-cased group DNs

    def groups_of(self, cfg: LdapConfig, entry: Entry) -> list[str]:
        found: set[str] = set()
        if cfg.user_member_attribute:
            found.update(dn.lower() for dn in entry.values(cfg.user_member_attribute))
        value = entry.dn if cfg.member_value_is_dn else entry.first(
            cfg.group_member_user_attribute)
        if value:
            found |= self.member_index.get(value.lower(), set())
        if cfg.nested_group_membership_enabled:
            frontier = set(found)
            for _ in range(MAX_NESTED_GROUP_DEPTH):
                nxt = set().union(*(self.member_index.get(g, set()) for g in frontier)) - found
                if not nxt:
                    break
                found |= nxt
                frontier = nxt
        return sorted((self.groups[g].dn if g in self.groups else g for g in found),
                      key=str.lower)


def snapshot(conn: Connection, cfg: LdapConfig, flavour: Flavour) -> Snapshot:
    users: dict[str, Entry] = {}
    attrs = sorted({*_user_attrs(cfg), *flavour.user_attributes(cfg)})
    for e in _paged(conn, cfg.user_search_base, _and(
            f"objectClass={escape_filter_chars(cfg.user_object_class)}",
            cfg.user_search_filter), attrs, STAGE_SEARCH):
        users[e.dn.lower()] = e
    groups: dict[str, Entry] = {}
    index: dict[str, set[str]] = {}
    base = group_base(cfg)
    if base:
        for g in _paged(conn, base, _group_filter(cfg, ""), [cfg.group_member_mapping_attribute],
                        STAGE_GROUPS):
            key = g.dn.lower()
            groups[key] = g
            for member in g.values(cfg.group_member_mapping_attribute):
                index.setdefault(member.lower(), set()).add(key)
    return Snapshot(users, groups, index)


def _paged(conn: Connection, base: str, filt: str, attrs: list[str], stage: str) -> (
        Iterator[Entry]):
    cookie: Any = None
    while True:
        ok = conn.search(base, filt, search_scope=SUBTREE, attributes=attrs or ["1.1"],
                         paged_size=LDAP_PAGE_SIZE, paged_cookie=cookie)
        code = conn.result.get("result", RESULT_SUCCESS)
        if not ok and code not in (RESULT_SUCCESS, RESULT_NO_SUCH_OBJECT):
            raise DirectoryError(stage, f"search under {base!r} failed: "
                                        f"{conn.result.get('description')}")
        yield from _entries(conn.response)
        controls = conn.result.get("controls") or {}
        cookie = controls.get("1.2.840.113556.1.4.319", {}).get("value", {}).get("cookie")
        if not cookie:
            return


# --------------------------------------------------------------------------- connection test

@dataclass
class TestStep:
    stage: str
    ok: bool
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "ok": self.ok, "message": self.message}


def test_connection(cfg: LdapConfig, flavour: Flavour, login_name: str = "",
                    password: str = "") -> list[TestStep]:
    """Every step in order until one fails: for each server dns, connect and tls; then bind,
    user search base, group lookup and, with a login name and password, a login."""
    steps: list[TestStep] = []

    def fail(stage: str, message: str) -> list[TestStep]:
        steps.append(TestStep(stage, False, message))
        return steps

    if not cfg.servers:
        return fail(STAGE_DNS, "no server configured")
    for host in cfg.servers:
        try:
            socket.getaddrinfo(host, cfg.effective_port, type=socket.SOCK_STREAM)
        except OSError as e:
            return fail(STAGE_DNS, f"{host}: cannot resolve: {e}")
        steps.append(TestStep(STAGE_DNS, True, f"{host} resolves"))
        try:
            with socket.create_connection((host, cfg.effective_port), LDAP_CONNECT_TIMEOUT_S):
                pass
        except OSError as e:
            return fail(STAGE_CONNECT, f"{host}:{cfg.effective_port}: {e}")
        steps.append(TestStep(STAGE_CONNECT, True, f"{host}:{cfg.effective_port} accepts"))
        try:
            _close(open_connection(cfg, host, None, None))
        except DirectoryError as e:
            return fail(e.stage, e.message)
        steps.append(TestStep(STAGE_TLS, True, f"{host}: {cfg.tls}" + (
            " (certificate verified)" if cfg.tls != "none" else " (no TLS: passwords travel in "
                                                                  "clear)")))
    try:
        conn = open_connection(cfg, cfg.servers[0], cfg.service_account_dn or None,
                               cfg.service_account_password or None)
    except DirectoryError as e:
        return fail(e.stage, e.message)
    try:
        steps.append(TestStep(STAGE_BIND, True, "service account bound" if cfg.service_account_dn
                              else "anonymous"))
        try:
            if not search(conn, cfg.user_search_base, "(objectClass=*)", [], scope=BASE):
                return fail(STAGE_SEARCH, f"user search base {cfg.user_search_base!r} not "
                                          f"found (or not readable by the service account)")
            steps.append(TestStep(STAGE_SEARCH, True, "user search base readable"))
            base = group_base(cfg)
            groups = search(conn, base, _group_filter(cfg, ""), [], size_limit=1,
                            stage=STAGE_GROUPS)
            steps.append(TestStep(STAGE_GROUPS, True, f"groups under {base!r}: " + (
                "found" if groups else "none found (check groupSearchBase and "
                                       "groupObjectClass)")))
        except DirectoryError as e:
            return fail(e.stage, e.message)
        if login_name:
            service = ConnectionPool(cfg, service=True)
            auth = ConnectionPool(cfg, service=False)
            try:
                user = authenticate(service, auth, flavour, login_name, password)
                steps.append(TestStep(STAGE_LOGIN, True, f"{user.principal_id} with "
                                                         f"{len(user.groups)} groups"))
            except LoginRefused as e:
                return fail(STAGE_LOGIN, e.reason)
            except DirectoryError as e:
                return fail(e.stage, e.message)
            finally:
                service.close()
                auth.close()
    finally:
        _close(conn)
    return steps
