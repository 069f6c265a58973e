"""Principal ids of directory users and groups, in Rancher's style: ``openldap_user://<dn>``,
``openldap_group://<dn>``, ``activedirectory_user://<dn>``, ``activedirectory_group://<dn>``,
``github_user://<id>``, ``github_org://<id>``, ``github_team://<id>``, ``oidc_user://<sub>``,
``oidc_group://<name>``.

A directory user is a store user whose username is its user principal id (a local username can
never contain ``:`` or ``/``) and whose groups are group principal ids (a local group name can
never contain ``/``), so neither can be mistaken for a local one."""

from __future__ import annotations

from rancher_server.auth.providers.constants import ALL_PROVIDERS, GITHUB

USER_SUFFIX = "_user://"
GROUP_SUFFIX = "_group://"
GITHUB_ORG_SUFFIX = "_org://"
GITHUB_TEAM_SUFFIX = "_team://"
# (kind, suffix) of each provider's principal ids; GitHub's organisations and teams are groups.
KINDS: dict[str, tuple[tuple[str, str], ...]] = {
    provider: (("user", USER_SUFFIX), ("group", GROUP_SUFFIX)) for provider in ALL_PROVIDERS}
KINDS[GITHUB] = (("user", USER_SUFFIX), ("group", GITHUB_ORG_SUFFIX),
                 ("group", GITHUB_TEAM_SUFFIX))
FORBIDDEN_CHARS = frozenset("\r\n\0")  # they would split an HTTP header


def user_principal(provider: str, dn: str) -> str:
    return f"{provider}{USER_SUFFIX}{dn}"


def group_principal(provider: str, dn: str) -> str:
    return f"{provider}{GROUP_SUFFIX}{dn}"


def parse_principal(principal_id: str) -> tuple[str, str, str] | None:
    """(provider, "user" | "group", dn) of a directory principal id; None for anything else."""
    for provider, kinds in KINDS.items():
        for kind, suffix in kinds:
            prefix = provider + suffix
            if principal_id.startswith(prefix) and len(principal_id) > len(prefix):
                return provider, kind, principal_id[len(prefix):]
    return None


def is_directory_group(name: str) -> bool:
    parsed = parse_principal(name)
    return parsed is not None and parsed[1] == "group" and header_safe(name)


def directory_user_provider(username: str) -> str | None:
    """The provider of a directory user's store username (its principal id); None if local."""
    parsed = parse_principal(username)
    return parsed[0] if parsed is not None and parsed[1] == "user" else None


def header_safe(value: str) -> bool:
    """Whether the value may travel as an HTTP header value (Impersonate-Group, extras)."""
    return not any(c in FORBIDDEN_CHARS for c in value)
