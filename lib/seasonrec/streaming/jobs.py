"""`seasonrec stream`: purchase events as they land -> bronze/quarantine + user_recent_activity, exactly once.

Spark Structured Streaming with ``foreachBatch`` and a checkpoint (streaming.checkpoint_dir). Spark
records each micro-batch's input (files or Kafka offsets) in the checkpoint before running it and marks
it done after; a batch that was running when the driver died runs again after a restart with the same
input, and `seasonrec.streaming.micro_batch.process_batch` is idempotent, so nothing is lost or doubled.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession

if TYPE_CHECKING:
    from seasonrec.config import StreamingConfig

DESCRIPTION = ("near-real-time: purchase events (files or Kafka) -> bronze/quarantine and user_recent_activity, "
               "exactly-once (--once: what is there, then stop)")
log = logging.getLogger("seasonrec")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The job's options: --once (availableNow trigger) and --timeout-seconds."""
    parser.add_argument("--once", action="store_true",
                        help="process the events already there (availableNow trigger) and stop; default: run "
                             "micro-batches every streaming.trigger_seconds until killed")
    parser.add_argument("--timeout-seconds", type=float, default=None,
                        help="stop after this many seconds (after the running micro-batch); default: no limit")


def _local(path: str) -> str:
    """Relative local paths resolve against the working directory, like the rest of the config."""
    return path if "://" in path or ":/" in path else os.path.abspath(path)


def read_events(spark: SparkSession, config: StreamingConfig, input_dir: str) -> DataFrame:
    """The streaming frame of raw events (``source_file``, ``value``) for streaming.source.

    files: every line of every new file in ``input_dir``; kafka: one row per message, value as text and
    ``source_file`` = kafka://topic/partition/offset (needs the spark-sql-kafka package on the cluster).
    """
    from pyspark.sql import functions as F

    if config.source == "kafka":
        reader = (spark.readStream.format("kafka")
                  .option("kafka.bootstrap.servers", config.kafka_bootstrap_servers)
                  .option("subscribe", config.kafka_topic)
                  .option("startingOffsets", "earliest"))
        if config.max_files_per_trigger:
            reader = reader.option("maxOffsetsPerTrigger", config.max_files_per_trigger)
        messages = reader.load()
        return messages.select(
            F.concat_ws("/", F.lit("kafka:/"), "topic", F.col("partition").cast("string"),
                        F.col("offset").cast("string")).alias("source_file"),
            F.col("value").cast("string").alias("value"))
    if "://" not in input_dir:
        # The file source refuses a folder that does not exist yet; an empty one just waits for files.
        os.makedirs(input_dir, exist_ok=True)
    reader = spark.readStream.format("text")
    if config.max_files_per_trigger:
        reader = reader.option("maxFilesPerTrigger", config.max_files_per_trigger)
    return reader.load(input_dir).select(F.input_file_name().alias("source_file"), "value")


def _stop_between_batches(query, grace_seconds: float = 120.0) -> None:
    # Stopping mid-batch would be safe (the batch re-runs after a restart) but wasteful: wait for it.
    deadline = time.monotonic() + grace_seconds
    while query.isActive and query.status.get("isTriggerActive") and time.monotonic() < deadline:
        time.sleep(0.2)
    query.stop()


def run(ctx, args: argparse.Namespace) -> dict[str, Any]:
    """Run the stream on ``ctx`` (config, Spark, lake) until it is done (--once), times out or is killed.

    Returns the summary: mode, source, checkpoint, the micro-batches this run processed (ids, rows in,
    bronze rows added, rows quarantined by reason, users updated) and user_recent_activity's version.
    """
    from seasonrec import tables
    from seasonrec.data.validation import SourceRules
    from seasonrec.features import silver
    from seasonrec.streaming import micro_batch

    config = ctx.config.streaming
    spark = ctx.spark
    # Unparseable timestamps must become null (-> quarantine), not a SparkUpgradeException (as in ingest).
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    file_config = ctx.config.data.file
    input_dir = _local(config.input_dir) if config.input_dir else f"{ctx.config.paths.lake_root}/_incoming"
    checkpoint = _local(config.checkpoint_dir) if config.checkpoint_dir else f"{ctx.config.paths.checkpoint_dir}/stream"
    settings = micro_batch.BatchSettings(
        format="json" if config.source == "kafka" else config.format, source=file_config,
        recent_items_max=config.recent_items_max, salt=silver.salt(ctx.config.features, ctx.config.env),
        rules=SourceRules.of(file_config, ctx.config.data.validation))
    results: list[micro_batch.BatchResult] = []
    failures: list[BaseException] = []
    source = (f"kafka {config.kafka_topic} @ {config.kafka_bootstrap_servers}" if config.source == "kafka"
              else f"{settings.format} files in {input_dir}")
    log.info("[stream] %s -> tables %s (checkpoint %s)", source, ctx.lake.where, checkpoint)
    handle = _batch_handler(ctx, settings, results, failures)
    writer = (read_events(spark, config, input_dir).writeStream.queryName("seasonrec_stream")
              .foreachBatch(handle).option("checkpointLocation", checkpoint))
    if args.once:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{int(round(config.trigger_seconds * 1000))} milliseconds")
    timed_out = _run_query(writer, args.timeout_seconds, failures)
    return {"mode": "once" if args.once else "continuous", "source": source, "checkpoint": checkpoint,
            "stopped_by_timeout": timed_out, **_batches_summary(results),
            "user_recent_activity_version": ctx.lake.version(tables.USER_RECENT_ACTIVITY)}


