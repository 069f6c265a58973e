"""The bootstrap ClusterRoles and ClusterRoleBindings a fresh kube-apiserver creates.

Only the ones kubectl and our components rely on: cluster-admin, the aggregated
admin/edit/view and their ``system:aggregate-to-*`` parts, system:discovery,
system:basic-user and system:public-info-viewer (plugin/pkg/auth/authorizer/rbac/bootstrappolicy).
"""

from __future__ import annotations

from typing import Any

from kubesim.store import Store

RBAC_GROUP = "rbac.authorization.k8s.io"
AGG = "rbac.authorization.k8s.io/aggregate-to-"
READ = ["get", "list", "watch"]
WRITE = ["create", "delete", "deletecollection", "patch", "update"]
READ_WRITE = sorted(READ + WRITE)  # PolicyRuleBuilder sorts the verbs of a rule


def _rule(verbs: list[str], groups: list[str], resources: list[str]) -> dict[str, Any]:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources}


def _url_rule(verbs: list[str], urls: list[str]) -> dict[str, Any]:
    return {"verbs": verbs, "nonResourceURLs": urls}


def _meta(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    all_labels = {"kubernetes.io/bootstrapping": "rbac-defaults", **(labels or {})}
    return {
        "name": name,
        "labels": all_labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    }


def _role(
    name: str,
    rules: list[dict[str, Any]],
    labels: dict[str, str] | None = None,
    aggregate_from: str = "",
) -> dict[str, Any]:
    role: dict[str, Any] = {
        "kind": "ClusterRole",
        "apiVersion": f"{RBAC_GROUP}/v1",
        "metadata": _meta(name, labels),
    }
    if aggregate_from:
        selector = {"matchLabels": {AGG + aggregate_from: "true"}}
        role["aggregationRule"] = {"clusterRoleSelectors": [selector]}
    role["rules"] = rules
    return role


def _binding(name: str, role: str, groups: list[str]) -> dict[str, Any]:
    return {
        "kind": "ClusterRoleBinding",
        "apiVersion": f"{RBAC_GROUP}/v1",
        "metadata": _meta(name),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "Group", "apiGroup": RBAC_GROUP, "name": g} for g in groups],
    }


_VIEW_CORE = [
    "configmaps", "endpoints", "persistentvolumeclaims", "persistentvolumeclaims/status", "pods",
    "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
    "services/status",
]  # fmt: skip
_VIEW_CORE_STATUS = [
    "bindings", "events", "limitranges", "namespaces/status", "pods/log", "pods/status",
    "replicationcontrollers/status", "resourcequotas", "resourcequotas/status",
]  # fmt: skip
_APPS = ["daemonsets", "deployments", "replicasets", "statefulsets"]
_APPS_VIEW = [
    "controllerrevisions", "daemonsets", "daemonsets/status", "deployments", "deployments/scale",
    "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets",
    "statefulsets/scale", "statefulsets/status",
]  # fmt: skip

# the extensions group is no longer served, but the bootstrap roles still name it
_EXTENSIONS_EDIT = [
    "daemonsets", "deployments", "deployments/rollback", "deployments/scale", "ingresses",
    "networkpolicies", "replicasets", "replicasets/scale", "replicationcontrollers/scale",
]  # fmt: skip
_EXTENSIONS_VIEW = [
    "daemonsets", "daemonsets/status", "deployments", "deployments/scale", "deployments/status",
    "ingresses", "ingresses/status", "networkpolicies", "replicasets", "replicasets/scale",
    "replicasets/status", "replicationcontrollers/scale",
]  # fmt: skip


