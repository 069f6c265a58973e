"""Websocket masking (RFC 6455 5.3): XOR a payload in place with a 4-byte key.

aiohttp ships a C implementation as a private helper (``aiohttp._websocket.helpers``); it is used
when it can be imported, and a pure-Python one (whole-buffer integer XOR: no per-byte loop)
otherwise, so an aiohttp release that moves or drops the helper slows masking down instead of
breaking the tunnel. ``tests/tunnel/test_wsmask.py`` checks both give the same bytes, and
``python3 -m bench.wsmask_bench`` measures them."""

from __future__ import annotations

from collections.abc import Callable

MASK_KEY_BYTES = 4

Masker = Callable[[bytes, bytearray], None]


def mask_python(key: bytes, data: bytearray) -> None:
    """XOR ``data`` in place with the repeated ``key`` (pure Python)."""
    n = len(data)
    if not n:
        return
    if len(key) != MASK_KEY_BYTES:
        raise ValueError("a websocket mask key is 4 bytes")
    stream = (key * (n // MASK_KEY_BYTES + 1))[:n]
    data[:] = (int.from_bytes(data, "little") ^ int.from_bytes(stream, "little")).to_bytes(
        n, "little")


def _c_masker() -> Masker | None:
    try:
        from aiohttp._websocket.helpers import websocket_mask
    except ImportError:  # moved or gone in this aiohttp release: the Python one serves
        return None
    masker: Masker = websocket_mask
    return masker


C_MASK: Masker | None = _c_masker()
websocket_mask: Masker = C_MASK or mask_python
