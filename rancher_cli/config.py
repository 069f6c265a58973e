"""The CLI's saved login: server URL, pinned CA, token, current cluster. One JSON file, mode 0600,
under the user's config directory (``$XDG_CONFIG_HOME/rancher-py/cli.json``)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from rancher_cli.constants import (
    CONFIG_DIR_NAME,
    CONFIG_FILE_NAME,
    DIR_MODE_PRIVATE,
    EXIT_AUTH,
    FILE_MODE_PRIVATE,
    KUBECONFIG_CACHE_DIR_NAME,
)
from rancher_cli.errors import CliError

CONFIG_ENV = "RANCHER_CLI_CONFIG"  # a file path that overrides the default location


@dataclass
class Login:
    server: str
    token: str
    token_id: str = ""
    username: str = ""
    user_id: str = ""
    ca_pem: str = ""  # empty: the system's trust store
    current_cluster: str = ""


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / CONFIG_DIR_NAME


def config_path() -> Path:
    override = os.environ.get(CONFIG_ENV)
    return Path(override) if override else config_dir() / CONFIG_FILE_NAME


def kubeconfig_cache_dir() -> Path:
    return config_path().parent / KUBECONFIG_CACHE_DIR_NAME


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only (created 0600, replaced atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE_PRIVATE)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE_PRIVATE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, FILE_MODE_PRIVATE)
    os.replace(tmp, path)


def load() -> Login:
    path = config_path()
    try:
        data = json.loads(path.read_text())
        return Login(**{k: v for k, v in data.items() if k in Login.__dataclass_fields__})
    except FileNotFoundError:
        raise CliError("not logged in: run `rancher login <server url>` first", EXIT_AUTH) from None
    except (ValueError, TypeError) as exc:
        raise CliError(
            f"the saved login {path} is damaged ({exc}): run `rancher login <server url>` again",
            EXIT_AUTH,
        ) from exc


def save(login: Login) -> Path:
    path = config_path()
    write_private(path, json.dumps(asdict(login), indent=2) + "\n")
    return path


def forget() -> None:
    path = config_path()
    path.unlink(missing_ok=True)
    cache = kubeconfig_cache_dir()
    if cache.is_dir():
        for f in cache.glob("*.yaml"):
            f.unlink(missing_ok=True)
