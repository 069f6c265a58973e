"""Reading kubeconfigs and the in-cluster environment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kube_api_auth import kubeapi
from tests import tlsutil

pytestmark = pytest.mark.timeout(10)


def write(path: Path, cluster: dict[str, object], user: dict[str, object]) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "c",
                "clusters": [{"name": "k", "cluster": cluster}],
                "users": [{"name": "u", "user": user}],
                "contexts": [
                    {"name": "c", "context": {"cluster": "k", "user": "u"}},
                    {"name": "other", "context": {"cluster": "missing", "user": "u"}},
                ],
            }
        )
    )
    return path


def test_relative_ca_path_and_token_file(tmp_path: Path) -> None:
    cert, _ = tlsutil.self_signed(tmp_path)
    (tmp_path / "tok").write_text("abc\n")
    cfg = write(
        tmp_path / "kc",
        {"server": "https://127.0.0.1:1/", "certificate-authority": cert.name},
        {"tokenFile": str(tmp_path / "tok")},
    )
    target = kubeapi.from_kubeconfig(cfg)
    assert target.base_url == "https://127.0.0.1:1"
    assert target.ssl_context is not False
    assert target.headers() == {"Authorization": "Bearer abc"}


def test_client_certificate_files(tmp_path: Path) -> None:
    cert, key = tlsutil.self_signed(tmp_path)
    cfg = write(
        tmp_path / "kc",
        {"server": "https://h:1", "insecure-skip-tls-verify": True},
        {"client-certificate": str(cert), "client-key": str(key)},
    )
    target = kubeapi.from_kubeconfig(cfg)
    assert target.headers() == {}


def test_errors_name_the_problem(tmp_path: Path) -> None:
    cfg = write(tmp_path / "kc", {"server": "http://h:1"}, {})
    with pytest.raises(kubeapi.KubeConfigError, match="no cluster named 'missing'"):
        kubeapi.from_kubeconfig(cfg, "other")
    with pytest.raises(kubeapi.KubeConfigError, match="no context named 'nope'"):
        kubeapi.from_kubeconfig(cfg, "nope")
    with pytest.raises(kubeapi.KubeConfigError, match="cannot read"):
        kubeapi.from_kubeconfig(tmp_path / "absent")


def test_in_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(kubeapi.KubeConfigError, match="not in a cluster"):
        kubeapi.in_cluster(tmp_path)
    cert, _ = tlsutil.self_signed(tmp_path)
    (tmp_path / "ca.crt").write_bytes(cert.read_bytes())
    (tmp_path / "token").write_text("sa-token")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    target = kubeapi.in_cluster(tmp_path)
    assert target.base_url == "https://[fd00::1]:6443"
    assert target.headers() == {"Authorization": "Bearer sa-token"}
    (tmp_path / "token").write_text("rotated")
    assert target.headers() == {"Authorization": "Bearer rotated"}
