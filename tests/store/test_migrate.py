"""``rancher-server store migrate``: SQLite into etcd, idempotently; the CLI on ``--store etcd``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rancher_server.store import AuditEntry, RoleTemplate, SQLiteStore
from rancher_server.store.etcd import EtcdStore
from rancher_server.store.etcd_migrate import migrate
from tests.store.conftest import EtcdMember

CLI_TIMEOUT_S = 60


def _fill(path: Path) -> SQLiteStore:
    s = SQLiteStore(path)
    admin = s.create_user("admin", "Admin", "scrypt-hash", is_admin=True, groups=["ops"])
    c = s.create_cluster("prod", "token-hash")
    s.issue_agent_credential(c.id, "credential-hash")
    s.record_registration(c.id, "10.0.0.1:6443", "PEM")
    p = s.create_project(c.id, "web", "shop")
    s.create_binding(c.id, "group", "ops", "cluster-owner")
    s.create_binding(c.id, "user", admin.id, "project-member", project_id=p.id)
    s.create_global_binding("group", "ops", "users-manage")
    s.create_token(admin.id, "secret-hash", kind="api", description="ci", expires_at=None)
    s.create_template(RoleTemplate(id="auditor", display_name="A", context="global",
                                   rules=({"apiGroups": [""], "resources": ["pods"],
                                           "verbs": ["get"]},)))
    s.set_setting("server-url", "https://rancher.example")
    s.append_audit([AuditEntry(time.time(), admin.id, "login", "", "ok", "127.0.0.1")])
    return s


def test_migrate_copies_everything_once(tmp_path: Path, etcd_member: EtcdMember,
                                        etcd_prefix: bytes) -> None:
    src = _fill(tmp_path / "rancher.db")
    first = migrate(tmp_path / "rancher.db", etcd_member.url, etcd_prefix)
    assert first.changed and not first.conflicts
    again = migrate(tmp_path / "rancher.db", etcd_member.url, etcd_prefix)
    assert not again.changed and again.summary().startswith("nothing to do")
    dst = EtcdStore(etcd_member.url, prefix=etcd_prefix)
    try:
        assert dst.list_clusters() == src.list_clusters()
        assert dst.list_users() == src.list_users()
        assert dst.list_tokens() == src.list_tokens()
        assert dst.list_bindings() == src.list_bindings()
        assert dst.list_global_bindings() == src.list_global_bindings()
        assert dst.list_projects() == src.list_projects()
        assert dst.list_templates() == src.list_templates()
        assert dst.get_setting("server-url") == "https://rancher.example"
        cluster = src.list_clusters()[0]
        assert dst.cluster_by_agent_credential_hash("credential-hash") == cluster
        assert dst.cluster_by_token_hash("token-hash") == cluster
        assert [a.action for a in dst.list_audit(10)] == ["login"]
        admin = dst.user_by_username("admin")
        assert admin is not None and admin.is_admin
    finally:
        dst.close()
        src.close()


def test_cli_migrate_then_run_on_etcd(tmp_path: Path, etcd_member: EtcdMember) -> None:
    _fill(tmp_path / "rancher.db").close()
    env = {**os.environ, "LOG_FORMAT": "json"}
    env.pop("RANCHER_STORE", None)
    base = [sys.executable, "-m", "rancher_server", "--data-dir", str(tmp_path)]
    runs = [subprocess.run([*base, "store", "migrate", "--to", etcd_member.url],
                           capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env,
                           check=False) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    first, second = (json.loads(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert first["changed"] and not second["changed"]
    assert second["summary"].startswith("nothing to do")
    for r in runs:  # hashes are copied, never printed
        assert "hash" not in r.stdout.replace("token_hash", "") and "hash" not in r.stderr
    listed = subprocess.run([*base, "--store", etcd_member.url, "cluster", "list"],
                            capture_output=True, text=True, timeout=CLI_TIMEOUT_S, env=env,
                            check=True)
    assert [c["name"] for c in json.loads(listed.stdout)] == ["prod"]
    env["RANCHER_STORE"] = etcd_member.url
    made = subprocess.run([*base, "cluster", "create", "staging"], capture_output=True,
                          text=True, timeout=CLI_TIMEOUT_S, env=env, check=True)
    assert json.loads(made.stdout)["name"] == "staging"
    s = SQLiteStore(tmp_path / "rancher.db")
    assert [c.name for c in s.list_clusters()] == ["prod"]  # SQLite untouched
    s.close()
