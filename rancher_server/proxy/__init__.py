"""The authentication proxy: ``/k8s/clusters/<cluster-id>/...`` to downstream API servers."""

from rancher_server.proxy.handler import ACCESS, GUARD, IMPERSONATOR, POOL, routes

__all__ = ["ACCESS", "GUARD", "IMPERSONATOR", "POOL", "routes"]
