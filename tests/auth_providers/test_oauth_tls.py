"""GitHub Enterprise and an OpenID Connect issuer over HTTPS with a private CA: the fake
authorization server (``fake_oauth.py`` with ``--tls-cert``, a real process on loopback) serves
a certificate of its own CA, and the providers' ``certificate`` setting is how the server trusts
it. With that CA, testConnection passes and a login goes through the real redirects (the
"browser" trusts both the server's and the fake's CA); with no CA (the system's trust store) or
another CA, testConnection fails at stage ``tls`` saying the certificate is not trusted, and logins,
the device flow and group refreshes answer 503 naming TLS; nobody is logged in.

Only the server and the fake run (no cluster: the group rights on both paths are
``test_oauth_e2e.py``'s, whose helpers these tests reuse)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from rancher_server.auth.providers.oauthcommon import tls_verify, unreachable
from tests.auth_providers.test_oauth_e2e import (
    GH,
    HTTP_TIMEOUT_S,
    OIDC,
    Fake,
    Stack,
    github_config,
    oidc_config,
)
from tests.e2e.ace_stack import ADMIN_PASSWORD
from tests.procs import ServerProc, free_port
from tests.rest import ApiError, Rest
from tests.tlsutil import self_signed

pytestmark = pytest.mark.slow

GH_CONFIG = "/v3/authconfigs/github"
OIDC_CONFIG = "/v3/authconfigs/oidc"
NOT_TRUSTED = "is not trusted"


@dataclass
class TlsFake(Fake):
    ca: Path = Path()  # the fake's certificate (its own CA)

    def post(self, path: str, body: dict[str, Any]) -> None:
        requests.post(self.url + path, json=body, timeout=HTTP_TIMEOUT_S,
                      verify=str(self.ca)).raise_for_status()


@dataclass
class TlsStack(Stack):
    trust: Path = Path()  # the browser's CAs: the server's and the fake's
    ca: str = ""  # the fake's CA (PEM)
    other_ca: str = ""  # a CA that did not sign the fake's certificate

    def browser(self) -> requests.Session:
        s = super().browser()
        s.verify = str(self.trust)
        return s

    def usernames(self) -> set[str]:
        return {u["username"] for u in self.admin.call("GET", "/v3/users")["data"]}

    def test_connection(self, config: str, **body: Any) -> dict[str, Any]:
        out: dict[str, Any] = self.admin.call("POST", f"{config}?action=testConnection", body)
        return out


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("oauth-pki")
    fake_cert, fake_key = self_signed(d, "fake-oauth", file_names=("fake.crt", "fake.key"))
    other_cert, _ = self_signed(d, "another-ca", file_names=("other.crt", "other.key"))
    return {"cert": fake_cert, "key": fake_key, "other": other_cert}


@pytest.fixture(scope="module")
def tls_fake(pki: dict[str, Path]) -> Iterator[TlsFake]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.auth_providers.fake_oauth",
                             "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"])],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    yield TlsFake(proc, f"https://127.0.0.1:{port}", ca=pki["cert"])
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tls_fake: TlsFake,
          pki: dict[str, Path]) -> Iterator[TlsStack]:
    tmp = tmp_path_factory.mktemp("oauth-tls")
    server = ServerProc(tmp / "data", tmp / "server.log", port=free_port(),
                        env={"CATTLE_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD})
    server.start()
    try:
        admin = Rest(server.url, server.ca_path)
        admin.token = admin.login("admin", ADMIN_PASSWORD)
        trust = tmp / "browser-ca.pem"
        trust.write_text(server.ca_path.read_text() + pki["cert"].read_text())
        yield TlsStack(tmp, server, admin, "", tls_fake, trust, pki["cert"].read_text(),
                       pki["other"].read_text())
    finally:
        server.stop()


def _refused_with_tls(r: requests.Response) -> None:
    """A login that ended at the server with 503 naming TLS, and no token or session cookie."""
    assert r.status_code == 503, (r.status_code, r.text)
    assert "(tls)" in r.json()["message"], r.text
    assert "token" not in r.json()
    assert all(c.name != "R_SESS" for h in [*r.history, r] for c in h.cookies)


def test_certificate_is_validated_when_saved(stack: TlsStack, pki: dict[str, Path]) -> None:
    pem = stack.ca
    bad = {"not PEM": "hello", "a private key": pem + pki["key"].read_text(),
           "not a certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}
    for config in (GH_CONFIG, OIDC_CONFIG):
        for what, value in bad.items():
            with pytest.raises(ApiError) as e:
                stack.admin.call("PUT", config, {"certificate": value})
            assert e.value.status == 422, what
            assert "certificate" in e.value.body["message"], (what, e.value.body)
        out = stack.admin.call("PUT", config, {"certificate": pem})
        assert out["certificate"] == pem
        stack.admin.call("PUT", config, {"certificate": ""})


def test_github_enterprise_with_a_private_ca(stack: TlsStack) -> None:
    fake, pem = stack.fake, stack.ca
    host = fake.url.removeprefix("https://")
    stack.admin.call("PUT", GH_CONFIG, github_config(fake, hostname=host, tlsEnabled=True,
                                                     certificate=pem))
    ok = stack.test_connection(GH_CONFIG)
    assert ok["ok"] is True, ok
    # The right CA: through the real redirects (server -> fake -> server callback) to a token.
    alice = stack.token_of(GH, "alice")
    me = alice.call("GET", "/v3/users?me=true")["data"][0]
    assert me["username"] == "github_user://1001", me
    assert sorted(stack.admin.call("GET", f"/v3/users/{me['id']}")["groups"]) == [
        "github_org://501", "github_team://701"]

    for what, ca in (("no CA", ""), ("another CA", stack.other_ca)):
        out = stack.test_connection(GH_CONFIG, certificate=ca)
        assert (out["ok"], out["stage"]) == (False, "tls"), (what, out)
        assert NOT_TRUSTED in out["message"] and "certificate" in out["message"], (what, out)
        stack.admin.call("PUT", GH_CONFIG, {"certificate": ca})
        _refused_with_tls(stack.login(GH, "bob"))  # the code exchange refused the fake
        with pytest.raises(ApiError) as e:  # the device flow's first call
            Rest(stack.server.url, stack.server.ca_path).call("POST",
                                                              f"{GH}?action=deviceCode")
        assert e.value.status == 503 and NOT_TRUSTED in e.value.body["message"], e.value.body
        with pytest.raises(ApiError) as e:  # a refresh: GitHub's user API
            stack.admin.call("POST", f"/v3/users/{me['id']}?action=refreshGroups")
        assert e.value.status == 503 and NOT_TRUSTED in e.value.body["message"], e.value.body
    assert "github_user://1002" not in stack.usernames()
    assert alice.call("GET", "/v3/users?me=true")["data"][0]["id"] == me["id"]  # kept
    log = (stack.tmp / "server.log").read_text()
    assert NOT_TRUSTED in log  # the login's failure is in the server's log, with the reason
    stack.admin.call("PUT", GH_CONFIG, {"certificate": pem, "enabled": False})


def test_oidc_issuer_with_a_private_ca(stack: TlsStack) -> None:
    fake, pem = stack.fake, stack.ca
    assert fake.url.startswith("https://")
    stack.admin.call("PUT", OIDC_CONFIG, oidc_config(fake, certificate=pem))
    ok = stack.test_connection(OIDC_CONFIG)
    assert ok["ok"] is True and [s["stage"] for s in ok["steps"]] == [
        "discovery", "jwks", "client"], ok
    alice = stack.token_of(OIDC, "alice")
    me = alice.call("GET", "/v3/users?me=true")["data"][0]
    assert me["username"] == "oidc_user://sub-alice", me
    # A refresh with the right CA: the refresh-token grant and a new ID token.
    fake.post("/test/user", {"user": "alice", "groups": ["staff"]})
    out = stack.admin.call("POST", f"/v3/users/{me['id']}?action=refreshGroups")
    assert out["groups"] == ["oidc_group://staff"], out

    for what, ca in (("no CA", ""), ("another CA", stack.other_ca)):
        out = stack.test_connection(OIDC_CONFIG, certificate=ca)
        assert (out["ok"], out["stage"]) == (False, "tls"), (what, out)
        assert NOT_TRUSTED in out["message"] and "openid-configuration" in out["message"], out
        stack.admin.call("PUT", OIDC_CONFIG, {"certificate": ca})
        r = stack.login(OIDC, "bob")
        _refused_with_tls(r)  # discovery refused the issuer: no redirect to it at all
        assert not r.history
        with pytest.raises(ApiError) as e:
            stack.admin.call("POST", f"/v3/users/{me['id']}?action=refreshGroups")
        assert e.value.status == 503 and NOT_TRUSTED in e.value.body["message"], e.value.body
    assert "oidc_user://sub-bob" not in stack.usernames()
    stack.admin.call("PUT", OIDC_CONFIG, {"certificate": pem, "enabled": False})


def test_ca_file_is_private_and_other_failures_are_named() -> None:
    """The configured CA reaches requests as a file only this process's user can read; a TLS
    failure other than an untrusted certificate (e.g. https:// to a plain HTTP port) is still
    stage ``tls``, anything else keeps its own stage."""
    assert tls_verify("") is True
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    path = tls_verify(pem)
    assert isinstance(path, str) and tls_verify(pem) == path
    assert Path(path).read_text() == pem
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    err = unreachable("api", requests.exceptions.SSLError("[SSL] wrong version number"),
                      "https://git.corp", "")
    assert err.stage == "tls" and "TLS handshake with https://git.corp failed" in err.message
    expired = ("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has "
               "expired (_ssl.c:1000)")
    err = unreachable("api", requests.exceptions.SSLError(expired), "https://git.corp", "x")
    assert err.message == ("TLS: the server certificate of https://git.corp is not trusted "
                           "(certificate has expired)")
    err = unreachable("api", requests.exceptions.ConnectTimeout("x"), "https://git.corp", "")
    assert (err.stage, err.message) == ("api", "ConnectTimeout reaching https://git.corp")
