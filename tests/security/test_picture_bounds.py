"""What the server keeps of a cluster's picture is bounded in bytes, not only in counts: a node
over ``MAX_NODE_REPORT_BYTES`` or a picture over ``MAX_REPORT_BYTES`` cuts the agent off; events
beyond ``MAX_PICTURE_EVENT_BYTES`` push the oldest out."""

from __future__ import annotations

import pytest

from rancher_server.clusters import picture as picture_module
from rancher_server.clusters.picture import ClusterPicture
from rancher_server.clusters.reports import ReportLimitExceeded, estimate_bytes
from rancher_server.constants import MAX_NODE_REPORT_BYTES, MAX_PICTURE_EVENT_BYTES
from rancher_tunnel.messages import REMOVED_NODE, Event, NodeInfo, Removed

LABELS = {f"l{i}": "v" * 200 for i in range(250)}  # a node info near the message size limit
TYPICAL_LABELS = {f"example.io/label-{i}": "value" for i in range(10)}
SMALL_BOUND_BYTES = 256 * 1024


def test_a_node_info_over_its_bound_cuts_the_agent_off() -> None:
    big = NodeInfo(name="node-0", labels=LABELS)
    assert estimate_bytes(big) > MAX_NODE_REPORT_BYTES
    with pytest.raises(ReportLimitExceeded, match="node info"):
        ClusterPicture().apply(big)


def test_nodes_over_the_picture_bound_cut_the_agent_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(picture_module, "MAX_REPORT_BYTES", SMALL_BOUND_BYTES)
    picture = ClusterPicture()
    with pytest.raises(ReportLimitExceeded, match="over"):
        for i in range(1000):
            picture.apply(NodeInfo(name=f"node-{i}", labels=TYPICAL_LABELS))
    assert 0 < picture.kept_bytes <= SMALL_BOUND_BYTES


def test_removed_nodes_give_their_bytes_back() -> None:
    picture = ClusterPicture()
    for round_ in range(200):  # far more than the bound in total, never more than 1 at a time
        picture.apply(NodeInfo(name=f"node-{round_}", labels=TYPICAL_LABELS))
        picture.apply(Removed(what=REMOVED_NODE, key=f"node-{round_}"))
    assert picture.kept_bytes == 0 and not picture.nodes


def test_events_beyond_their_byte_budget_push_the_oldest_out() -> None:
    picture = ClusterPicture()
    big = "m" * 50_000
    for i in range(200):
        picture.apply(Event(reason="r", message=big, namespace="ns", name=f"e{i}"))
    assert picture.event_bytes <= MAX_PICTURE_EVENT_BYTES
    assert "ns/e199" in picture.events and "ns/e0" not in picture.events
    assert picture.event_bytes == sum(estimate_bytes(e) for e in picture.events.values())
