"""Staged raw strings -> typed bronze rows or quarantine rows (with reason and raw line).

bronze_transactions: row_hash, source, source_file, invoice, user_raw, item_raw, ts (UTC),
quantity, price, description, category, country, ingested_at.
quarantine: source, source_file, reason, raw_line, ingested_at, row_hash, resolved_at, resolved_by_run
(set when a later ingest brings the line valid: `seasonrec.data.quarantine`).

The reasons and their order are declared in `seasonrec.data.validation`. Cancellations (negative
quantity on a cancellation invoice) are valid bronze rows: silver nets them against purchases. A row
without a customer id is a guest checkout: a real sale (it counts for demand, popularity and
co-purchase baskets), stored in bronze with ``user_raw`` null; only personalisation skips it
(`seasonrec.features.silver.personal`).

The row hash is the business key of a line, not where it came from: its normalised fields (invoice,
customer, item, local timestamp, quantity, price) plus its occurrence among the rows of the same file
with that key and outcome. The same transaction loaded through two sources, or in two overlapping files,
is stored once; two identical lines in one file are two lines.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.config import FileSourceConfig, TimestampFormat, ValidationConfig
from seasonrec.data.validation import HEADER_LINE, SourceRules, reason_column

ISO_TIMESTAMP_FORMATS = ("yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm",
                         "yyyy-MM-dd'T'HH:mm:ssXXX", "yyyy-MM-dd")
# Without data.<source>.timestamp_format a slash date is read both ways; one that reads as two different
# days (1/12/2010) is refused (ambiguous_timestamp) rather than guessed.
MONTH_FIRST, DAY_FIRST = "M/d/yyyy H:mm", "d/M/yyyy H:mm"
DEFAULT_TIMESTAMP_FORMATS = (*ISO_TIMESTAMP_FORMATS, MONTH_FIRST, DAY_FIRST)
BRONZE_COLUMNS = tables.spec(tables.BRONZE_TRANSACTIONS).column_names
QUARANTINE_COLUMNS = tables.spec(tables.QUARANTINE).column_names
DEFAULT_RULES = SourceRules.of(FileSourceConfig(), ValidationConfig())


def _number(column: str) -> Column:
    value = F.expr(f"try_cast(`{column}` AS DOUBLE)")
    # 'NaN' and 'Infinity' cast fine but are not usable numbers.
    return F.when(~F.isnan(value) & (F.abs(value) < float("inf")), value)


def parse_local_timestamp(column: str, fmt: TimestampFormat | None) -> tuple[Column, Column]:
    """(naive timestamp as written, ambiguous flag) of a string column: with ``fmt`` (a format, or formats
    tried in order) the first of them that reads it (never ambiguous: the order decides); without, the
    first default format that reads it, ambiguous when it reads as two different days month-first and
    day-first."""
    def parse(pattern: str) -> Column:
        return F.try_to_timestamp(F.col(column), F.lit(pattern))

    if fmt:
        return F.coalesce(*[parse(f) for f in ([fmt] if isinstance(fmt, str) else fmt)]), F.lit(False)
    month_first, day_first = parse(MONTH_FIRST), parse(DAY_FIRST)
    parsed = F.coalesce(*[parse(f) for f in ISO_TIMESTAMP_FORMATS], month_first, day_first)
    return parsed, F.coalesce(month_first != day_first, F.lit(False))


# Numeric ids exported through a float column arrive as '17850.0': group 1 is the id.
FLOAT_EXPORTED_ID = r"^(\d+)\.0+$"


def normalize_user(column: str) -> Column:
    """String column ``column`` with float-exported numeric ids (``'17850.0'``) back to ``'17850'``; other values
    unchanged."""
    return F.regexp_replace(F.col(column), FLOAT_EXPORTED_ID, "$1")


def business_key() -> Column:
    """One string from a typed row's normalised key fields: invoice, customer, item, local timestamp,
    quantity, price (a field that did not parse keeps its raw text, so bad rows get a key too)."""
    parts = [F.col("invoice"), F.col("user_raw"), F.col("item"),
             F.coalesce(F.date_format("ts_local", "yyyy-MM-dd HH:mm:ss"), F.col("timestamp")),
             F.coalesce(F.col("quantity_d").cast("string"), F.col("quantity")),
             F.coalesce(F.col("price_d").cast("string"), F.col("price"))]
    return F.concat_ws("\u0001", *[F.coalesce(part, F.lit("")) for part in parts])


def _with_row_hash(typed: DataFrame) -> DataFrame:
    """Adds ``row_hash`` from the business key and the row's occurrence among the rows of its file with
    the same key and outcome (sources whose lines are unique by construction stage ``occurrence``)."""
    typed = typed.withColumn("business_key", business_key())
    if "occurrence" not in typed.columns:
        same = Window.partitionBy("source_file", "business_key", "reason").orderBy("raw_line")
        typed = typed.withColumn("occurrence", F.row_number().over(same))
    return typed.withColumn("row_hash", F.sha2(F.concat_ws("\u0001", "business_key",
                                                           F.col("occurrence").cast("string")), 256))


def classify(staged: DataFrame, source: str, ingested_at: dt.datetime, timestamp_format: TimestampFormat | None = None,
             timezone: str | None = None, rules: SourceRules | None = None) -> DataFrame:
    """Staged rows (`seasonrec.data.sources`) -> typed rows with the bronze and quarantine columns plus
    ``reason``: null for a valid row, the first refusing rule of ``rules`` (default: data.file's defaults)
    otherwise, `validation.HEADER_LINE` for a header line. ``timestamp_format``/``timezone`` say how
    timestamps are written (None: the default formats / UTC)."""
    local_ts, ambiguous = parse_local_timestamp("timestamp", timestamp_format)
    for flag in ("malformed", "is_header"):  # optional staged flags: only CSV readers know them
        if flag not in staged.columns:
            staged = staged.withColumn(flag, F.lit(False))
    typed = (staged
             .withColumn("user_raw", normalize_user("user"))
             .withColumn("ts_local", local_ts)
             .withColumn("ts_ambiguous", ambiguous)
             .withColumn("ts", F.to_utc_timestamp("ts_local", timezone) if timezone else F.col("ts_local"))
             .withColumn("quantity_d", _number("quantity"))
             .withColumn("price_d", _number("price"))
             .withColumn("ingested_at", F.lit(ingested_at).cast("timestamp")))
    typed = _with_row_hash(typed.withColumn(
        "reason", F.when(F.col("is_header"), HEADER_LINE).otherwise(reason_column(rules or DEFAULT_RULES))))
    return typed.select(
        "row_hash", F.lit(source).alias("source"), "source_file", "raw_line", "invoice", "user_raw",
        F.col("item").alias("item_raw"), "ts", F.col("quantity_d").alias("quantity"),
        F.col("price_d").alias("price"), "description", "category", "country", "ingested_at", "reason")


def bronze_rows(classified: DataFrame) -> DataFrame:
    """The valid rows of a classified frame, as bronze_transactions rows."""
    return classified.where(F.col("reason").isNull()).select(*BRONZE_COLUMNS)


def quarantine_rows(classified: DataFrame) -> DataFrame:
    """The refused rows of a classified frame (header lines excluded), as quarantine rows (open:
    resolved_at and resolved_by_run null, `seasonrec.data.quarantine`)."""
    return as_quarantine(classified.where(F.col("reason").isNotNull() & (F.col("reason") != HEADER_LINE)))


def as_quarantine(rows: DataFrame) -> DataFrame:
    """``rows`` in the quarantine table's columns and order; columns they lack (e.g. resolved_at,
    resolved_by_run of an open row) as typed nulls."""
    types = tables.spec(tables.QUARANTINE).types
    return rows.select(*[F.col(c) if c in rows.columns else F.lit(None).cast(types[c]).alias(c)
                         for c in QUARANTINE_COLUMNS])
