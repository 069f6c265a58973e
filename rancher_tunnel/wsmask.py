"""Websocket masking (RFC 6455 5.3): XOR a payload in place with a 4-byte key.

The project's own C implementation (``rancher_tunnel/_wsmask.c``, built by ``pip install`` as an
optional extension) when it was built, a pure-Python one (whole-buffer integer XOR: no per-byte
loop) otherwise: no private helper of aiohttp or websockets is used, so no release of theirs can
break the tunnel. ``tests/tunnel/test_wsmask.py`` checks both give the same bytes, and
``python3 -m bench.wsmask_bench`` measures them against websockets' public ``apply_mask``."""

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
        from rancher_tunnel._wsmask import mask
    except ImportError:  # built without a compiler: the Python one serves
        return None
    masker: Masker = mask
    return masker


C_MASK: Masker | None = _c_masker()
websocket_mask: Masker = C_MASK or mask_python
