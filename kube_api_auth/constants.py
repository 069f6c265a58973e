"""Every timeout, size and rate limit of kube-api-auth, with its unit in the name."""

from __future__ import annotations

DEFAULT_LISTEN_HOST = "127.0.0.1"  # the incumbent listens on loopback with host networking
DEFAULT_LISTEN_PORT = 6440
DEFAULT_NAMESPACE = "cattle-system"  # where ClusterAuthTokens, attributes and hash Secrets live

MAX_BODY_BYTES = 1024 * 1024  # a TokenReview is ~250 bytes; anything above 1 MiB gets 413
MAX_TOKEN_CHARS = 4096  # a longer bearer token is refused without hashing it
DEFAULT_MAX_REVIEWS_PER_S = 10_000.0  # token-bucket refill rate; above it: 429
DEFAULT_REVIEW_BURST = 2_000  # token-bucket capacity

SHUTDOWN_GRACE_S = 5.0  # in-flight reviews get this long after a stop request

# TLS of the webhook listener: TLS 1.3 or TLS 1.2 with forward-secret AEAD suites only
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"

# list+watch (kopf's layering: forever -> one list+watch -> one HTTP call)
LIST_PAGE_LIMIT = 500  # objects per list page
WATCH_SERVER_TIMEOUT_S = 300  # timeoutSeconds asked of the API server per watch call
WATCH_INACTIVITY_TIMEOUT_S = 330.0  # no byte (event or bookmark) for this long: reconnect
API_CONNECT_TIMEOUT_S = 10.0
API_LIST_TIMEOUT_S = 60.0
BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 15.0
BACKOFF_FACTOR = 2.0
MAX_RETRY_AFTER_S = 60.0  # a longer Retry-After from the API server is capped to this
MAX_WATCH_LINE_BYTES = 4 * 1024 * 1024  # one watch event larger than this is refused
MAX_API_ERROR_LOG_CHARS = 300  # API error bodies are cut to this in logs
# after an early 413, aiohttp keeps reading (and discarding) the rest of the body this long
# so that the client sees the answer; aiohttp's default is 10 s
REQUEST_LINGER_S = 1.0
