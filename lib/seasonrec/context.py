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

from seasonrec.config import SeasonrecConfig
from seasonrec.lake import Lake

log = logging.getLogger("seasonrec")


@dataclass
class JobContext:
    config: SeasonrecConfig
    spark: SparkSession
    lake: Lake
    job: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @classmethod
    def create(cls, config: SeasonrecConfig, job: str, spark: SparkSession | None = None) -> JobContext:
        from seasonrec.spark import get_spark

        spark = spark or get_spark(config)
        return cls(config=config, spark=spark, lake=Lake(spark, config.paths.lake_root), job=job)

    def commit_info(self, **extra: str) -> dict[str, str]:
        """Recorded in every Delta commit so a table version can be traced to the run that wrote it."""
        return {"seasonrec.job": self.job, "seasonrec.run_id": self.run_id, **extra}

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        """One log line when a step starts and one with its duration when it ends."""
        started = time.perf_counter()
        log.info("[%s] %s ...", self.job, what)
        yield
        log.info("[%s] %s done in %.1fs", self.job, what, time.perf_counter() - started)


class JobError(RuntimeError):
    """A job cannot go on for a reason the user can fix (bad input path, too many bad rows, ...)."""


def iso_date(text: str) -> dt.date:
    """argparse type for job options such as --since and --as-of."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None
