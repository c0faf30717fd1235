"""Ranking, long-tail and seasonal metrics for top-K recommendation lists, computed in Spark.

Every method (model, ablated model, baselines) hands over the same shape::

    recs:  DataFrame[user_id, rank, item_id, score]   (rank 1 = best)
    truth: DataFrame[user_id, item_id]                (what the user bought in the evaluated window)

Definitions (per user u with R_u relevant items, hits at ranks r_1 < r_2 < ... within the top K):

- Precision@K = hits / K (a short list is not rewarded: the denominator stays K)
- Recall@K    = hits / |R_u|
- NDCG@K      = sum_j 1/log2(r_j + 1)  /  sum_{i=1..min(|R_u|, K)} 1/log2(i + 1)
- MAP@K       = mean over users of AP@K = sum_j (j / r_j) / min(|R_u|, K)
- HitRate@K   = 1 if hits > 0
All are averaged over the evaluated users: target users with at least one relevant item. Target users
without any relevant item are excluded and counted (``n_users_no_relevant``); evaluated users a method
gave no list to count as zeros (``user_coverage`` is the share that got a list).

Ties: the list order is ``rank``; duplicated ranks are broken by higher score, then by item_id, and an
item listed twice for a user keeps its best rank. Ranks are then renumbered 1..n, so every method is
cut at exactly K distinct items.

Long tail (over all target users' lists, whether or not they bought in the window):
- coverage@K: distinct items recommended in any top K / catalog size
- tail_share@K: share of top-K slots holding tail items
- tail_recall@K: Recall@K restricted to relevant tail items (users with >= 1 relevant tail item)
- novelty@K: mean self-information -log2(p_i) of top-K slots, p_i = share of training users who bought i
  (items never bought before the window count as bought by one user)
- recall_by_decile@K: micro recall (hits / relevant user-item pairs) per item popularity decile
Seasonality:
- seasonal_recall@K: Recall@K restricted to the window's seasonal items (same population rule as tail)

Uncertainty: for the headline metrics (``HEADLINE_METRICS`` at every K) a 95% percentile bootstrap
interval over the evaluated users (``<metric>_ci95_low`` / ``<metric>_ci95_high`` rows, segment all):
users are resampled with replacement ``BOOTSTRAP_RESAMPLES`` times with a fixed seed.

Which way is better: ``BETTER`` (the report marks each column's best value with it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate")
ALL_SEGMENT = "all"
HEADLINE_METRICS = ("ndcg", "recall")  # with bootstrap intervals over users
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 18
CI_LEVEL = 0.95

# Which way is better per metric name, for marking the best value: every list metric here rises with
# quality or discovery; the forecast accuracy columns (report's backtest table) are errors, and a
# bias is best at zero.
BETTER: dict[str, str] = {
    **{m: "max" for m in (*RANKING_METRICS, "tail_recall", "seasonal_recall", "coverage", "tail_share",
                          "novelty", "user_coverage")},
    "wape": "min", "median_mase": "min", "mase": "min", "pinball": "min", "bias": "zero",
}


def best_value(metric: str, values: list[float | None]) -> float | None:
    """The best of ``values`` by ``BETTER[metric]`` (None when the metric has no direction or no value)."""
    present = [v for v in values if v is not None]
    direction = BETTER.get(metric)
    if not present or direction is None:
        return None
    if direction == "zero":
        return min(present, key=abs)
    return max(present) if direction == "max" else min(present)


@dataclass
class EvaluationInputs:
    """What every method is scored against; built once per run so all methods share it.

    - truth: user_id, item_id (distinct purchases in the window)
    - users: user_id of the target users (everyone a method must recommend to)
    - segments: user_id, segment (a user may sit in several, e.g. ``user_type=returning`` and
      ``activity=high``); the ``all`` segment is added automatically
    - items: item_id, popularity_tier (head/torso/tail), self_information, popularity_decile (1 = most
      popular), is_seasonal (bool); items missing here count as tail, unseen, least popular, not seasonal
    """

    truth: DataFrame
    users: DataFrame
    segments: DataFrame | None
    items: DataFrame | None
    catalog_size: int
    k_list: list[int]
    max_self_information: float = 0.0
    n_target_users: int | None = None

    @property
    def max_k(self) -> int:
        """The largest cut-off of ``k_list``: how long every method's lists must be."""
        return max(self.k_list)

    def target_count(self) -> int:
        """Number of distinct target users (counted once, then cached in ``n_target_users``)."""
        if self.n_target_users is None:
            self.n_target_users = self.users.select("user_id").distinct().count()
        return self.n_target_users


