"""The in-memory object store: one revision counter, a watch cache, kube semantics.

Objects returned by the store are the stored dicts themselves: treat them as read-only and
pass a modified copy to :meth:`Store.update_item`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from . import errors, meta
from .conversion import ALIASES
from .defaults import NAMESPACE_FINALIZER, apply_defaults
from .immutable import check_update
from .logutil import LazyLogger
from .resources import Registry, ResourceType
from .validation import validate_object
from .watchcache import HistoryEvent, WatchCache

GENERATE_NAME_ATTEMPTS = 16
FOREGROUND_FINALIZER = "foregroundDeletion"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
SERVICE_IP_FIRST = 9  # 10.96.0.1 is the kubernetes Service; allocations start at 10.96.0.10
KUBERNETES_SERVICE_IP = "10.96.0.1"
_GENERATION_GROUPS = frozenset({"apps", "apiextensions.k8s.io", "batch", "networking.k8s.io"})
EventCallback = Callable[[str, str, str, dict[str, Any]], None]
Key = tuple[str, str, str, str]  # group, resource, namespace, name

log = LazyLogger(component="kubesim.store")


def _untimed(entries: Any) -> Any:
    if not isinstance(entries, list):
        return entries
    return [
        {k: v for k, v in e.items() if k != "time"} if isinstance(e, dict) else e for e in entries
    ]


class Store:
    """Objects keyed by (group, resource) then (namespace, name); cluster-scoped use ns ''."""

    def __init__(self, registry: Registry | None = None, watch_cache: WatchCache | None = None):
        self.registry = registry or Registry()
        self._data: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
        self._rev = 0
        self._watch_cache = watch_cache or WatchCache()
        self._compacted = 0
        self._subscribers: list[EventCallback] = []
        self._dependents: dict[str, set[Key]] = {}
        self._by_uid: dict[str, Key] = {}
        self.root_ca_pem: str = ""
        self._service_ips = SERVICE_IP_FIRST

    # ------------------------------------------------------------------ basics
    @property
    def revision(self) -> int:
        return self._rev

    @property
    def compacted_revision(self) -> int:
        """Watches must start at or after this revision."""
        return self._compacted

    def compact(self) -> None:
        """Forget the watch history (used after seeding, and by tests)."""
        self._watch_cache.reset(self._rev)
        self._compacted = self._rev

    def resource_type(self, group: str, resource: str) -> ResourceType:
        rt = self.registry.by_group_resource(group, resource)
        if rt is None:
            raise errors.StatusError(
                404, "NotFound", "the server could not find the requested resource", {}
            )
        return rt

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    def history_since(
        self, rv: int, group: str | None = None, resource: str | None = None
    ) -> list[HistoryEvent]:
        """Events after ``rv`` (of one resource, or all); 410 Expired when ``rv`` is older than
        the watch cache's window (see :mod:`kubesim.watchcache`)."""
        return self._watch_cache.since(rv, group, resource)

    def _emit(self, etype: str, group: str, resource: str, obj: dict[str, Any]) -> None:
        self._watch_cache.record(self._rev, etype, group, resource, obj)
        for cb in list(self._subscribers):
            try:
                cb(etype, group, resource, obj)
            except Exception:
                log.exception("subscriber_failed", event=etype, resource=resource)

    def _next_rv(self) -> str:
        self._rev += 1
        return str(self._rev)

    def _bucket(self, group: str, resource: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self._data.setdefault((group, resource), {})

    # ------------------------------------------------------------------ public API (aliases)
    def list_items(
        self, group: str, resource: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        alias = ALIASES.get((group, resource))
        if alias is None:
            return self._list_items(group, resource, namespace)
        return [alias.from_storage(o) for o in self._list_items(*alias.storage, namespace)]

    def get_item(
        self, group: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        alias = ALIASES.get((group, resource))
        if alias is None:
            return self._get_item(group, resource, namespace, name)
        obj = self._get_item(*alias.storage, namespace, name)
        return None if obj is None else alias.from_storage(obj)

    def create_item(
        self, group: str, resource: str, obj: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        alias = ALIASES.get((group, resource))
        if alias is None:
            return self._create_item(group, resource, obj, dry_run=dry_run)
        out = self._create_item(*alias.storage, alias.to_storage(obj), dry_run=dry_run)
        return alias.from_storage(out)

    def update_item(
        self,
        group: str,
        resource: str,
        obj: dict[str, Any],
        subresource: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Replace an object; checks resourceVersion when set (409 Conflict when stale)."""
        alias = ALIASES.get((group, resource))
        if alias is None:
            return self._update_item(group, resource, obj, subresource, dry_run=dry_run)
        out = self._update_item(*alias.storage, alias.to_storage(obj), subresource, dry_run=dry_run)
        return alias.from_storage(out)

    def delete_item(
        self,
        group: str,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        precondition_rv: str | None = None,
        precondition_uid: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any] | None:
        """Delete (or mark for deletion when finalizers remain). Returns the last state."""
        alias = ALIASES.get((group, resource))
        g, r = alias.storage if alias is not None else (group, resource)
        out = self._delete_item(
            g,
            r,
            namespace,
            name,
            propagation=propagation,
            precondition_rv=precondition_rv,
            precondition_uid=precondition_uid,
            dry_run=dry_run,
        )
        if out is None or alias is None:
            return out
        return alias.from_storage(out)

    # ------------------------------------------------------------------ reads
    def _list_items(
        self, group: str, resource: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        bucket = self._data.get((group, resource))
        if not bucket:
            return []
        keys = (
            sorted(bucket) if namespace is None else sorted(k for k in bucket if k[0] == namespace)
        )
        return [bucket[k] for k in keys]

    def _get_item(
        self, group: str, resource: str, namespace: str | None, name: str
    ) -> dict[str, Any] | None:
        bucket = self._data.get((group, resource))
        if not bucket:
            return None
        return bucket.get((namespace or "", name))

    def namespaces_in_use(self, namespace: str) -> list[Key]:
        keys: list[Key] = []
        for (g, r), bucket in self._data.items():
            keys.extend((g, r, ns, n) for (ns, n) in bucket if ns == namespace)
        return keys

    # ------------------------------------------------------------------ writes
    def _create_item(
        self, group: str, resource: str, obj: dict[str, Any], *, dry_run: bool = False
    ) -> dict[str, Any]:
        rt = self.resource_type(group, resource)
        obj = copy.deepcopy(obj)
        obj["apiVersion"] = rt.api_version
        obj["kind"] = rt.kind
        md = meta.metadata(obj)
        ns = md.get("namespace") or ""
        if rt.namespaced:
            if not ns:
                raise errors.bad_request("the server could not find the requested resource")
            self._check_namespace_open(rt, ns, md.get("name") or md.get("generateName", ""))
        else:
            md.pop("namespace", None)
            ns = ""
        bucket = self._bucket(group, resource)
        name = md.get("name") or ""
        if not name and md.get("generateName"):
            for _ in range(GENERATE_NAME_ATTEMPTS):
                candidate = md["generateName"] + meta.random_suffix()
                if (ns, candidate) not in bucket:
                    name = candidate
                    break
            md["name"] = name
        validate_object(rt, obj, name)
        if (ns, name) in bucket:
            raise errors.already_exists(group, resource, name)
        for k in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            md.pop(k, None)
        md["uid"] = meta.new_uid()
        md["creationTimestamp"] = meta.now_rfc3339()
        if self._has_generation(rt, obj):
            md["generation"] = 1
        apply_defaults(rt, obj, self._next_service_ip)
        if dry_run:
            return self._ordered(obj)
        md["resourceVersion"] = self._next_rv()
        obj = self._ordered(obj)
        bucket[(ns, name)] = obj
        self._by_uid[md["uid"]] = (group, resource, ns, name)
        self._index_owners(None, obj, (group, resource, ns, name))
        self._emit("ADDED", group, resource, obj)
        self._after_create(rt, obj)
        return obj

    def _update_item(
        self,
        group: str,
        resource: str,
        obj: dict[str, Any],
        subresource: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Replace an object; checks resourceVersion when set (409 Conflict when stale)."""
        rt = self.resource_type(group, resource)
        obj = copy.deepcopy(obj)
        md = meta.metadata(obj)
        ns = (md.get("namespace") or "") if rt.namespaced else ""
        name = md.get("name") or ""
        bucket = self._bucket(group, resource)
        old = bucket.get((ns, name))
        if old is None:
            raise errors.not_found(group, resource, name)
        old_md = old["metadata"]
        rv = md.get("resourceVersion")
        if rv and rv != old_md["resourceVersion"]:
            raise errors.conflict(group, resource, name, errors.STALE_RV)
        new = self._merge_update(rt, old, obj, subresource)
        if subresource is None:
            check_update(rt, old, new)
            validate_object(rt, new, name)
            if old_md.get("deletionTimestamp"):
                added = [
                    f
                    for f in new["metadata"].get("finalizers") or []
                    if f not in (old_md.get("finalizers") or [])
                ]
                if added:
                    quoted = ", ".join(f'"{f}"' for f in added)
                    msg = (
                        "Forbidden: no new finalizers can be added if the object is being "
                        f"deleted, found new finalizers []string{{{quoted}}}"
                    )
                    raise errors.invalid(
                        group,
                        rt.kind,
                        name,
                        [
                            {
                                "reason": "FieldValueForbidden",
                                "message": msg,
                                "field": "metadata.finalizers",
                            }
                        ],
                    )
        if self._same(old, new):
            return old
        nmd = new["metadata"]
        if "generation" in old_md and subresource is None and self._spec_changed(old, new):
            nmd["generation"] = old_md["generation"] + 1
        if dry_run:
            return new
        nmd["resourceVersion"] = self._next_rv()
        key: Key = (group, resource, ns, name)
        is_namespace = group == "" and resource == "namespaces"
        if nmd.get("deletionTimestamp") and not nmd.get("finalizers") and not is_namespace:
            self._remove(key, new)
            self._after_delete(rt, new)
            return new
        bucket[(ns, name)] = new
        self._index_owners(old, new, key)
        self._emit("MODIFIED", group, resource, new)
        if is_namespace and nmd.get("deletionTimestamp"):
            self._maybe_finish_namespace(name)
        return new

    def _delete_item(
        self,
        group: str,
        resource: str,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        precondition_rv: str | None = None,
        precondition_uid: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any] | None:
        """Delete (or mark for deletion when finalizers remain). Returns the last state."""
        rt = self.resource_type(group, resource)
        ns = (namespace or "") if rt.namespaced else ""
        bucket = self._bucket(group, resource)
        old = bucket.get((ns, name))
        if old is None:
            return None
        old_md = old["metadata"]
        if precondition_uid and precondition_uid != old_md.get("uid"):
            raise errors.StatusError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rt.kind} "{name}": Precondition failed: '
                f"UID in precondition: {precondition_uid}, UID in object meta: {old_md.get('uid')}",
                {"name": name, "kind": rt.kind},
            )
        if precondition_rv and precondition_rv != old_md.get("resourceVersion"):
            raise errors.StatusError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rt.kind} "{name}": the ResourceVersion in the '
                f"precondition ({precondition_rv}) does not match the ResourceVersion in record "
                f"({old_md.get('resourceVersion')}). The object might have been modified",
                {"name": name, "kind": rt.kind},
            )
        if dry_run:
            return old
        key: Key = (group, resource, ns, name)
        if group == "" and resource == "namespaces":
            return self._delete_namespace(old)
        uid = old_md.get("uid", "")
        if propagation == "Orphan":
            self._orphan_dependents(uid)
        elif propagation == "Foreground" and self._dependents.get(uid):
            return self._delete_foreground(key, old)
        finalizers = old_md.get("finalizers") or []
        if finalizers:
            if old_md.get("deletionTimestamp"):
                return old
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = meta.now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["metadata"]["resourceVersion"] = self._next_rv()
            bucket[(ns, name)] = new
            self._emit("MODIFIED", group, resource, new)
            return new
        self._remove(key, old)
        self._after_delete(rt, old)
        return old

    # ------------------------------------------------------------------ internals
    def _delete_foreground(self, key: Key, old: dict[str, Any]) -> dict[str, Any]:
        """The owner stays (deletionTimestamp, foregroundDeletion finalizer) until the garbage
        collector has removed its dependents."""
        group, resource, ns, name = key
        uid = old["metadata"].get("uid", "")
        new = copy.deepcopy(old)
        md = new["metadata"]
        md.setdefault("deletionTimestamp", meta.now_rfc3339())
        md.setdefault("deletionGracePeriodSeconds", 0)
        fins = md.setdefault("finalizers", [])
        if FOREGROUND_FINALIZER not in fins:
            fins.append(FOREGROUND_FINALIZER)
        md["resourceVersion"] = self._next_rv()
        self._bucket(group, resource)[(ns, name)] = new
        self._emit("MODIFIED", group, resource, new)
        self._delete_dependents(uid, "Foreground")
        self._release_foreground(uid)
        return self._get_item(group, resource, ns, name) or new

    def _release_foreground(self, owner_uid: str) -> None:
        key = self._by_uid.get(owner_uid)
        if key is None or self._dependents.get(owner_uid):
            return
        g, r, ns, n = key
        owner = self._get_item(g, r, ns, n)
        fins = (owner or {}).get("metadata", {}).get("finalizers") or []
        if owner is None or FOREGROUND_FINALIZER not in fins:
            return
        new = copy.deepcopy(owner)
        new["metadata"]["finalizers"] = [f for f in fins if f != FOREGROUND_FINALIZER]
        self._update_item(g, r, new)

    def _remove(self, key: Key, last: dict[str, Any]) -> None:
        group, resource, ns, name = key
        bucket = self._bucket(group, resource)
        bucket.pop((ns, name), None)
        self._by_uid.pop(last["metadata"].get("uid", ""), None)
        self._index_owners(last, None, key)
        final = dict(last)
        final["metadata"] = dict(last["metadata"])
        final["metadata"]["resourceVersion"] = self._next_rv()
        self._emit("DELETED", group, resource, final)
        for ref in last["metadata"].get("ownerReferences") or []:
            self._release_foreground(ref.get("uid", ""))

    def _after_delete(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        uid = obj["metadata"].get("uid", "")
        self._delete_dependents(uid, "Background")
        ns = obj["metadata"].get("namespace")
        if rt.namespaced and ns:
            nsobj = self.get_item("", "namespaces", "", ns)
            if nsobj is not None and nsobj["metadata"].get("deletionTimestamp"):
                self._maybe_finish_namespace(ns)

    def _index_owners(
        self, old: dict[str, Any] | None, new: dict[str, Any] | None, key: Key
    ) -> None:
        for o, add in ((old, False), (new, True)):
            if o is None:
                continue
            for ref in o["metadata"].get("ownerReferences") or []:
                uid = ref.get("uid", "")
                deps = self._dependents.setdefault(uid, set())
                if add:
                    deps.add(key)
                else:
                    deps.discard(key)
                    if not deps:
                        self._dependents.pop(uid, None)

    def _delete_dependents(self, uid: str, propagation: str) -> None:
        for g, r, ns, n in sorted(self._dependents.get(uid, set())):
            if self.registry.by_group_resource(g, r) is None:
                continue
            self.delete_item(g, r, ns, n, propagation=propagation)

    def _orphan_dependents(self, uid: str) -> None:
        for g, r, ns, n in sorted(self._dependents.get(uid, set())):
            cur = self.get_item(g, r, ns, n)
            if cur is None:
                continue
            new = copy.deepcopy(cur)
            refs = [x for x in new["metadata"].get("ownerReferences", []) if x.get("uid") != uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences", None)
            self.update_item(g, r, new)

    def _check_namespace_open(self, rt: ResourceType, ns: str, name: str) -> None:
        nsobj = self.get_item("", "namespaces", "", ns)
        if nsobj is None:
            raise errors.not_found("", "namespaces", ns)
        if nsobj["metadata"].get("deletionTimestamp"):
            raise errors.namespace_terminating(rt.group, rt.resource, name, ns)

    def _delete_namespace(self, old: dict[str, Any]) -> dict[str, Any]:
        name = old["metadata"]["name"]
        if old["metadata"].get("deletionTimestamp"):
            return old
        new = copy.deepcopy(old)
        new["metadata"]["deletionTimestamp"] = meta.now_rfc3339()
        new.setdefault("status", {})["phase"] = "Terminating"
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._bucket("", "namespaces")[("", name)] = new
        self._emit("MODIFIED", "", "namespaces", new)
        for g, r, ns, n in self.namespaces_in_use(name):
            if self.registry.by_group_resource(g, r) is not None:
                self.delete_item(g, r, ns, n)
        self._maybe_finish_namespace(name)
        if self.namespaces_in_use(name):
            self._namespace_conditions(name)
        return new

    def _namespace_conditions(self, name: str) -> None:
        """What the namespace controller reports while content with finalizers remains."""
        nsobj = self._get_item("", "namespaces", "", name)
        if nsobj is None:
            return
        counts: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for g, r, ns, n in self.namespaces_in_use(name):
            counts[f"{r}.{g}"] = counts.get(f"{r}.{g}", 0) + 1
            obj = self._get_item(g, r, ns, n) or {}
            for f in obj.get("metadata", {}).get("finalizers") or []:
                finalizers[f] = finalizers.get(f, 0) + 1
        now = meta.now_rfc3339()

        def cond(ctype: str, status: str, reason: str, message: str) -> dict[str, str]:
            return {
                "type": ctype,
                "status": status,
                "lastTransitionTime": now,
                "reason": reason,
                "message": message,
            }

        remaining = ", ".join(f"{k} has {v} resource instances" for k, v in sorted(counts.items()))
        held = ", ".join(f"{k} in {v} resource instances" for k, v in sorted(finalizers.items()))
        conditions = [
            cond(
                "NamespaceDeletionDiscoveryFailure",
                "False",
                "ResourcesDiscovered",
                "All resources successfully discovered",
            ),
            cond(
                "NamespaceDeletionGroupVersionParsingFailure",
                "False",
                "ParsedGroupVersions",
                "All legacy kube types successfully parsed",
            ),
            cond(
                "NamespaceDeletionContentFailure",
                "False",
                "ContentDeleted",
                "All content successfully deleted, may be waiting on finalization",
            ),
            cond(
                "NamespaceContentRemaining",
                "True",
                "SomeResourcesRemain",
                f"Some resources are remaining: {remaining}",
            ),
            cond(
                "NamespaceFinalizersRemaining",
                "True" if held else "False",
                "SomeFinalizersRemain" if held else "ContentHasNoFinalizers",
                f"Some content in the namespace has finalizers remaining: {held}"
                if held
                else "All content-preserving finalizers finished",
            ),
        ]
        new = copy.deepcopy(nsobj)
        new["status"]["conditions"] = conditions
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._bucket("", "namespaces")[("", name)] = new
        self._emit("MODIFIED", "", "namespaces", new)

    def _maybe_finish_namespace(self, name: str) -> None:
        if self.namespaces_in_use(name):
            return
        nsobj = self._get_item("", "namespaces", "", name)
        if nsobj is None or not nsobj["metadata"].get("deletionTimestamp"):
            return
        finalizers = (nsobj.get("spec") or {}).get("finalizers") or []
        others = [f for f in finalizers if f != NAMESPACE_FINALIZER]
        if others:
            # the namespace controller only removes its own finalizer
            if others != finalizers:
                new = copy.deepcopy(nsobj)
                new["spec"]["finalizers"] = others
                new["metadata"]["resourceVersion"] = self._next_rv()
                self._bucket("", "namespaces")[("", name)] = new
                self._emit("MODIFIED", "", "namespaces", new)
            return
        self._remove(("", "namespaces", "", name), nsobj)

    def _has_generation(self, rt: ResourceType, obj: dict[str, Any]) -> bool:
        return rt.group in _GENERATION_GROUPS or rt.crd is not None

    @staticmethod
    def _spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
        skip = ("metadata", "status", "apiVersion", "kind")
        a = {k: v for k, v in old.items() if k not in skip}
        b = {k: v for k, v in new.items() if k not in skip}
        return a != b

    @staticmethod
    def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
        if {k: v for k, v in old.items() if k != "metadata"} != {
            k: v for k, v in new.items() if k != "metadata"
        }:
            return False
        om = {k: v for k, v in old["metadata"].items() if k != "resourceVersion"}
        nm = {k: v for k, v in new["metadata"].items() if k != "resourceVersion"}
        om["managedFields"] = _untimed(om.get("managedFields"))
        nm["managedFields"] = _untimed(nm.get("managedFields"))
        return om == nm

    def _merge_update(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        obj: dict[str, Any],
        subresource: str | None,
    ) -> dict[str, Any]:
        old_md = old["metadata"]
        if subresource == "finalize":
            new = copy.deepcopy(old)
            new.setdefault("spec", {})["finalizers"] = list(
                (obj.get("spec") or {}).get("finalizers") or []
            )
            return self._ordered(new)
        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            return self._ordered(new)
        new = obj
        new["apiVersion"] = rt.api_version
        new["kind"] = rt.kind
        md = new["metadata"]
        for k in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
            if k in old_md:
                md[k] = old_md[k]
            else:
                md.pop(k, None)
        if "generation" in old_md:
            md["generation"] = old_md["generation"]
        if "managedFields" not in md and "managedFields" in old_md:
            md["managedFields"] = old_md["managedFields"]
        if rt.has_sub("status"):
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if rt.group == "" and rt.resource == "namespaces":
            new.setdefault("spec", {}).setdefault("finalizers", [NAMESPACE_FINALIZER])
            new["status"] = old.get("status", {"phase": "Active"})
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
        return self._ordered(new)

    def _next_service_ip(self) -> str:
        self._service_ips += 1
        n = self._service_ips
        return f"10.96.{n // 250}.{n % 250 + 1}"

    def _after_create(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Mimic the controllers that populate a new namespace."""
        if rt.group == "" and rt.resource == "namespaces":
            ns = obj["metadata"]["name"]
            self.create_item(
                "", "serviceaccounts", {"metadata": {"name": "default", "namespace": ns}}
            )
            self.create_item(
                "",
                "configmaps",
                {
                    "metadata": {
                        "name": ROOT_CA_CONFIGMAP,
                        "namespace": ns,
                        "annotations": {
                            "kubernetes.io/description": (
                                "Contains a CA bundle that can be used to verify the "
                                "kube-apiserver when using internal endpoints such as the "
                                "internal service IP or kubernetes.default.svc. No other usage "
                                "is guaranteed across distributions of Kubernetes clusters."
                            )
                        },
                    },
                    "data": {"ca.crt": self.root_ca_pem},
                },
            )

    @staticmethod
    def _ordered(obj: dict[str, Any]) -> dict[str, Any]:
        """kind, apiVersion, metadata first (as kube-apiserver serializes)."""
        out: dict[str, Any] = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion")}
        md = obj.get("metadata", {})
        order = (
            "name",
            "generateName",
            "namespace",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "labels",
            "annotations",
            "ownerReferences",
            "finalizers",
            "managedFields",
        )
        omd = {k: md[k] for k in order if k in md}
        omd.update({k: v for k, v in md.items() if k not in omd})
        out["metadata"] = omd
        for k, v in obj.items():
            if k not in out:
                out[k] = v
        return out

    def seed(self, api_port: int = 443) -> None:
        """The default namespaces (each with its ServiceAccount and root CA ConfigMap) and the
        ``kubernetes`` Service with its Endpoints."""
        for ns in DEFAULT_NAMESPACES:
            if self.get_item("", "namespaces", "", ns) is None:
                self.create_item("", "namespaces", {"metadata": {"name": ns}})
        if self.get_item("", "services", "default", "kubernetes") is None:
            labels = {"component": "apiserver", "provider": "kubernetes"}
            self.create_item(
                "",
                "services",
                {
                    "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
                    "spec": {
                        "clusterIP": KUBERNETES_SERVICE_IP,
                        "ports": [
                            {
                                "name": "https",
                                "port": 443,
                                "protocol": "TCP",
                                "targetPort": api_port,
                            }
                        ],
                    },
                },
            )
            self.create_item(
                "",
                "endpoints",
                {
                    "metadata": {
                        "name": "kubernetes",
                        "namespace": "default",
                        "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"},
                    },
                    "subsets": [
                        {
                            "addresses": [{"ip": "127.0.0.1"}],
                            "ports": [{"name": "https", "port": api_port, "protocol": "TCP"}],
                        }
                    ],
                },
            )
