"""One micro-batch of purchase events -> bronze_transactions, quarantine and user_recent_activity.

Every write here is idempotent, which is what turns Spark's at-least-once ``foreachBatch`` (a batch
that was running when the driver died is run again, with the same input, after a restart) into
exactly-once tables:

- bronze and quarantine: insert-if-absent on ``row_hash`` (the ingest rules: `seasonrec.data.ingest`),
  so rows already committed by an interrupted run of the batch are not added again;
- user_recent_activity: the rows of the users the batch touches are recomputed from *all* bronze
  rows that came through the stream (``source = 'stream'``), after bronze was written. The result is
  a function of bronze alone, so replaying a batch (or the same files again) recomputes the same
  values; only rows whose values changed are merged, so a replay commits nothing.

Each table commit is atomic (`seasonrec.lake.Lake`), and the order (quarantine, bronze, activity)
means a crash between two commits leaves nothing that the replay would not complete.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from seasonrec import tables
from seasonrec.config import FileSourceConfig
from seasonrec.context import JobError
from seasonrec.data import ingest, sources
from seasonrec.data.validation import SourceRules
from seasonrec.features import silver
from seasonrec.lake import Lake

# `source` of every bronze/quarantine row written by the stream: it is how user_recent_activity finds "the
# purchases the stream has seen". The row hash does not include it (a business key): a line the stream
# stored is not added again by a later batch ingest of the same transactions, and vice versa.
SOURCE = "stream"
ACTIVITY_COLUMNS = tables.spec(tables.USER_RECENT_ACTIVITY).column_names


@dataclass(frozen=True)
class BatchSettings:
    """How events are parsed (``source``: data.file, whose columns, alternative_columns, timestamp
    format and zone streamed events share) and how much recent activity is kept per user."""

    format: str  # "csv" or "json"
    source: FileSourceConfig
    recent_items_max: int
    salt: str
    rules: SourceRules | None = None  # data.file's validation rules; None: the defaults


@dataclass
class BatchResult:
    """What one micro-batch did (the numbers of the per-batch progress line)."""

    batch_id: int
    rows_in: int = 0
    bronze_added: int = 0
    quarantined: int = 0
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    users_updated: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        """The per-batch progress line the job logs."""
        return (f"batch {self.batch_id}: {self.rows_in} rows in, {self.bronze_added} bronze added, "
                f"{self.quarantined} quarantined, {self.users_updated} users updated ({self.seconds:.1f}s)")


# ---------------------------------------------------------------------------------------------- staging
def stage_lines(lines: DataFrame, fmt: str, source: FileSourceConfig) -> DataFrame:
    """Raw event lines (``source_file``, ``value``: one text line of a file or one Kafka message) ->
    the staged frame `seasonrec.data.ingest.classify` takes (raw strings, as `sources.read_file_source`
    stages a file). ``source`` (data.file) names the columns: each field's ``columns`` name, else the
    first of its ``alternative_columns`` present (`sources.column_choices`).

    ``fmt`` "csv": every file carries its own header line (any column order, each file mapped by
    `sources.file_columns`); a file without one raises `JobError` naming it. ``fmt`` "json": one JSON
    object per line, each field read from the first of its names the object gives a value; a line that
    is not one stages as all-null fields and is quarantined (missing_item) with its raw text.
    """
    choices = sources.column_choices(source)
    if fmt == "json":
        schema = StructType([StructField(name, StringType())
                             for name in sorted({name for names in choices.values() for name in names})])
        # StringType fields keep numbers as their JSON text ("6"), so ingest parses them like CSV values.
        parsed = lines.where(F.trim("value") != "").withColumn("_row", F.from_json("value", schema))
        staged = parsed.select(
            "source_file", F.col("value").alias("raw_line"),
            *[(F.coalesce(*[F.col("_row").getField(name) for name in choices[f]]) if f in choices
               else F.lit(None).cast("string")).alias(f) for f in sources.FIELDS])
        return sources.finish_staging(staged)
    if fmt != "csv":
        raise JobError(f"streaming.format '{fmt}' is not supported; allowed: csv, json")
    parts = []
    for header_line, files in _files_by_header(csv_headers(lines, source)).items():
        fields = sources.header_fields(header_line)
        rows = lines.where(F.col("source_file").isin(files) & (F.col("value") != header_line))
        parts.append(sources.stage_csv_lines(rows, fields, sources.file_columns(source, fields, files[0])))
    if not parts:  # an empty batch still needs the staged shape
        parts.append(sources.stage_csv_lines(lines.limit(0), list(source.columns.values()), dict(source.columns)))
    return sources.finish_staging(reduce(DataFrame.unionByName, parts))


def csv_headers(lines: DataFrame, source: FileSourceConfig) -> dict[str, str]:
    """{source_file: its header line} for every file in ``lines``: a line whose CSV fields hold a name
    of every mapped field (`sources.find_columns`). `JobError` naming the first file without one
    (one small Spark job)."""
    choices = list(sources.column_choices(source).values())
    # Cheap filter in Spark; the exact check (names are whole CSV fields) runs on the few candidates.
    candidate = reduce(Column.__and__, [reduce(Column.__or__, [F.col("value").contains(name) for name in names])
                                        for names in choices])
    per_file = (lines.where(F.trim("value") != "").groupBy("source_file")  # a blank file is no error
                .agg(F.array_sort(F.collect_set(F.when(candidate, F.col("value")))).alias("candidates"))
                .collect())
    headers: dict[str, str] = {}
    for row in per_file:
        found = [line for line in row["candidates"] if not sources.find_columns(source, sources.header_fields(line))[1]]
        if not found:
            raise JobError(f"{row['source_file']}: no CSV header line with the columns "
                           f"{sources.find_columns(source, [])[1]} of "
                           "data.file.columns (and alternative_columns); fix the file in place (or set "
                           "streaming.format) and restart")
        headers[row["source_file"]] = found[0]
    return headers


def _files_by_header(headers: dict[str, str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for source_file, header_line in sorted(headers.items()):
        grouped.setdefault(header_line, []).append(source_file)
    return grouped


# ---------------------------------------------------------------------------------------------- writes
def purchases(bronze: DataFrame) -> DataFrame:
    """The bronze rows that are purchases of a known user: quantity > 0 (cancellations and returns
    have negative quantities) and a customer id (guest checkouts have none)."""
    return bronze.where((F.col("quantity") > 0) & F.col("user_raw").isNotNull())


def recent_activity(user_purchases: DataFrame, recent_items_max: int, salt_value: str,
                    updated_at: dt.datetime) -> DataFrame:
    """user_recent_activity rows from purchase rows (bronze columns user_raw, item_raw, ts), one per user.

    item_ids: the user's distinct items by their latest purchase, most recent first (ties by item id),
    at most ``recent_items_max``; ts: that latest purchase time per item (aligned); last_ts: the latest
    purchase; n_events: every purchase line; user_id: the silver pseudonym (same salt and hash).
    """
    latest = user_purchases.groupBy("user_raw", "item_raw").agg(F.max("ts").alias("ts"))
    recency = Window.partitionBy("user_raw").orderBy(F.col("ts").desc(), F.col("item_raw"))
    recent = (latest.withColumn("position", F.row_number().over(recency))
              .where(F.col("position") <= recent_items_max)
              .groupBy("user_raw")
              # collect_list does not keep an order: sort by position explicitly.
              .agg(F.array_sort(F.collect_list(F.struct("position", "item_raw", "ts"))).alias("recent")))
    totals = user_purchases.groupBy("user_raw").agg(F.count(F.lit(1)).alias("n_events"),
                                                    F.max("ts").alias("last_ts"))
    return totals.join(recent, "user_raw").select(
        silver.pseudonymize(F.col("user_raw"), salt_value).alias("user_id"),
        F.transform("recent", lambda r: r["item_raw"]).alias("item_ids"),
        F.transform("recent", lambda r: r["ts"]).alias("ts"),
        F.col("last_ts"),
        F.col("n_events").cast("bigint").alias("n_events"),
        F.lit(updated_at).cast("timestamp").alias("updated_at"))


def _insert_new(lake: Lake, rows: DataFrame, name: str, commit_info: dict[str, str]) -> int:
    """Insert the rows whose row_hash the table does not hold yet; returns how many this commit
    inserted (0: no commit)."""
    new = rows.dropDuplicates(["row_hash"])
    if lake.exists(name):
        new = new.join(lake.read(name).select("row_hash"), "row_hash", "left_anti")
    new = new.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        count = new.count()
        if not count:
            return 0
        # Still a MERGE (not an append): another writer may have inserted some of them meanwhile, and
        # then only what this commit inserted is this batch's (`Lake.merge_counted`).
        merged = lake.merge_counted(new, name, ["row_hash"], when_matched="ignore", commit_info=commit_info)
        return count if merged.rows_inserted is None else merged.rows_inserted
    finally:
        new.unpersist()


def _update_activity(lake: Lake, touched_users: DataFrame, settings: BatchSettings, updated_at: dt.datetime,
                     commit_info: dict[str, str]) -> int:
    """Recompute the touched users from the stream's bronze rows; merge the rows that changed."""
    stream_rows = lake.read(tables.BRONZE_TRANSACTIONS).where(F.col("source") == SOURCE)
    fresh = recent_activity(purchases(stream_rows).join(F.broadcast(touched_users), "user_raw"),
                            settings.recent_items_max, settings.salt, updated_at)
    if lake.exists(tables.USER_RECENT_ACTIVITY):
        current = lake.read(tables.USER_RECENT_ACTIVITY).select(
            "user_id", *[F.col(c).alias(f"current_{c}") for c in ("item_ids", "ts", "last_ts", "n_events")])
        same = reduce(Column.__and__, [F.col(c).eqNullSafe(F.col(f"current_{c}"))
                                       for c in ("item_ids", "ts", "last_ts", "n_events")])
        # updated_at only moves when something did: a replayed batch changes no row and commits nothing.
        fresh = fresh.join(current, "user_id", "left").where(~same).select(*ACTIVITY_COLUMNS)
    changed = fresh.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        count = changed.count()
        if count:
            lake.merge(changed, tables.USER_RECENT_ACTIVITY, ["user_id"], when_matched="update",
                       commit_info=commit_info)
        return count
    finally:
        changed.unpersist()


