"""The quarantine lifecycle: a refused row stays in ``quarantine`` (reason and raw line, for audit and
repair) until a later ingest brings a valid row with the same ``row_hash`` (its business key plus
occurrence, `seasonrec.data.ingest`); it is then marked resolved, never deleted: ``resolved_at`` (when)
and ``resolved_by_run`` (the ingest run id that brought the valid row) are set.

A fix that changes a key field (invoice, customer, item, timestamp, quantity or price) makes another
line, so its quarantine row stays open; a fix of any other field (a missing description, a bad
country, a broken encoding outside the key) resolves it.
"""

from __future__ import annotations

import datetime as dt

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.lake import Lake


def resolve(lake: Lake, valid: DataFrame, run_id: str, resolved_at: dt.datetime,
            commit_info: dict[str, str] | None = None) -> int:
    """Mark resolved the open quarantine rows whose ``row_hash`` is among ``valid``'s (the valid rows
    of run ``run_id``, new or already in bronze, so a rerun after a crash resolves what the crash
    left open): one MERGE commit updating only those rows, none when nothing is resolved. A table
    written before the lifecycle gets its resolved_* columns first (`Lake.add_missing_columns`).
    Returns how many rows were resolved."""
    if not lake.exists(tables.QUARANTINE):
        return 0
    lake.add_missing_columns(tables.QUARANTINE, commit_info)
    open_rows = lake.read(tables.QUARANTINE).where(F.col("resolved_at").isNull())
    resolved = (open_rows.join(valid.select("row_hash").distinct(), "row_hash", "left_semi")
                .withColumn("resolved_at", F.lit(resolved_at).cast("timestamp"))
                .withColumn("resolved_by_run", F.lit(run_id))
                .select(*tables.spec(tables.QUARANTINE).column_names)
                .persist(StorageLevel.MEMORY_AND_DISK))
    try:
        count = resolved.count()
        if count:
            lake.merge(resolved, tables.QUARANTINE, ["row_hash"], when_matched="update", commit_info=commit_info)
        return count
    finally:
        resolved.unpersist()
