from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from cluster_agent.config import ConfigError, Target, from_env
from cluster_agent.dial import parse_target
from rancher_server.tls import generate


def test_requires_server_and_token() -> None:
    with pytest.raises(ConfigError, match="CATTLE_SERVER"):
        from_env({})
    with pytest.raises(ConfigError, match="CATTLE_SERVER"):
        from_env({"CATTLE_SERVER": "http://insecure", "CATTLE_TOKEN": "t"})
    with pytest.raises(ConfigError, match="CATTLE_TOKEN"):
        from_env({"CATTLE_SERVER": "https://s"})


def test_default_allowed_target_is_the_api_server() -> None:
    cfg = from_env(
        {
            "CATTLE_SERVER": "https://s:8443/",
            "CATTLE_TOKEN": "t",
            "KUBERNETES_SERVICE_HOST": "10.43.0.1",
            "KUBERNETES_SERVICE_PORT": "443",
        }
    )
    assert cfg.server == "https://s:8443"
    assert cfg.api_address == "10.43.0.1:443"
    assert cfg.allows("10.43.0.1", 443)
    assert not cfg.allows("10.43.0.1", 80)
    assert not cfg.allows("169.254.169.254", 80)


def test_configured_targets_with_wildcards() -> None:
    cfg = from_env(
        {
            "CATTLE_SERVER": "https://s",
            "CATTLE_TOKEN": "t",
            "CATTLE_ALLOWED_TARGETS": "api:6443, *:10250, metrics:*",
        }
    )
    assert cfg.allows("api", 6443) and cfg.allows("node-7", 10250) and cfg.allows("metrics", 1)
    assert not cfg.allows("api", 6444)
    with pytest.raises(ConfigError):
        Target.parse("no-port")
    with pytest.raises(ConfigError):
        Target.parse("h:abc")


def test_kubeconfig_import(tmp_path: Path) -> None:
    ca_pem = generate(tmp_path / "tls", ["localhost"]).ca_pem
    kc = tmp_path / "kc"
    kc.write_text(
        yaml.safe_dump(
            {
                "current-context": "x",
                "contexts": [{"name": "x", "context": {"cluster": "cl", "user": "u"}}],
                "clusters": [
                    {
                        "name": "cl",
                        "cluster": {
                            "server": "https://127.0.0.1:6443",
                            "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                        },
                    }
                ],
                "users": [{"name": "u", "user": {}}],
            }
        )
    )
    cfg = from_env(
        {"CATTLE_SERVER": "https://s", "CATTLE_TOKEN": "t", "CATTLE_KUBECONFIG": str(kc)}
    )
    assert cfg.api_address == "127.0.0.1:6443" and cfg.api_ca_pem == ca_pem.decode()
    assert cfg.allows("127.0.0.1", 6443)
    bad = tmp_path / "bad"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="kubeconfig"):
        from_env({"CATTLE_SERVER": "https://s", "CATTLE_TOKEN": "t", "CATTLE_KUBECONFIG": str(bad)})


@pytest.mark.parametrize(
    "raw,want",
    [
        ("tcp://10.0.0.1:443", ("10.0.0.1", 443)),
        ("api.local:6443", ("api.local", 6443)),
        ("tcp://[::1]:443", ("::1", 443)),
    ],
)
def test_parse_target(raw: str, want: tuple[str, int]) -> None:
    assert parse_target(raw) == want


@pytest.mark.parametrize(
    "raw", ["udp://x:1", "x", "tcp://x:0", "tcp://x:70000", "tcp://:80", "x:y"]
)
def test_parse_target_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        parse_target(raw)


def test_every_mistake_is_listed_at_once_with_its_variable(tmp_path: Path) -> None:
    env = {
        "CATTLE_SERVER": "http://server:8443",
        "CATTLE_ALLOWED_TARGETS": "api:6443,no-port,*.svc:x",
        "CATTLE_HEALTH_INTERVAL_S": "soon",
        "CATTLE_K8S_TOKEN_FILE": str(tmp_path / "missing"),
    }
    with pytest.raises(ConfigError) as info:
        from_env(env)
    lines = str(info.value).splitlines()
    assert [line.split(" ")[0].rstrip(":") for line in lines] == [
        "CATTLE_SERVER", "CATTLE_TOKEN", "CATTLE_K8S_TOKEN_FILE", "CATTLE_ALLOWED_TARGETS",
        "CATTLE_ALLOWED_TARGETS", "CATTLE_HEALTH_INTERVAL_S"]
    assert "'http://server:8443'" in lines[0]
