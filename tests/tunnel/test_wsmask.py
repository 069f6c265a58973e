"""Websocket masking: the project's C extension and the pure-Python fallback give exactly the bytes
of the RFC's definition (the fallback serves where the extension could not be built)."""

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
    assert wsmask.C_MASK is not None, "rancher_tunnel/_wsmask.c was not built"
    a, b = bytearray(data), bytearray(data)
    wsmask.C_MASK(key, a)
    wsmask.mask_python(key, b)
    assert a == b


def test_bad_key_is_refused() -> None:
    with pytest.raises(ValueError, match="4 bytes"):
        wsmask.mask_python(b"abc", bytearray(b"payload"))
    assert wsmask.C_MASK is not None
    with pytest.raises(ValueError, match="4 bytes"):
        wsmask.C_MASK(b"abcde", bytearray(b"payload"))


def test_c_masks_a_slice_of_a_larger_buffer_in_place() -> None:
    assert wsmask.C_MASK is not None
    buf = bytearray(b"head" + b"x" * 37 + b"tail")
    view = memoryview(buf)[4:-4]
    wsmask.C_MASK(b"\x01\x02\x03\x04", view)  # type: ignore[arg-type]
    assert bytes(buf[4:-4]) == rfc_mask(b"\x01\x02\x03\x04", b"x" * 37)
    assert buf[:4] == b"head" and buf[-4:] == b"tail"
