"""TokenReview decoding, the authentication decision and the answer (pure, no I/O)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

from kube_api_auth import hashing
from kube_api_auth.constants import MAX_TOKEN_CHARS
from kube_api_auth.index import Index

GROUP = "authentication.k8s.io"
SUPPORTED_API_VERSIONS = frozenset({f"{GROUP}/v1", f"{GROUP}/v1beta1"})
KIND = "TokenReview"


class MalformedReviewError(ValueError):
    """The request is not a TokenReview we can answer; the message is safe to send back."""


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    api_version: str
    token: str


@dataclass(frozen=True, slots=True)
class Decision:
    result: Result
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()

    @property
    def authenticated(self) -> bool:
        return self.result is Result.OK


class Result(enum.StrEnum):
    """The outcome of a review: the metrics label and, when refused, the ``error`` text
    returned to kube-apiserver (none reveals anything about the secret)."""

    OK = "ok"
    MALFORMED = "malformed token"
    UNKNOWN = "unknown token"
    DISABLED = "token disabled"
    EXPIRED = "token expired"
    OTHER_CLUSTER = "token not valid for this cluster"
    NO_HASH = "token hash missing"
    WRONG_SECRET = "invalid token secret"
    UNKNOWN_USER = "user unknown"
    USER_DISABLED = "user disabled"


def parse_review(body: bytes) -> ReviewRequest:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedReviewError(f"body is not JSON: {type(exc).__name__}") from exc
    except RecursionError as exc:  # hostile nesting: a 400, never a 500
        raise MalformedReviewError("body is not JSON: nested too deeply") from exc
    if not isinstance(doc, dict):
        raise MalformedReviewError("body is not a JSON object")
    if doc.get("kind") != KIND:
        raise MalformedReviewError(f"kind must be {KIND}")
    api_version = doc.get("apiVersion")
    if api_version not in SUPPORTED_API_VERSIONS:
        raise MalformedReviewError(
            f"apiVersion must be one of {', '.join(sorted(SUPPORTED_API_VERSIONS))}"
        )
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        raise MalformedReviewError("spec must be an object")
    token = spec.get("token")
    if not isinstance(token, str) or not token:
        raise MalformedReviewError("spec.token must be a non-empty string")
    return ReviewRequest(api_version=str(api_version), token=token)


def decide(index: Index, token: str, now: float, cluster_name: str) -> Decision:
    """Authenticate ``token`` (``<access key>:<secret>``) against ``index`` at time ``now``.

    ``cluster_name`` is this cluster's name; when set, a token synced for another cluster
    (or without a cluster name) is refused.
    """
    if len(token) > MAX_TOKEN_CHARS:
        return Decision(Result.MALFORMED)
    name, sep, secret = token.partition(":")
    if not sep or not name or not secret:
        return Decision(Result.MALFORMED)
    record = index.tokens.get(name)
    if record is None:
        return Decision(Result.UNKNOWN)
    if not record.enabled:
        return Decision(Result.DISABLED)
    if record.expires_at is not None and now >= record.expires_at:
        return Decision(Result.EXPIRED)
    if cluster_name and record.cluster_name != cluster_name:
        return Decision(Result.OTHER_CLUSTER)
    stored = index.hashes.get(record.secret_name, {}).get(record.secret_key) or record.inline_hash
    if stored is None:
        return Decision(Result.NO_HASH)
    if not hashing.matches(stored[0], stored[1], secret):
        return Decision(Result.WRONG_SECRET)
    user = index.users.get(record.user_name)
    if user is None:
        return Decision(Result.UNKNOWN_USER)
    if not user.enabled:
        return Decision(Result.USER_DISABLED)
    return Decision(Result.OK, username=user.name, uid=user.name, groups=user.groups)


def render(api_version: str, decision: Decision) -> dict[str, Any]:
    """The TokenReview answer, in the apiVersion it was asked in.

    ``status.audiences`` is left empty: kube-apiserver then treats the token as valid for
    its own audiences, which is what a cluster-scoped user token is.
    """
    status: dict[str, Any]
    if decision.authenticated:
        status = {
            "authenticated": True,
            "user": {
                "username": decision.username,
                "uid": decision.uid,
                "groups": list(decision.groups),
            },
        }
    else:
        status = {"authenticated": False, "error": decision.result.value}
    return {"apiVersion": api_version, "kind": KIND, "status": status}
