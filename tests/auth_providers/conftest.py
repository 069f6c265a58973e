"""slapd for the directory tests (skipped where slapd is not installed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth_providers.slapd import Slapd, slapd_binary


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    if slapd_binary() is None:
        pytest.skip("slapd is not installed (scripts/test.sh installs slapd and ldap-utils)")
    s = Slapd(tmp_path_factory.mktemp("slapd")).start()
    yield s
    s.stop()
