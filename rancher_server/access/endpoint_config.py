"""Per-cluster setting of the authorized cluster endpoint, kept in the store's settings as
``ace:<cluster id>`` (JSON). Read by the kubeconfig builder and the sync (see :mod:`.ace`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from rancher_server.store import Store

SETTING_PREFIX = "ace:"


@dataclass(frozen=True)
class AceConfig:
    enabled: bool = False
    fqdn: str = ""  # host:port users reach directly; default: the API address the agent reported
    ca_cert: str = ""  # PEM; default: the CA the agent reported

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def get_config(store: Store, cluster_id: str) -> AceConfig:
    raw = store.get_setting(SETTING_PREFIX + cluster_id)
    if not raw:
        return AceConfig()
    doc = json.loads(raw)
    return AceConfig(
        bool(doc.get("enabled")), str(doc.get("fqdn", "")), str(doc.get("ca_cert", ""))
    )


def set_config(store: Store, cluster_id: str, cfg: AceConfig) -> None:
    store.set_setting(SETTING_PREFIX + cluster_id, cfg.to_json())