def process_batch(lake: Lake, staged: DataFrame, batch_id: int, settings: BatchSettings,
                  commit_info: dict[str, str] | None = None, now: dt.datetime | None = None) -> BatchResult:
    """Validate one staged micro-batch with the ingest rules and apply it to the lake, idempotently.

    Takes the staged frame (`stage_lines`), the Spark batch id (recorded in the commits) and the
    settings; returns the batch's counts. Applying the same batch twice leaves every table as after
    the first time (no new rows, no new commits).
    """
    started = time.perf_counter()
    now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    info = {**(commit_info or {}), "seasonrec.stream_batch": str(batch_id)}
    result = BatchResult(batch_id)
    classified = ingest.classify(staged, SOURCE, now, settings.source.timestamp_format, settings.source.timezone,
                                 settings.rules)
    classified = classified.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {row["reason"]: row["count"] for row in classified.groupBy("reason").count().collect()}
        result.rows_in = sum(counts.values())
        counts.pop(None, None)
        result.quarantine_by_reason = dict(sorted(counts.items()))
        result.quarantined = sum(counts.values())
        if result.quarantined:
            _insert_new(lake, ingest.quarantine_rows(classified), tables.QUARANTINE, info)
        good = ingest.bronze_rows(classified)
        if result.rows_in > result.quarantined:
            result.bronze_added = _insert_new(lake, good, tables.BRONZE_TRANSACTIONS, info)
        # Every user of the batch, not only those of newly added rows: after a crash between the bronze
        # and the activity commit, the replay adds no bronze rows but must still bring the users up to date.
        touched = purchases(good).select("user_raw").distinct().persist(StorageLevel.MEMORY_AND_DISK)
        try:
            if touched.limit(1).count():
                result.users_updated = _update_activity(lake, touched, settings, now, info)
        finally:
            touched.unpersist()
    finally:
        classified.unpersist()
    result.seconds = time.perf_counter() - started
    return result
