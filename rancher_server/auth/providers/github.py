"""GitHub (github.com or GitHub Enterprise) through authlib's OAuth 2 client: the web flow's
authorize URL (with state), the code exchange, and the identity: ``/user`` as
``github_user://<id>``, ``/user/orgs`` as ``github_org://<id>`` and ``/user/teams`` as
``github_team://<id>`` groups. Synchronous (requests under authlib): the service runs it in a
thread. The client secret and the user's token never reach a log line or an error message.
Every call verifies GitHub's certificate against the configured ``certificate`` (a GitHub
Enterprise with a private CA), or the system's trust store without one."""

from __future__ import annotations

from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError

from rancher_server.auth.providers.constants import GITHUB
from rancher_server.auth.providers.oauthcommon import (
    OAUTH_HTTP_TIMEOUT_S,
    CredentialRefused,
    Identity,
    OAuthError,
    ProviderUnreachable,
    capped_groups,
    device_answer,
    poll_device_token,
    session,
    short,
    tls_verify,
    unreachable,
)
from rancher_server.auth.providers.oauthconfig import OAuthConfig
from rancher_server.auth.providers.principals import user_principal

AUTHORIZE_PATH = "/login/oauth/authorize"
ACCESS_TOKEN_PATH = "/login/oauth/access_token"
SCOPES = "read:user read:org"
PER_PAGE = 100
MAX_PAGES = 10  # at most 1,000 organisations or teams are read per user
HTTP_UNAUTHORIZED = 401
HTTP_SERVER_ERROR = 500
ORG_PREFIX = "github_org://"
TEAM_PREFIX = "github_team://"
# GitHub's answer to a wrong client id or secret at the token endpoint, and to an unknown code.
BAD_CLIENT_ERROR = "incorrect_client_credentials"
BAD_CODE_ERROR = "bad_verification_code"
PROBE_CODE = "rancher-py-connection-test"
DEVICE_CODE_PATH = "/login/device/code"
CLIENT_AUTH = "client_secret_post"  # GitHub takes the client's id and secret as form fields


def authorize_url(cfg: OAuthConfig, redirect_uri: str, state: str) -> str:
    client = session(cfg.client_id, cfg.client_secret, scope=SCOPES, redirect_uri=redirect_uri)
    url, _ = client.create_authorization_url(cfg.web_url + AUTHORIZE_PATH, state=state)
    return str(url)


def exchange(cfg: OAuthConfig, redirect_uri: str, code: str) -> dict[str, Any]:
    """The user's token for the callback's code."""
    client = session(cfg.client_id, cfg.client_secret, redirect_uri=redirect_uri,
                     token_endpoint_auth_method=CLIENT_AUTH)
    try:
        token = client.fetch_token(cfg.web_url + ACCESS_TOKEN_PATH, code=code,
                                   timeout=OAUTH_HTTP_TIMEOUT_S,
                                   verify=tls_verify(cfg.certificate))
    except requests.RequestException as e:
        raise unreachable("token", e, cfg.web_url, cfg.certificate) from e
    except AuthlibBaseError as e:
        raise OAuthError("token", f"GitHub refused the code: {e.error}") from e
    except ValueError as e:  # not JSON
        raise OAuthError("token", "GitHub's token answer is not JSON") from e
    return dict(token)


def device_code(cfg: OAuthConfig) -> dict[str, Any]:
    """Start a device login (RFC 8628): GitHub's device_code, user_code, verification_uri,
    interval and expires_in."""
    try:
        resp = requests.post(cfg.web_url + DEVICE_CODE_PATH, timeout=OAUTH_HTTP_TIMEOUT_S,
                             data={"client_id": cfg.client_id, "scope": SCOPES},
                             headers={"Accept": "application/json"},
                             verify=tls_verify(cfg.certificate))
        doc = resp.json()
    except requests.RequestException as e:
        raise unreachable("device", e, cfg.web_url, cfg.certificate) from e
    except ValueError as e:
        raise OAuthError("device", "GitHub's device code answer is not JSON") from e
    return device_answer(doc, "GitHub")


