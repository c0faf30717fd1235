"""Global positions without a single-partition window.

``row_number()``, ``ntile()`` or a running ``sum()`` over ``Window.orderBy(...)`` (no ``partitionBy``)
moves every row into one partition and one task (Spark warns "No Partition Defined for Window
operation"). :func:`global_order` gives the same values with partitioned windows:

1. the order columns, sorted by Spark (all of them for a small frame, else a sample), cut the order
   into contiguous ranges (buckets);
2. each row's bucket is the number of boundaries at or before it (a binary search of comparisons in
   Spark's own order: ascending puts nulls first, descending puts them last);
3. the rows (and sums) before each bucket give its offset (counted on the driver for a small frame,
   else by one small aggregation);
4. ``row_number()`` / running sum over ``Window.partitionBy(bucket).orderBy(...)`` plus the offset.

Where the buckets are cut never changes the values: positions are exactly those of the
unpartitioned window whenever the order is total (its columns identify a row, e.g. ties broken by id).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import IntegralType

POSITION = "_position"  # 0-based, long: row_number() - 1 of the unpartitioned window
SUM_BEFORE = "_sum_before"  # sum of `sum_col` over the rows strictly before (0 for the first row)
_BUCKET = "_order_bucket"
SAMPLE_ROWS_PER_BUCKET = 64
LOCAL_ROWS = 20_000  # up to this many rows, one sorted collect of the order columns replaces the sample


@dataclass(frozen=True)
class Ordered:
    """What :func:`global_order` returns."""

    frame: DataFrame  # the input columns + POSITION (+ SUM_BEFORE with `sum_col`)
    rows: int  # row count
    total: int  # sum of `sum_col` over every row (0 without one)


def _sort_column(name: str, descending: bool) -> Column:
    return F.col(name).desc() if descending else F.col(name).asc()


def _after(name: str, descending: bool, value: Any) -> Column:
    """The row's value sorts strictly after the literal ``value`` (ascending: nulls first, descending:
    nulls last, as Spark sorts by default)."""
    column = F.col(name)
    if descending:
        return F.lit(False) if value is None else column.isNull() | (column < F.lit(value))
    return column.isNotNull() if value is None else column.isNotNull() & (column > F.lit(value))


def _at_or_after(order: Sequence[tuple[str, bool]], boundary: Any) -> Column:
    """Lexicographic ``row >= boundary`` in the sort order ``order``."""
    condition: Column = F.lit(True)  # equal on every column
    for name, descending in reversed(order):
        value = boundary[name]
        condition = _after(name, descending, value) | (F.col(name).eqNullSafe(F.lit(value)) & condition)
    return condition


def _bucket(order: Sequence[tuple[str, bool]], bounds: list[Any], low: int, high: int) -> Column:
    """The number of ``bounds`` at or before the row, known to be in ``low..high``: a binary search of
    nested CASEs (depth log2 of the bucket count, so thousands of buckets stay a shallow expression)."""
    if low == high:
        return F.lit(low)
    middle = (low + high) // 2
    return (F.when(_at_or_after(order, bounds[middle]), _bucket(order, bounds, middle + 1, high))
            .otherwise(_bucket(order, bounds, low, middle)))


@dataclass(frozen=True)
class _Cuts:
    """Where the buckets start (``bounds``, ``len(offsets) - 1`` rows of the order columns) and, per bucket,
    the rows and the sum of ``sum_col`` before it; ``rows`` and ``total`` over the whole frame."""

    bounds: list[Any]
    row_offsets: list[int]
    sum_offsets: list[int]
    rows: int
    total: int


def global_order(df: DataFrame, order: Sequence[tuple[str, bool]], *, sum_col: str | None = None,
                 rows_per_bucket: int = 500_000, local_rows: int = LOCAL_ROWS) -> Ordered:
    """``df`` + its 0-based position in ``order`` (pairs of column name and descending) and, with
    ``sum_col`` (an integral column), the running sum before each row; equal to the unpartitioned
    window's values.

    Up to ``local_rows`` rows, one small Spark job (a sorted collect of the order columns) places the
    cut; above, three (count, boundary sample, per-bucket counts and sums) over ``df``, cached for their
    duration unless it already is. The returned frame is lazy and computes ``df`` again, so ``df`` must
    be deterministic (no ``rand()``/``sample``). ``order`` must be total for the result to be
    deterministic (as for the window). Order columns are compared with literals: strings, numbers,
    booleans (not timestamps, whose literals depend on the session time zone).
    """
    if not order:
        raise ValueError("global_order needs at least one order column")
    if sum_col is not None and not isinstance(df.schema[sum_col].dataType, IntegralType):
        raise ValueError(f"global_order sums an integral column; {sum_col} is {df.schema[sum_col].dataType}")
    names = [name for name, _ in order]
    sort_columns = [_sort_column(name, descending) for name, descending in order]
    carried = names + ([sum_col] if sum_col is not None and sum_col not in names else [])
    head = df.select(*carried).sort(*sort_columns).limit(local_rows + 1).collect()
    if len(head) <= local_rows:  # small (catalog-sized) frames: one sorted collect gives cuts and offsets
        cuts = _cuts_of_sorted(head, names, sum_col)
    else:
        cuts = _cuts_by_sampling(df, order, sort_columns, sum_col, rows_per_bucket)
    bucket = _bucket(order, cuts.bounds, 0, len(cuts.bounds))
    framed = df.withColumn(_BUCKET, bucket)
    within = Window.partitionBy(_BUCKET).orderBy(*sort_columns)
    offset = F.array(*[F.lit(value).cast("long") for value in cuts.row_offsets])[F.col(_BUCKET)]
    framed = framed.withColumn(POSITION, (F.row_number().over(within) - 1).cast("long") + offset)
    if sum_col is not None:
        before = F.sum(sum_col).over(within.rowsBetween(Window.unboundedPreceding, -1))
        first = F.array(*[F.lit(value).cast("long") for value in cuts.sum_offsets])[F.col(_BUCKET)]
        framed = framed.withColumn(SUM_BEFORE, F.coalesce(before, F.lit(0)) + first)
    return Ordered(frame=framed.drop(_BUCKET), rows=cuts.rows, total=cuts.total)


def _same(left: Any, right: Any) -> bool:
    """Equal as Spark's sort sees it (NaN equals NaN)."""
    return left == right or (isinstance(left, float) and isinstance(right, float) and left != left and right != right)


