"""The UI's session never reaches a downstream cluster: the proxy takes the session cookie out
of ``Cookie`` (other cookies stay) and drops the CSRF header, in both header paths."""

from __future__ import annotations

from multidict import CIMultiDict

from rancher_server.auth.principal import Principal
from rancher_server.auth.session_cookie import without_session_cookie
from rancher_server.proxy.headers import downstream_request_headers, request_head

SECRET = "token-abc:very-secret"


def test_without_session_cookie_keeps_the_others() -> None:
    assert without_session_cookie(f"R_SESS={SECRET}; app=1; b=2") == "app=1; b=2"
    assert without_session_cookie(f"R_SESS={SECRET}") == ""
    assert without_session_cookie("app=1") == "app=1"


def test_the_session_is_not_sent_downstream() -> None:
    raw = [(b"Cookie", f"R_SESS={SECRET}; app=1".encode()), (b"X-CSRF-Token", b"csrf"),
           (b"Accept", b"application/json")]
    head = request_head("GET", "/api/v1/pods", "kube", raw, b"Impersonate-User: u-1\r\n")
    assert SECRET.encode() not in head and b"csrf" not in head
    assert b"Cookie: app=1\r\n" in head and b"Accept: application/json\r\n" in head
    principal = Principal(user_id="u-1", username="u", display_name="u", groups=(),
                          token_id="token-abc", is_admin=False)
    out = downstream_request_headers(CIMultiDict({k.decode(): v.decode() for k, v in raw}),
                                     principal, "agent-token", upgrade=True)
    assert out["Cookie"] == "app=1" and "X-CSRF-Token" not in out
