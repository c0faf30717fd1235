"""The ingest validation rules, in one place: every quarantine reason, its check and what it catches.

`RULES` is the declared rule set, in the order it is applied: a row gets the reason of the first rule
whose check is true, and is valid when none is. The classifier (`reason_column`) and the README's rule
table (`rules_table`) are both built from it.

Checks read the typed columns `seasonrec.data.ingest.classify` computes from a staged row:
``raw_line``, ``malformed`` (a CSV record with more or fewer fields than the header), the trimmed
string fields (``invoice``, ``user_raw`` (normalised id), ``item``, ``description``, ``country``,
``category``), ``ts`` (UTC, null: unparseable), ``ts_ambiguous``, ``quantity_d``/``price_d`` (finite
doubles, null: not numbers) and ``ingested_at``. What a source promises (which fields it maps and
requires, its cancellation marker, ...) comes from its config section through `SourceRules`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import Column
from pyspark.sql import functions as F

from seasonrec.config import FileSourceConfig, ValidationConfig

# Not a quarantine reason: a line equal to the CSV header (each file's first one included). Header
# lines are counted and reported by the ingest job, never stored and never silently dropped.
HEADER_LINE = "header_line"
# What Spark's UTF-8 decoder puts in place of bytes that are not UTF-8.
REPLACEMENT_CHARACTER = "\ufffd"


@dataclass(frozen=True)
class SourceRules:
    """What one source promises about its rows, and the plausibility limits (data.validation)."""

    mapped: frozenset[str]  # seasonrec fields the source has a column for
    required: frozenset[str]  # fields a row must have, besides item
    cancellation_prefix: str | None
    numeric_user_ids: bool
    integer_quantities: bool
    limits: ValidationConfig

    @classmethod
    def of(cls, source: FileSourceConfig, limits: ValidationConfig) -> SourceRules:
        """The rules of a file source section (data.file, data.online_retail) under ``limits``."""
        return cls(mapped=frozenset(source.columns), required=frozenset(source.required_fields),
                   cancellation_prefix=source.cancellation_prefix, numeric_user_ids=source.numeric_user_ids,
                   integer_quantities=source.integer_quantities, limits=limits)


@dataclass(frozen=True)
class Rule:
    """One quarantine reason: its name, a one-line description (the README table), and its check:
    rules -> a boolean Column that is true for the rows it refuses, or None where the rule does not
    apply to the source (e.g. no invoice column)."""

    reason: str
    description: str
    check: Callable[[SourceRules], Column | None]


def _missing(field: str) -> Rule:
    column = "user_raw" if field == "user" else field
    return Rule(f"missing_{field}", f"no {field} (checked when the source maps it and lists it in required_fields)",
                lambda r: F.col(column).isNull() if field in r.mapped and field in r.required else None)


def _not_cancellation(rules: SourceRules) -> Column | None:
    if rules.cancellation_prefix is None or "invoice" not in rules.mapped:
        return None
    cancellation = F.coalesce(F.col("invoice").startswith(rules.cancellation_prefix), F.lit(False))
    return (F.col("quantity_d") < 0) & ~cancellation


def _out_of_window(rules: SourceRules) -> Column:
    earliest = F.lit(rules.limits.earliest_timestamp).cast("timestamp")
    # Rows may be stamped up to the end of today + max_days_ahead (clock skew, time zones).
    latest = F.date_add(F.to_date("ingested_at"), rules.limits.max_days_ahead + 1).cast("timestamp")
    return (F.col("ts") < earliest) | (F.col("ts") >= latest)


RULES: tuple[Rule, ...] = (
    Rule("invalid_utf8", "bytes that are not UTF-8 (read as U+FFFD) anywhere in the record",
         lambda r: F.col("raw_line").contains(REPLACEMENT_CHARACTER)),
    Rule("field_count_mismatch", "a CSV record with more or fewer fields than the header (extra or missing "
         "column, broken quoting)", lambda r: F.coalesce(F.col("malformed"), F.lit(False))),
    Rule("missing_item", "no item code", lambda r: F.col("item").isNull()),
    *[_missing(field) for field in ("invoice", "user", "description", "country", "category")],
    Rule("ambiguous_timestamp", "a d/M vs M/d date that reads as two different days (no "
         "data.<source>.timestamp_format set)", lambda r: F.col("ts_ambiguous")),
    Rule("unparseable_timestamp", "no timestamp, or not in the timestamp format", lambda r: F.col("ts").isNull()),
    Rule("timestamp_out_of_range", "before data.validation.earliest_timestamp (2000-01-01) or after the end of "
         "today + data.validation.max_days_ahead (1) days", _out_of_window),
    Rule("non_numeric_quantity", "quantity missing, not a number, NaN or infinite",
         lambda r: F.col("quantity_d").isNull()),
    Rule("zero_quantity", "quantity 0", lambda r: F.col("quantity_d") == 0),
    Rule("fractional_quantity", "quantity not a whole number (sources with integer_quantities)",
         lambda r: (F.col("quantity_d") != F.floor("quantity_d")) if r.integer_quantities else None),
    Rule("quantity_out_of_range", "absolute quantity above data.validation.max_abs_quantity (1e6)",
         lambda r: F.abs("quantity_d") > r.limits.max_abs_quantity),
    Rule("negative_quantity_not_cancellation", "negative quantity on an invoice without the source's "
         "cancellation_prefix ('C')", _not_cancellation),
    Rule("non_numeric_price", "price missing, not a number, NaN or infinite", lambda r: F.col("price_d").isNull()),
    Rule("negative_price", "price below 0", lambda r: F.col("price_d") < 0),
    Rule("price_out_of_range", "price above data.validation.max_price (1e6)",
         lambda r: F.col("price_d") > r.limits.max_price),
    Rule("non_numeric_user", "customer id not a whole number (sources with numeric_user_ids)",
         lambda r: ~F.col("user_raw").rlike(r"^\d+$") if r.numeric_user_ids else None),
)
REASONS: tuple[str, ...] = tuple(rule.reason for rule in RULES)


def reason_column(rules: SourceRules) -> Column:
    """The first reason whose check refuses the row (null for a valid row), for ``rules``' source."""
    checks = [(rule.reason, rule.check(rules)) for rule in RULES]
    applicable = [(reason, check) for reason, check in checks if check is not None]
    first_reason, first_check = applicable[0]
    # A null check (e.g. a comparison with a null number) means "not refused by this rule".
    return reduce(lambda chain, rc: chain.when(F.coalesce(rc[1], F.lit(False)), rc[0]), applicable[1:],
                  F.when(F.coalesce(first_check, F.lit(False)), first_reason))


