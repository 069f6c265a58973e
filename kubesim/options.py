"""Command-line options of the stand-in (also built directly by tests)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from rancher_tunnel.version import version_line


@dataclass
class Options:
    port: int = 0
    host: str = "127.0.0.1"
    plain_http: bool = False
    kubeconfig_out: str | None = None
    cert_dir: str | None = None
    token_auth_file: str | None = None
    authentication_token_webhook_config_file: str | None = None
    authorization_mode: str = "AlwaysAllow"
    nodes: int = 0
    exec_host: bool = False
    audit_log_path: str | None = None
    audit_log_mutating_only: bool = True


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(prog="kubesim", description="A Kubernetes API stand-in")
    p.add_argument("--version", action="version", version=version_line("kubesim"))
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--plain-http", action="store_true")
    p.add_argument("--kubeconfig-out")
    p.add_argument("--cert-dir")
    p.add_argument("--token-auth-file")
    p.add_argument("--authentication-token-webhook-config-file")
    p.add_argument("--authorization-mode", default="AlwaysAllow", choices=["AlwaysAllow", "RBAC"])
    p.add_argument("--nodes", type=int, default=0)
    p.add_argument(
        "--exec-host",
        action="store_true",
        help="exec runs the command as a process on this machine (for tests; by default exec "
        "runs a small built-in shell and never reaches the host)",
    )
    p.add_argument(
        "--audit-log-path",
        help="append an audit.k8s.io/v1 Event per request to this file, one JSON line each, "
        "flushed as written (level Metadata, stage ResponseComplete; kube-apiserver's flag)",
    )
    p.add_argument(
        "--audit-log-mutating-only",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log only create, update, patch, delete and deletecollection (default: true; "
        "--no-audit-log-mutating-only logs reads too: get, list, watch)",
    )
    ns = p.parse_args(argv)
    return Options(**vars(ns))  # every option's dest is the field of the same name
