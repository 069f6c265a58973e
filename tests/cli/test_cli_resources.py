"""Every resource command against the running server: tables by default (readable times),
``-o json`` round trips, names or ids, and unknown names answered in one line."""

from __future__ import annotations

import pytest
import yaml

from tests.procs import ServerProc

from .conftest import Cli, one_error_line

pytestmark = pytest.mark.timeout(90)


def test_clusters_projects_users_bindings_round_trip(admin: Cli, server: ServerProc) -> None:
    created = admin.json("clusters", "create", "shop")
    cid = created["id"]
    assert created["importCommand"].startswith("kubectl apply -f https://")
    table = admin.ok("clusters")
    assert "shop" in table and "pending" in table and "just now" in table
    listed = admin.json("clusters", "ls")
    assert [c["state"] for c in listed if c["id"] == cid] == ["pending"]
    assert yaml.safe_load(admin.ok("clusters", "show", "shop", "-o", "yaml"))["id"] == cid
    human = admin("clusters", "create", "books")
    assert human.returncode == 0 and "cluster-agent import" in human.stdout
    assert "kubectl apply -f" in human.stdout

    project = admin.json("projects", "create", "web", "--cluster", "shop",
                         "--description", "the shop's web")
    assert project["clusterId"] == cid and project["id"].startswith(f"{cid}:")
    assert project["id"] in {p["id"] for p in admin.json("projects", "ls", "--cluster", cid)}

    bob = admin.json("users", "create", "bob", "--password", "bob-password-12345")
    assert bob["username"] == "bob" and bob["admin"] is False
    assert "bob" in {u["username"] for u in admin.json("users")}

    roles = {r["id"] for r in admin.json("bindings", "roles", "--context", "project")}
    assert "project-member" in roles
    crtb = admin.json("bindings", "create", "--cluster", "shop", "--user", "bob",
                      "--role", "cluster-member")
    prtb = admin.json("bindings", "create", "--project", "web", "--cluster", "shop",
                      "--user", "bob", "--role", "project-member")
    assert crtb["userId"] == bob["id"] and prtb["projectId"] == project["id"]
    ids = {b["id"] for b in admin.json("bindings", "ls", "--cluster", "shop")}
    assert {crtb["id"], prtb["id"]} <= ids
    assert "project-member" in admin.ok("bindings")
    admin.ok("bindings", "delete", crtb["id"], prtb["id"])
    assert not {crtb["id"], prtb["id"]} & {b["id"] for b in admin.json("bindings")}

    admin.ok("projects", "delete", project["id"])
    admin.ok("users", "delete", "bob")
    deleted = admin.json("clusters", "delete", "shop", "books")
    assert {d["name"] for d in deleted} == {"shop", "books"}
    assert not {"shop", "books"} & {c["name"] for c in admin.json("clusters")}


def test_unknown_names_and_refusals_are_one_line_exit_1(admin: Cli, server: ServerProc) -> None:
    out = admin("clusters", "delete", "no-such-cluster")
    assert out.returncode == 1 and "rancher clusters" in one_error_line(out)
    out = admin("users", "create", "admin", "--password", "another-password-123")
    assert out.returncode == 1
    one_error_line(out)
    out = admin("bindings", "create", "--cluster", "x", "--role", "cluster-member")
    assert out.returncode == 2 and "--user or --group" in one_error_line(out)
    out = admin("tokens", "create", "--ttl", "soon")
    assert out.returncode == 2
    one_error_line(out)


def test_tokens_table_and_json(admin: Cli) -> None:
    created = admin.json("tokens", "create", "--description", "ci", "--ttl", "2h")
    assert created["token"].startswith(created["id"] + ":")
    table = admin.ok("tokens")
    assert "ci" in table and "in 1 hour" in table  # expiry shown as people read it
    admin.ok("tokens", "delete", created["id"])
    assert created["id"] not in {t["id"] for t in admin.json("tokens")}
