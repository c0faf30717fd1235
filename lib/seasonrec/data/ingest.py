"""Staged raw strings -> typed bronze rows or quarantine rows (with reason and raw line).

bronze_transactions: row_hash, source, source_file, invoice, user_raw, item_raw, ts (UTC),
quantity, price, description, category, country, ingested_at.
quarantine: source, source_file, reason, raw_line, ingested_at, row_hash.

Cancellations (negative quantity) are valid bronze rows: silver nets them against purchases.
A row without a customer id is a guest checkout: a real sale (it counts for demand, popularity and
co-purchase baskets), stored in bronze with ``user_raw`` null; only personalisation skips it
(`seasonrec.features.silver.personal`).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from seasonrec import tables

# Checked in this order; a row gets the first reason that applies.
REASONS = ("missing_item", "unparseable_timestamp", "non_numeric_quantity",
           "non_numeric_price", "negative_price")
DEFAULT_TIMESTAMP_FORMATS = ("yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm",
                             "yyyy-MM-dd'T'HH:mm:ssXXX", "M/d/yyyy H:mm", "d/M/yyyy H:mm", "yyyy-MM-dd")
BRONZE_COLUMNS = tables.spec(tables.BRONZE_TRANSACTIONS).column_names
QUARANTINE_COLUMNS = tables.spec(tables.QUARANTINE).column_names


def _number(column: str) -> Column:
    value = F.expr(f"try_cast(`{column}` AS DOUBLE)")
    # 'NaN' and 'Infinity' cast fine but are not usable numbers.
    return F.when(~F.isnan(value) & (F.abs(value) < float("inf")), value)


def parse_timestamp(column: str, fmt: str | None, timezone: str | None) -> Column:
    formats = [fmt] if fmt else list(DEFAULT_TIMESTAMP_FORMATS)
    parsed = F.coalesce(*[F.try_to_timestamp(F.col(column), F.lit(f)) for f in formats])
    return F.to_utc_timestamp(parsed, timezone) if timezone else parsed


# Numeric ids exported through a float column arrive as '17850.0': group 1 is the id.
FLOAT_EXPORTED_ID = r"^(\d+)\.0+$"


def normalize_user(column: str) -> Column:
    return F.regexp_replace(F.col(column), FLOAT_EXPORTED_ID, "$1")


def classify(staged: DataFrame, source: str, ingested_at: dt.datetime, timestamp_format: str | None = None,
             timezone: str | None = None) -> DataFrame:
    """Typed rows plus a `reason` column (null for good rows)."""
    typed = (staged
             .withColumn("row_hash", F.sha2(F.concat_ws("\u0001", F.lit(source), F.col("raw_line"),
                                                        F.col("occurrence").cast("string")), 256))
             .withColumn("ts", parse_timestamp("timestamp", timestamp_format, timezone))
             .withColumn("quantity_d", _number("quantity"))
             .withColumn("price_d", _number("price")))
    reason = (F.when(F.col("item").isNull(), "missing_item")
              .when(F.col("ts").isNull(), "unparseable_timestamp")
              .when(F.col("quantity_d").isNull(), "non_numeric_quantity")
              .when(F.col("price_d").isNull(), "non_numeric_price")
              .when(F.col("price_d") < 0, "negative_price"))
    return typed.select(
        "row_hash", F.lit(source).alias("source"), "source_file", "raw_line",
        F.col("invoice"), normalize_user("user").alias("user_raw"), F.col("item").alias("item_raw"),
        "ts", F.col("quantity_d").alias("quantity"), F.col("price_d").alias("price"),
        "description", "category", "country",
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        reason.alias("reason"))


def bronze_rows(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reason").isNull()).select(*BRONZE_COLUMNS)


def quarantine_rows(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reason").isNotNull()).select(*QUARANTINE_COLUMNS)
