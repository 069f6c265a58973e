"""Package data: the served kinds (resources.json) and vendored OpenAPI documents."""
