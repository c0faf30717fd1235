"""`seasonrec ingest`: load a source into bronze_transactions; unusable rows go to quarantine."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import functions as F

from seasonrec.context import iso_date

DESCRIPTION = "bronze: load the configured source (synthetic, online_retail or a mapped file) with quarantine"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", choices=["synthetic", "online_retail", "file"], default=None,
                        help="default: data.source from the config")
    parser.add_argument("--path", default=None, help="input file/folder/glob (file and online_retail sources)")
    parser.add_argument("--since", type=iso_date, default=None,
                        help="load only rows with a timestamp on/after this date (YYYY-MM-DD)")


def run(ctx, args: argparse.Namespace) -> dict[str, Any]:
    from seasonrec import tables
    from seasonrec.context import JobError
    from seasonrec.data import ingest, sources

    config = ctx.config.data
    source = args.source or config.source
    spark = ctx.spark
    # Unparseable timestamps must become null (-> quarantine), not a SparkUpgradeException.
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    truth = None
    fmt = tz = None
    max_share = config.quarantine_max_share
    with ctx.step(f"read {source}"):
        if source == "synthetic":
            staged, truth = sources.read_synthetic(spark, config.synthetic)
        else:
            file_config = config.online_retail if source == "online_retail" else config.file
            staged = sources.read_file_source(spark, file_config, args.path)
            fmt, tz = file_config.timestamp_format, file_config.timezone
            if file_config.quarantine_max_share is not None:
                max_share = file_config.quarantine_max_share
    classified = ingest.classify(staged, source, ingested_at, fmt, tz)
    if args.since is not None:
        classified = classified.where(F.col("ts").isNull() | (F.col("ts") >= F.lit(args.since).cast("timestamp")))
    classified = classified.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = {row["reason"]: row["count"] for row in classified.groupBy("reason").count().collect()}
        rows_in = sum(counts.values())
        good = counts.pop(None, 0)
        quarantined = sum(counts.values())
        share = quarantined / rows_in if rows_in else 0.0
        if rows_in == 0:
            raise JobError(f"source {source} produced no rows")
        if share > max_share:
            example = classified.where(F.col("reason").isNotNull()).select("reason", "raw_line").first()
            raise JobError(f"{quarantined} of {rows_in} rows ({share:.1%}) are unusable, above "
                           f"data.quarantine_max_share={max_share}: {dict(sorted(counts.items()))}; "
                           f"e.g. {example['reason']}: {example['raw_line'][:200]!r}. Nothing was written.")
        before = ctx.lake.read(tables.BRONZE_TRANSACTIONS).count() if ctx.lake.exists(tables.BRONZE_TRANSACTIONS) else 0
        with ctx.step("merge bronze"):
            bronze_version = ctx.lake.merge(ingest.bronze_rows(classified), tables.BRONZE_TRANSACTIONS, ["row_hash"],
                                            when_matched="ignore", commit_info=ctx.commit_info())
            after = ctx.lake.read(tables.BRONZE_TRANSACTIONS).count()
        with ctx.step("merge quarantine"):
            ctx.lake.merge(ingest.quarantine_rows(classified), tables.QUARANTINE, ["row_hash"],
                           when_matched="ignore", commit_info=ctx.commit_info())
        if truth is not None:
            ctx.lake.write(truth, tables.SYNTHETIC_TRUTH, commit_info=ctx.commit_info())
    finally:
        classified.unpersist()
    return {
        "source": source,
        "rows_in": rows_in,
        "rows_good": good,
        "rows_quarantined": quarantined,
        "quarantined_share": round(share, 4),
        "quarantine_by_reason": dict(sorted(counts.items())),
        "bronze_rows_added": after - before,
        "bronze_rows_total": after,
        "bronze_version": bronze_version,
    }
