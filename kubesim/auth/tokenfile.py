"""kube-apiserver's ``--token-auth-file``: ``token,user,uid,"group1,group2"`` per line."""

from __future__ import annotations

import csv
import hmac
from pathlib import Path

from kubesim.authtypes import UserInfo

MIN_COLUMNS = 3


class TokenFileError(ValueError):
    """The token file is malformed."""


def load_token_file(path: str | Path) -> dict[str, UserInfo]:
    """Token to user, as the tokenfile authenticator reads it (later duplicates win)."""
    tokens: dict[str, UserInfo] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for line_no, row in enumerate(csv.reader(fh), start=1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) < MIN_COLUMNS:
                raise TokenFileError(
                    f"token file '{path}' must have at least {MIN_COLUMNS} columns "
                    f"(token, user name, user uid), found {len(row)} on line {line_no}"
                )
            token, name, uid = row[0], row[1], row[2]
            groups = [g.strip() for g in row[3].split(",") if g.strip()] if len(row) > 3 else []
            tokens[token] = UserInfo(name=name, uid=uid, groups=groups)
    return tokens


def lookup(tokens: dict[str, UserInfo], token: str) -> UserInfo | None:
    """Constant-time comparison against every known token."""
    found: UserInfo | None = None
    for known, user in tokens.items():
        if hmac.compare_digest(known.encode(), token.encode()):
            found = user
    return found
