"""Exit codes scripts can rely on, timeouts and file locations (one place)."""

from __future__ import annotations

EXIT_OK = 0
EXIT_SERVER_ERROR = 1  # the server answered with an error (not found, refused, invalid...)
EXIT_USAGE = 2  # the command line is wrong (click's own code for usage errors)
EXIT_AUTH = 3  # not logged in, or the server refused the credentials (wrong, expired, revoked)
EXIT_UNREACHABLE = 4  # the server cannot be reached (refused, timed out, unknown host)
EXIT_UNTRUSTED = 5  # the server's CA does not match the pinned checksum or CA file
EXIT_TIMEOUT = 6  # --wait gave up before the cluster became active (or a device code expired)
EXIT_INTERRUPTED = 130  # Ctrl-C

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

# Auth providers (/v3/authconfigs/<provider>): the server's names, in the order they are listed.
AUTH_PROVIDERS = ("openldap", "activedirectory", "github", "oidc")
DIRECTORY_PROVIDERS = ("openldap", "activedirectory")  # username and password logins
DEVICE_LOGIN_PROVIDERS = ("github", "oidc")  # the OAuth device flow (RFC 8628)
LOGIN_PROVIDERS = ("local", *DIRECTORY_PROVIDERS, *DEVICE_LOGIN_PROVIDERS)
AUTHCONFIGS_PATH = "/v3/authconfigs"
PROVIDER_LOGIN_PATHS = {
    "openldap": "/v3-public/openLdapProviders/openldap?action=login",
    "activedirectory": "/v3-public/activeDirectoryProviders/activedirectory?action=login",
}
DEVICE_PATHS = {"github": "/v3-public/githubProviders/github",
                "oidc": "/v3-public/oidcProviders/oidc"}  # ?action=deviceCode / deviceLogin
DEVICE_WHERE = {"github": "GitHub", "oidc": "the OpenID Connect issuer"}
# Write-only settings: never returned by the API (shown as "" with passwordSet / secretSet), so
# never taken from --set (a command line is visible to every user of the machine in ps).
SECRET_FIELDS = ("serviceAccountPassword", "clientSecret")
# What the API shows about a provider but does not take in a PUT.
READ_ONLY_FIELDS = ("type", "id", "passwordSet", "secretSet", "effectivePort", "lastRefresh",
                    "redirectUrl", "callbackPath", "apiUrl", "links", "actions")
DEVICE_POLL_MIN_INTERVAL_S = 1.0  # never faster than this, whatever the server says
DEVICE_DEFAULT_INTERVAL_S = 5.0  # RFC 8628's default
DEVICE_DEFAULT_EXPIRY_S = 900.0
