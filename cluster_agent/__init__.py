"""The cluster agent: opens the tunnel and dials the cluster API server for the server."""
