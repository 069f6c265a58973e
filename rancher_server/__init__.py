"""The server: agent tunnels, users, the authentication proxy, the REST API."""
