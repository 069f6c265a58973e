"""Import contracts (kopf's .importlinter, as a test): the layering the design promises."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ("constants", "errors", "frames", "windows", "protocol", "events", "messages")
IO_LIBRARIES = {"asyncio", "aiohttp", "websockets", "uvloop", "socket", "ssl", "selectors"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def top_levels(package: str) -> dict[Path, set[str]]:
    return {
        p: {name.split(".")[0] for name in imports_of(p)}
        for p in (ROOT / package).rglob("*.py")
    }


@pytest.mark.parametrize("package", ["cluster_agent", "node_agent", "kube_api_auth"])
def test_agents_and_webhook_never_import_the_server(package: str) -> None:
    for path, names in top_levels(package).items():
        assert not names & {"rancher_server", "kubesim"}, path


def test_the_cli_talks_to_the_server_only_over_its_api() -> None:
    """rancher_cli works from any machine: it never imports the server (nor its store)."""
    ours = {"rancher_server", "kubesim", "cluster_agent", "node_agent", "kube_api_auth",
            "rancher_tunnel"}
    for path, names in top_levels("rancher_cli").items():
        assert not names & ours, path


def test_tunnel_imports_nothing_of_ours_above_it() -> None:
    above = {"rancher_server", "cluster_agent", "node_agent", "kube_api_auth", "kubesim"}
    for path, names in top_levels("rancher_tunnel").items():
        assert not names & above, path


@pytest.mark.parametrize("module", CORE)
def test_protocol_core_imports_no_io_library(module: str) -> None:
    names = {n.split(".")[0] for n in imports_of(ROOT / "rancher_tunnel" / f"{module}.py")}
    assert not names & IO_LIBRARIES, (module, names & IO_LIBRARIES)


def test_the_stand_in_does_not_depend_on_the_product() -> None:
    product = {"rancher_server", "cluster_agent", "node_agent", "kube_api_auth"}
    for path, names in top_levels("kubesim").items():
        assert not names & product, path


# The server's folders follow the architecture's paths (docs/architecture.md): a folder never
# imports the folders that are built on it.
SERVER_FORBIDDEN = {
    "store": {"tunnel", "clusters", "access", "auth", "proxy", "api", "cli", "app", "state"},
    "auth": {"tunnel", "clusters", "access", "proxy", "api", "app"},
    "tunnel": {"access", "auth", "proxy", "api", "app"},
    "clusters": {"access", "api", "app"},
    "access": {"api", "app"},
    "proxy": {"api", "app"},
    "ha": {"access", "auth", "clusters", "api", "app"},
}


@pytest.mark.parametrize("folder", sorted(SERVER_FORBIDDEN))
def test_server_folders_import_only_below_them(folder: str) -> None:
    for path in (ROOT / "rancher_server" / folder).rglob("*.py"):
        used = {
            name.split(".")[1]
            for name in imports_of(path)
            if name.startswith("rancher_server.") and name.count(".") >= 1
        }
        assert not used & SERVER_FORBIDDEN[folder], (path, used & SERVER_FORBIDDEN[folder])
