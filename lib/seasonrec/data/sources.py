"""Source readers: every source becomes the same "staged" frame of raw strings.

Staged columns: source_file, raw_line, occurrence, and the seasonrec fields as strings
(invoice, user, item, timestamp, quantity, price, description, category, country). Nothing is
parsed here, so a bad value reaches `ingest` intact and can be quarantined with its raw line.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from seasonrec.config import FileSourceConfig
from seasonrec.context import JobError

FIELDS = ("invoice", "user", "item", "timestamp", "quantity", "price", "description", "category", "country")
REPO_ROOT = Path(__file__).resolve().parents[3]


def resolve_path(path: str) -> str:
    """Relative paths are tried against the working directory, then the repo root (so the default
    `../shared/...` works from the repo and from anywhere else)."""
    if "://" in path or os.path.isabs(path) or os.path.exists(path):
        return path if "://" in path else os.path.abspath(path)
    candidate = (REPO_ROOT / path).resolve()
    if candidate.exists():
        return str(candidate)
    raise JobError(f"input not found: {path} (tried {os.path.abspath(path)} and {candidate}); "
                   "set --path or data.file.path")


def _with_occurrence(df: DataFrame) -> DataFrame:
    # Identical lines in one file are distinct transactions (e.g. the same item scanned twice);
    # numbering them keeps the row hash unique yet stable across re-runs.
    window = Window.partitionBy("source_file", "raw_line").orderBy("raw_line")
    return df.withColumn("occurrence", F.row_number().over(window))


def read_file_source(spark: SparkSession, config: FileSourceConfig, path: str | None = None) -> DataFrame:
    location = resolve_path(path or config.path)
    mapping = config.columns
    if config.format == "csv":
        lines = spark.read.text(location).withColumn("source_file", F.input_file_name())
        first = spark.read.text(location).limit(1).collect()
        if not first:
            raise JobError(f"{location} is empty")
        header_line = first[0]["value"]
        header = [h.strip().strip('"') for h in spark.read.option("header", True).csv(location).columns]
        missing = sorted(set(mapping.values()) - set(header))
        if missing:
            raise JobError(f"{location}: columns {missing} from data.file.columns are not in the header {header}")
        staged = stage_csv_lines(lines.where(F.col("value") != header_line), header, mapping)
    else:
        raw = spark.read.format(config.format).load(location)
        missing = sorted(set(mapping.values()) - set(raw.columns))
        if missing:
            raise JobError(f"{location}: columns {missing} from data.file.columns are not in {raw.columns}")
        staged = raw.select(
            F.input_file_name().alias("source_file"),
            F.to_json(F.struct(*[F.col(f"`{c}`") for c in raw.columns])).alias("raw_line"),
            *[(F.col(f"`{mapping[f]}`").cast("string") if f in mapping else F.lit(None).cast("string")).alias(f)
              for f in FIELDS])
    return finish_staging(staged)


def stage_csv_lines(lines: DataFrame, header: list[str], mapping: dict[str, str]) -> DataFrame:
    """CSV data lines (columns ``source_file``, ``value``; header lines already removed) -> the staged
    fields as raw strings, by the position of each mapped column in ``header``. Blank lines are dropped.

    Shared by `read_file_source` and the streaming job, so both read a CSV line the same way.
    """
    ddl = ", ".join(f"`c{i}` STRING" for i in range(len(header)))
    parsed = (lines.where(F.trim("value") != "")
              .withColumn("_row", F.from_csv("value", ddl, {"mode": "PERMISSIVE"})))
    position = {name: i for i, name in enumerate(header)}
    return parsed.select(
        "source_file", F.col("value").alias("raw_line"),
        *[(F.col(f"_row.c{position[mapping[f]]}") if f in mapping else F.lit(None).cast("string")).alias(f)
          for f in FIELDS])


def finish_staging(staged: DataFrame) -> DataFrame:
    """Trim the staged fields (blank -> null) and number identical lines per file (``occurrence``):
    the last step of every file reader, batch or streaming."""
    staged = staged.select("source_file", "raw_line",
                           *[F.when(F.trim(F.col(f)) != "", F.trim(F.col(f))).alias(f) for f in FIELDS])
    return _with_occurrence(staged)


def read_synthetic(spark: SparkSession, config) -> tuple[DataFrame, DataFrame]:
    """(staged transactions, planted truth) from the Spark generator."""
    from seasonrec.data import synthetic

    transactions, truth = synthetic.events(spark, config)
    source_file = f"synthetic://seed={config.seed}/n_events={config.n_events}"
    staged = transactions.select(
        F.lit(source_file).alias("source_file"),
        F.concat_ws(",", *[F.coalesce(F.col(f), F.lit("")) for f in FIELDS]).alias("raw_line"),
        *FIELDS,
        F.lit(1).alias("occurrence"),  # invoices are unique per line
    )
    return staged, truth
