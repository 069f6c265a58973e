"""Vendored Kubernetes 1.32 OpenAPI v2/v3 documents (descriptions stripped), gzipped."""
