"""etcd entirely away for longer than a replica's lease: kubectl goes on through the holder and
through a forwarding replica from what each holds; writes answer 503; when etcd is back, every
replica registers itself and its sessions again, the cluster gets its owner back and an access
change made after the outage reaches the cluster, with nothing restarted."""

from __future__ import annotations

import time
from pathlib import Path

from rancher_server.ha.lease import LEASE_TTL_S
from tests.ha.cluster import Deployment
from tests.kube import kubectl
from tests.procs import wait_until
from tests.rest import ApiError

OUTAGE_S = LEASE_TTL_S + 3.0  # the replicas' leases expire in etcd meanwhile
RECOVERED_WITHIN_S = 20.0


def test_replicas_ride_out_an_etcd_outage(tmp_path: Path) -> None:
    with Deployment(tmp_path, replicas=2) as d:
        a, b = d.replicas
        cluster_id = d.import_cluster(through=a)
        d.wait_owner(cluster_id, a)
        kc_a, kc_b = d.kubeconfig(cluster_id, via=a), d.kubeconfig(cluster_id, via=b)
        kubectl(kc_a, "get", "nodes")
        kubectl(kc_b, "get", "nodes")
        d.etcd.stop(kill=True)
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < OUTAGE_S:
                assert kubectl(kc_a, "get", "nodes", check=False).returncode == 0
                assert kubectl(kc_b, "get", "nodes", check=False).returncode == 0
                time.sleep(0.5)
            try:
                d.rest(a).call("POST", "/v3/users", {"username": "during",
                                                    "password": "during-outage-pass-1"})
                raise AssertionError("a write succeeded without etcd")
            except ApiError as e:
                assert e.status == 503, e.body
        finally:
            d.etcd.start()
        # Back: registrations return by themselves, then ownership.
        wait_until(lambda: d.holder(cluster_id) == a.name, RECOVERED_WITHIN_S, 0.2,
                   what="a's session registered again")
        d.wait_owner(cluster_id, a, RECOVERED_WITHIN_S)
        assert set(d.directory("replicas")) == {a.name, b.name}
        # An access change after the outage reaches the cluster (the reconciler runs again).
        api = d.rest(b)
        created: list[dict[str, str]] = []

        def create_user() -> bool:  # b's own etcd channel reconnects on its own schedule
            try:
                created.append(api.call("POST", "/v3/users", {
                    "username": "after", "password": "after-outage-pass-1"}))
            except ApiError as e:
                assert e.status == 503, e.body
                return False
            return True

        wait_until(create_user, RECOVERED_WITHIN_S, 0.2, what="a write through b")
        user = created[0]
        api.call("POST", "/v3/clusterroletemplatebindings",
                 {"clusterId": cluster_id, "userId": user["id"],
                  "roleTemplateId": "cluster-owner"})
        wait_until(lambda: user["id"] in kubectl(
            d.sim.kubeconfig, "get", "clusterrolebindings", "-o", "yaml").stdout,
            RECOVERED_WITHIN_S, 0.3, what="the new binding in the cluster")
