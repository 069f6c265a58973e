"""Command-line flags; each flag can also come from ``KUBE_API_AUTH_<FLAG>`` in the environment
(``--cluster-name`` <- ``KUBE_API_AUTH_CLUSTER_NAME``). Flags win over the environment."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kube_api_auth.constants import (
    DEFAULT_LISTEN_HOST,
    DEFAULT_LISTEN_PORT,
    DEFAULT_MAX_REVIEWS_PER_S,
    DEFAULT_NAMESPACE,
    DEFAULT_REVIEW_BURST,
    MAX_BODY_BYTES,
    WATCH_INACTIVITY_TIMEOUT_S,
)
from kube_api_auth.kubeapi import SERVICE_ACCOUNT_DIR
from rancher_tunnel.version import version_line

ENV_PREFIX = "KUBE_API_AUTH_"


@dataclass(frozen=True)
class Config:
    listen_host: str
    listen_port: int
    tls_cert_file: Path | None
    tls_key_file: Path | None
    kubeconfig: Path | None
    context: str | None
    service_account_dir: Path
    namespace: str
    cluster_name: str
    secret_label_selector: str
    max_reviews_per_s: float
    review_burst: int
    max_body_bytes: int
    watch_inactivity_timeout_s: float
    tokens_file: Path | None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kube-api-auth",
        description="TokenReview webhook for the authorized cluster endpoint. Every flag can "
        f"also be set as {ENV_PREFIX}<FLAG> (upper case, '-' -> '_').",
    )
    p.add_argument("--version", action="version", version=version_line("kube-api-auth"))
    p.add_argument("--listen-host", default=DEFAULT_LISTEN_HOST)
    p.add_argument(
        "--listen-port",
        type=int,
        default=DEFAULT_LISTEN_PORT,
        help="0 = a port chosen by the OS (printed on stdout)",
    )
    p.add_argument("--tls-cert-file", type=Path, help="serve HTTPS with this certificate")
    p.add_argument("--tls-key-file", type=Path, help="the key of --tls-cert-file")
    p.add_argument(
        "--kubeconfig",
        type=Path,
        help="kubeconfig of the downstream cluster (also $KUBECONFIG); "
        "default: the in-cluster service account",
    )
    p.add_argument("--context", help="kubeconfig context (default: current-context)")
    p.add_argument(
        "--service-account-dir",
        type=Path,
        default=SERVICE_ACCOUNT_DIR,
        help="in-cluster credentials (token, ca.crt) when there is no kubeconfig",
    )
    p.add_argument(
        "--namespace",
        default=DEFAULT_NAMESPACE,
        help="namespace of ClusterAuthTokens, ClusterUserAttributes, hash Secrets",
    )
    p.add_argument(
        "--cluster-name",
        default="",
        help="this cluster's name: tokens synced for another cluster are refused",
    )
    p.add_argument(
        "--secret-label-selector",
        default="",
        help="only watch the Secrets matching this label selector",
    )
    p.add_argument("--max-reviews-per-s", type=float, default=DEFAULT_MAX_REVIEWS_PER_S)
    p.add_argument("--review-burst", type=int, default=DEFAULT_REVIEW_BURST)
    p.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES)
    p.add_argument("--watch-inactivity-timeout-s", type=float, default=WATCH_INACTIVITY_TIMEOUT_S)
    p.add_argument(
        "--tokens-file",
        type=Path,
        help="BENCHMARK ONLY: load the index once from this JSON file, no API server",
    )
    return p


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    p = parser()
    for action in p._actions:
        if not action.option_strings or action.dest == "help":
            continue
        value = env.get(ENV_PREFIX + action.dest.upper())
        if action.dest == "kubeconfig" and value is None:
            value = env.get("KUBECONFIG")
        if value is not None:
            action.default = action.type(value) if callable(action.type) else value
            action.required = False
    ns = p.parse_args(argv)
    if (ns.tls_cert_file is None) != (ns.tls_key_file is None):
        p.error("--tls-cert-file and --tls-key-file go together")
    return Config(**vars(ns))
