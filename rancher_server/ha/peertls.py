"""Mutual TLS between replicas. The deployment's peer CA lives in etcd (created once by the first
replica, in one transaction: two replicas starting together end with the same CA), apart from
the serving CA (which an operator may bring with ``--tls-cert``, without its key); each replica
issues itself a certificate from it at start (``rancher_server.tls.issue_peer_material``:
``OU=rancher-replica``, both the server and client usages). A peer listener accepts only
certificates of that CA carrying that OU: neither an agent nor a user can present one. The CA's
key is as secret as etcd itself (whoever reads etcd owns the deployment anyway) and is never
logged."""

from __future__ import annotations

from pathlib import Path

from aetcd import rpc
from cryptography.hazmat.primitives import serialization

from rancher_server.ha.directory import DEFAULT_HA_PREFIX
from rancher_server.store.etcd_conn import EtcdConnection, absent, put_op
from rancher_server.tls import PeerTLS, _key_pem, _new_ca, issue_peer_material

PEER_CA_KEY = b"peer-ca"  # under the HA prefix: {cert PEM}{key PEM}
_KEY_MARK = b"-----BEGIN PRIVATE KEY"


def peer_ca(conn: EtcdConnection, prefix: bytes = DEFAULT_HA_PREFIX) -> tuple[bytes, bytes]:
    """The deployment's peer CA (cert PEM, key PEM), created now if there is none."""
    key = prefix + PEER_CA_KEY
    cert, ca_key = _new_ca()
    candidate = cert.public_bytes(serialization.Encoding.PEM) + _key_pem(ca_key)
    conn.txn([absent(key)], [put_op(key, candidate)])
    stored = bytes(conn.range_raw(rpc.RangeRequest(key=key)).kvs[0].value)
    at = stored.index(_KEY_MARK)
    return stored[:at], stored[at:]


def peer_tls(conn: EtcdConnection, replica: str, hostnames: list[str], out_dir: Path,
             prefix: bytes = DEFAULT_HA_PREFIX) -> PeerTLS:
    """This replica's peer certificate, issued from the deployment's peer CA into ``out_dir``."""
    ca_pem, ca_key_pem = peer_ca(conn, prefix)
    return issue_peer_material(ca_pem, ca_key_pem, replica, hostnames, out_dir)
