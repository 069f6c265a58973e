"""The installed version of the project, for every console script's ``--version``."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "rancher-py"


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "0+unknown"


def version_line(prog: str) -> str:
    return f"{prog} {version()}"
