"""Rancher-shaped JSON for role templates, global roles and their bindings, projects and project
role template bindings."""

from __future__ import annotations

from typing import Any

from rancher_server.access.templates import Catalog
from rancher_server.api.resources import iso
from rancher_server.auth.providers.principals import is_directory_group
from rancher_server.store import Binding, GlobalBinding, NotFound, Project, RoleTemplate

USER_PRINCIPAL_PREFIX = "local://"
GROUP_PRINCIPAL_PREFIX = "local_group://"
PROJECT_REF_SEP = ":"


def project_ref(cluster_id: str, project_id: str) -> str:
    """Rancher's project reference, ``<cluster>:<project>``."""
    return f"{cluster_id}{PROJECT_REF_SEP}{project_id}"


def parse_project_ref(ref: str) -> tuple[str, str]:
    """(cluster id, project id) of ``<cluster>:<project>``; NotFound if it is not one."""
    cluster_id, sep, project_id = ref.partition(PROJECT_REF_SEP)
    if not sep or not cluster_id or not project_id:
        raise NotFound(f"project {ref!r} not found (project ids are <cluster>:<project>)")
    return cluster_id, project_id


def subject_fields(kind: str, subject: str) -> dict[str, str]:
    if kind == "user":
        return {"userId": subject, "userPrincipalId": USER_PRINCIPAL_PREFIX + subject}
    if is_directory_group(subject):  # a directory group's name is its principal id
        return {"groupName": subject, "groupPrincipalId": subject}
    return {"groupName": subject, "groupPrincipalId": GROUP_PRINCIPAL_PREFIX + subject}


def template_resource(t: RoleTemplate, catalog: Catalog, kind: str = "roleTemplate") -> dict[
        str, Any]:
    return {
        "type": kind, "id": t.id, "name": t.display_name, "context": t.context,
        "rules": [dict(r) for r in t.rules], "roleTemplateIds": list(t.inherits),
        "builtin": t.builtin, "external": t.external, "locked": t.locked, "hidden": t.hidden,
        "description": t.description,
        "downstreamClusterRoles": list(catalog.downstream_roles(t.id)),
        "created": iso(t.created_at) if t.created_at else None,
    }


def project_resource(p: Project) -> dict[str, Any]:
    return {
        "type": "project", "id": project_ref(p.cluster_id, p.id), "projectId": p.id,
        "clusterId": p.cluster_id, "name": p.name, "description": p.description,
        "created": iso(p.created_at),
    }


def project_binding_resource(b: Binding, catalog: Catalog) -> dict[str, Any]:
    assert b.project_id is not None
    return {
        "type": "projectRoleTemplateBinding", "id": b.id, "clusterId": b.cluster_id,
        "projectId": project_ref(b.cluster_id, b.project_id), "roleTemplateId": b.role,
        "downstreamClusterRoles": list(catalog.downstream_roles(b.role)),
        "created": iso(b.created_at), **subject_fields(b.subject_kind, b.subject),
    }


def global_binding_resource(g: GlobalBinding) -> dict[str, Any]:
    return {
        "type": "globalRoleBinding", "id": g.id, "globalRoleId": g.role,
        "created": iso(g.created_at), **subject_fields(g.subject_kind, g.subject),
    }
