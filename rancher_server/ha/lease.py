"""One etcd lease per replica, kept alive on a daemon thread. Everything the replica registers
(itself, the agent sessions it holds, the clusters it owns) is put under this lease, so a replica
that dies or is cut off from etcd loses it all within :data:`LEASE_TTL_S`.

The keeper also tells the replica when it can no longer be sure it holds the lease: when no
keep-alive has been acknowledged for :data:`SELF_FENCE_AFTER_S` (shorter than the TTL, so the
replica stops acting as an owner before etcd lets another take over)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import grpc
from aetcd import rpc
from aetcd.rpc import rpc_pb2_grpc

from rancher_server.store.etcd_conn import ETCD_RPC_TIMEOUT_S, EtcdConnection
from rancher_tunnel.logs import get_logger

LEASE_TTL_S = 6  # what etcd waits after the last keep-alive before it drops the replica's keys
KEEPALIVE_EVERY_S = 1.0
SELF_FENCE_AFTER_S = 3.5  # no acknowledged keep-alive for this long: stop acting as an owner
KEEPALIVE_RPC_TIMEOUT_S = 2.0

log = get_logger(component="ha-lease")


class ReplicaLease:
    """``lease_id`` is current while :attr:`valid`; ``on_renewed(lease_id)`` is called (on the
    keeper's thread) after a new lease replaced a lost one, so that registrations are redone."""

    def __init__(self, conn: EtcdConnection, on_renewed: Callable[[int], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._conn = conn
        self._on_renewed = on_renewed
        self._clock = clock
        self._stop = threading.Event()
        self._endpoint = conn.endpoint  # the member the last keep-alive went to
        self.lease_id = self._grant()
        self._acked_at = self._clock()
        self._thread = threading.Thread(target=self._run, name="ha-lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def valid(self) -> bool:
        """False once no keep-alive was acknowledged for :data:`SELF_FENCE_AFTER_S`."""
        return self.lease_id != 0 and self._clock() - self._acked_at < SELF_FENCE_AFTER_S

    def _stub(self) -> rpc_pb2_grpc.LeaseStub:
        return rpc_pb2_grpc.LeaseStub(self._conn.channel())

    def _grant(self) -> int:
        resp = self._stub().LeaseGrant(rpc.LeaseGrantRequest(TTL=LEASE_TTL_S),
                                       timeout=ETCD_RPC_TIMEOUT_S)
        return int(resp.ID)

    def _keepalive(self) -> bool:
        """One keep-alive; False when etcd says the lease is gone (expired or revoked)."""
        self._endpoint = self._conn.endpoint
        responses = self._stub().LeaseKeepAlive(
            iter([rpc.LeaseKeepAliveRequest(ID=self.lease_id)]), timeout=KEEPALIVE_RPC_TIMEOUT_S)
        for resp in responses:
            return int(resp.TTL) > 0
        return False

    def _run(self) -> None:
        while not self._stop.wait(KEEPALIVE_EVERY_S):
            try:
                if self._keepalive():
                    self._acked_at = self._clock()
                    continue
                log.warning("replica lease expired; registering again under a new one",
                            lease=self.lease_id)
                self.lease_id = 0
                self.lease_id = self._grant()
                self._acked_at = self._clock()
                self._on_renewed(self.lease_id)
            except grpc.RpcError as e:
                log.warning("lease keep-alive failed", error=str(e.code()) if isinstance(
                    e, grpc.Call) else str(e), endpoint=self._conn.endpoint)
                self._conn.failover_from(self._endpoint)  # the next one tries another member
            except Exception:  # never let the keeper die silently
                log.exception("lease keeper round failed")

    def close(self, revoke: bool = True) -> None:
        """Stops keeping the lease; ``revoke`` drops every key under it now (a clean stop)."""
        self._stop.set()
        self._thread.join(KEEPALIVE_RPC_TIMEOUT_S + KEEPALIVE_EVERY_S)
        if revoke and self.lease_id:
            with contextlib.suppress(grpc.RpcError):  # else it expires by itself
                self._stub().LeaseRevoke(rpc.LeaseRevokeRequest(ID=self.lease_id),
                                         timeout=KEEPALIVE_RPC_TIMEOUT_S)
