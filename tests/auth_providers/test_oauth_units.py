"""GitHub and OpenID Connect without a network: principal ids, configuration (validation, the
client secret encrypted and never shown), and ID token validation with keys made here."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from rancher_server.auth.providers import oauthconfig as ocfg
from rancher_server.auth.providers import oidc
from rancher_server.auth.providers.config import ConfigError
from rancher_server.auth.providers.oauthcommon import TokenInvalid
from rancher_server.auth.providers.principals import (
    directory_user_provider,
    is_directory_group,
    parse_principal,
)
from rancher_server.auth.providers.secretbox import SecretBox, new_key_text, parse_key

ISSUER = "https://issuer.example"
CLIENT = "client-1"
SECRET = "client-secret-value"


def test_principal_ids_of_github_and_oidc() -> None:
    assert parse_principal("github_user://1001") == ("github", "user", "1001")
    assert parse_principal("github_org://501") == ("github", "group", "501")
    assert parse_principal("github_team://701") == ("github", "group", "701")
    assert parse_principal("oidc_user://sub-1") == ("oidc", "user", "sub-1")
    assert parse_principal("oidc_group://devs") == ("oidc", "group", "devs")
    assert parse_principal("github_group://1") is None  # GitHub groups are orgs and teams
    assert is_directory_group("github_team://701") and is_directory_group("oidc_group://a b")
    assert not is_directory_group("oidc_user://x")
    assert directory_user_provider("github_user://1") == "github"
    assert directory_user_provider("oidc_user://s") == "oidc"


def test_github_enterprise_urls_and_validation() -> None:
    base = ocfg.OAuthConfig(provider="github")
    assert base.api_url == "https://api.github.com"
    ghe = ocfg.merge(base, {"hostname": "git.corp.example", "apiPath": "/api/v3"})
    assert (ghe.web_url, ghe.api_url) == ("https://git.corp.example",
                                          "https://git.corp.example/api/v3")
    with pytest.raises(ConfigError, match="needs clientId, clientSecret"):
        ocfg.merge(base, {"enabled": True})
    with pytest.raises(ConfigError, match="hostname"):
        ocfg.merge(base, {"hostname": "https://x/y"})
    with pytest.raises(ConfigError, match="allowedPrincipalIds"):
        ocfg.merge(base, {"allowedPrincipalIds": ["oidc_group://devs"]})
    ocfg.merge(base, {"allowedPrincipalIds": ["github_org://1", "github_team://2"]})


def test_oidc_issuer_must_be_https_but_on_loopback() -> None:
    base = ocfg.OAuthConfig(provider="oidc")
    with pytest.raises(ConfigError, match="https"):
        ocfg.merge(base, {"issuer": "http://issuer.example"})
    ocfg.merge(base, {"issuer": "http://127.0.0.1:5556/dex"})
    with pytest.raises(ConfigError, match="needs clientId, clientSecret, issuer"):
        ocfg.merge(base, {"enabled": True})


def test_client_secret_encrypted_and_never_shown() -> None:
    box = SecretBox(parse_key(new_key_text()))
    cfg = ocfg.merge(ocfg.OAuthConfig(provider="oidc"), {
        "enabled": True, "issuer": ISSUER, "clientId": CLIENT, "clientSecret": SECRET})
    raw = ocfg.dump(cfg, box)
    assert SECRET not in raw and ocfg.encrypted_secret(raw)
    assert ocfg.load("oidc", raw, box) == cfg
    shown = ocfg.to_api(cfg)
    assert shown["clientSecret"] == "" and shown["secretSet"] is True
    assert SECRET not in str(ocfg.to_log(cfg))
    # An empty secret in an update keeps the stored one.
    assert ocfg.merge(cfg, {"clientSecret": ""}).client_secret == SECRET


KEY = RSAKey.generate_key(2048, {"kid": "k1"})
OTHER = RSAKey.generate_key(2048, {"kid": "k1"})
META = oidc.Metadata(issuer=ISSUER, doc={"issuer": ISSUER}, jwks={
    "keys": [KEY.as_dict(private=False)]}, fetched_at=time.monotonic())
CFG = ocfg.OAuthConfig(provider="oidc", issuer=ISSUER, client_id=CLIENT, client_secret=SECRET,
                       groups_claim="roles")


def id_token(key: RSAKey = KEY, **over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "s1", "aud": CLIENT, "iat": now, "exp": now + 60,
              "nonce": "n1", "roles": ["a", "b"], "preferred_username": "ann", **over}
    return {"access_token": "at", "id_token": jwt.encode({"alg": "RS256", "kid": "k1"},
                                                         claims, key)}


def test_id_token_validation() -> None:
    claims = oidc.validate_id_token(CFG, META, id_token(), "n1")
    ident = oidc.identity(CFG, claims)
    assert ident.principal_id == "oidc_user://s1" and ident.login_name == "ann"
    assert ident.groups == ("oidc_group://a", "oidc_group://b")
    now = int(time.time())
    for bad, nonce in ((id_token(OTHER), "n1"), (id_token(iss="https://evil"), "n1"),
                       (id_token(aud="other"), "n1"), (id_token(exp=now - 600), "n1"),
                       (id_token(), "another-nonce"), ({"access_token": "at"}, "n1")):
        with pytest.raises(TokenInvalid):
            oidc.validate_id_token(CFG, META, bad, nonce)
