"""`seasonrec ingest`: load a source into bronze_transactions; unusable rows go to quarantine."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.config import DataConfig, FileSourceConfig, TimestampFormat
from seasonrec.context import JobError, iso_date
from seasonrec.data import ingest, quarantine, sources
from seasonrec.data.validation import HEADER_LINE, SourceRules

DESCRIPTION = "bronze: load the configured source (synthetic, online_retail or a mapped file) with quarantine"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``seasonrec ingest`` options: ``--source`` (synthetic, online_retail, file), ``--path``, ``--since``."""
    parser.add_argument("--source", choices=["synthetic", "online_retail", "file"], default=None,
                        help="default: data.source from the config")
    parser.add_argument("--path", default=None,
                        help="input file/folder/glob, or an .xlsx workbook (file and online_retail sources)")
    parser.add_argument("--since", type=iso_date, default=None,
                        help="load only rows with a timestamp on/after this date (YYYY-MM-DD)")


def run(ctx, args: argparse.Namespace) -> dict[str, Any]:
    """Read the source, classify every record (`seasonrec.data.validation`), insert the new valid rows into
    bronze_transactions and the refused ones into quarantine; returns the summary, whose records balance
    (read = header lines + before --since + added + quarantined + duplicates skipped) is checked."""
    spark = ctx.spark
    # Unparseable timestamps must become null (-> quarantine), not a SparkUpgradeException.
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    source = args.source or ctx.config.data.source
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    # Files the read stages (the CSV copy of an .xlsx) are read until the last merge: removed at the end.
    with contextlib.ExitStack() as staged_files:
        def staging() -> str:
            return staged_files.enter_context(ctx.lake.staging_folder("ingest"))

        with ctx.step(f"read {source}"):
            read = _read_source(spark, ctx.config.data, source, args.path, staging)
        classified = ingest.classify(read.staged, source, ingested_at, read.timestamp_format, read.timezone,
                                     read.rules)
        in_window = F.lit(True) if args.since is None else (
            F.col("ts").isNull() | (F.col("ts") >= F.lit(args.since).cast("timestamp")))
        classified = classified.withColumn("in_window", in_window).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            counts = _count(classified, source, read.max_share)
            kept = classified.where("in_window")
            summary = _write(ctx, kept, counts, ingested_at)
            if read.truth is not None:
                ctx.lake.write(read.truth, tables.SYNTHETIC_TRUTH, commit_info=ctx.commit_info())
        finally:
            classified.unpersist()
    return {"source": source, **summary}


@dataclass(frozen=True)
class SourceRead:
    """A source as the job reads it: the staged frame, how its timestamps parse, its rules."""

    staged: DataFrame
    timestamp_format: TimestampFormat | None
    timezone: str | None
    rules: SourceRules
    max_share: float
    truth: DataFrame | None = None


def _read_source(spark: SparkSession, config: DataConfig, source: str, path: str | None,
                 staging: Callable[[], str]) -> SourceRead:
    """The staged frame and settings of ``source`` under the data config section ``config``; ``staging``
    gives a folder for files the read writes first (`sources.read_file_source`)."""
    if source == "synthetic":
        staged, truth = sources.read_synthetic(spark, config.synthetic)
        # The generator writes every field, ISO timestamps in UTC, C-invoices for cancellations.
        described = FileSourceConfig(columns={f: f for f in sources.FIELDS}, required_fields=["invoice", "description"])
        return SourceRead(staged, None, None, SourceRules.of(described, config.validation),
                          config.quarantine_max_share, truth)
    file_config = config.online_retail if source == "online_retail" else config.file
    max_share = config.quarantine_max_share if file_config.quarantine_max_share is None \
        else file_config.quarantine_max_share
    return SourceRead(sources.read_file_source(spark, file_config, path, staging), file_config.timestamp_format,
                      file_config.timezone, SourceRules.of(file_config, config.validation), max_share)


@dataclass
class Counts:
    """What one pass over the classified records found."""

    records_read: int
    header_lines: int
    before_since: int
    good: int
    quarantined: dict[str, int]
    repeated_header_lines: int = 0

    @property
    def rows_in(self) -> int:
        """Data records after --since: valid + quarantined."""
        return self.good + sum(self.quarantined.values())


def _count(classified: DataFrame, source: str, max_share: float) -> Counts:
    """One Spark job counting the records by outcome; `JobError` when there are none or when the
    quarantined share is above ``max_share`` (nothing is written then)."""
    rows = classified.groupBy("reason", "in_window").count().collect()
    header_lines = sum(r["count"] for r in rows if r["reason"] == HEADER_LINE)
    kept = [r for r in rows if r["in_window"] and r["reason"] != HEADER_LINE]
    quarantined: dict[str, int] = {}
    for r in kept:
        if r["reason"] is not None:
            quarantined[r["reason"]] = quarantined.get(r["reason"], 0) + r["count"]
    counts = Counts(records_read=sum(r["count"] for r in rows), header_lines=header_lines,
                    before_since=sum(r["count"] for r in rows if not r["in_window"] and r["reason"] != HEADER_LINE),
                    good=sum(r["count"] for r in kept if r["reason"] is None),
                    quarantined=dict(sorted(quarantined.items())))
    if header_lines:
        # Every file's first line is its header; any other header line is a concatenation left-over.
        files = classified.where(F.col("reason") == HEADER_LINE).select("source_file").distinct().count()
        counts.repeated_header_lines = header_lines - files
    if counts.rows_in == 0:
        raise JobError(f"source {source} produced no rows")
    bad = sum(counts.quarantined.values())
    if bad / counts.rows_in > max_share:
        raise JobError(_too_many_bad_rows(classified, counts, max_share, source))
    return counts


