"""Helpers shared by test modules (importable as `support`; conftest files are not importable by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seasonrec.cli import job_args
from seasonrec.config import SeasonrecConfig, load_config

REPO = Path(__file__).resolve().parents[1]

__all__ = ["REPO", "as_table", "job_args", "make_config", "rows_frame"]


def as_table(df: Any, name: str) -> Any:
    """A small fixture frame shaped as the registered table ``name``: declared types, and typed
    nulls for the columns a test does not need (the lake refuses other shapes)."""
    from pyspark.sql import functions as F

    from seasonrec import tables

    declared = tables.spec(name).types
    return df.select(*[(F.col(c) if c in df.columns else F.lit(None)).cast(kind).alias(c)
                       for c, kind in declared.items()])


def rows_frame(spark: Any, rows: list[tuple], schema: str) -> Any:
    """A Spark frame of ``rows`` (tuples in the order of ``schema``, a DDL string such as
    ``"item_id string, week_start date"``); built through pandas so that dates and an empty ``rows``
    keep the declared types."""
    import pandas as pd

    names = [column.split()[0] for column in schema.split(",")]
    return spark.createDataFrame(pd.DataFrame(rows, columns=names), schema)


def path_overrides(root: Path) -> list[str]:
    """The --set values that put the lake, reports, models and checkpoints under ``root``."""
    keys = ("checkpoint_dir", "model_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")
    return [f"paths.lake_root={root}/lake", *[f"paths.{key}={root}/{key}" for key in keys]]


def make_config(lake_root: Path, *overrides: str) -> SeasonrecConfig:
    """The test config: conf/test.yaml with every path under `lake_root`."""
    return load_config(REPO / "conf" / "test.yaml", [*path_overrides(lake_root), *overrides])


def train_on_feature_lake(feature_lake: Any, work: Path) -> Any:
    """A `train` JobContext on the shared feature lake (read-only) with its own model/checkpoint/MLflow
    dirs under ``work``, after training a tiny model there with the real Horovod pipeline."""
    from seasonrec.context import JobContext
    from seasonrec.training.pipeline import train

    base = feature_lake.config
    config = base.model_copy(update={"paths": base.paths.model_copy(update={
        key: str(work / key) for key in ("checkpoint_dir", "model_dir", "mlflow_dir", "report_dir",
                                         "petastorm_cache_dir")})})
    ctx = JobContext(config=config, spark=feature_lake.spark, lake=feature_lake.lake, job="train")
    train(ctx)
    return ctx