def cluster_roles() -> list[dict[str, Any]]:
    view_rules = [
        _rule(READ, [""], _VIEW_CORE),
        _rule(READ, [""], _VIEW_CORE_STATUS),
        _rule(READ, [""], ["namespaces"]),
        _rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
        _rule(READ, ["apps"], _APPS_VIEW),
        _rule(
            READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]
        ),
        _rule(READ, ["batch"], ["cronjobs", "cronjobs/status", "jobs", "jobs/status"]),
        _rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        _rule(READ, ["extensions"], _EXTENSIONS_VIEW),
        _rule(READ, ["networking.k8s.io"], ["ingresses", "ingresses/status", "networkpolicies"]),
    ]
    edit_rules = [
        _rule(
            READ,
            [""],
            [
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
        ),
        _rule(["impersonate"], [""], ["serviceaccounts"]),
        _rule(WRITE, [""], ["pods", "pods/attach", "pods/exec", "pods/portforward", "pods/proxy"]),
        _rule(["create"], [""], ["pods/eviction"]),
        _rule(
            WRITE,
            [""],
            [
                "configmaps",
                "endpoints",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        _rule(["create"], [""], ["serviceaccounts/token"]),
        _rule(
            WRITE,
            ["apps"],
            [
                *_APPS,
                "deployments/rollback",
                "deployments/scale",
                "replicasets/scale",
                "statefulsets/scale",
            ],
        ),
        _rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
        _rule(WRITE, ["batch"], ["cronjobs", "jobs"]),
        _rule(WRITE, ["extensions"], _EXTENSIONS_EDIT),
        _rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
        _rule(WRITE, ["networking.k8s.io"], ["ingresses", "networkpolicies"]),
        _rule(READ_WRITE, ["coordination.k8s.io"], ["leases"]),
    ]
    admin_rules = [
        _rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
        _rule(READ_WRITE, [RBAC_GROUP], ["rolebindings", "roles"]),
    ]
    return [
        _role(
            "cluster-admin",
            [_rule(["*"], ["*"], ["*"]), _url_rule(["*"], ["*"])],
        ),
        _role("admin", [], aggregate_from="admin"),
        _role("edit", [], {AGG + "admin": "true"}, aggregate_from="edit"),
        _role("view", [], {AGG + "admin": "true", AGG + "edit": "true"}, aggregate_from="view"),
        _role("system:aggregate-to-admin", admin_rules, {AGG + "admin": "true"}),
        _role("system:aggregate-to-edit", edit_rules, {AGG + "edit": "true"}),
        _role("system:aggregate-to-view", view_rules, {AGG + "view": "true"}),
        _role(
            "system:discovery",
            [
                _url_rule(
                    ["get"],
                    [
                        "/api",
                        "/api/*",
                        "/apis",
                        "/apis/*",
                        "/healthz",
                        "/livez",
                        "/openapi",
                        "/openapi/*",
                        "/readyz",
                        "/version",
                        "/version/",
                    ],
                )
            ],
        ),
        _role(
            "system:basic-user",
            [
                _rule(
                    ["create"],
                    ["authorization.k8s.io"],
                    ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                _rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"]),
            ],
        ),
        _role(
            "system:public-info-viewer",
            [_url_rule(["get"], ["/healthz", "/livez", "/readyz", "/version", "/version/"])],
        ),
        _role(
            "system:auth-delegator",
            [
                _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
                _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"]),
            ],
        ),
        _role(
            "system:service-account-issuer-discovery",
            [
                _url_rule(
                    ["get"],
                    [
                        "/.well-known/openid-configuration",
                        "/.well-known/openid-configuration/",
                        "/openid/v1/jwks",
                        "/openid/v1/jwks/",
                    ],
                )
            ],
        ),
        _role(
            "system:monitoring",
            [
                _url_rule(
                    ["get"],
                    [
                        "/healthz",
                        "/healthz/*",
                        "/livez",
                        "/livez/*",
                        "/metrics",
                        "/metrics/slis",
                        "/readyz",
                        "/readyz/*",
                    ],
                )
            ],
        ),
    ]


def cluster_role_bindings() -> list[dict[str, Any]]:
    return [
        _binding("cluster-admin", "cluster-admin", ["system:masters"]),
        _binding("system:discovery", "system:discovery", ["system:authenticated"]),
        _binding("system:basic-user", "system:basic-user", ["system:authenticated"]),
        _binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            ["system:authenticated", "system:unauthenticated"],
        ),
        _binding(
            "system:service-account-issuer-discovery",
            "system:service-account-issuer-discovery",
            ["system:serviceaccounts"],
        ),
        _binding("system:monitoring", "system:monitoring", ["system:monitoring"]),
    ]


def seed_bootstrap_rbac(store: Store) -> None:
    """Create the bootstrap ClusterRoles and ClusterRoleBindings that do not exist yet."""
    for resource, objs in (
        ("clusterroles", cluster_roles()),
        ("clusterrolebindings", cluster_role_bindings()),
    ):
        for obj in objs:
            name = obj["metadata"]["name"]
            if store.get_item(RBAC_GROUP, resource, "", name) is not None:
                continue
            store.create_item(RBAC_GROUP, resource, obj)
