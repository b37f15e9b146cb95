"""How results reach the operator: rich tables and lines on stdout, JSON for scripts, errors."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import typer
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["as_dict", "emit_json", "emit_json_line", "fail", "show", "stamp", "table"]


def _out() -> Console:
    # Made per call so that it writes to whatever sys.stdout is now (CliRunner swaps it).
    return Console(highlight=False, soft_wrap=True)


def show(*renderables: Any) -> None:
    """Print renderables on stdout; strings are printed as is (no markup: they hold user text)."""
    _out().print(*renderables, markup=False)


def fail(line: str) -> None:
    """Print one error line on stderr, as is (no markup)."""
    Console(stderr=True, highlight=False, soft_wrap=True).print(line, markup=False)


def table(title: str | None, *columns: str, rows: Iterable[Iterable[str | Text]]) -> Table:
    """A rich table with the given columns; str cells are plain text (no markup), Text styled."""
    grid = Table(title=title, title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(Text(cell) if isinstance(cell, str) else cell for cell in row))
    return grid


def as_dict(message: Message) -> dict[str, Any]:
    """A message in proto3 JSON form (camelCase keys, every field printed)."""
    return MessageToDict(message, always_print_fields_with_no_presence=True)


def emit_json(value: Any) -> None:
    """Print a JSON document on stdout (the --json output of listing commands)."""
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def emit_json_line(value: Any) -> None:
    """Print one compact JSON object on its own line (streams: `timeline --follow --json`)."""
    typer.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def stamp(value: Timestamp) -> str:
    """A timestamp as `YYYY-MM-DD HH:MM:SSZ` (UTC), or "-" when unset."""
    if value.seconds == 0 and value.nanos == 0:
        return "-"
    return value.ToDatetime().strftime("%Y-%m-%d %H:%M:%SZ")
