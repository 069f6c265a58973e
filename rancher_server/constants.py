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

# What a cluster agent's reports may cost (kept per cluster in memory; an agent that goes over is
# disconnected with the bound "reports"); the tunnel's own per-peer bounds are in
# rancher_tunnel/constants.py.
MAX_REPORTED_NODES = 5000  # node info entries kept per cluster
# one node's info, estimated as kept (text + REPORT_ENTRY_OVERHEAD_BYTES per string and entry):
# a typical node is about 13 KiB, one with a hundred labels about 30 KiB
MAX_NODE_REPORT_BYTES = 64 * 1024
# all a cluster's report or picture keeps (nodes, stats, namespaces), estimated the same way:
# room for MAX_REPORTED_NODES typical nodes
MAX_REPORT_BYTES = 64 * 1024 * 1024
MAX_STATS_KEYS = 256  # names in one stats report
REPORT_ENTRY_OVERHEAD_BYTES = 100  # a kept string or map entry costs about this beyond its text
MAX_PICTURE_EVENT_BYTES = 4 * 1024 * 1024  # events kept per cluster (the oldest go first)

# TLS of the server's listener: TLS 1.3 (preferred: OpenSSL picks the highest both offer) or
# TLS 1.2 with forward-secret AEAD suites only (no CBC, no RSA key exchange); HSTS on every answer.
TLS_MIN_VERSION = "TLSv1_2"
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
HSTS_MAX_AGE_S = 365 * 24 * 3600

# Shutdown: stop accepting, close sessions with going-away, wait this long, then cancel.
SHUTDOWN_GRACE_S = 5.0

# TCP forward listeners (diagnostics and benchmarks).
FORWARD_BACKLOG = 1024

# Registration tokens.
REGISTRATION_TOKEN_BYTES = 32
