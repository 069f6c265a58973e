"""Websocket masking: the pure-Python fallback gives exactly the bytes of aiohttp's C helper (and
of the RFC's definition), so the tunnel keeps working if aiohttp moves its private helper."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rancher_tunnel import wsmask


def rfc_mask(key: bytes, data: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


@given(st.binary(min_size=4, max_size=4), st.binary(max_size=4096))
def test_python_mask_is_the_rfc_definition(key: bytes, data: bytes) -> None:
    buf = bytearray(data)
    wsmask.mask_python(key, buf)
    assert bytes(buf) == rfc_mask(key, data)
    wsmask.mask_python(key, buf)  # masking twice gives the payload back
    assert bytes(buf) == data


@given(st.binary(min_size=4, max_size=4), st.binary(max_size=4096))
def test_c_and_python_agree(key: bytes, data: bytes) -> None:
    if wsmask.C_MASK is None:
        pytest.skip("this aiohttp has no C masking helper")
    a, b = bytearray(data), bytearray(data)
    wsmask.C_MASK(key, a)
    wsmask.mask_python(key, b)
    assert a == b


def test_bad_key_is_refused() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        wsmask.mask_python(b"abc", bytearray(b"payload"))
