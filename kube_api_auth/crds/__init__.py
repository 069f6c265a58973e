"""The CustomResourceDefinitions kube-api-auth reads (the server installs them downstream)."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

CRD_FILES = ("clusterauthtokens.yaml", "clusteruserattributes.yaml")


def manifests() -> list[dict[str, Any]]:
    """The CRD objects, ready to POST to /apis/apiextensions.k8s.io/v1/customresourcedefinitions."""
    here = resources.files(__name__)
    return [yaml.safe_load(here.joinpath(name).read_text()) for name in CRD_FILES]