def rules_table() -> str:
    """The rule set as a Markdown table (reason | what it catches), in the order rules apply."""
    rows = [f"| `{rule.reason}` | {rule.description} |" for rule in RULES]
    return "\n".join(["| reason | what it catches |", "|---|---|", *rows])


# Weather observations (`seasonrec.features.weather`): the rules of a weather file's rows, in the order
# they apply. Checks read ``region`` (trimmed, null: blank), ``date_d`` (null: not a yyyy-MM-dd date),
# ``temp_d`` (finite double, null: not a number) and ``duplicates`` (rows of the same date and region
# that passed the earlier rules); ``limits`` is the ``weather`` config section.
WEATHER_RULES: tuple[Rule, ...] = (
    Rule("missing_region", "weather row without a region", lambda limits: F.col("region").isNull()),
    Rule("unparseable_date", "weather date missing or not yyyy-MM-dd", lambda limits: F.col("date_d").isNull()),
    Rule("non_numeric_temperature", "temp_mean_c missing, not a number, NaN or infinite",
         lambda limits: F.col("temp_d").isNull()),
    Rule("temperature_out_of_range", "temp_mean_c outside weather.min_temp_c .. max_temp_c (-60 .. 60 degC)",
         lambda limits: (F.col("temp_d") < limits.min_temp_c) | (F.col("temp_d") > limits.max_temp_c)),
    Rule("duplicate_date_region", "more than one row for a date and region (every copy: none is picked "
         "arbitrarily, the day counts as missing)", lambda limits: F.col("duplicates") > 1),
)
WEATHER_REASONS: tuple[str, ...] = tuple(rule.reason for rule in WEATHER_RULES)


def weather_reason_column(limits, rules: tuple[Rule, ...] = WEATHER_RULES) -> Column:
    """The first weather rule that refuses the row (null: valid) under ``limits`` (a WeatherConfig)."""
    chain = None
    for rule in rules:
        refused = F.coalesce(rule.check(limits), F.lit(False))
        chain = F.when(refused, rule.reason) if chain is None else chain.when(refused, rule.reason)
    return chain