def _batch_handler(ctx: Any, settings: Any, results: list[Any],
                   failures: list[BaseException]) -> Callable[[DataFrame, int], None]:
    """The ``foreachBatch`` function: stage and process one micro-batch (`micro_batch.process_batch`),
    appending its `BatchResult` to ``results``; an exception is kept in ``failures`` and fails the query
    (the batch is re-run with the same input on the next start)."""
    from seasonrec.streaming import micro_batch

    max_share = ctx.config.data.quarantine_max_share

    def handle(lines: DataFrame, batch_id: int) -> None:
        # Runs on the driver (py4j callback) for each micro-batch.
        try:
            lines = lines.persist()
            try:
                staged = micro_batch.stage_lines(lines, settings.format, settings.source)
                result = micro_batch.process_batch(ctx.lake, staged, batch_id, settings, ctx.commit_info())
            finally:
                lines.unpersist()
        except BaseException as exc:
            failures.append(exc)
            raise
        results.append(result)
        log.info("[stream] %s", result.line())
        if result.rows_in and result.quarantined / result.rows_in > max_share:
            # Not fatal as in `seasonrec ingest`: stopping would block the stream on this batch forever.
            log.warning("[stream] batch %d: %d of %d rows quarantined (above data.quarantine_max_share=%s): %s",
                        batch_id, result.quarantined, result.rows_in, max_share, result.quarantine_by_reason)

    return handle


def _run_query(writer: Any, timeout_seconds: float | None, failures: list[BaseException]) -> bool:
    """Start the streaming query and wait for it: until it ends, or ``timeout_seconds`` (then it is
    stopped between batches and True is returned), or Ctrl-C (stopped the same way, re-raised). A
    failed batch is re-raised as its own error (``failures[0]``) rather than Spark's wrapper."""
    # py4j would also log a failing batch's Python traceback a second time. Only while the query
    # runs: the process (a notebook, a test session) keeps its own py4j logging afterwards.
    py4j_callbacks = logging.getLogger("py4j.clientserver")
    level_before = py4j_callbacks.level
    py4j_callbacks.setLevel(logging.CRITICAL)
    query = writer.start()
    try:
        if timeout_seconds is None:
            query.awaitTermination()
        elif not query.awaitTermination(timeout_seconds):
            _stop_between_batches(query)
            return True
    except KeyboardInterrupt:
        _stop_between_batches(query)
        raise
    except Exception:
        if failures:  # the batch's own error (e.g. a JobError) says more than Spark's wrapper
            raise failures[0] from None
        raise
    finally:
        py4j_callbacks.setLevel(level_before)
    return False


def _batches_summary(results: list[Any]) -> dict[str, Any]:
    """What the run's micro-batches did: their count and ids, rows in, bronze rows added, rows
    quarantined (in all and by reason) and users updated."""
    return {
        "batches": len(results),
        "batch_ids": [r.batch_id for r in results],
        "rows_in": sum(r.rows_in for r in results),
        "bronze_rows_added": sum(r.bronze_added for r in results),
        "rows_quarantined": sum(r.quarantined for r in results),
        "quarantine_by_reason": {reason: sum(r.quarantine_by_reason.get(reason, 0) for r in results)
                                 for reason in sorted({k for r in results for k in r.quarantine_by_reason})},
        "users_updated": sum(r.users_updated for r in results),
    }
