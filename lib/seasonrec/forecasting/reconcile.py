"""Coherent means: item ``mean`` forecasts scaled to the chosen category or total forecast.

Bottom-up sums of item means inherit every item model's bias (wholesale spikes that a per-item
model cannot foresee, the sales of items too new to forecast), while a category or the whole store
is a smooth series its own chosen model forecasts well. Three ways to make the means add up:

- ``bottom_up``: item means as forecast; category/total mean = their sums.
- ``middle_out``: per category and week, the item means are scaled proportionally (top-down with
  forecast proportions) so that they add up to the category's chosen ``mean``; total = sum.
- ``top_down``: the category means are first scaled to add up to the total's chosen ``mean``
  (proportions = the category forecasts), then the items as in ``middle_out``.

A category forecast also covers the sales of items that are not forecast yet (too new, or not
selling yet). The share of a category's next weeks that items established at the origin will sell
is estimated from history, like everything else at that origin: ``established_share`` = the
share of the units of the ``horizon`` weeks before the origin sold by items that were established
``horizon`` weeks before it. Established items get that share of the category forecast and
cold-start items the rest; a category without cold-start items gives its established items all of
it. A category-week whose items forecast nothing (or a category without its own forecast) is left
bottom-up. The category and total ``mean`` are always recomputed as sums of the reconciled item
means, so coherence is exact.

Choice (``forecast.reconciliation: auto``): on every backtest window the method is applied to the
chosen models' backtest forecasts of the established items and the bias of their summed mean
(items x weeks) is measured against what those items sold; the method with the lowest mean
absolute bias over the windows wins, ``bottom_up`` unless another is strictly lower. The choice is
also made on windows 2..K alone and scored on window 1 (reported, like model selection).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec.forecasting import series as S

METHODS = ("bottom_up", "middle_out", "top_down")


def established_shares(item_demand: DataFrame, origins: list[S.Origin], min_history_weeks: int) -> DataFrame:
    """window, category, share: the estimated share of a category's next weeks sold by established items.

    ``item_demand``: item_id, category, week_start, quantity (zero-filled weeks from each item's first
    sale, all before the final cutoff). For an origin with cutoff ``t`` and ``h`` forecast weeks,
    ``share`` = units sold in ``[s, t)`` by items with at least ``min_history_weeks`` weeks before
    ``s``, over all units of the category in those weeks, with ``s = t - h``, or ``min_history_weeks``
    after the first week of data if that is later (items sold before the data starts count as
    established). Categories without such a span or without sales get no row (share 1.0). Reads
    only weeks before ``t``.
    """
    spark = item_demand.sparkSession
    data_start = item_demand.agg(F.min("week_start")).first()[0]
    if data_start is None:
        return spark.createDataFrame([], "window int, category string, share double")
    # Where the data begins less than ``min_history_weeks`` before ``t - h``, no item can be
    # established there yet: the span starts ``min_history_weeks`` after the data does (no span: no share).
    earliest = data_start + dt.timedelta(weeks=min_history_weeks)
    spans = spark.createDataFrame(
        [(o.window, max(o.cutoff - dt.timedelta(weeks=len(o.output_weeks)), earliest), o.cutoff) for o in origins],
        "window int, start date, cutoff date")
    first_week = item_demand.groupBy("item_id").agg(F.min("week_start").alias("first_week"))
    recent = (item_demand.join(first_week, "item_id")
              .crossJoin(F.broadcast(spans))
              .where((F.col("week_start") >= F.col("start")) & (F.col("week_start") < F.col("cutoff"))))
    established = F.datediff("start", "first_week") >= 7 * min_history_weeks
    return (recent.groupBy("window", "category")
            .agg(F.sum(F.when(established, F.col("quantity")).otherwise(0.0)).alias("established"),
                 F.sum("quantity").alias("units"))
            .select("window", "category",
                    F.when(F.col("units") > 0, F.col("established") / F.col("units")).otherwise(1.0).alias("share")))


def category_targets(aggregates: DataFrame, method: str) -> DataFrame:
    """window, category, week_start, target: the category means the items are scaled to.

    ``aggregates``: level (category/total), series_id, window, week_start, mean — the chosen
    models' forecasts. ``middle_out``: the category's own mean; ``top_down``: the category means
    scaled to add up to the total's mean (categories left as they are where the total or their sum
    is missing or zero).
    """
    categories = aggregates.where(F.col("level") == S.CATEGORY).select(
        "window", F.col("series_id").alias("category"), "week_start", F.col("mean").alias("target"))
    if method != "top_down":
        return categories
    total = aggregates.where(F.col("level") == S.TOTAL).select("window", "week_start", F.col("mean").alias("total"))
    summed = categories.groupBy("window", "week_start").agg(F.sum("target").alias("summed"))
    factor = F.when(F.col("total").isNotNull() & (F.col("summed") > 0), F.col("total") / F.col("summed")).otherwise(1.0)
    return (categories.join(summed, ["window", "week_start"]).join(total, ["window", "week_start"], "left")
            .select("window", "category", "week_start", (F.col("target") * factor).alias("target")))


def reconcile_item_means(items: DataFrame, aggregates: DataFrame, shares: DataFrame, method: str,
                         items_missing: bool = False) -> DataFrame:
    """``items`` with ``mean`` scaled so that each category-week adds up to its target (see module doc).

    ``items``: window, series_id, category, week_start, mean, cold_start (plus any other columns,
    kept); ``aggregates``: as in ``category_targets``; ``shares``: ``established_shares``.
    ``items_missing``: ``items`` lack the cold-start items (a backtest), so the established items
    get their share of the target even where no cold-start row is present.
    ``bottom_up`` returns ``items`` unchanged.
    """
    if method == "bottom_up":
        return items
    if method not in METHODS:
        raise ValueError(f"forecast.reconciliation: unknown method '{method}' (allowed: {', '.join(METHODS)})")
    keys = ["window", "category", "week_start"]
    groups = items.groupBy(*keys).agg(
        F.sum(F.when(~F.col("cold_start"), F.col("mean")).otherwise(0.0)).alias("established_sum"),
        F.sum(F.when(F.col("cold_start"), F.col("mean")).otherwise(0.0)).alias("cold_sum"))
    factors = (groups.join(category_targets(aggregates, method), keys, "left")
               .join(shares, ["window", "category"], "left")
               .withColumn("share", F.when((F.col("cold_sum") > 0) | F.lit(items_missing),
                                           F.coalesce(F.col("share"), F.lit(1.0))).otherwise(1.0))
               .select(*keys,
                       F.when(F.col("target").isNotNull() & (F.col("established_sum") > 0),
                              F.col("target") * F.col("share") / F.col("established_sum"))
                       .otherwise(1.0).alias("established_factor"),
                       F.when(F.col("target").isNotNull() & (F.col("cold_sum") > 0),
                              F.col("target") * (1.0 - F.col("share")) / F.col("cold_sum"))
                       .otherwise(1.0).alias("cold_factor")))
    factor = F.when(F.col("cold_start"), F.col("cold_factor")).otherwise(F.col("established_factor"))
    return (items.join(factors, keys, "left")
            .withColumn("mean", F.col("mean") * F.coalesce(factor, F.lit(1.0)))
            .drop("established_factor", "cold_factor"))


def backtest_bias(items: DataFrame, aggregates: DataFrame, shares: DataFrame, actual: DataFrame) -> Any:
    """Bias of the summed item mean of every method on every backtest window (pandas).

    ``items``: the chosen item models' backtest rows (window, series_id, category, week_start, mean);
    ``aggregates``: the chosen category/total models' backtest rows; ``actual``: series_id,
    week_start, actual of the items. Returns window, method, mean_forecast, actual, bias.
    """
    import pandas as pd

    items = items.withColumn("cold_start", F.lit(False))
    sold = (items.join(actual, ["series_id", "week_start"], "left")
            .groupBy("window").agg(F.sum(F.coalesce(F.col("actual"), F.lit(0.0))).alias("actual")).toPandas())
    frames = []
    for method in METHODS:
        summed = (reconcile_item_means(items, aggregates, shares, method, items_missing=True)
                  .groupBy("window").agg(F.sum("mean").alias("mean_forecast")).toPandas())
        frames.append(summed.assign(method=method))
    out = pd.concat(frames, ignore_index=True).merge(sold, on="window")
    out["bias"] = (out["mean_forecast"] - out["actual"]) / out["actual"].where(out["actual"] > 0)
    return out.sort_values(["window", "method"]).reset_index(drop=True)[
        ["window", "method", "mean_forecast", "actual", "bias"]]


def choose_method(bias: Any) -> dict[str, Any]:
    """The method with the lowest mean |bias| over the windows in ``bias`` (``backtest_bias`` rows).

    ``bottom_up`` unless another is strictly lower. Returns chosen, the mean |bias| per method, and
    the nested check: the choice made on windows 2..K and its bias on window 1 (None with one window).
    """

    def pick(rows: Any) -> tuple[str, dict[str, float]]:
        scores = rows.assign(abs_bias=rows["bias"].abs()).groupby("method")["abs_bias"].mean().dropna()
        scores = {m: float(scores[m]) for m in METHODS if m in scores.index}
        best = min(scores, key=lambda m: (scores[m], m != "bottom_up"), default="bottom_up")
        if "bottom_up" in scores and not scores[best] < scores["bottom_up"]:
            best = "bottom_up"
        return best, scores

    chosen, scores = pick(bias)
    report: dict[str, Any] = {"chosen": chosen, "mean_abs_bias": {m: round(v, 4) for m, v in scores.items()},
                              "bias_by_window": {int(w): {r["method"]: None if r["bias"] != r["bias"]
                                                          else round(float(r["bias"]), 4) for _, r in part.iterrows()}
                                                 for w, part in bias.groupby("window")}}
    windows = sorted(bias["window"].unique())
    if len(windows) >= 2:
        earlier, _ = pick(bias[bias["window"] > windows[0]])
        latest = bias[(bias["window"] == windows[0]) & (bias["method"] == earlier)]["bias"]
        report["nested"] = {"chosen_on_windows": [int(w) for w in windows[1:]], "chosen": earlier,
                            "scored_on_window": int(windows[0]),
                            "bias": None if latest.empty or latest.iloc[0] != latest.iloc[0]
                            else round(float(latest.iloc[0]), 4)}
    else:
        report["nested"] = None
    return report
