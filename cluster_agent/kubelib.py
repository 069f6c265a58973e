"""kubernetes_asyncio's ``ApiClient``, ``Configuration`` and REST client, without the rest of the
library.

Importing anything under ``kubernetes_asyncio`` runs the package's ``__init__``, which imports
every API and model class: about 850 modules, 37 MiB of the agent's resident memory (measured:
a bare interpreter with aiohttp is 34 MiB, with ``kubernetes_asyncio.client`` 71 MiB), which
alone would take half of the agent's budget (``agent_rss_mib_5000_pods`` <= 80). The agent sends
every call through ``ApiClient.call_api`` with raw bodies and needs none of the generated classes.

So this module registers the packages ``kubernetes_asyncio``, ``kubernetes_asyncio.client`` and
``kubernetes_asyncio.client.models`` without running their ``__init__`` and imports the four
modules it needs (``exceptions``, ``configuration``, ``rest``, ``api_client``) from their files.
The packages are placeholders that finish their real import the first time anything else is
asked of them, so other code in the same process that wants the whole library (tests, a
deserialising call) still gets it, only later. If the library was imported already, this is
a plain import.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

PACKAGES = ("kubernetes_asyncio", "kubernetes_asyncio.client", "kubernetes_asyncio.client.models")
MODULES = ("exceptions", "configuration", "rest", "api_client")  # in dependency order
DONE = "_kubelib_init_done"


class _Deferred(types.ModuleType):
    """A package whose ``__init__`` runs on first access to a name it does not have yet."""

    def __getattr__(self, name: str) -> Any:
        state = self.__dict__
        spec = self.__spec__
        if name.startswith("__") or state.get(DONE) or spec is None or spec.loader is None:
            raise AttributeError(name)
        state[DONE] = True
        spec.loader.exec_module(self)  # the real __init__, in this module's namespace
        return getattr(self, name)


def _defer(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ImportError(f"{name} is not installed")
    module = importlib.util.module_from_spec(spec)
    module.__class__ = _Deferred
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)


def _load() -> types.ModuleType:
    for name in PACKAGES:
        _defer(name)
    for name in MODULES:
        importlib.import_module(f"kubernetes_asyncio.client.{name}")
    return sys.modules["kubernetes_asyncio.client.api_client"]


_api_client = _load()
ApiClient: Any = _api_client.ApiClient
Configuration: Any = sys.modules["kubernetes_asyncio.client.configuration"].Configuration
