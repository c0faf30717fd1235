"""`seasonrec show TABLE [--where SQL] [--limit N] [--columns a,b]`: rows of any lake table, as text.

Reads through `seasonrec.lake.Lake` (Spark reads the Delta table; delta-rs only resolves its files),
so it works in the project venv whatever the pyarrow pin: ``deltalake.DeltaTable(...).to_pandas()``
fails there on files written by deltalake 1.x (see DEVELOPERS.md). Prints an aligned text table on
stdout: rows ordered by the table's keys when `seasonrec.tables` declares them, numbers right-aligned,
floats to 4 decimals, arrays cut after their first items, long text cut to a column width.

    seasonrec show recommendations --limit 5
    seasonrec show recommendations --where "user_id = 'u1' AND context_date = '2011-09-01'"
    seasonrec show silver_items --columns item_id,title,price --limit 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from seasonrec import tables
from seasonrec.context import JobContext, JobError

DESCRIPTION = "print rows of a lake table (any table of seasonrec/tables.py) as an aligned text table"
# `seasonrec.cli`: this command's stdout is its result (the table), not a job summary.
PRINTS_RESULT = True

DEFAULT_LIMIT = 20
MAX_CELL_WIDTH = 48
ARRAY_ITEMS_SHOWN = 5
_NUMERIC_TYPES = ("tinyint", "smallint", "int", "bigint", "float", "double", "decimal")


@dataclass(frozen=True)
class TableRows:
    """What `read_rows` found: the columns shown, their Spark types, the rows, and whether more
    rows matched than ``limit``."""

    name: str
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    more: bool


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`seasonrec show`'s options."""
    parser.add_argument("table", help="table name, e.g. recommendations (any table of seasonrec/tables.py)")
    parser.add_argument("--where", default=None, metavar="SQL",
                        help="Spark SQL filter, e.g. \"context_date = '2011-09-01' AND rank <= 3\"")
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                        help=f"at most N rows (default {DEFAULT_LIMIT})")
    parser.add_argument("--columns", default=None, metavar="a,b",
                        help="comma-separated columns to show, in this order (default: all)")


def check(config: Any, args: argparse.Namespace) -> None:
    """Refuse an unknown table or a bad limit before Spark starts (one line naming the tables)."""
    if args.table not in tables.TABLES:
        raise JobError(f"unknown table '{args.table}'; tables: {', '.join(sorted(tables.TABLES))}")
    if args.limit < 1:
        raise JobError(f"--limit must be at least 1; got {args.limit}")


def read_rows(lake: Any, name: str, where: str | None = None, limit: int = DEFAULT_LIMIT,
              columns: Sequence[str] | None = None) -> TableRows:
    """At most ``limit`` rows of table ``name`` (filtered by the SQL ``where``, only ``columns``),
    ordered by its declared keys. Raises `JobError` for an unknown table, column or a bad filter;
    `seasonrec.lake.LakeError` when the table was not written yet."""
    from pyspark.errors import AnalysisException

    if name not in tables.TABLES:
        raise JobError(f"unknown table '{name}'; tables: {', '.join(sorted(tables.TABLES))}")
    df = lake.read(name)
    if where:
        try:
            df = df.where(where)
        except AnalysisException as exc:
            raise JobError(f"--where {where!r} does not apply to {name}: {_first_line(exc)}") from None
    keys = [key for key in tables.spec(name).keys if key in df.columns]
    if keys:
        df = df.orderBy(*keys)
    if columns:
        unknown = [c for c in columns if c not in df.columns]
        if unknown:
            raise JobError(f"unknown column(s) {unknown} in {name}; columns: {', '.join(df.columns)}")
        df = df.select(*[f"`{c}`" for c in columns])
    try:
        rows = df.limit(limit + 1).collect()
    except AnalysisException as exc:
        raise JobError(f"--where {where!r} does not apply to {name}: {_first_line(exc)}") from None
    types = [field.dataType.simpleString() for field in df.schema.fields]
    return TableRows(name, list(df.columns), types, [tuple(row) for row in rows[:limit]], len(rows) > limit)


def format_table(found: TableRows, max_width: int = MAX_CELL_WIDTH) -> str:
    """``found`` as an aligned text table: header, rule, one line per row, then a count line."""
    cells = [[_cell(value, max_width) for value in row] for row in found.rows]
    widths = [max([len(column), *(len(row[i]) for row in cells)]) for i, column in enumerate(found.columns)]
    numeric = [kind.startswith(_NUMERIC_TYPES) for kind in found.types]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if right else v.ljust(w) for v, w, right in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    lines = [line(found.columns), "  ".join("-" * w for w in widths)]
    lines += [line(row) for row in cells]
    count = f"{len(found.rows)} row{'s' if len(found.rows) != 1 else ''}"
    more = "; more match, raise --limit" if found.more else ""
    lines.append(f"({count} of {found.name}{more})")
    return "\n".join(lines)


def show(lake: Any, name: str, where: str | None = None, limit: int = DEFAULT_LIMIT,
         columns: Sequence[str] | None = None) -> str:
    """`read_rows` formatted by `format_table`: what `seasonrec show` prints."""
    return format_table(read_rows(lake, name, where, limit, columns))


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    """Print the table on stdout; the summary (rows shown) stays out of stdout."""
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
    found = read_rows(ctx.lake, args.table, args.where, args.limit, columns)
    print(format_table(found), file=sys.stdout, flush=True)
    return {"table": args.table, "rows_shown": len(found.rows), "more": found.more}


def _cell(value: Any, max_width: int) -> str:
    text = _text(value)
    text = " ".join(text.split()) if ("\n" in text or "\t" in text) else text
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


def _text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        text = f"{value:.4f}".rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple) and not hasattr(value, "asDict"):
        shown = ", ".join(_text(v) for v in value[:ARRAY_ITEMS_SHOWN])
        rest = len(value) - ARRAY_ITEMS_SHOWN
        return f"[{shown}{f', … +{rest}' if rest > 0 else ''}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in value.items()) + "}"
    if hasattr(value, "asDict"):  # a struct
        return "{" + ", ".join(f"{k}: {_text(v)}" for k, v in value.asDict().items()) + "}"
    return str(value)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
