"""glibc malloc tuning for processes that move bulk data through the tunnel.

Every websocket message, TLS record batch and frame batch is a buffer of 64 KiB to 1 MiB that
lives for one loop iteration. With glibc's defaults such buffers are mmap'ed or sit at the top of
the heap, which is trimmed as soon as they are freed, so nearly every batch is written into fresh
pages from the kernel (page faults plus zeroing): measured on the agent as about a third of its CPU
per GB in a bulk download (1.5 against 1.0 CPU-s/GB with the tuning below). Keeping buffers up to
``MMAP_THRESHOLD_BYTES`` on the heap and a bounded amount of freed heap mapped avoids that.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 8 * 1024 * 1024  # larger allocations are still mmap'ed
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024  # freed heap above this is returned to the kernel
TOP_PAD_BYTES = 16 * 1024 * 1024  # the heap grows in steps of this much

_state: dict[str, bool] = {}


def tune_malloc() -> bool:
    """Apply the tuning once per process (glibc only); True if it is in effect."""
    if "tuned" in _state:
        return _state["tuned"]
    _state["tuned"] = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _state["tuned"] = tuned = all(
        mallopt(param, value) == 1
        for param, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES),
            (M_TOP_PAD, TOP_PAD_BYTES),
        )
    )
    return tuned


def trim() -> None:
    """Give freed heap back to the kernel now (glibc ``malloc_trim(0)``): after a one-off burst of
    allocations, such as parsing a large list, or thousands of TLS handshakes, that the tuning
    above would otherwise keep mapped. A no-op elsewhere."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def _libc() -> ctypes.CDLL | None:
    if "libc" not in _libc_cache:
        libc: ctypes.CDLL | None = None
        if sys.platform.startswith("linux"):
            try:  # find_library runs ldconfig: once per process
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                libc.malloc_trim.argtypes = [ctypes.c_size_t]
            except (OSError, AttributeError):
                libc = None
        _libc_cache["libc"] = libc
    return _libc_cache["libc"]


_libc_cache: dict[str, ctypes.CDLL | None] = {}
