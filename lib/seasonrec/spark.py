"""One way to get a SparkSession: the active one on Databricks, spark-submit's on a cluster, local[*] otherwise."""

from __future__ import annotations

import contextlib
import os
import sys

from pyspark.sql import SparkSession

from seasonrec.config import SeasonrecConfig

# Settings every seasonrec session needs, wherever it runs.
_COMMON_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "20000",
    # Delta readers (delta-rs included) expect INT64 micros, not Spark's legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.showConsoleProgress": "true",
}


def launched_by_spark_submit() -> bool:
    """spark-submit (and Databricks) start the JVM first and hand Python a gateway port."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def get_spark(config: SeasonrecConfig) -> SparkSession:
    """Return the session for this process, creating a local one when nobody else did."""
    active = SparkSession.getActiveSession()
    if active is not None:
        _apply_runtime_conf(active, config)
        return active
    # Executors must run the interpreter that has horovod/tensorflow installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(config.spark.app_name)
    if config.spark.master:
        builder = builder.master(config.spark.master)
    elif not launched_by_spark_submit():
        builder = builder.master("local[*]")
    if not launched_by_spark_submit():
        # Only meaningful before the JVM starts.
        builder = builder.config("spark.driver.memory", config.spark.driver_memory)
        builder = builder.config("spark.executorEnv.PYSPARK_PYTHON", os.environ["PYSPARK_PYTHON"])
        builder = builder.config("spark.driver.extraJavaOptions", "-Dlog4j.rootLogger=WARN,console")
    for key, value in {**_COMMON_CONF, **config.spark.conf}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    _apply_runtime_conf(spark, config)
    spark.sparkContext.setLogLevel(config.spark.log_level)
    return spark


def _runtime_conf(config: SeasonrecConfig) -> dict[str, str]:
    cache = config.paths.petastorm_cache_dir
    return {
        "spark.sql.shuffle.partitions": str(config.spark.shuffle_partitions),
        "petastorm.spark.converter.parentCacheDirUrl": cache if "://" in cache else f"file://{cache}",
    }


def _apply_runtime_conf(spark: SparkSession, config: SeasonrecConfig) -> None:
    for key, value in {**_COMMON_CONF, **_runtime_conf(config)}.items():
        # Static confs on a shared cluster cannot change at runtime; keep the cluster's.
        with contextlib.suppress(Exception):
            spark.conf.set(key, value)
