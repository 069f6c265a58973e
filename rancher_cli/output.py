"""Tables (rich) for people, JSON or YAML for scripts; times as "3 minutes ago" in tables."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from rich import box
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "json", "yaml")
NON_TTY_WIDTH = 200  # tables written to a pipe or file are not wrapped at 80 columns
SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400

Column = tuple[str, Callable[[dict[str, Any]], Any]]


class _YamlDumper(yaml.SafeDumper):
    """Multi-line strings (certificates, kubeconfigs) as literal blocks, readable and pasteable."""


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_YamlDumper.add_representer(str, _str_presenter)


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else NON_TTY_WIDTH
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def parse_time(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def ago(value: object, now: dt.datetime | None = None) -> str:
    """An RFC 3339 time as people read it: "just now", "5 minutes ago", "in 2 hours"."""
    when = parse_time(value)
    if when is None:
        return "-" if not value else str(value)
    now = now or dt.datetime.now(dt.UTC)
    delta = (now - when).total_seconds()
    future = delta < 0
    seconds = abs(delta)
    if seconds < SECONDS_PER_MINUTE:
        return "just now" if not future else "in a moment"
    for unit, size in (("day", SECONDS_PER_DAY), ("hour", SECONDS_PER_HOUR),
                       ("minute", SECONDS_PER_MINUTE)):
        if seconds >= size:
            n = int(seconds // size)
            text = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "-"  # pragma: no cover - unreachable


def field(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda item: item.get(name)


def time_field(name: str) -> Callable[[dict[str, Any]], Any]:
    return lambda item: ago(item.get(name))


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def emit(data: Any, fmt: str, columns: Sequence[Column] | None = None,
         title: str | None = None) -> None:
    """``data``: one resource (a dict) or a list of them."""
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
        sys.stdout.flush()  # before a --wait: a script reads the answer right away
        return
    if fmt == "yaml":
        sys.stdout.write(yaml.dump(data, Dumper=_YamlDumper, sort_keys=False,
                                   default_flow_style=False))
        sys.stdout.flush()
        return
    items = data if isinstance(data, list) else [data]
    cols = columns or [(k.upper(), field(k)) for k in (items[0] if items else {})]
    table = Table(box=box.SIMPLE_HEAD, title=title, show_edge=False, pad_edge=False)
    for header, _ in cols:
        table.add_column(header, no_wrap=True)
    for item in items:
        table.add_row(*(_cell(get(item)) for _, get in cols))
    if not items:
        console(stderr=True).print("(none)")
        return
    console().print(table)


def say(message: str) -> None:
    """A line for people, on stderr (stdout stays for data)."""
    console(stderr=True).print(message, markup=False)
