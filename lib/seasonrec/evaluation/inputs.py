"""What every method is scored against (truth, target users, segments, item attributes) and plot data.

- truth: distinct (user_id, item_id) purchases inside the window.
- target users: users with a purchase before the window (returning) plus users whose first purchase
  is inside it (new). Target users without a purchase in the window are excluded and counted.
- segments: ``user_type=new|returning``; ``activity=low|mid|high`` = terciles of returning users'
  purchase lines before the window.
- items (catalog = ``gold_item_features`` items, else every item seen up to the window end):
  popularity from the training view only (distinct buyers before the window):
  ``self_information = -log2(max(buyers, 1) / users)``, ``popularity_decile`` (1 = most bought,
  equal item counts), ``popularity_tier``: head = items making the first ``features.head_share`` of
  purchase volume, tail = the last ``features.tail_share`` (never-bought items are tail), else torso.
  ``is_seasonal``: the planted truth (``synthetic_truth``: is_seasonal and peak week in the window)
  when the lake holds it for these items; otherwise ``gold_item_features``: peak_week in the window's
  weeks and seasonality_strength >= its ``evaluation.seasonal_strength_quantile`` quantile; when that
  profile (history before the training cutoff) has no item peaking in the window (weeks never observed,
  e.g. a first September), the same profile recomputed on silver up to the window end.
  These labels only group the metrics; no method sees them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.core.ordering import POSITION, SUM_BEFORE, global_order, ntile
from seasonrec.evaluation.baselines import EvalWindow, TrainingView
from seasonrec.evaluation.metrics import EvaluationInputs

log = logging.getLogger(__name__)


def build_inputs(ctx: Any, interactions: DataFrame, view: TrainingView, window: EvalWindow,
                 versions: dict[str, int]) -> tuple[EvaluationInputs, dict[str, Any]]:
    config = ctx.config
    in_window = interactions.where(window.contains("ts"))
    truth = in_window.select("user_id", "item_id").distinct().persist()
    history = view.frame()
    activity = history.groupBy("user_id").agg(F.count("*").alias("lines")).persist()
    users = activity.select("user_id").unionByName(truth.select("user_id")).distinct().persist()

    returning = activity.select("user_id", F.lit("user_type=returning").alias("segment"))
    new = (truth.select("user_id").distinct().join(activity, "user_id", "left_anti")
           .select("user_id", F.lit("user_type=new").alias("segment")))
    segments = returning.unionByName(new)
    cuts = activity.approxQuantile("lines", [1 / 3, 2 / 3], 0.001) if activity.take(1) else []
    if len(cuts) == 2:
        low, high = cuts
        tercile = (F.when(F.col("lines") <= low, "activity=low").when(F.col("lines") <= high, "activity=mid")
                   .otherwise("activity=high"))
        segments = segments.unionByName(activity.select("user_id", tercile.alias("segment")))
    segments = segments.persist()

    item_features = (ctx.lake.read(tables.ITEM_FEATURES, version=versions[tables.ITEM_FEATURES])
                     if tables.ITEM_FEATURES in versions else None)
    if item_features is not None:
        catalog = item_features.select("item_id").distinct()
    else:
        seen = interactions.where(F.col("ts") < F.lit(str(window.end)).cast("timestamp"))
        catalog = seen.select("item_id").distinct()
    n_users_before = max(activity.count(), 1)
    buyers = history.groupBy("item_id").agg(F.countDistinct("user_id").alias("buyers"),
                                            F.count("*").alias("volume"))
    items = catalog.join(buyers, "item_id", "left").fillna(0, ["buyers", "volume"])
    total_volume = float(buyers.agg(F.sum("volume")).first()[0] or 0.0)
    by_pop = global_order(items, [("buyers", True), ("item_id", False)])
    items = by_pop.frame.withColumn("popularity_decile", ntile(F.col(POSITION), by_pop.rows, 10)).drop(POSITION)
    items = global_order(items, [("volume", True), ("item_id", False)], sum_col="volume").frame
    head_share, tail_share = config.features.head_share, config.features.tail_share
    before = F.col(SUM_BEFORE) / F.lit(max(total_volume, 1.0))
    items = items.select(
        "item_id",
        (-F.log2(F.greatest(F.col("buyers"), F.lit(1)) / F.lit(float(n_users_before)))).alias("self_information"),
        "popularity_decile",
        F.when(F.col("volume") == 0, "tail").when(before < head_share, "head")
        .when(before >= 1 - tail_share, "tail").otherwise("torso").alias("popularity_tier"),
    )
    seasonal, seasonal_source = _seasonal_items(ctx, item_features, window, versions)
    items = (items.join(seasonal.withColumn("is_seasonal", F.lit(True)), "item_id", "left")
             .fillna(False, ["is_seasonal"]).persist())
    catalog_size = items.count()
    facts = {
        "n_target_users": users.count(),
        "n_truth_pairs": truth.count(),
        "catalog_size": catalog_size,
        "n_seasonal_items": items.where("is_seasonal").count(),
        "seasonal_items_from": seasonal_source,
        "window_weeks_of_year": sorted(window.weeks_of_year()),
    }
    inputs = EvaluationInputs(truth=truth, users=users, segments=segments, items=items, catalog_size=catalog_size,
                              k_list=list(config.evaluation.k_list),
                              max_self_information=math.log2(n_users_before))
    return inputs, facts


def _seasonal_items(ctx: Any, item_features: DataFrame | None, window: EvalWindow,
                    versions: dict[str, int]) -> tuple[DataFrame, str]:
    weeks = sorted(window.weeks_of_year())
    if tables.SYNTHETIC_TRUTH in versions and item_features is not None:
        truth = ctx.lake.read(tables.SYNTHETIC_TRUTH, version=versions[tables.SYNTHETIC_TRUTH])
        planted = (truth.where(F.col("is_seasonal") & F.col("peak_week").isin(weeks))
                   .select(F.col("item_raw").cast("string").alias("item_id")).distinct())
        known = planted.join(item_features.select(F.col("item_id").cast("string").alias("item_id")), "item_id")
        if known.take(1):
            return known, "synthetic_truth (planted)"
    if item_features is not None and {"peak_week", "seasonality_strength"} <= set(item_features.columns):
        chosen = _peaking_in(item_features, weeks, ctx.config.evaluation.seasonal_strength_quantile)
        if chosen.take(1):
            return chosen, "gold_item_features profile"
    # The features' profile (history before the training cutoff) cannot peak in weeks it never saw (e.g. a
    # first September): label with the same profile computed on silver up to the window end. These are
    # evaluation labels only; no method sees them.
    from seasonrec.features.gold import seasonality

    silver = ctx.lake.read(tables.SILVER_INTERACTIONS, version=versions[tables.SILVER_INTERACTIONS])
    history = silver.where(F.col("ts") < F.lit(str(window.end)).cast("timestamp"))
    profile = seasonality(history, history.select("item_id").distinct(), ctx.config.features)
    chosen = _peaking_in(profile, weeks, ctx.config.evaluation.seasonal_strength_quantile)
    return chosen.localCheckpoint(eager=True), "profile on silver up to the window end (labels only)"


def _peaking_in(profile: DataFrame, weeks: list[int], quantile: float) -> DataFrame:
    strengths = profile.where(F.col("seasonality_strength").isNotNull())
    threshold = strengths.approxQuantile("seasonality_strength", [quantile], 0.001) if strengths.take(1) else []
    chosen = profile.where(F.col("peak_week").isin(weeks))
    if threshold:
        chosen = chosen.where(F.col("seasonality_strength") >= threshold[0])
    return chosen.select("item_id").distinct()


# ---------------------------------------------------------------- plot data (small, pandas)
def plot_data(ctx: Any, method_recs: dict[str, DataFrame], inputs: EvaluationInputs, window: EvalWindow,
              versions: dict[str, int], top_items: int) -> dict[str, Any]:
    """Top recommended items (of the model, else the first method) with their seasonality profile,
    their weekly sales around the window and, when a forecast exists, its quantiles."""
    data: dict[str, Any] = {"window_weeks": sorted(window.weeks_of_year()), "window": window}
    if not method_recs:
        return data
    method = "model" if "model" in method_recs else next(iter(method_recs))
    top = (method_recs[method].where(F.col("rank") <= 10).groupBy("item_id").count()
           .orderBy(F.col("count").desc(), F.col("item_id")).limit(top_items))
    top_ids = [row["item_id"] for row in top.collect()]
    data["top_items_method"] = method
    data["top_items"] = top_ids
    if not top_ids:
        return data
    if tables.ITEM_FEATURES in versions:
        features = ctx.lake.read(tables.ITEM_FEATURES, version=versions[tables.ITEM_FEATURES])
        if "seasonality" in features.columns:
            rows = features.where(F.col("item_id").isin(top_ids)).select("item_id", "seasonality").collect()
            data["seasonality"] = {r["item_id"]: list(r["seasonality"] or []) for r in rows}
    silver = ctx.lake.read(tables.SILVER_INTERACTIONS, version=versions[tables.SILVER_INTERACTIONS])
    weekly = (silver.where(F.col("item_id").isin(top_ids) & window.contains("ts"))
              .groupBy("item_id", F.col("week_start")).agg(F.sum("quantity").alias("actual")))
    data["actual_weekly"] = weekly.toPandas()
    if tables.DEMAND_FORECAST in versions:
        forecast = ctx.lake.read(tables.DEMAND_FORECAST, version=versions[tables.DEMAND_FORECAST])
        as_ofs = [r["as_of"] for r in forecast.where(F.col("as_of") <= F.lit(window.start))
                  .select("as_of").distinct().orderBy(F.col("as_of").desc()).limit(1).collect()]
        if as_ofs:
            rows = (forecast.where((F.col("as_of") == F.lit(as_ofs[0])) & (F.col("level") == "item")
                                   & F.col("item_id").isin(top_ids)
                                   & (F.col("week_start") < F.lit(window.end))
                                   & (F.col("week_start") > F.lit(window.start - dt.timedelta(days=7))))
                    .select("item_id", "week_start", "p10", "p50", "p90", "model"))
            data["forecast"] = rows.toPandas()
            data["forecast_as_of"] = as_ofs[0]
    if tables.FORECAST_BACKTEST in versions:
        backtest = ctx.lake.read(tables.FORECAST_BACKTEST, version=versions[tables.FORECAST_BACKTEST])
        wanted = {"as_of", "level", "model", "abs_error", "actual", "forecast", "mase"}
        if wanted <= set(backtest.columns):
            latest = backtest.agg(F.max("as_of")).first()[0]
            actual = F.sum(F.abs("actual"))
            summary = (backtest.where(F.col("as_of") == F.lit(latest)).groupBy("level", "model")
                       .agg(F.count("*").alias("series_windows"),
                            (F.sum("abs_error") / actual).alias("wape"),
                            F.expr("percentile_approx(mase, 0.5)").alias("median_mase"),
                            ((F.sum("forecast") - F.sum("actual")) / actual).alias("bias"))
                       .orderBy("level", "wape"))
            data["backtest"] = summary.toPandas()
            data["backtest_as_of"] = latest
    return data
