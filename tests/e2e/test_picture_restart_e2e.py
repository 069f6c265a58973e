"""What survives a server restart (real processes): a cluster's last state and since when, and its
last node counts (shown as lastKnown until its agent's snapshot is in again)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.picture_stack import PictureStack
from tests.procs import wait_until

pytestmark = pytest.mark.simcluster
WITHIN_S = 20.0


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[PictureStack]:
    s = PictureStack(tmp_path)
    try:
        yield s.start()
    finally:
        s.stop()


def restart_server(stack: PictureStack) -> None:
    assert stack.server is not None
    stack.server.stop()
    stack.server.start()


def test_state_and_since_survive_a_restart(stack: PictureStack) -> None:
    active = stack.cluster()
    assert active["state"] == "active"
    restart_server(stack)  # the agent reconnects: active since before the restart
    wait_until(lambda: stack.cluster()["state"] == "active", WITHIN_S, what="active again")
    assert stack.cluster()["stateSince"] == active["stateSince"]

    stack.kill_agent()
    wait_until(lambda: stack.cluster()["state"] == "unavailable", WITHIN_S, what="unavailable")
    down = stack.cluster()
    restart_server(stack)
    after = stack.cluster()
    assert after["state"] == "unavailable" and after["stateSince"] == down["stateSince"]
    assert after["lastKnown"]["nodeCount"] == 2 and after["lastKnown"]["state"] == "unavailable"

    stack.start_agent()  # active again: since now, and nothing "last known" any more
    back = stack.cluster()
    assert back["stateSince"] > down["stateSince"] and "lastKnown" not in back
