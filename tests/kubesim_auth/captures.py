"""Loading the golden kube-apiserver captures (the copies in ./reference by default)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

REFERENCE = Path(os.environ.get("K8S_REFERENCE_DIR", Path(__file__).parent / "reference"))
_HEX_LINE = re.compile(r"^\t[0-9a-f]{8}  ((?:[0-9a-f]{2} {1,2}){1,16})")


def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference captures not found at {REFERENCE}")
    return REFERENCE


def load(rel: str) -> dict[str, Any]:
    with open(reference_dir() / rel, encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def request_bodies(trace: str) -> list[bytes]:
    """The hex-dumped ``"Request Body"`` blocks of a kubectl -v=8 trace."""
    path = reference_dir() / "kubectl-traces" / f"{trace}.stderr.log"
    bodies: list[bytes] = []
    current: bytearray | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if '"Request Body" body=<' in line:
            current = bytearray()
            continue
        if current is None:
            continue
        m = _HEX_LINE.match(line)
        if m:
            current += bytes.fromhex(m.group(1).replace(" ", ""))
        else:
            bodies.append(bytes(current))
            current = None
    return bodies
