"""Websocket masking throughput: the project's C extension (``rancher_tunnel/_wsmask.c``) against
its pure-Python fallback and websockets' public ``websockets.utils.apply_mask``, MB/s on 64 KiB
payloads (the tunnel's usual message) and microseconds for a 1 KiB one, in the same run.

    python3 -m bench.wsmask_bench"""

from __future__ import annotations

import json
import os
import time

from websockets.utils import apply_mask

from rancher_tunnel import wsmask

PAYLOAD_BYTES = 64 * 1024
SMALL_BYTES = 1024
SECONDS = 1.0


def websockets_public(key: bytes, data: bytearray) -> None:
    data[:] = apply_mask(data, key)


def rate(fn: wsmask.Masker, size: int = PAYLOAD_BYTES) -> tuple[float, float]:
    """(MB/s, microseconds per call) on ``size``-byte payloads."""
    key, buf = os.urandom(4), bytearray(os.urandom(size))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < SECONDS:
        fn(key, buf)
        n += 1
    elapsed = time.perf_counter() - t0
    return n * size / elapsed / 1e6, elapsed / n * 1e6


def main() -> None:
    out: dict[str, object] = {"bench": "wsmask"}
    makers = {"c": wsmask.C_MASK, "python": wsmask.mask_python, "websockets": websockets_public}
    for name, fn in makers.items():
        if fn is None:
            out[f"{name}_mb_s"] = None
            continue
        out[f"{name}_mb_s"] = round(rate(fn)[0])
        out[f"{name}_us_1k"] = round(rate(fn, SMALL_BYTES)[1], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
