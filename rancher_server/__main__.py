"""``rancher-server``: run the server (default) or manage clusters in its store.

    rancher-server [serve] [--listen 0.0.0.0:8443] [--data-dir DIR] ...
    rancher-server cluster create NAME      # prints the registration token and agent command once
    rancher-server cluster list
    rancher-server cluster delete ID
    rancher-server user create|list|disable|enable|delete|passwd|groups ...   # local users
    rancher-server token list|revoke ...
    rancher-server binding create --cluster ID [--project P] (--user U | --group G) --role T
    rancher-server role-template list|create|delete ...          # role templates
    rancher-server project list|create|delete ...                # projects of a cluster
    rancher-server global-role bind|unbind (--user U | --group G) --role T
    rancher-server store migrate --to etcd://HOST:PORT [--data-dir DIR]   # copy SQLite into etcd
    rancher-server kubeconfig --server URL --username U --password-stdin [--cluster ID] [-o F]
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import resource
import sys
from pathlib import Path
from typing import NoReturn

from rancher_server.cli import access as cli_access
from rancher_server.cli import kubeconfig as cli_kubeconfig
from rancher_server.cli import users as cli_users
from rancher_server.clusters.public_url import BadURL
from rancher_server.clusters.public_url import validate as validate_url
from rancher_server.clusters.registration import create_cluster, rotate_token
from rancher_server.config import ServerConfig, default_data_dir
from rancher_server.constants import DEFAULT_LISTEN
from rancher_server.store import StoreError, etcd_migrate
from rancher_server.store import admin as store_admin
from rancher_server.store.etcd_open import open_store
from rancher_server.tls import load_or_generate, shared_material
from rancher_tunnel import logs
from rancher_tunnel.process import run_until_signalled
from rancher_tunnel.version import version_line

EXIT_ERROR = 1
EXIT_STORE_ERROR = 4
MAX_PORT = 65535


def _env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name, "")
    return [x.strip() for x in raw.split(",") if x.strip()] or default


def _server_options(p: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options of the server itself, accepted before and after ``serve``. Under ``serve``
    their defaults are suppressed, so a value given before the subcommand is kept."""
    def d(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    p.add_argument("--data-dir", type=Path,
                   default=d(Path(os.environ.get("RANCHER_DATA_DIR") or default_data_dir())),
                   help="state directory (env RANCHER_DATA_DIR)")
    p.add_argument("--listen", default=d(os.environ.get("RANCHER_LISTEN", DEFAULT_LISTEN)),
                   help="HOST:PORT to serve HTTPS on (env RANCHER_LISTEN)")
    p.add_argument("--server-url", default=d(os.environ.get("RANCHER_SERVER_URL", "")),
                   help="https:// URL agents and kubeconfigs use (env RANCHER_SERVER_URL)")
    p.add_argument("--log-format", choices=("json", "console"), default=d(None),
                   help="log lines as JSON (default off a terminal) or for people (env "
                        "LOG_FORMAT)")
    p.add_argument("--debug", action="store_true", default=d(False),
                   help="show a traceback with an error (default: one line saying what to do)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rancher-server", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=version_line("rancher-server"))
    _server_options(p, defaults=True)
    p.add_argument("--init", action="store_true",
                   help="let an offline command create the server's state where there is none "
                        "(by default it refuses: a mistyped --data-dir would make a new server)")
    p.add_argument("--hostname", action="append", dest="hostnames",
                   help="name or IP for the generated serving certificate (repeatable; env "
                        "RANCHER_HOSTNAMES, comma-separated)")
    p.add_argument("--tls-cert", type=Path, default=os.environ.get("RANCHER_TLS_CERT") or None)
    p.add_argument("--tls-key", type=Path, default=os.environ.get("RANCHER_TLS_KEY") or None)
    p.add_argument("--tls-ca", type=Path, default=os.environ.get("RANCHER_TLS_CA") or None)
    p.add_argument("--metrics-anonymous", action="store_true",
                   default=os.environ.get("RANCHER_METRICS_ANONYMOUS", "") in ("1", "true"),
                   help="serve /metrics without a token (env RANCHER_METRICS_ANONYMOUS=true)")
    p.add_argument("--store", default=os.environ.get("RANCHER_STORE", ""),
                   metavar="etcd://HOST:PORT[,HOST:PORT]",
                   help="run on etcd (env RANCHER_STORE; etcds:// for TLS, with the files in "
                        "RANCHER_ETCD_CAFILE, RANCHER_ETCD_CERTFILE, RANCHER_ETCD_KEYFILE; "
                        "default: SQLite in --data-dir)")
    p.add_argument("--replica-name", default=os.environ.get("RANCHER_REPLICA_NAME", ""),
                   help="this replica's name on etcd (env RANCHER_REPLICA_NAME; default: "
                        "<host name>-<listen port>)")
    p.add_argument("--peer-listen", default=os.environ.get("RANCHER_PEER_LISTEN", ""),
                   metavar="HOST:PORT",
                   help="on etcd: where other replicas reach this one, mutual TLS (env "
                        "RANCHER_PEER_LISTEN; default: the --listen host, any free port)")
    p.add_argument("--peer-address", default=os.environ.get("RANCHER_PEER_ADDRESS", ""),
                   metavar="HOST:PORT",
                   help="the address other replicas dial (env RANCHER_PEER_ADDRESS; default: "
                        "--peer-listen, with the first --hostname for a wildcard host)")
    p.add_argument("--tcp-forward", action="append", default=[],
                   metavar="LHOST:PORT=CLUSTER/HOST:PORT",
                   help="forward a local TCP port through a cluster's tunnel (repeatable)")
    sub = p.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the server (default)")
    _server_options(serve, defaults=False)
    demo = sub.add_parser("demo", help="server + stand-in cluster + agent, ready for kubectl")
    demo.add_argument("--dir", type=Path, default=Path("rancher-demo"),
                      help="where the demo keeps its state and logs")
    demo.add_argument("--listen", dest="demo_listen", default="127.0.0.1:8443",
                      help="HOST:PORT for the demo's server")
    demo.add_argument("--reset", action="store_true",
                      help="forget an earlier run's state in --dir and start over")
    c = sub.add_parser("cluster", help="manage clusters")
    csub = c.add_subparsers(dest="cluster_command", required=True)
    cc = csub.add_parser("create", help="create a cluster and print its registration command")
    cc.add_argument("name")
    csub.add_parser("list", help="list clusters")
    cd = csub.add_parser("delete", help="delete a cluster")
    cd.add_argument("id")
    ce = csub.add_parser("endpoint", help="authorized cluster endpoint: reach the cluster "
                         "directly through kube-api-auth when the server is down")
    ce.add_argument("id")
    onoff = ce.add_mutually_exclusive_group(required=True)
    onoff.add_argument("--enable", action="store_true")
    onoff.add_argument("--disable", action="store_true")
    ce.add_argument("--fqdn", default="", help="HOST:PORT users reach the API server at "
                    "(default: the address the agent reported)")
    ce.add_argument("--ca-file", type=Path, help="CA of that endpoint (default: the reported CA)")
    cr = csub.add_parser("rotate-token", help="issue a new registration token")
    cr.add_argument("id")
    cli_users.add_parsers(sub)
    cli_access.add_parsers(sub)
    cli_kubeconfig.add_parser(sub)
    store_admin.add_subcommands(etcd_migrate.add_parser(sub))
    return p


def _config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        listen=args.listen,
        data_dir=args.data_dir,
        hostnames=args.hostnames or _env_list("RANCHER_HOSTNAMES", ["localhost", "127.0.0.1"]),
        server_url=args.server_url,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        tls_ca=args.tls_ca,
        tcp_forwards=args.tcp_forward,
        metrics_anonymous=args.metrics_anonymous,
        store_url=args.store,
        replica_name=args.replica_name,
        peer_listen=args.peer_listen,
        peer_address=args.peer_address,
    )


