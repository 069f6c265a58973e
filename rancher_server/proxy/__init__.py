"""The authentication proxy: ``/k8s/clusters/<cluster-id>/...`` to downstream API servers."""

from rancher_server.proxy.handler import IMPERSONATOR, POOL, routes

__all__ = ["IMPERSONATOR", "POOL", "routes"]
