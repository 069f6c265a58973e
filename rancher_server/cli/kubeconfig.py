"""``rancher-server kubeconfig``: log in to a server over HTTPS and write a kubeconfig for one or
all of the user's clusters (each pointing at the server's authentication proxy).

    rancher-server kubeconfig --server URL --username U --password-stdin [--cluster ID] [-o FILE]
    rancher-server kubeconfig --server URL --token token-xxxxx:secret [--cluster ID] [-o FILE]

The server's CA comes from ``--ca-file`` or the data directory (``<data-dir>/tls/ca.pem``). A login
token made for this command is revoked (logged out) once the kubeconfig is written; the
kubeconfig carries its own API token (description "kubeconfig")."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HTTP_TIMEOUT_S = 30.0
CLI_LOGIN_TTL_MS = 5 * 60 * 1000  # the login token only lives while the command runs
KUBECONFIG_FILE_MODE = 0o600


class KubeconfigCliError(Exception):
    """Printed as ``error: ...``."""


def add_parser(sub: Any) -> None:
    k = sub.add_parser("kubeconfig", help="log in and write a kubeconfig for your clusters")
    k.add_argument("--server", required=True, help="the server's URL, e.g. https://host:8443")
    k.add_argument("--username", help="local username (with --password-stdin or a prompt)")
    k.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    k.add_argument("--token", help="an existing API token instead of a username and password")
    k.add_argument("--cluster", help="only this cluster id (default: all of yours)")
    k.add_argument("--ca-file", type=Path, help="the server's CA (default: <data-dir>/tls/ca.pem)")
    k.add_argument("-o", "--output", type=Path, help="write here (mode 0600) instead of stdout")


def _call(ctx: ssl.SSLContext, method: str, url: str, token: str | None = None,
          body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=HTTP_TIMEOUT_S) as resp:  # noqa: S310
            out: dict[str, Any] = json.loads(resp.read() or b"{}")
            return out
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read()).get("message", e.reason)
        except ValueError:
            message = e.reason
        raise KubeconfigCliError(f"{method} {urllib.parse.urlsplit(url).path}: "
                                 f"{e.code} {message}") from e
    except urllib.error.URLError as e:
        raise KubeconfigCliError(f"cannot reach {url}: {e.reason}") from e


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise KubeconfigCliError("give --password-stdin or --token (no terminal to prompt on)")
    return getpass.getpass(f"password for {args.username}: ")


def _write(path: Path | None, config: str) -> None:
    if path is None:
        sys.stdout.write(config)
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KUBECONFIG_FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(config)


def fetch_kubeconfig(args: argparse.Namespace, data_dir: Path) -> str:
    ca_file = args.ca_file or data_dir / "tls" / "ca.pem"
    if not ca_file.exists():
        raise KubeconfigCliError(f"no CA file at {ca_file}: give --ca-file")
    ctx = ssl.create_default_context(cafile=str(ca_file))
    base = args.server.rstrip("/")
    token, login_token = args.token, None
    if not token:
        if not args.username:
            raise KubeconfigCliError("give --username or --token")
        login = _call(ctx, "POST", f"{base}/v3-public/localProviders/local?action=login", body={
            "username": args.username, "password": _password(args),
            "description": "kubeconfig command", "ttl": CLI_LOGIN_TTL_MS,
        })
        token = login_token = str(login["token"])
    try:
        if args.cluster:
            cid = urllib.parse.quote(args.cluster, safe="")
            out = _call(ctx, "POST", f"{base}/v3/clusters/{cid}?action=generateKubeconfig",
                        token, {})
        else:
            out = _call(ctx, "GET", f"{base}/v3/kubeconfig", token)
    finally:
        if login_token:
            _call(ctx, "POST", f"{base}/v3/tokens?action=logout", login_token, {})
    return str(out["config"])


def run(args: argparse.Namespace, data_dir: Path) -> int:
    try:
        _write(args.output, fetch_kubeconfig(args, data_dir))
    except KubeconfigCliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