def poll_device(cfg: OAuthConfig, code: str) -> dict[str, Any] | None:
    """The user's token once they entered the user code at GitHub; None while pending
    (DeviceSlowDown when GitHub asks to poll less often)."""
    client = session(cfg.client_id, cfg.client_secret, token_endpoint_auth_method=CLIENT_AUTH)
    return poll_device_token(client, cfg.web_url + ACCESS_TOKEN_PATH, code, cfg.certificate,
                             "GitHub")


def _get_all(client: Any, url: str, certificate: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    next_url: str | None = f"{url}?per_page={PER_PAGE}"
    for _ in range(MAX_PAGES):
        if next_url is None:
            break
        resp = _get(client, next_url, certificate)
        page = resp.json()
        if not isinstance(page, list):
            raise OAuthError("api", f"{url}: expected a list")
        out.extend(p for p in page if isinstance(p, dict))
        next_url = resp.links.get("next", {}).get("url")
    return out


def _get(client: Any, url: str, certificate: str) -> requests.Response:
    try:
        resp: requests.Response = client.get(url, timeout=OAUTH_HTTP_TIMEOUT_S,
                                             headers={"Accept": "application/vnd.github+json"},
                                             verify=tls_verify(certificate))
    except requests.RequestException as e:
        raise unreachable("api", e, url, certificate) from e
    if resp.status_code == HTTP_UNAUTHORIZED:
        raise CredentialRefused("api", "GitHub no longer accepts the user's token")
    if resp.status_code >= HTTP_SERVER_ERROR:
        raise ProviderUnreachable("api", f"{url}: HTTP {resp.status_code}")
    if resp.status_code != requests.codes.ok:
        raise OAuthError("api", f"{url}: HTTP {resp.status_code} {short(resp.text)}")
    return resp


def identity(cfg: OAuthConfig, token: dict[str, Any]) -> Identity:
    """Who the token belongs to, with their organisations and teams as groups."""
    client = session(cfg.client_id, cfg.client_secret, token=token)
    api = cfg.api_url
    ca = cfg.certificate
    user = _get(client, api + "/user", ca).json()
    if not isinstance(user, dict) or not isinstance(user.get("id"), int):
        raise OAuthError("api", "/user: no numeric id")
    groups = {ORG_PREFIX + str(o["id"]) for o in _get_all(client, api + "/user/orgs", ca)
              if isinstance(o.get("id"), int)}
    groups |= {TEAM_PREFIX + str(t["id"]) for t in _get_all(client, api + "/user/teams", ca)
               if isinstance(t.get("id"), int)}
    login = str(user.get("login") or user["id"])
    return Identity(principal_id=user_principal(GITHUB, str(user["id"])),
                    display_name=str(user.get("name") or login), login_name=login,
                    groups=capped_groups(groups))


def test_steps(cfg: OAuthConfig) -> list[tuple[str, bool, str]]:
    """(stage, ok, message) per step: the API answers (over TLS it trusts: stage ``tls``
    otherwise), and the token endpoint knows the client (a made-up code must be refused as a bad
    code, not as bad client credentials)."""
    steps: list[tuple[str, bool, str]] = []
    try:
        resp = requests.get(cfg.api_url + "/", timeout=OAUTH_HTTP_TIMEOUT_S,
                            verify=tls_verify(cfg.certificate))
        ok = resp.status_code < HTTP_SERVER_ERROR
        steps.append(("api", ok, f"{cfg.api_url}: HTTP {resp.status_code}"))
    except requests.RequestException as e:
        err = unreachable("api", e, cfg.api_url, cfg.certificate)
        steps.append((err.stage, False, err.message))
        return steps
    try:
        exchange(cfg, "", PROBE_CODE)
        steps.append(("client", False, "the token endpoint accepted a made-up code"))
    except OAuthError as e:
        ok = BAD_CLIENT_ERROR not in e.message and not isinstance(e, ProviderUnreachable)
        steps.append(("client", ok, "client id and secret accepted" if ok else e.message))
    return steps
