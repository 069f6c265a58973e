"""``--help`` and ``--version`` for the agents, whose configuration is the environment (the help
text lists every variable)."""

from __future__ import annotations

import argparse

from rancher_tunnel.version import version_line


def parse(prog: str, doc: str | None, argv: list[str], epilog: str = "") -> None:
    """Answer ``--help`` / ``--version`` (and refuse unknown arguments, exit code 2)."""
    p = argparse.ArgumentParser(
        prog=prog, description=doc, epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=version_line(prog))
    p.parse_args(argv)