def metric_row(metric: str, value: float | None, k: int | None = None, segment: str = ALL_SEGMENT) -> dict[str, Any]:
    """One metric row as ``evaluation_runs`` stores it: metric, k, segment and the value as a float (or None)."""
    return {"metric": metric, "k": k, "segment": segment, "value": None if value is None else float(value)}


def normalize_recs(recs: DataFrame, max_k: int) -> DataFrame:
    """One row per (user, item) at its best rank, renumbered 1..n per user, cut at ``max_k``."""
    best = recs.groupBy("user_id", "item_id").agg(F.min("rank").alias("rank"), F.max("score").alias("score"))
    order = Window.partitionBy("user_id").orderBy(F.col("rank").asc(), F.col("score").desc_nulls_last(),
                                                  F.col("item_id").asc())
    ranked = best.withColumn("rank", F.row_number().over(order))
    return ranked.where(F.col("rank") <= max_k).select("user_id", "rank", "item_id", "score")


def _idcg(n_relevant: Column, k: int) -> Column:
    cut = F.least(n_relevant, F.lit(k))
    return F.aggregate(F.sequence(F.lit(1), cut), F.lit(0.0),
                       lambda acc, i: acc + F.lit(1.0) / F.log2(i.cast("double") + F.lit(1.0)))


def _items_or_empty(inputs: EvaluationInputs, spark: Any) -> DataFrame:
    if inputs.items is not None:
        return inputs.items
    return spark.createDataFrame([], "item_id string, popularity_tier string, self_information double, "
                                     "popularity_decile int, is_seasonal boolean")


def relevant_pairs(recs: DataFrame, inputs: EvaluationInputs) -> DataFrame:
    """One row per relevant (user, item) of a target user: rank in the list (null = missed), hit_no (the
    number of hits at or above this rank), is_tail, is_seasonal, decile."""
    users = inputs.users.select("user_id").distinct()
    truth = inputs.truth.select("user_id", "item_id").distinct().join(users, "user_id")
    attrs = _items_or_empty(inputs, recs.sparkSession).select(
        "item_id", "popularity_tier", "popularity_decile", "is_seasonal")
    if inputs.catalog_size < 200_000:
        attrs = F.broadcast(attrs)
    pairs = (truth.join(attrs, "item_id", "left")
             .join(recs.select("user_id", "item_id", "rank"), ["user_id", "item_id"], "left"))
    order = Window.partitionBy("user_id").orderBy(F.col("rank").asc_nulls_last(), F.col("item_id"))
    return pairs.select(
        "user_id", "item_id", "rank",
        F.when(F.col("rank").isNotNull(), F.row_number().over(order)).alias("hit_no"),
        (F.coalesce("popularity_tier", F.lit("tail")) == "tail").alias("is_tail"),
        F.coalesce("is_seasonal", F.lit(False)).alias("is_seasonal"),
        F.coalesce("popularity_decile", F.lit(10)).alias("decile"),
    )


def per_user_metrics(pairs: DataFrame, recs: DataFrame, k_list: list[int]) -> DataFrame:
    """user_id, n_relevant, has_list and per K: precision, recall, ndcg, map, hit_rate, tail_recall and
    seasonal_recall (null for users without a relevant tail/seasonal item)."""
    def count_if(condition: Column) -> Column:
        return F.sum(F.when(condition, 1).otherwise(0))

    aggs = [F.count("*").alias("n_relevant"), count_if(F.col("is_tail")).alias("n_tail"),
            count_if(F.col("is_seasonal")).alias("n_seasonal")]
    for k in k_list:
        in_k = F.col("rank") <= k
        aggs += [
            count_if(in_k).alias(f"hits_{k}"),
            F.sum(F.when(in_k, 1.0 / F.log2(F.col("rank") + 1.0)).otherwise(0.0)).alias(f"dcg_{k}"),
            F.sum(F.when(in_k, F.col("hit_no") / F.col("rank")).otherwise(0.0)).alias(f"ap_sum_{k}"),
            count_if(in_k & F.col("is_tail")).alias(f"tail_hits_{k}"),
            count_if(in_k & F.col("is_seasonal")).alias(f"seasonal_hits_{k}"),
        ]
    listed = recs.select("user_id").distinct().withColumn("has_list", F.lit(1.0))
    per_user = pairs.groupBy("user_id").agg(*aggs).join(listed, "user_id", "left").fillna(0.0, ["has_list"])
    columns = [F.col("user_id"), F.col("n_relevant"), F.col("n_tail"), F.col("n_seasonal"), F.col("has_list")]
    for k in k_list:
        h = F.col(f"hits_{k}").cast("double")
        columns += [
            (h / k).alias(f"precision_{k}"),
            (h / F.col("n_relevant")).alias(f"recall_{k}"),
            (F.col(f"dcg_{k}") / _idcg(F.col("n_relevant"), k)).alias(f"ndcg_{k}"),
            (F.col(f"ap_sum_{k}") / F.least(F.col("n_relevant"), F.lit(k))).alias(f"map_{k}"),
            (h > 0).cast("double").alias(f"hit_rate_{k}"),
            F.when(F.col("n_tail") > 0, F.col(f"tail_hits_{k}") / F.col("n_tail")).alias(f"tail_recall_{k}"),
            F.when(F.col("n_seasonal") > 0,
                   F.col(f"seasonal_hits_{k}") / F.col("n_seasonal")).alias(f"seasonal_recall_{k}"),
        ]
    return per_user.select(*columns)


