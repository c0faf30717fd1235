"""What every job receives: validated config, the Spark session, the lake, and a run id."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pyspark.sql import SparkSession

from seasonrec import logs
from seasonrec.config import SeasonrecConfig
from seasonrec.lake import Lake

log = logging.getLogger("seasonrec")


@dataclass
class JobContext:
    """What a job runs with: the validated config, the Spark session, the `Lake` at ``paths.lake_root``, the job's name
    and a fresh 12-hex-digit ``run_id`` (recorded in commits, logs and MLflow)."""

    config: SeasonrecConfig
    spark: SparkSession
    lake: Lake
    job: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @classmethod
    def create(cls, config: SeasonrecConfig, job: str, spark: SparkSession | None = None) -> JobContext:
        """A context for ``job`` on ``config``; ``spark`` defaults to `seasonrec.spark.get_spark` (the session the
        config describes, created or reused)."""
        from seasonrec.spark import get_spark

        spark = spark or get_spark(config)
        return cls(config=config, spark=spark, lake=lake_of(config, spark), job=job)

    def commit_info(self, **extra: str) -> dict[str, str]:
        """Recorded in every Delta commit so a table version can be traced to the run that wrote it."""
        return {"seasonrec.job": self.job, "seasonrec.run_id": self.run_id, **extra}

    @contextmanager
    def step(self, what: str) -> Iterator[Step]:
        """One log line with the step's duration (and any counts given to ``Step.note``) when it ends, and
        one when it starts if someone watches a terminal (or --verbose); a failing step says how long it ran
        before the error."""
        started = time.perf_counter()
        if logs.is_verbose() or logs.stderr_is_terminal():
            log.info("[%s] %s ...", self.job, what)
        step = Step()
        try:
            yield step
        except BaseException:
            log.error("[%s] %s failed after %.1fs", self.job, what, time.perf_counter() - started)
            raise
        log.info("[%s] %s done in %.1fs%s", self.job, what, time.perf_counter() - started, step.suffix())


@dataclass
class Step:
    """Counts a step reports on its closing line: ``with ctx.step("x") as step: step.note(rows=n)``."""

    counts: dict[str, object] = field(default_factory=dict)

    def note(self, **counts: object) -> None:
        """Add or replace counts (``rows=n``) shown on the step's closing log line."""
        self.counts.update(counts)

    def suffix(self) -> str:
        """The noted counts as ``" (rows 10, users 3)"``; empty when nothing was noted."""
        return (" (" + ", ".join(f"{key} {value}" for key, value in self.counts.items()) + ")") if self.counts else ""


def lake_of(config: SeasonrecConfig, spark: SparkSession) -> Lake:
    """The `Lake` that ``config.paths`` describe: folders under ``lake_root``, or catalog tables in
    ``table_namespace`` (managed or external per ``table_location``)."""
    paths = config.paths
    return Lake(spark, paths.lake_root, namespace=paths.table_namespace, table_location=paths.table_location)


class JobError(RuntimeError):
    """A job cannot go on for a reason the user can fix (bad input path, too many bad rows, ...)."""


def iso_date(text: str) -> dt.date:
    """argparse type for job options such as --since and --as-of."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None
