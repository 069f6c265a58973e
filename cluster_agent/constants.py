"""Every limit and timeout of the agents, with its unit in the name."""

CA_FETCH_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 10.0
DIAL_CONNECT_TIMEOUT_S = 5.0
# A session that lived this long was healthy: the next reconnect starts from the first delay again.
STABLE_SESSION_S = 30.0
RECONNECT_INITIAL_S = 0.5
RECONNECT_CAP_S = 30.0
EXIT_CONFIG_ERROR = 2
EXIT_CA_MISMATCH = 3
