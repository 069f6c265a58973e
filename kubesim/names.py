"""Object name rules per kind, with kube-apiserver's messages (k8s.io/apimachinery validation).

Each rule returns the list of problems for a name, like the Go ``ValidateNameFunc``s: one
``metadata.name: Invalid value`` cause is made per message.
"""

from __future__ import annotations

import re
from collections.abc import Callable

DNS1123_LABEL_MAX_LEN = 63
DNS1035_LABEL_MAX_LEN = 63
DNS1123_SUBDOMAIN_MAX_LEN = 253

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL = re.compile(f"^{_DNS1035_LABEL_FMT}$")

PATH_SEGMENT_MAY_NOT_BE = (".", "..")
PATH_SEGMENT_MAY_NOT_CONTAIN = ("/", "%")

NameRule = Callable[[str], list[str]]


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """validation.RegexError: the message, examples and the regex."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


DNS1123_LABEL_MSG = _regex_error(
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character",
    _DNS1123_LABEL_FMT,
    "my-name",
    "123-abc",
)
DNS1123_SUBDOMAIN_MSG = _regex_error(
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character",
    _DNS1123_SUBDOMAIN_FMT,
    "example.com",
)
DNS1035_LABEL_MSG = _regex_error(
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character",
    _DNS1035_LABEL_FMT,
    "my-name",
    "abc-123",
)


def dns1123_label(name: str) -> list[str]:
    """IsDNS1123Label (a valid subdomain that is not a label must have dots)."""
    errs = []
    if len(name) > DNS1123_LABEL_MAX_LEN:
        errs.append(_max_len_error(DNS1123_LABEL_MAX_LEN))
    if not _DNS1123_LABEL.match(name):
        errs.append(
            "must not contain dots" if _DNS1123_SUBDOMAIN.match(name) else DNS1123_LABEL_MSG
        )
    return errs


def dns1123_subdomain(name: str) -> list[str]:
    """IsDNS1123Subdomain."""
    errs = []
    if len(name) > DNS1123_SUBDOMAIN_MAX_LEN:
        errs.append(_max_len_error(DNS1123_SUBDOMAIN_MAX_LEN))
    if not _DNS1123_SUBDOMAIN.match(name):
        errs.append(DNS1123_SUBDOMAIN_MSG)
    return errs


def dns1035_label(name: str) -> list[str]:
    """IsDNS1035Label."""
    errs = []
    if len(name) > DNS1035_LABEL_MAX_LEN:
        errs.append(_max_len_error(DNS1035_LABEL_MAX_LEN))
    if not _DNS1035_LABEL.match(name):
        errs.append(DNS1035_LABEL_MSG)
    return errs


def path_segment(name: str) -> list[str]:
    """path.IsValidPathSegmentName (RBAC names: ``system:foo`` is fine)."""
    for bad in PATH_SEGMENT_MAY_NOT_BE:
        if name == bad:
            return [f"may not be '{bad}'"]
    return [f"may not contain '{bad}'" for bad in PATH_SEGMENT_MAY_NOT_CONTAIN if bad in name]


RBAC_GROUP = "rbac.authorization.k8s.io"
_RULES: dict[tuple[str, str], NameRule] = {
    ("", "namespaces"): dns1123_label,  # ValidateNamespaceName
    ("", "services"): dns1035_label,  # ValidateServiceName
    (RBAC_GROUP, "roles"): path_segment,  # ValidateRBACName
    (RBAC_GROUP, "clusterroles"): path_segment,
    (RBAC_GROUP, "rolebindings"): path_segment,
    (RBAC_GROUP, "clusterrolebindings"): path_segment,
}
# CRD names are checked against spec.names and spec.group, not by a name rule
_UNCHECKED_GROUPS = frozenset({"apiextensions.k8s.io"})


def name_rule(group: str, resource: str) -> NameRule | None:
    """The rule kube-apiserver applies to names of this resource (most use DNS subdomains)."""
    rule = _RULES.get((group, resource))
    if rule is not None:
        return rule
    return None if group in _UNCHECKED_GROUPS else dns1123_subdomain
