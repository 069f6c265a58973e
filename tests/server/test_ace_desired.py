"""What the server syncs into a cluster with the authorized endpoint on (pure: the store only)."""

from __future__ import annotations

import base64
import time
from pathlib import Path

from kube_api_auth import hashing
from rancher_server.access.endpoint_sync import (
    ATTRIBUTES,
    BINDINGS,
    SECRETS,
    TOKENS,
    desired_objects,
)
from rancher_server.store import SQLiteStore


def names(objs: dict[tuple[str, str], dict[str, object]], coll: str) -> set[str]:
    return {name for (c, name) in objs if c == coll}


def test_members_api_tokens_and_attributes(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "db")
    cid = s.create_cluster("edge", "h").id
    other = s.create_cluster("other", "h2").id
    now = time.time()
    alice = s.create_user("alice", "Alice", "x", groups=["devs"])
    bob = s.create_user("bob", "Bob", "x")  # no binding: not a member
    carol = s.create_user("carol", "Carol", "x")  # member through her group
    s.set_user_groups(carol.id, ["ops"])
    s.create_binding(cid, "user", alice.id, "read-only")
    s.create_binding(cid, "group", "ops", "cluster-member")
    s.create_binding(other, "user", bob.id, "cluster-owner")
    h = hashing.create_hash("secret")
    live = s.create_token(alice.id, h, kind="api", description="kubeconfig", expires_at=now + 60)
    s.create_token(alice.id, h, kind="api", description="old", expires_at=now - 1)
    s.create_token(alice.id, h, kind="login", description="ui", expires_at=None)
    s.create_token(bob.id, h, kind="api", description="kubeconfig", expires_at=None)
    carols = s.create_token(carol.id, h, kind="api", description="kubeconfig", expires_at=None)

    objs = desired_objects(s, cid, now)
    assert names(objs, TOKENS) == {live.id, carols.id}  # not expired, not login, members only
    assert names(objs, SECRETS) == names(objs, TOKENS)
    assert names(objs, ATTRIBUTES) == {alice.id, carol.id}
    secret = objs[(SECRETS, live.id)]
    stored = base64.b64decode(secret["data"]["hash"]).decode()  # type: ignore[index]
    assert stored == h and hashing.verify_hash(stored, "secret")
    tok = objs[(TOKENS, live.id)]
    assert tok["userName"] == alice.id and tok["clusterName"] == cid and tok["enabled"] is True
    assert tok["expiresAt"].endswith("Z")  # type: ignore[union-attr]
    assert objs[(ATTRIBUTES, carol.id)]["groups"] == ["ops"]
    roles = {n: o["roleRef"]["name"] for (c, n), o in objs.items() if c == BINDINGS}  # type: ignore[index]
    assert roles == {f"cattle-crb-{alice.id}": "view", f"cattle-crb-{carol.id}": "edit"}

    # A disabled user and a group change reach the desired state at once.
    s.update_user(alice.id, enabled=False)
    s.set_user_groups(carol.id, ["ops", "oncall"])
    objs = desired_objects(s, cid, now)
    assert names(objs, TOKENS) == {carols.id}
    assert alice.id not in names(objs, ATTRIBUTES)
    assert sorted(objs[(ATTRIBUTES, carol.id)]["groups"]) == ["oncall", "ops"]  # type: ignore[arg-type]
    s.close()
