"""Spark side of training: gold tables -> encoded training rows, item tables and evaluation units."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from seasonrec import tables
from seasonrec.context import JobContext, JobError
from seasonrec.features import gold
from seasonrec.features.as_of import user_features_at
from seasonrec.training.encoding import (
    FeatureSpec,
    encode_users,
    fit_rfm_normalizer,
    item_bucket,
    seasonality_lift,
    user_bucket,
    with_calendar_context,
)

USER_FEATURE_COLUMNS = ["user_id", "country", "recency_days", "frequency", "monetary", "category_affinity",
                        "season_affinity"]
CONTEXT_COLUMNS = ["woy_sin", "woy_cos", "season", "is_holiday", "days_to_next_event", "days_since_last_event"]
MAX_TOKENS = 16
SEASON_SHRINK_PURCHASES = 30.0

ENCODED_SCHEMA = T.StructType([
    T.StructField("user_bucket", T.IntegerType()),
    T.StructField("user_dense", T.ArrayType(T.FloatType())),
    T.StructField("history", T.ArrayType(T.IntegerType())),
    T.StructField("context", T.ArrayType(T.FloatType())),
    T.StructField("item_index", T.IntegerType()),
])


def _require(df: DataFrame, name: str, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise JobError(f"table '{name}' lacks columns {missing} needed by training; it has {df.columns}")


def with_season(examples: DataFrame, southern: list[str]) -> DataFrame:
    """A `season` column (index or name) from whatever the examples carry."""
    for candidate in ("season", "season_index", "season_idx"):
        if candidate in examples.columns:
            return examples.withColumn("season", F.col(candidate)) if candidate != "season" else examples
    if "season_north" in examples.columns:
        south = F.col("country").isin(southern) if "country" in examples.columns else F.lit(False)
        return examples.withColumn("season", F.when(south, F.col("season_south")).otherwise(F.col("season_north")))
    raise JobError(f"table '{tables.TRAINING_EXAMPLES}' has no season column (season / season_index / "
                   f"season_north); it has {examples.columns}")


@dataclass
class TrainingData:
    """What `load_training_data` hands to training: the feature spec, per-item arrays (`build_item_tables`), item ids
    and tail flags by item_index, the encoded train positives (Spark, Petastorm-ready) and their count, the user
    buckets seen in training, the examples, the user features of each (user, day) with a purchase
    (`seasonrec.features.as_of.user_features_at`: from purchases before that day) and the Delta versions read."""

    spec: FeatureSpec
    item_tables: dict[str, np.ndarray]
    item_ids: np.ndarray
    is_tail: np.ndarray
    train_rows: DataFrame  # encoded, numeric only (Petastorm-ready)
    n_train_rows: int
    seen_user_buckets: np.ndarray
    examples: DataFrame
    users_by_day: DataFrame  # user_id, date + the two-tower's user columns as of that day
    table_versions: dict[str, int | None]


def load_training_data(ctx: JobContext, *, use_context: bool = True,
                       holdout: tuple[dt.date, dt.date] | None = None) -> TrainingData:
    """Read gold training examples, item and user features (at their current versions) and prepare the two-tower's
    inputs: positives of the train split (minus the ``holdout`` date range, if given) encoded with (``use_context``)
    or without the calendar context.

    Missing tables or columns, a non-dense item_index or no train positive raise JobError.
    """
    config = ctx.config
    cfg = config.training
    for name in (tables.TRAINING_EXAMPLES, tables.ITEM_FEATURES, tables.USER_FEATURES):
        if not ctx.lake.exists(name):
            raise JobError(f"table '{name}' is missing {ctx.lake.where}; run `seasonrec features` first")
    versions = {name: ctx.lake.version(name) for name in
                (tables.TRAINING_EXAMPLES, tables.ITEM_FEATURES, tables.USER_FEATURES)}
    examples = ctx.lake.read(tables.TRAINING_EXAMPLES, version=versions[tables.TRAINING_EXAMPLES]).where(
        F.col("label") == 1)  # the two-tower model uses in-batch negatives, not the sampled ones
    _require(examples, tables.TRAINING_EXAMPLES, ["user_id", "item_index", "label", "ts", "date", "split", "history",
                                                  "woy_sin", "woy_cos", "is_holiday", "days_to_next_event",
                                                  "days_since_last_event"])
    users = ctx.lake.read(tables.USER_FEATURES, version=versions[tables.USER_FEATURES])
    _require(users, tables.USER_FEATURES, USER_FEATURE_COLUMNS + ["last_items"])
    users = users.select(*USER_FEATURE_COLUMNS, "last_items").dropDuplicates(["user_id"])
    items = ctx.lake.read(tables.ITEM_FEATURES, version=versions[tables.ITEM_FEATURES])
    _require(items, tables.ITEM_FEATURES, ["item_id", "item_index", "category_index", "price_bucket", "token_ids",
                                           "seasonality", "popularity_tier"])
    examples = with_season(examples.join(users.select("user_id", "country"), "user_id", "left")
                           if "country" not in examples.columns else examples, config.features.southern_hemisphere)
    examples = examples.select("user_id", "item_index", "label", "ts", "date", "split", "history",
                               *CONTEXT_COLUMNS).persist()

    positives = examples.where((F.col("label") == 1) & (F.col("split") == "train"))
    if holdout is not None:
        positives = positives.where(~F.col("date").between(F.lit(holdout[0]), F.lit(holdout[1])))
    counts = {int(r["item_index"]): int(r["n"]) for r in positives.groupBy("item_index").agg(F.count("*").alias("n"))
              .collect()}
    items_pdf = items.select("item_id", "item_index", "category_index", "price_bucket", "token_ids", "seasonality",
                             "popularity_tier").toPandas().sort_values("item_index").reset_index(drop=True)
    if not np.array_equal(items_pdf["item_index"].to_numpy(), np.arange(len(items_pdf))):
        raise JobError(f"table '{tables.ITEM_FEATURES}': item_index must be dense 0..n-1")
    item_tables = build_item_tables(items_pdf, counts, cfg.item_buckets)

    stats = users.select("recency_days", "frequency", "monetary").toPandas()
    first = users.select(F.size("category_affinity").alias("c"), F.size("season_affinity").alias("s")).first()
    rfm_mean, rfm_std = fit_rfm_normalizer(stats)
    spec = FeatureSpec(history_length=config.features.history_length, user_buckets=cfg.user_buckets,
                       item_buckets=cfg.item_buckets, countries=list(config.features.countries),
                       southern_hemisphere=list(config.features.southern_hemisphere),
                       n_category_affinity=max(int(first["c"] or 0), 0) if first else 0,
                       n_season_affinity=max(int(first["s"] or 0), 0) if first else 0,
                       rfm_mean=rfm_mean, rfm_std=rfm_std, bought_items_max=config.features.bought_items_max)

    train_user_ids = [r["user_id"] for r in positives.select("user_id").distinct().collect()]
    seen = np.zeros(cfg.user_buckets, dtype=bool)
    seen[user_bucket(train_user_ids, cfg.user_buckets)] = True
    # Each example's user columns as of its own day, as `seasonrec score` would describe the user then:
    # gold_user_features' totals at train_end already hold the example's purchase and later ones.
    users_by_day = user_features_at(ctx.lake, config, examples.select("user_id", F.col("date").alias("cutoff_date")),
                                    spec.n_category_affinity).withColumnRenamed("cutoff_date", "date").persist()
    rows = (positives.select("user_id", "date", "item_index", "history", *CONTEXT_COLUMNS)
            .join(users_by_day, ["user_id", "date"], "left").drop("date"))
    encoded = encode_rows(rows, spec, use_context)
    n_rows = positives.count()
    if n_rows == 0:
        raise JobError(f"table '{tables.TRAINING_EXAMPLES}' has no train positives (label=1, split=train)")
    return TrainingData(spec=spec, item_tables=item_tables, item_ids=items_pdf["item_id"].astype(str).to_numpy(),
                        is_tail=(items_pdf["popularity_tier"] == "tail").to_numpy(), train_rows=encoded,
                        n_train_rows=n_rows, seen_user_buckets=seen, examples=examples, users_by_day=users_by_day,
                        table_versions=versions)


def build_item_tables(items: pd.DataFrame, train_counts: dict[int, int], item_buckets: int) -> dict[str, np.ndarray]:
    """Per-item model arrays, indexed by item_index (``items`` sorted by it): item_id_bucket (0 for items never bought
    in training), category_index, price_bucket, token_ids [n, MAX_TOKENS] (+1, 0 pads), season_lift [n, 52] (shrunk
    for rarely bought items) and log_q (log sampling probability for the logQ correction). ``train_counts``:
    item_index -> train positives."""
    n = len(items)
    counts = np.array([train_counts.get(i, 0) for i in range(n)], dtype=np.float64)
    tokens = np.zeros((n, MAX_TOKENS), dtype=np.int32)
    for i, value in enumerate(items["token_ids"]):
        if value is None:
            continue
        row = np.asarray(value, dtype=np.int64)
        row = row[row >= 0][:MAX_TOKENS] + 1
        tokens[i, : len(row)] = row
    price = pd.to_numeric(items["price_bucket"], errors="coerce").fillna(0).astype(int).clip(lower=0).to_numpy()
    return {
        # Items never bought in training share the OOV id bucket 0 and live off text/category/season.
        "item_id_bucket": np.where(counts > 0, item_bucket(np.arange(n), item_buckets), 0).astype(np.int32),
        "category_index": items["category_index"].fillna(0).astype(int).clip(lower=0).to_numpy().astype(np.int32),
        "price_bucket": price.astype(np.int32),
        "token_ids": tokens,
        # Shrink the lift of rarely bought items towards 0: their weekly profile is mostly noise.
        "season_lift": (seasonality_lift(np.stack([np.asarray(s if s is not None else np.zeros(52), dtype=float)
                                                   for s in items["seasonality"]]))
                        * (counts / (counts + SEASON_SHRINK_PURCHASES))[:, None]).astype(np.float32),
        "log_q": np.log((counts + 1.0) / (counts.sum() + n)).astype(np.float32),
    }


def encode_rows(rows: DataFrame, spec: FeatureSpec, use_context: bool) -> DataFrame:
    """Spark rows with user-side columns + item_index -> the numeric columns Petastorm feeds the model."""

    def encode(batches: Any) -> Any:
        for frame in batches:
            encoded = encode_users(frame, spec, ablate_context=not use_context)
            yield pd.DataFrame({
                "user_bucket": encoded["user_bucket"],
                "user_dense": list(encoded["user_dense"]),
                "history": list(encoded["history"]),
                "context": list(encoded["context"]),
                "item_index": frame["item_index"].astype("int32").to_numpy(),
            })

    return rows.mapInPandas(encode, ENCODED_SCHEMA)


def evaluation_units(data: TrainingData, *, split: str | None = None,
                     window: tuple[dt.date, dt.date] | None = None) -> pd.DataFrame:
    """One row per (user, week) with purchases: targets, the history and context of the week's first purchase,
    the exact purchase summary before it and the user columns as of its day (``data.users_by_day``)."""
    positives = data.examples.where(F.col("label") == 1)
    if split is not None:
        positives = positives.where(F.col("split") == split)
    if window is not None:
        positives = positives.where(F.col("date").between(F.lit(window[0]), F.lit(window[1])))
    first = F.min_by(F.struct("ts", "date", "history", *CONTEXT_COLUMNS), F.col("ts"))
    units = (positives.withColumn("week", F.date_trunc("week", F.col("date")))
             .groupBy("user_id", "week")
             .agg(F.collect_set("item_index").alias("targets"), first.alias("first"))
             .select("user_id", "week", "targets", "first.*"))
    # Exact purchase summary at each unit's first purchase (every earlier purchase is a positive example).
    earlier = (units.select("user_id", "week", F.col("ts").alias("cutoff_ts"), F.col("date").alias("cutoff_date"))
               .join(data.examples.where(F.col("label") == 1).select("user_id", "item_index", "ts", "date"),
                     "user_id")
               .where(F.col("ts") < F.col("cutoff_ts")))
    bought = gold.bought_summary(earlier, ["user_id", "week"], data.spec.bought_items_max)
    return (units.drop("ts").join(bought, ["user_id", "week"], "left")
            .join(data.users_by_day, ["user_id", "date"], "left").drop("date")
            .orderBy("user_id", "week").toPandas())


def window_units(data: TrainingData, users_at_start: DataFrame, calendar_row: dict[str, Any], start: dt.date,
                 end: dt.date) -> pd.DataFrame:
    """One row per user who bought in [start, end): the user's features cut at ``start`` (as
    `seasonrec score` sees them on that day: ``users_at_start`` from `user_features_as_of`), the
    calendar context of ``start`` and the items bought in the window as ``targets``.

    The same task as `seasonrec evaluate` (a list made at the window start, judged on the whole
    window), so the ranker is fitted on what it is judged on. ``week`` holds ``start``.
    """
    positives = data.examples.where((F.col("label") == 1) & (F.col("date") >= F.lit(start))
                                    & (F.col("date") < F.lit(end)))
    targets = positives.groupBy("user_id").agg(F.collect_set("item_index").alias("targets"))
    frame = users_at_start.join(targets, "user_id").orderBy("user_id").toPandas()
    frame = with_calendar_context(frame, calendar_row, data.spec)
    frame["week"] = pd.Timestamp(start)
    return frame
