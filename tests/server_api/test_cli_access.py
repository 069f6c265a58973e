"""The CLI's role-template, project, global-role and binding commands, run as the operator runs
them (a process on the server's data directory), checked in the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from rancher_server.store import SQLiteStore

CLI_TIMEOUT_S = 60
RULE = '{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}'


def cli(data_dir: Path, *args: str, ok: bool = True) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "rancher_server", "--data-dir", str(data_dir), *args],
        capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False,
    )
    if not ok:
        assert out.returncode == 1, out
        return out.stderr
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip() else None


def test_templates_projects_bindings_and_global_roles(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = SQLiteStore(data / "rancher.db")
    admin = store.create_user("admin", "", "h", is_admin=True)
    bob = store.create_user("bob", "", "h", groups=["devs"])
    cid = store.create_cluster("prod", "th").id
    store.close()

    listed = cli(data, "role-template", "list", "--context", "project")
    assert {"project-owner", "project-member", "read-only"} <= {t["id"] for t in listed}
    assert all(not t["hidden"] for t in listed)
    created = cli(data, "role-template", "create", "pod-reader", "--context", "project",
                  "--name", "Pod Reader", "--inherits", "kube-view", "--locked")
    assert created["locked"] and created["inherits"] == ["kube-view"]
    assert "role template 'nope' not found" in cli(
        data, "role-template", "create", "x", "--context", "project", "--name", "X",
        "--inherits", "nope", ok=False)
    assert "built in" in cli(data, "role-template", "delete", "cluster-owner", ok=False)

    project = cli(data, "project", "create", "--cluster", cid, "web")
    ref = f"{cid}:{project['id']}"
    assert {p["name"] for p in cli(data, "project", "list", "--cluster", cid)} == {
        "Default", "System", "web"}
    binding = cli(data, "binding", "create", "--project", ref, "--user", "bob", "--role",
                  "project-member")
    assert binding["project_id"] == project["id"] and binding["cluster_id"] == cid
    assert "locked" in cli(data, "binding", "create", "--project", ref, "--group", "devs",
                           "--role", "pod-reader", ok=False)
    assert "not for a project binding" in cli(
        data, "binding", "create", "--project", ref, "--user", "bob", "--role", "cluster-owner",
        ok=False)
    crtb = cli(data, "binding", "create", "--cluster", cid, "--group", "devs", "--role",
               "nodes-view")
    assert crtb["project_id"] is None and crtb["role"] == "nodes-view"
    default = next(p for p in cli(data, "project", "list", "--cluster", cid)
                   if p["name"] == "Default")
    assert "cannot be deleted" in cli(data, "project", "delete", f"{cid}:{default['id']}",
                                      ok=False)
    cli(data, "project", "delete", ref)

    cli(data, "global-role", "bind", "--user", "bob", "--role", "users-manage")
    assert "not for a global binding" in cli(data, "global-role", "bind", "--user", "bob",
                                             "--role", "project-owner", ok=False)
    assert "last binding" in cli(data, "global-role", "unbind", "--user", "admin", "--role",
                                 "admin", ok=False)
    cli(data, "global-role", "bind", "--group", "devs", "--role", "admin")
    cli(data, "global-role", "unbind", "--user", "admin", "--role", "admin")

    store = SQLiteStore(data / "rancher.db")
    try:
        assert store.list_bindings(cid, project["id"]) == []  # went with the project
        assert [b.id for b in store.list_bindings(cid)] == [crtb["id"]]
        assert {g.role for g in store.global_bindings_for(bob.id, bob.groups)} == {
            "user", "users-manage", "admin"}
        assert not store.get_user(admin.id).is_admin
    finally:
        store.close()
    cli(data, "binding", "delete", crtb["id"])
    cli(data, "role-template", "delete", "pod-reader")
