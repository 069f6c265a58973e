"""An in-process stand-in on a loopback port and an aiohttp client holding the admin cert."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from kubesim.options import Options
from kubesim.server import KubeSim


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[KubeSim]:
    async with KubeSim(Options(port=0, cert_dir=str(tmp_path / "pki"))) as s:
        yield s


@pytest.fixture
async def http(sim: KubeSim, tmp_path: Path) -> AsyncIterator[aiohttp.ClientSession]:
    """A session whose relative URLs go to the stand-in, authenticated as the admin."""
    crt, key = tmp_path / "admin.crt", tmp_path / "admin.key"
    crt.write_bytes(sim.pki.admin.cert_pem)
    key.write_bytes(sim.pki.admin.key_pem)
    ctx = ssl.create_default_context(cadata=sim.ca_pem.decode())
    ctx.load_cert_chain(str(crt), str(key))
    conn = aiohttp.TCPConnector(ssl=ctx)
    async with aiohttp.ClientSession(base_url=sim.url, connector=conn) as session:
        yield session
