"""ldap3, imported once for this package: ldap3 2.9 imports names pyasn1 has deprecated, which
would warn at import (and fail test runs that turn warnings into errors); the warning is about
ldap3's internals, not ours, so it is silenced for the import only."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from ldap3 import BASE, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
    from ldap3.core import exceptions
    from ldap3.core.exceptions import LDAPInvalidDnError
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import parse_dn, to_dn

__all__ = ["BASE", "NONE", "SIMPLE", "SUBTREE", "Connection", "LDAPInvalidDnError", "Server",
           "Tls", "escape_filter_chars", "exceptions", "parse_dn", "to_dn"]
