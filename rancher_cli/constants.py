"""Exit codes scripts can rely on, timeouts and file locations (one place)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_SERVER_ERROR = 1  # the server answered with an error (not found, refused, invalid...)
EXIT_USAGE = 2  # the command line is wrong (click's own code for usage errors)
EXIT_AUTH = 3  # not logged in, or the server refused the credentials (wrong, expired, revoked)
EXIT_UNREACHABLE = 4  # the server cannot be reached (refused, timed out, unknown host)
EXIT_UNTRUSTED = 5  # the server's CA does not match the pinned checksum or CA file
EXIT_TIMEOUT = 6  # --wait gave up before the cluster became active

REQUEST_TIMEOUT_S = 15.0
WAIT_TIMEOUT_S = 300.0  # clusters create --wait
WAIT_POLL_INTERVAL_S = 1.0
MAX_ERROR_MESSAGE_CHARS = 300

CONFIG_DIR_NAME = "rancher-py"
CONFIG_FILE_NAME = "cli.json"
KUBECONFIG_CACHE_DIR_NAME = "kubeconfigs"
FILE_MODE_PRIVATE = 0o600
DIR_MODE_PRIVATE = 0o700

LOGIN_PATH = "/v3-public/localProviders/local?action=login"
CACERTS_PATH = "/v3/settings/cacerts"
LOGIN_TOKEN_DESCRIPTION = "rancher CLI"
STATE_ACTIVE = "active"