def _with_all_segment(users: DataFrame, segments: DataFrame | None) -> DataFrame:
    everyone = users.select("user_id").distinct().withColumn("segment", F.lit(ALL_SEGMENT))
    if segments is None:
        return everyone
    return everyone.unionByName(segments.select("user_id", "segment"))


USER_METRICS = RANKING_METRICS + ("tail_recall", "seasonal_recall")


def _segment_rows(per_user: DataFrame, inputs: EvaluationInputs, metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    k_list = inputs.k_list
    by_segment = per_user.join(_with_all_segment(inputs.users, inputs.segments), "user_id")
    aggs = [F.count("*").alias("n_users"), F.avg("has_list").alias("user_coverage"),
            F.sum(F.when(F.col("n_tail") > 0, 1).otherwise(0)).alias("n_users_tail_relevant"),
            F.sum(F.when(F.col("n_seasonal") > 0, 1).otherwise(0)).alias("n_users_seasonal_relevant")]
    aggs += [F.avg(f"{m}_{k}").alias(f"{m}_{k}") for k in k_list for m in metrics]
    rows: list[dict[str, Any]] = []
    n_evaluated = 0
    for row in by_segment.groupBy("segment").agg(*aggs).collect():
        segment = row["segment"]
        if segment == ALL_SEGMENT:
            n_evaluated = row["n_users"]
        counts = ["n_users", "user_coverage"]
        if "tail_recall" in metrics:
            counts += ["n_users_tail_relevant", "n_users_seasonal_relevant"]
        rows += [metric_row(name, row[name], None, segment) for name in counts]
        rows += [metric_row(m, row[f"{m}_{k}"], k, segment) for k in k_list for m in metrics]
    if n_evaluated == 0:  # nobody bought: report the population, no averages
        rows = [metric_row("n_users", 0)]
    rows.append(metric_row("n_users_no_relevant", inputs.target_count() - n_evaluated))
    return rows


def _target_lists(recs: DataFrame, inputs: EvaluationInputs) -> DataFrame:
    return normalize_recs(recs, inputs.max_k).join(inputs.users.select("user_id").distinct(), "user_id")


def ranking_metrics(recs: DataFrame, inputs: EvaluationInputs) -> list[dict[str, Any]]:
    """Precision/Recall/NDCG/MAP/HitRate@K for all users and per segment, plus population counts."""
    recs = _target_lists(recs, inputs)
    return _segment_rows(per_user_metrics(relevant_pairs(recs, inputs), recs, inputs.k_list), inputs,
                         RANKING_METRICS)


def _slot_rows(recs: DataFrame, inputs: EvaluationInputs) -> list[dict[str, Any]]:
    attrs = _items_or_empty(inputs, recs.sparkSession).select("item_id", "popularity_tier", "self_information")
    slots = recs.join(F.broadcast(attrs) if inputs.catalog_size < 200_000 else attrs, "item_id", "left").select(
        "item_id", "rank", F.coalesce("popularity_tier", F.lit("tail")).alias("tier"),
        F.coalesce("self_information", F.lit(inputs.max_self_information)).alias("self_information"))
    aggs = []
    for k in inputs.k_list:
        in_k = F.col("rank") <= k
        aggs += [
            F.countDistinct(F.when(in_k, F.col("item_id"))).alias(f"items_{k}"),
            F.sum(F.when(in_k, 1).otherwise(0)).alias(f"slots_{k}"),
            F.sum(F.when(in_k & (F.col("tier") == "tail"), 1).otherwise(0)).alias(f"tail_{k}"),
            F.sum(F.when(in_k, F.col("self_information")).otherwise(0.0)).alias(f"info_{k}"),
        ]
    row = slots.agg(*aggs).first()
    rows: list[dict[str, Any]] = []
    for k in inputs.k_list:
        n_slots = row[f"slots_{k}"] or 0
        rows.append(metric_row("coverage", (row[f"items_{k}"] or 0) / inputs.catalog_size
                               if inputs.catalog_size else None, k))
        rows.append(metric_row("tail_share", row[f"tail_{k}"] / n_slots if n_slots else None, k))
        rows.append(metric_row("novelty", row[f"info_{k}"] / n_slots if n_slots else None, k))
    return rows


def _decile_rows(pairs: DataFrame, k_list: list[int]) -> list[dict[str, Any]]:
    aggs = [F.count("*").alias("pairs")]
    aggs += [F.sum(F.when(F.col("rank") <= k, 1).otherwise(0)).alias(f"hits_{k}") for k in k_list]
    return [metric_row("recall_by_decile", row[f"hits_{k}"] / row["pairs"], k, f"item_decile={int(row['decile']):02d}")
            for row in pairs.groupBy("decile").agg(*aggs).collect() for k in k_list]


def interval_metric(metric: str, side: str) -> str:
    """Row name of a bootstrap bound: ``interval_metric("ndcg", "low")`` -> ``ndcg_ci95_low``."""
    return f"{metric}_ci{round(CI_LEVEL * 100)}_{side}"


def bootstrap_interval(values: np.ndarray, counts: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED, level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile interval of the mean over users, ``counts[i]`` users having the value ``values[i]``,
    under resampling the users with replacement.

    How many users of each distinct value a resample of n users holds is multinomial(n, counts / n),
    the same distribution as drawing the n users one by one: exact, at resamples x distinct values
    (a few thousand distinct NDCG/recall values) instead of resamples x users.
    """
    n = int(counts.sum())
    draws = np.random.default_rng(seed).multinomial(n, counts / n, size=resamples)
    low, high = np.quantile(draws @ values / n, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def bootstrap_rows(per_user: DataFrame, k_list: list[int]) -> list[dict[str, Any]]:
    """Bootstrap bounds of ``HEADLINE_METRICS`` at every K over the users of ``per_user``
    (`per_user_metrics`): one Spark action collects each column's distinct values with user counts."""
    columns = [f"{m}_{k}" for k in k_list for m in HEADLINE_METRICS]
    cells = F.explode(F.array(*[F.struct(F.lit(c).alias("column"), F.round(F.col(c), 9).alias("value"))
                                for c in columns]))
    counts: dict[str, list[tuple[float, int]]] = {}
    for row in per_user.select(cells.alias("cell")).groupBy("cell.column", "cell.value").count().collect():
        counts.setdefault(row["column"], []).append((row["value"], row["count"]))
    rows: list[dict[str, Any]] = []
    for k in k_list:
        for metric in HEADLINE_METRICS:
            found = counts.get(f"{metric}_{k}")
            if not found:
                continue
            values, users = (np.array(part, dtype="float64") for part in zip(*found, strict=True))
            low, high = bootstrap_interval(values, users)
            rows += [metric_row(interval_metric(metric, "low"), low, k),
                     metric_row(interval_metric(metric, "high"), high, k)]
    return rows


def evaluate_method(recs: DataFrame, inputs: EvaluationInputs, intervals: bool = True) -> list[dict[str, Any]]:
    """Every metric of this module for one method's lists (rows: metric, k, segment, value).

    Three Spark actions: per-segment averages, per-decile recall, list (slot) statistics; a fourth for
    the bootstrap intervals of the headline metrics unless ``intervals`` is False.
    """
    recs = _target_lists(recs.select("user_id", "rank", "item_id", "score"), inputs).persist()
    pairs = relevant_pairs(recs, inputs).persist()
    try:
        per_user = per_user_metrics(pairs, recs, inputs.k_list)
        rows = _segment_rows(per_user, inputs, USER_METRICS)
        if intervals:
            rows += bootstrap_rows(per_user, inputs.k_list)
        return rows + _decile_rows(pairs, inputs.k_list) + _slot_rows(recs, inputs)
    finally:
        pairs.unpersist()
        recs.unpersist()
