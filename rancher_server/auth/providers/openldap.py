"""OpenLDAP and generic LDAP directories: users by ``userLoginAttribute`` (``uid``), groups by
``member`` / ``uniqueMember`` (the user's DN) or posixGroup ``memberUid`` (set
``groupMemberMappingAttribute: memberUid`` and ``groupMemberUserAttribute: uid``), memberOf when
the directory keeps it (the memberof overlay), nested groups by walking ``member``. Accounts are
always enabled as far as this provider knows (OpenLDAP's ppolicy locks refuse the bind)."""

from __future__ import annotations

from rancher_server.auth.providers.constants import OPENLDAP
from rancher_server.auth.providers.ldap import Flavour


class OpenLdap(Flavour):
    name = OPENLDAP


FLAVOUR = OpenLdap()