def _too_many_bad_rows(classified: DataFrame, counts: Counts, max_share: float, source: str) -> str:
    """The one-line refusal: counts per reason and one example by reason and row hash (raw rows may hold
    customer ids: they stay in the data, never in messages)."""
    bad = sum(counts.quarantined.values())
    example = (classified.where(F.col("reason").isNotNull() & (F.col("reason") != HEADER_LINE) & F.col("in_window"))
               .select("reason", "row_hash").first())
    return (f"{bad} of {counts.rows_in} rows ({bad / counts.rows_in:.1%}) are unusable, above "
            f"data.quarantine_max_share={max_share}: {counts.quarantined}; e.g. {example['reason']} "
            f"(row_hash {example['row_hash'][:16]}). Nothing was written.{_timestamp_hint(counts, source)}")


def _timestamp_hint(counts: Counts, source: str) -> str:
    """The refusal's pointer to ``data.<source>.timestamp_format`` when dates are why rows were refused."""
    key = f"data.{source}.timestamp_format"
    if "ambiguous_timestamp" in counts.quarantined:
        return f" Dates like 1/12/2010 read as two days: set {key} (e.g. d/M/yyyy H:mm)."
    if max(counts.quarantined, key=counts.quarantined.get) == "unparseable_timestamp":
        return (f" Timestamps not in {key}: set it to the file's (a list is tried in order), "
                "e.g. '[yyyy-MM-dd HH:mm:ss,M/d/yyyy H:mm]' for a month-first export such as Kaggle's data.csv.")
    return ""


def _row_count(ctx, name: str) -> int:
    return ctx.lake.read(name).count() if ctx.lake.exists(name) else 0


def _write(ctx, kept: DataFrame, counts: Counts, ingested_at: dt.datetime) -> dict[str, Any]:
    """Insert-if-absent of the valid rows into bronze and the refused rows into quarantine, then mark
    resolved the quarantine rows this run's valid rows fix (`seasonrec.data.quarantine`); returns the
    summary after checking that every record read is accounted for.

    "Added" is what this run's own MERGE commits inserted (`Lake.merge_counted`), not the change of the
    table's row count: with a concurrent ingest of the same file, the job whose MERGE lost the race and
    found every row already there added none (its valid rows are duplicates skipped), though the table
    grew meanwhile; before, both jobs reported every row added."""
    good = ingest.bronze_rows(kept)
    bronze_before = _row_count(ctx, tables.BRONZE_TRANSACTIONS)
    quarantine_before = _row_count(ctx, tables.QUARANTINE)
    with ctx.step("merge bronze"):
        bronze = ctx.lake.merge_counted(good, tables.BRONZE_TRANSACTIONS, ["row_hash"], when_matched="ignore",
                                        commit_info=ctx.commit_info())
        bronze_after = ctx.lake.read(tables.BRONZE_TRANSACTIONS).count()
    with ctx.step("merge quarantine"):
        refused = ctx.lake.merge_counted(ingest.quarantine_rows(kept), tables.QUARANTINE, ["row_hash"],
                                         when_matched="ignore", commit_info=ctx.commit_info())
    with ctx.step("resolve quarantine") as step:
        resolved = quarantine.resolve(ctx.lake, good, ctx.run_id, ingested_at, ctx.commit_info())
        step.note(resolved=resolved)
    # An engine that does not count its MERGE inserts: the table's growth (exact without concurrent writers).
    added = bronze.rows_inserted if bronze.rows_inserted is not None else bronze_after - bronze_before
    quarantine_added = (refused.rows_inserted if refused.rows_inserted is not None
                        else _row_count(ctx, tables.QUARANTINE) - quarantine_before)
    # Valid rows not added: already in bronze (a re-run, another source, an overlapping file, a concurrent
    # job's commit) or repeated inside this input.
    duplicates = counts.good - added
    bronze_version = bronze.version
    quarantined = sum(counts.quarantined.values())
    balance = (f"{counts.records_read} records read = {counts.header_lines} header lines + {counts.before_since} "
               f"before --since + {added} added + {quarantined} quarantined + {duplicates} duplicates skipped")
    # Every valid row is added or skipped; the table grew by at least what this run's commit inserted
    # (insert-only: another writer can only add more); and the records balance.
    if not 0 <= added <= counts.good or bronze_after - bronze_before < added or counts.records_read != (
            counts.header_lines + counts.before_since + added + quarantined + duplicates):
        raise JobError(f"records do not balance: {balance} (bronze_transactions grew by "
                       f"{bronze_after - bronze_before} rows)")
    return {
        "records_read": counts.records_read,
        "header_lines": counts.header_lines,
        "repeated_header_lines": counts.repeated_header_lines,
        "rows_before_since": counts.before_since,
        "rows_in": counts.rows_in,
        "rows_good": counts.good,
        "rows_quarantined": quarantined,
        "quarantined_share": round(quarantined / counts.rows_in, 4),
        "quarantine_by_reason": counts.quarantined,
        "duplicates_skipped": duplicates,
        "bronze_rows_added": added,
        "quarantine_rows_added": quarantine_added,
        "quarantine_rows_resolved": resolved,
        "bronze_rows_total": bronze_after,
        "bronze_version": bronze_version,
        "records_balance": balance,
    }
