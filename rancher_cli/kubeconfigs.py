"""Kubeconfig files: merge one into another (entries of the same name replaced, the rest kept),
and the CLI's cache of the kubeconfig it generated per cluster for ``rancher kubectl``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from rancher_cli.config import write_private
from rancher_cli.constants import EXIT_USAGE
from rancher_cli.errors import CliError

SECTIONS = ("clusters", "users", "contexts")


def default_path() -> Path:
    """Where kubectl reads: the first file of $KUBECONFIG, else ~/.kube/config."""
    env = os.environ.get("KUBECONFIG", "")
    first = next((p for p in env.split(os.pathsep) if p), "")
    return Path(first) if first else Path.home() / ".kube" / "config"


def load(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                "contexts": [], "preferences": {}}
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CliError(f"{path} is not a kubeconfig (YAML error: {exc}); fix or move it, or "
                       "write to another file with --file", EXIT_USAGE) from exc
    if not isinstance(doc, dict):
        raise CliError(f"{path} is not a kubeconfig; fix or move it", EXIT_USAGE)
    return doc


def merge(into: dict[str, Any], new: dict[str, Any], use_context: bool) -> dict[str, Any]:
    out = dict(into)
    for section in SECTIONS:
        incoming = new.get(section) or []
        names = {e.get("name") for e in incoming}
        kept = [e for e in (out.get(section) or []) if e.get("name") not in names]
        out[section] = kept + list(incoming)
    if use_context or not out.get("current-context"):
        out["current-context"] = new.get("current-context", "")
    out.setdefault("apiVersion", "v1")
    out.setdefault("kind", "Config")
    return out


def write(path: Path, doc: dict[str, Any]) -> None:
    write_private(path, yaml.safe_dump(doc, sort_keys=False, default_flow_style=False))
