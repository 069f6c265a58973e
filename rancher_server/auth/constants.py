"""Limits and lifetimes of users' authentication, with units in the names."""

from rancher_server.policy import PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS

__all__ = ["PASSWORD_MAX_CHARS", "PASSWORD_MIN_CHARS"]  # and the constants below

# Token lifetimes. A login token (the UI/CLI session) lives like Rancher's default session TTL;
# an API token lives as long as asked, up to the maximum; kubeconfig tokens get their own default.
LOGIN_TOKEN_TTL_S = 16 * 3600
API_TOKEN_DEFAULT_TTL_S = 30 * 24 * 3600
API_TOKEN_MAX_TTL_S = 90 * 24 * 3600
KUBECONFIG_TOKEN_TTL_S = 30 * 24 * 3600
MAX_BEARER_BYTES = 512  # "Bearer token-xxxxx:<52-char secret>" is ~70 bytes

# Failed-login throttling (in memory, per server process): the source that fails is slowed down,
# then refused; the account is never locked for everyone. Keys: the (source address, username)
# pair and the source address. After FREE_FAILURES failures within FAILURE_WINDOW_S, each further
# failure locks the key for BASE * 2^(failures - FREE), capped (429 with Retry-After). Before
# that, from SLOWDOWN_AFTER failures on, each failed answer of that source waits
# SLOWDOWN_STEP_S more, at most SLOWDOWN_MAX_S (the wait holds no hash slot).
LOGIN_USER_FREE_FAILURES = 5  # per (source address, username)
LOGIN_ADDRESS_FREE_FAILURES = 20  # per source address: one may try several usernames (a NAT)
LOGIN_USER_SLOWDOWN_AFTER_FAILURES = 3
LOGIN_ADDRESS_SLOWDOWN_AFTER_FAILURES = 10
LOGIN_SLOWDOWN_STEP_S = 0.25
LOGIN_SLOWDOWN_MAX_S = 2.0
# Per account, over all sources: past this many failures within the window (a distributed guess),
# a source that fails for that account is locked out at its first failure (LOCKOUT_MAX_S). A
# source with no failure still gets its attempt: the right password from elsewhere still works.
LOGIN_ACCOUNT_CEILING_FAILURES = 1000
LOGIN_LOCKOUT_BASE_S = 1.0
LOGIN_LOCKOUT_MAX_S = 15 * 60.0
LOGIN_FAILURE_WINDOW_S = 15 * 60.0  # failures older than this are forgotten
LOGIN_THROTTLE_MAX_KEYS = 100_000  # bounded memory under a spray of usernames/addresses
LOGIN_MAX_CONCURRENT_HASHES = 2  # scrypt needs 32 MiB and a core each; queue the rest

# Audit log writer: entries are batched and written in one transaction per interval.
AUDIT_FLUSH_INTERVAL_S = 0.2
AUDIT_MAX_PENDING_ENTRIES = 100_000  # beyond this, entries are counted as dropped (and logged)
AUDIT_RETENTION_S = 30 * 24 * 3600
HOUSEKEEPING_INTERVAL_S = 3600.0  # purge expired tokens and old audit entries

# Input bounds.
USERNAME_MAX_CHARS = 64
DISPLAY_NAME_MAX_CHARS = 128
GROUP_NAME_MAX_CHARS = 128
MAX_GROUPS_PER_USER = 64
DESCRIPTION_MAX_CHARS = 256
