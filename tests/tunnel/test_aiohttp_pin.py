"""The aiohttp versions the project supports are pinned, and the installed one is among them.

The tunnel's websocket adapter (``rancher_tunnel/wsadapter.py``) takes over the transport of
aiohttp's websockets for speed, reading attributes aiohttp does not promise to keep. So the
dependency names the minor releases the suite ran on (``aiohttp>=3.14,<3.15`` in
pyproject.toml); ``tests/tunnel/test_wsreader.py::test_sessions_use_push_mode`` fails if a
release changes what the adapter reads (a silent fallback would only be slower). Masking uses no
aiohttp helper at all: the project's own C extension, which every install here must have built."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from rancher_tunnel import wsmask

ROOT = Path(__file__).resolve().parents[2]


def _aiohttp_requirement() -> Requirement:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    return next(r for r in reqs if r.name == "aiohttp")


def test_installed_aiohttp_is_a_supported_release() -> None:
    req = _aiohttp_requirement()
    assert Version(version("aiohttp")) in req.specifier, (version("aiohttp"), str(req))


def test_the_pin_stops_before_the_next_minor_release() -> None:
    spec = _aiohttp_requirement().specifier
    current = Version(version("aiohttp"))
    next_minor = Version(f"{current.major}.{current.minor + 1}.0")
    assert next_minor not in spec, f"{spec} admits {next_minor}, which no test has run on"
    assert any(s.operator == "<" for s in spec)


def test_masking_is_our_own_c_extension() -> None:
    assert wsmask.C_MASK is not None, "rancher_tunnel/_wsmask.c was not built by pip install"
    assert wsmask.websocket_mask is wsmask.C_MASK
    assert wsmask.C_MASK.__module__ == "rancher_tunnel._wsmask"
