"""The legacy service-account token controller: fills Secrets of type
``kubernetes.io/service-account-token`` with ``token``, ``ca.crt`` and ``namespace``.

Tools (Rancher's agents among them) still create such Secrets to get a long-lived token.
The store calls subscribers synchronously, so writes are scheduled on the running loop
rather than made from inside the callback.
"""

from __future__ import annotations

import asyncio
import base64
import copy
from typing import Any

from kubesim.store import Store
from rancher_tunnel.logs import get_logger

from .serviceaccounts import ServiceAccountTokens

SA_TOKEN_TYPE = "kubernetes.io/service-account-token"
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
SA_UID_ANNOTATION = "kubernetes.io/service-account.uid"

log = get_logger(component="kubesim.auth.tokencontroller")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


class LegacyTokenController:
    def __init__(self, store: Store, tokens: ServiceAccountTokens) -> None:
        self.store = store
        self.tokens = tokens
        self._pending: set[tuple[str, str]] = set()
        self._unsubscribe = store.subscribe(self._on_event)

    def close(self) -> None:
        self._unsubscribe()

    def _on_event(self, event_type: str, group: str, resource: str, obj: dict[str, Any]) -> None:
        if group or resource != "secrets" or event_type == "DELETED":
            return
        if obj.get("type") != SA_TOKEN_TYPE or (obj.get("data") or {}).get("token"):
            return
        key = (str(obj["metadata"].get("namespace", "")), str(obj["metadata"].get("name", "")))
        if key in self._pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._pending.add(key)
        loop.call_soon(self._fill, key)

    def _fill(self, key: tuple[str, str]) -> None:
        self._pending.discard(key)
        try:
            self.fill(*key)
        except Exception:
            log.exception("token_fill_failed", namespace=key[0], secret=key[1])

    def fill(self, namespace: str, name: str) -> bool:
        """Populate one Secret now; False when there is nothing (yet) to do."""
        secret = self.store.get_item("", "secrets", namespace, name)
        if secret is None or (secret.get("data") or {}).get("token"):
            return False
        annotations = secret["metadata"].get("annotations") or {}
        sa_name = annotations.get(SA_NAME_ANNOTATION)
        sa = self.store.get_item("", "serviceaccounts", namespace, sa_name) if sa_name else None
        if sa is None:
            return False
        wanted_uid = annotations.get(SA_UID_ANNOTATION)
        if wanted_uid and wanted_uid != sa["metadata"].get("uid"):
            return False
        new = copy.deepcopy(secret)
        new["metadata"].setdefault("annotations", {})[SA_UID_ANNOTATION] = sa["metadata"]["uid"]
        data = new.setdefault("data", {})
        data["ca.crt"] = _b64(self.store.root_ca_pem)
        data["namespace"] = _b64(namespace)
        data["token"] = _b64(self.tokens.issue_legacy(namespace, sa, name))
        self.store.update_item("", "secrets", new)
        return True