def _raise_fd_limit() -> None:
    """Each agent session holds a socket: allow as many as the hard limit permits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    print(f"rancher-server: {message}", file=sys.stderr)
    sys.exit(code)


def _run_server(config: ServerConfig, debug: bool) -> None:
    from rancher_server.app import serve

    _raise_fd_limit()
    try:
        run_until_signalled(lambda stop: serve(config, stop, freeze=True))
    except StoreError as e:  # a damaged or too-new database: say what to do, no traceback
        _fail(f"cannot start: {e}", EXIT_STORE_ERROR)
    except OSError as e:
        if debug:
            raise
        if e.errno == errno.EADDRINUSE:
            _fail(f"cannot listen on {config.listen}: the address is in use (another server "
                  "running? choose another --listen)")
        if e.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            _fail(f"cannot listen on {config.listen}: {e.strerror} (choose another --listen)")
        _fail(f"cannot start: {e} (--debug shows the traceback)")


def _check_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Mistakes in the options: one line naming the option and what to do (exit 2)."""
    _host, sep, port = str(args.listen).rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= MAX_PORT:
        p.error(f"--listen must be HOST:PORT, e.g. 0.0.0.0:8443 (got {args.listen!r})")
    if args.server_url:
        try:
            validate_url(args.server_url)
        except BadURL as e:
            p.error(f"--server-url: {e}")
    if args.store:
        from rancher_server.store.etcd_conn import (  # loads grpc: etcd only
            ETCDS_SCHEME,
            EtcdTLS,
            parse_endpoints,
        )

        try:
            parse_endpoints(args.store)
            if args.store.startswith(ETCDS_SCHEME):
                EtcdTLS.from_env()
        except ValueError as e:
            p.error(f"--store: {e}")


