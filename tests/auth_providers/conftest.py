"""slapd for the directory tests (skipped where slapd is not installed); a Samba Active Directory
domain controller for the AD tests (they fail, saying why, where Samba is not installed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.auth_providers.samba import SambaDC, missing_tools
from tests.auth_providers.slapd import Slapd, slapd_binary


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    if slapd_binary() is None:
        pytest.skip("slapd is not installed (scripts/test.sh installs slapd and ldap-utils)")
    s = Slapd(tmp_path_factory.mktemp("slapd")).start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def samba_dc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaDC]:
    """One throwaway AD domain for the session (provisioning takes seconds)."""
    missing = missing_tools()
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: the Active Directory tests run against "
                    f"a real Samba domain controller (apt-get install samba; scripts/test.sh "
                    f"installs it)", pytrace=False)
    dc = SambaDC(tmp_path_factory.mktemp("samba")).start()
    print(f"samba AD DC on {dc.address}: " + ", ".join(
        f"{k} {v:.1f} s" for k, v in dc.timings.items()))
    yield dc
    dc.stop()
