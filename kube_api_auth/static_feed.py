"""A static feed for benchmarks and demos (``--tokens-file``): the index loaded once from a
JSON file instead of list+watch. Not for production: nothing is ever revoked.

File format: ``{"clusterauthtokens": [...], "clusteruserattributes": [...],
"secrets": [...]}``, each list holding the Kubernetes objects exactly as the API would
return them.
"""

from __future__ import annotations

import json
from pathlib import Path

from kube_api_auth.index import Index, Kind


def load(index: Index, path: Path) -> None:
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a JSON object")
    for kind in Kind:
        items = doc.get(kind.value, [])
        if not isinstance(items, list):
            raise ValueError(f"{path}: {kind.value} is not a list")
        index.replace(kind, items)