def _require_state(args: argparse.Namespace, config: ServerConfig) -> None:
    """Offline commands work on an existing server's state; creating one takes --init (a
    mistyped --data-dir must not silently make a new server with a new CA)."""
    if config.store_url or args.init or config.db_path.exists():
        return
    _fail(f"no server state in {config.data_dir} (no {config.db_path.name}): give the --data-dir "
          "of the server (before the subcommand), start the server there first, or pass --init "
          "to create a new one")


def _cluster_command(args: argparse.Namespace, config: ServerConfig) -> int:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(config.store_url, config.db_path)
    try:
        if args.cluster_command in ("create", "rotate-token"):
            tls = shared_material(store, config.tls_dir, config.hostnames) if (
                config.store_url and not config.tls_cert) else load_or_generate(
                config.tls_dir, config.hostnames, config.tls_cert, config.tls_key, config.tls_ca)
            reg = (create_cluster(store, args.name) if args.cluster_command == "create"
                   else rotate_token(store, args.id))
            url = config.url_for(config.host_port[1])
            print(json.dumps({
                "id": reg.cluster.id, "name": reg.cluster.name, "registrationToken": reg.token,
                "server": url, "caChecksum": tls.ca_checksum,
                "command": reg.agent_command(url, tls.ca_checksum),
            }))
        elif args.cluster_command == "list":
            print(json.dumps([dataclasses.asdict(c) for c in store.list_clusters()]))
        elif args.cluster_command == "endpoint":
            from rancher_server.access.endpoint_config import AceConfig, set_config

            store.get_cluster(args.id)
            ca = args.ca_file.read_text() if args.ca_file else ""
            cfg = AceConfig(enabled=bool(args.enable), fqdn=args.fqdn, ca_cert=ca)
            set_config(store, args.id, cfg)
            print(cfg.to_json())
        elif args.cluster_command == "delete":
            store.delete_cluster(args.id)
    except StoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    _check_options(parser, args)
    if args.log_format:
        os.environ["LOG_FORMAT"] = args.log_format
    logs.configure("rancher-server")
    config = _config(args)
    if args.command == "demo":
        from rancher_server.demo import run_demo

        sys.exit(run_demo(args.dir.resolve(), args.demo_listen, reset=args.reset))
    if args.command == "cluster":
        _require_state(args, config)
        sys.exit(_cluster_command(args, config))
    store_commands = {**cli_users.COMMANDS, **cli_access.COMMANDS}
    if args.command in store_commands:
        _require_state(args, config)
        config.data_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(config.store_url, config.db_path)
        try:
            sys.exit(cli_users.run(args, store, store_commands))
        finally:
            store.close()
    if args.command == "store" and args.store_command in ("check", "backup"):
        sys.exit(store_admin.run(args, config.db_path))
    if args.command == "store":
        sys.exit(etcd_migrate.run(args, config.db_path))
    if args.command == "kubeconfig":
        sys.exit(cli_kubeconfig.run(args, config.data_dir))
    _run_server(config, args.debug)


if __name__ == "__main__":
    main()
