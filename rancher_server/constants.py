"""Every limit and timeout of the server, with its unit in the name."""

DEFAULT_LISTEN = "0.0.0.0:8443"
DEFAULT_DATA_DIR_NAME = "rancher-py"

# TLS material generated on first start.
CA_VALIDITY_DAYS = 3650
SERVING_CERT_VALIDITY_DAYS = 825

# Agent tunnel endpoint.
MAX_TUNNEL_PARAMS_BYTES = 64 * 1024  # decoded X-API-Tunnel-Params
MAX_TUNNEL_TOKEN_BYTES = 512
SESSION_REPLACE_CLOSE_TIMEOUT_S = 5.0
DIAL_TIMEOUT_S = 10.0

# Shutdown: stop accepting, close sessions with going-away, wait this long, then cancel.
SHUTDOWN_GRACE_S = 5.0

# TCP forward listeners (diagnostics and benchmarks).
FORWARD_BACKLOG = 1024

# Registration tokens.
REGISTRATION_TOKEN_BYTES = 32
