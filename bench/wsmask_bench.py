"""Websocket masking throughput: aiohttp's C helper (when importable) against our pure-Python
fallback, MB/s on 64 KiB payloads (the tunnel's usual message), measured in the same run.

    python3 -m bench.wsmask_bench"""

from __future__ import annotations

import json
import os
import time

from rancher_tunnel import wsmask

PAYLOAD_BYTES = 64 * 1024
SECONDS = 1.0


def rate(fn: wsmask.Masker) -> float:
    key, buf = os.urandom(4), bytearray(os.urandom(PAYLOAD_BYTES))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < SECONDS:
        fn(key, buf)
        n += 1
    return n * PAYLOAD_BYTES / (time.perf_counter() - t0) / 1e6


def main() -> None:
    py = rate(wsmask.mask_python)
    c = rate(wsmask.C_MASK) if wsmask.C_MASK is not None else None
    print(json.dumps({"bench": "wsmask", "python_mb_s": round(py), "c_mb_s": c and round(c),
                      "python_over_c": c and round(py / c, 3)}))


if __name__ == "__main__":
    main()
