"""``rancher``: the command line over the server's REST API (``/v3``), like Rancher's own CLI.

It talks to a running server only (never to its store), so it works from any machine that
reaches the server: ``rancher login <url>`` pins the server's CA and keeps a token, then
``clusters``, ``projects``, ``users``, ``tokens``, ``bindings``, ``kubeconfig``, ``context`` and
``kubectl``. It imports nothing of the server (an import contract in ``tests/test_layering.py``).
Exit codes are in :mod:`rancher_cli.constants`; ``docs/cli.md`` documents the commands."""
