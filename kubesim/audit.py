"""The audit log, as kube-apiserver's ``--audit-log-path`` writes it: one ``audit.k8s.io/v1``
``Event`` per line (JSON), at level ``Metadata`` (no bodies), stage ``ResponseComplete``.

What is kept of kube's format: ``auditID`` (also the answer's ``Audit-Id`` header), ``requestURI``,
``verb``, ``user`` (who authenticated), ``impersonatedUser`` (when impersonating), ``sourceIPs``,
``userAgent``, ``objectRef`` (empty fields left out, as kube's ``omitempty``; a create's ``name``
comes from the created object, as kube's ``LogRequestObject`` fills it), ``responseStatus``,
``requestReceivedTimestamp`` and ``stageTimestamp`` (RFC 3339, microseconds, UTC). A request whose
client went away before the answer (the handler is cancelled; a write may have been applied) is
logged without ``responseStatus``. Each line is flushed as it is written, so the file can be read
while the stand-in runs."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import IO, Any

from aiohttp import web

from .authtypes import UserInfo
from .requestinfo import RequestInfo

MUTATING_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})

# Who authenticated, before impersonation replaced the request's user (``admission.USER_KEY``).
AUTHENTICATED_USER_KEY: web.RequestKey[UserInfo] = web.RequestKey(
    "kubesim.authenticated-user", UserInfo)


def micro_time(at: datetime) -> str:
    """metav1.MicroTime's wire form: ``2006-01-02T15:04:05.000000Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now() -> datetime:
    return datetime.now(UTC)


def _user(u: UserInfo) -> dict[str, Any]:
    doc: dict[str, Any] = {"username": u.name}
    if u.uid:
        doc["uid"] = u.uid
    if u.groups:
        doc["groups"] = list(u.groups)
    if u.extra:
        doc["extra"] = {k: list(v) for k, v in u.extra.items()}
    return doc


def _created_meta(resp: web.StreamResponse) -> dict[str, Any]:
    """The metadata of a created object from a JSON answer ({} when there is none to read)."""
    body = resp.body if isinstance(resp, web.Response) else None
    if not isinstance(body, bytes | bytearray) or not body.startswith(b"{"):
        return {}
    try:
        doc = json.loads(body)
    except ValueError:
        return {}
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    return meta if isinstance(meta, dict) else {}


class AuditLog:
    """Appends events to ``path``; ``mutating_only`` keeps reads (get, list, watch) out."""

    def __init__(self, path: str, mutating_only: bool = True) -> None:
        self.path = path
        self.mutating_only = mutating_only
        self._lock = threading.Lock()
        self._file: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def wanted(self, info: RequestInfo) -> bool:
        return not self.mutating_only or info.verb in MUTATING_VERBS

    def event(self, request: web.Request, info: RequestInfo, audit_id: str,
              received: datetime, resp: web.StreamResponse | None, code: int | None,
              user: UserInfo | None) -> dict[str, Any]:
        authenticated = request.get(AUTHENTICATED_USER_KEY) or user
        doc: dict[str, Any] = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
            "auditID": audit_id, "stage": "ResponseComplete", "requestURI": request.path_qs,
            "verb": info.verb,
            "user": _user(authenticated) if authenticated is not None else {},
        }
        if user is not None and authenticated is not None and user is not authenticated:
            doc["impersonatedUser"] = _user(user)
        doc["sourceIPs"] = [request.remote] if request.remote else []
        agent = request.headers.get("User-Agent")
        if agent:
            doc["userAgent"] = agent
        if info.is_resource_request:
            name, namespace = info.name, info.namespace
            if info.verb == "create" and not name and resp is not None and code is not None \
                    and code < 300:
                meta = _created_meta(resp)
                name = str(meta.get("name") or "")
                namespace = namespace or str(meta.get("namespace") or "")
            ref = {"resource": info.resource, "namespace": namespace, "name": name,
                   "apiGroup": info.group, "apiVersion": info.version,
                   "subresource": info.subresource}
            doc["objectRef"] = {k: v for k, v in ref.items() if v}
        if code is not None:
            doc["responseStatus"] = {"metadata": {}, "code": code}
        doc["requestReceivedTimestamp"] = micro_time(received)
        doc["stageTimestamp"] = micro_time(now())
        return doc

    def write(self, doc: dict[str, Any]) -> None:
        line = json.dumps(doc, separators=(",", ":")) + "\n"
        with self._lock:
            if self._file is None:
                return
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
