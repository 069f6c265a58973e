"""Limits, timeouts and names of the directory providers, with units in the names."""

from __future__ import annotations

OPENLDAP = "openldap"
ACTIVE_DIRECTORY = "activedirectory"
PROVIDERS = (OPENLDAP, ACTIVE_DIRECTORY)  # the LDAP ones (DirectoryService)
GITHUB = "github"
OIDC = "oidc"
OAUTH_PROVIDERS = (GITHUB, OIDC)  # the browser-redirect ones (oauthservice)
ALL_PROVIDERS = PROVIDERS + OAUTH_PROVIDERS

# Where a provider's configuration lives in the store (settings table), JSON.
SETTING_PREFIX = "authconfig."

# LDAP I/O. Every call has a deadline: a directory that stops answering never holds a login (or
# the refresh task) longer than this.
LDAP_CONNECT_TIMEOUT_S = 5  # int: ldap3 packs it into a socket option
LDAP_RECEIVE_TIMEOUT_S = 10
LDAP_DEFAULT_PORT = 389
LDAPS_DEFAULT_PORT = 636
# Threads that run ldap3 (synchronous) calls. A dedicated pool, not asyncio's default executor: a
# stalled directory must not starve the store's and the audit log's to_thread calls.
LDAP_MAX_THREADS = 16
# Open, bound connections kept per provider and purpose: one per thread, so that a burst of logins
# reuses them all (with fewer, every burst closed and reopened the rest: a TLS handshake each).
LDAP_POOL_MAX_CONNECTIONS = LDAP_MAX_THREADS
LDAP_PAGE_SIZE = 500  # paged search (RFC 2696) page size for the periodic refresh
LDAP_FILTER_CHUNK = 50  # values per OR filter when walking nested groups
MAX_NESTED_GROUP_DEPTH = 5  # a group of a group ... at most this deep (and cycles stop)
# How long a login reuses the nesting it found (the groups a set of groups is inside) instead of
# walking it again; the periodic refresh clears it. Membership itself is read at every login.
NESTED_GROUP_CACHE_S = 30.0
NESTED_GROUP_CACHE_MAX_ENTRIES = 10_000
# Login names whose DN a login remembers as a hint (one search for a returning user's entry and
# groups instead of two); ~200 bytes each. The directory confirms the hint at every login.
LOGIN_HINT_MAX_ENTRIES = 100_000
MAX_DIRECTORY_GROUPS_PER_USER = 256  # beyond this a user's groups are cut (and it is logged)
LOGIN_SEARCH_SIZE_LIMIT = 2  # one entry expected; two means the login name is ambiguous

# Periodic group refresh.
DEFAULT_REFRESH_INTERVAL_S = 300
MIN_REFRESH_INTERVAL_S = 1
MAX_REFRESH_INTERVAL_S = 24 * 3600
REFRESH_TICK_S = 1.0  # how often the refresh task looks at what is due

# Active Directory: userAccountControl's ACCOUNTDISABLE bit.
AD_ACCOUNT_DISABLED_BIT = 0x2

# A directory user's store record has this as its password hash: never an scrypt encoding, so the
# local login can never accept any password for it.
DIRECTORY_PASSWORD_HASH = "!directory"

# Secrets at rest.
SECRETS_KEY_ENV = "RANCHER_SECRETS_KEY"
SECRETS_OLD_KEYS_ENV = "RANCHER_SECRETS_OLD_KEYS"
SECRETS_KEY_FILE = "secrets.key"
SECRETS_KEY_BYTES = 32  # AES-256-GCM
SECRETS_NONCE_BYTES = 12
SECRETS_KEY_ID_CHARS = 8

# Input bounds of the configuration API.
MAX_SERVERS = 8
MAX_ALLOWED_PRINCIPALS = 1000
MAX_CERTIFICATE_CHARS = 64 * 1024
MAX_FIELD_CHARS = 1024
MAX_LOGIN_NAME_CHARS = 256
MAX_PASSWORD_CHARS = 1024