def _cuts_of_sorted(keys: list[Any], names: list[str], sum_col: str | None) -> _Cuts:
    """Two buckets cut at the middle of the fully collected, sorted ``keys`` (rows equal to the boundary
    belong to the upper bucket)."""
    total = sum((row[sum_col] or 0) for row in keys) if sum_col is not None else 0
    if len(keys) < 2:
        return _Cuts(bounds=[], row_offsets=[0], sum_offsets=[0], rows=len(keys), total=total)
    cut = len(keys) // 2
    while cut > 0 and all(_same(keys[cut - 1][name], keys[cut][name]) for name in names):
        cut -= 1
    before = sum((row[sum_col] or 0) for row in keys[:cut]) if sum_col is not None else 0
    return _Cuts(bounds=[keys[cut]], row_offsets=[0, cut], sum_offsets=[0, before], rows=len(keys), total=total)


def _cuts_by_sampling(df: DataFrame, order: Sequence[tuple[str, bool]], sort_columns: list[Column],
                      sum_col: str | None, rows_per_bucket: int) -> _Cuts:
    """Boundaries from a sorted sample, then per-bucket counts and sums from one aggregation (``df``
    cached for these jobs unless it already is). The sample only decides where buckets are cut; the
    offsets are exact counts."""
    names = [name for name, _ in order]
    owned = not df.is_cached
    cached = df.persist() if owned else df
    try:
        rows = cached.count()
        buckets = max(2, math.ceil(rows / rows_per_bucket))
        fraction = min(1.0, SAMPLE_ROWS_PER_BUCKET * buckets / max(rows, 1))
        sample = (cached if fraction >= 1.0 else cached.sample(fraction=fraction, seed=17)).select(*names)
        keys = sample.sort(*sort_columns).collect()
        cuts = sorted({len(keys) * i // buckets for i in range(1, buckets)} - {0})
        bounds = [keys[cut] for cut in cuts if cut < len(keys)]
        aggregates = [F.count(F.lit(1)).alias("n")]
        if sum_col is not None:
            aggregates.append(F.sum(sum_col).alias("s"))
        stats = {row[_BUCKET]: row for row in cached.withColumn(_BUCKET, _bucket(order, bounds, 0, len(bounds)))
                 .groupBy(_BUCKET).agg(*aggregates).collect()}
    finally:
        if owned:
            cached.unpersist()
    row_offsets, sum_offsets, seen, running = [], [], 0, 0
    for index in range(len(bounds) + 1):
        row_offsets.append(seen)
        sum_offsets.append(running)
        if index in stats:
            seen += stats[index]["n"]
            running += (stats[index]["s"] or 0) if sum_col is not None else 0
    return _Cuts(bounds=bounds, row_offsets=row_offsets, sum_offsets=sum_offsets, rows=rows, total=running)


def ntile(position: Column, rows: int, buckets: int) -> Column:
    """``ntile(buckets)`` of the row at 0-based ``position`` among ``rows``: Spark's rule, the first
    ``rows % buckets`` tiles hold one row more."""
    size, padded = divmod(rows, buckets)
    if size == 0:
        return (position + 1).cast("int")
    boundary = padded * (size + 1)
    return (F.when(position < boundary, F.floor(position / (size + 1)))
            .otherwise(padded + F.floor((position - boundary) / size)) + 1).cast("int")
