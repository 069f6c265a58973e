"""Kubernetes resource quantities (``500m``, ``2``, ``8Gi``, ``1e3``) as numbers."""

from __future__ import annotations

_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
    "E": 1e18,
}


def parse(value: object) -> float:
    """A quantity as a float of its base unit (cores, bytes, pods); 0 for what does not parse."""
    text = str(value).strip()
    if not text:
        return 0.0
    for suffix in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"):
        if text.endswith(suffix):
            return _number(text[: -len(suffix)]) * _SUFFIXES[suffix]
    last = text[-1]
    if last in _SUFFIXES:
        return _number(text[:-1]) * _SUFFIXES[last]
    return _number(text)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0
