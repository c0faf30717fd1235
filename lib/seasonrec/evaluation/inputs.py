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
    """Truth, target users, segments and item labels of ``window`` (see the module docstring), with popularity from
    ``view`` only and item tables read at ``versions`` (table name -> Delta version).

    Returns the `EvaluationInputs` (its frames persisted) and facts for the run summary: n_target_users, n_truth_pairs,
    catalog_size, n_seasonal_items, seasonal_items_from, window_weeks_of_year.
    """
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
    """Top recommended items (of the model, else the first method) with their titles, seasonality
    profile, forecast fan (`forecast_fan`), the forecast backtest summary, and the weather plot's data
    (`weather_data`, under ``weather``)."""
    data: dict[str, Any] = {"window_weeks": sorted(window.weeks_of_year()), "window": window,
                            "weather": weather_data(ctx, versions)}
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
    data["titles"] = item_titles(ctx, versions, top_ids)
    data.update(forecast_fan(ctx, versions, window, top_ids))
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


def item_titles(ctx: Any, versions: dict[str, int], items: list[str]) -> dict[str, str]:
    """{item_id: title} of ``items`` from ``silver_items`` (plots name items by title where there is one)."""
    if tables.SILVER_ITEMS not in versions or not items:
        return {}
    catalogue = ctx.lake.read(tables.SILVER_ITEMS, version=versions[tables.SILVER_ITEMS])
    return {r["item_id"]: r["title"] for r in
            catalogue.where(F.col("item_id").isin(items)).select("item_id", "title").collect() if r["title"]}


FAN_HISTORY_WEEKS = 8  # actual weeks drawn before the forecast's first week, for context


def forecast_fan(ctx: Any, versions: dict[str, int], window: EvalWindow, items: list[str]) -> dict[str, Any]:
    """The forecast to draw for ``items`` around the window, and their actual weekly units.

    The latest ``demand_forecast`` made on or before the window start; when none precedes the window
    (``seasonrec forecast`` runs as of the data's last day), the chosen models' forecasts from a
    backtest origin of the latest run (``forecast_backtest_weekly``, see `_fan_origin`).
    Keys: forecast (item_id, week_start, p10, p50, p90), forecast_as_of (last day of its history),
    forecast_source, actual_weekly (item_id, week_start, actual: units sold in the forecast weeks and
    the ``FAN_HISTORY_WEEKS`` before, from actual_from). {} when neither table has rows for these items.
    """
    lake = ctx.lake
    columns = ["item_id", "week_start", "p10", "p50", "p90"]
    out: dict[str, Any] = {}
    if tables.DEMAND_FORECAST in versions:
        forecast = lake.read(tables.DEMAND_FORECAST, version=versions[tables.DEMAND_FORECAST])
        items_rows = forecast.where((F.col("level") == "item") & F.col("item_id").isin(items))
        as_of = items_rows.where(F.col("as_of") <= F.lit(window.start)).agg(F.max("as_of")).first()[0]
        if as_of is not None:
            rows = items_rows.where((F.col("as_of") == F.lit(as_of)) & (F.col("week_start") < F.lit(window.end))
                                    & (F.col("week_start") > F.lit(window.start - dt.timedelta(days=7))))
            frame = rows.select(*columns).toPandas()
            if len(frame):
                out = {"forecast": frame, "forecast_as_of": as_of, "forecast_source": f"demand_forecast as of {as_of}"}
    if not out and tables.FORECAST_BACKTEST_WEEKLY in versions:
        weekly = lake.read(tables.FORECAST_BACKTEST_WEEKLY, version=versions[tables.FORECAST_BACKTEST_WEEKLY])
        items_rows = weekly.where((F.col("level") == "item") & F.col("item_id").isin(items))
        latest = items_rows.agg(F.max("as_of")).first()[0]
        items_rows = items_rows.where(F.col("as_of") == F.lit(latest))
        origin = _fan_origin([(r["origin"], r["week_start"]) for r in
                              items_rows.select("origin", "week_start").distinct().collect()], window)
        if origin is not None:
            rows = items_rows.where(F.col("origin") == F.lit(origin))
            out = {"forecast": rows.select(*columns).toPandas(), "forecast_as_of": origin - dt.timedelta(days=1),
                   "forecast_source": f"backtest origin {origin} (history before it) of the forecast run as of "
                                      f"{latest}"}
    if not out:
        return out
    weeks = out["forecast"]["week_start"]
    first = min(weeks) - dt.timedelta(weeks=FAN_HISTORY_WEEKS)
    silver = lake.read(tables.SILVER_INTERACTIONS, version=versions[tables.SILVER_INTERACTIONS])
    actual = (silver.where(F.col("item_id").isin(items) & F.col("week_start").between(first, max(weeks)))
              .groupBy("item_id", "week_start").agg(F.sum("quantity").alias("actual")))
    out.update(actual_weekly=actual.toPandas(), actual_from=first)
    return out


def _fan_origin(origin_weeks: list[tuple[dt.date, dt.date]], window: EvalWindow) -> dt.date | None:
    """The backtest origin whose forecast weeks (``(origin, week_start)`` pairs) overlap the window in
    the most weeks, the latest among equals: with origins every 13 weeks, the latest origin often
    starts in the window's last days and forecasts the weeks after it."""
    overlap: dict[dt.date, int] = {}
    for origin, week in origin_weeks:
        inside = week < window.end and week + dt.timedelta(days=7) > window.start
        overlap[origin] = overlap.get(origin, 0) + int(inside)
    return max(overlap, key=lambda origin: (overlap[origin], origin)) if overlap else None


WEATHER_ITEMS = 4  # items drawn against the anomaly
WEATHER_MIN_WEEKS = 8  # weeks with sales an item needs before its correlation with the weather counts


def weather_data(ctx: Any, versions: dict[str, int]) -> dict[str, Any]:
    """The report's weather plot: the daily anomaly of the main market's weather region (the region of
    most units sold) over the data period, and the weekly units sold there of the most weather-sensitive
    items: the planted cold-sensitive ones when ``synthetic_truth`` has them, else the items whose weekly
    units correlate most negatively with the region's weekly mean anomaly.

    Keys: region, daily (date, anomaly_c, anomaly_7d_c, cold_spell), weekly_units (item_id, week_start,
    units, anomaly), items ([(item_id, correlation)] in drawing order), chosen_from, titles. {} without
    ``context_daily`` or a sold country with weather.
    """
    from seasonrec.features import weather as W

    if tables.CONTEXT_DAILY not in versions:
        return {}
    lake = ctx.lake
    silver = lake.read(tables.SILVER_INTERACTIONS, version=versions[tables.SILVER_INTERACTIONS])
    units = {r["country"]: r["units"] or 0.0 for r in
             silver.groupBy("country").agg(F.sum("quantity").alias("units")).collect() if r["country"]}
    mapping = W.region_map(ctx.config)
    weights = W.region_weights(units, mapping)
    if not weights:
        return {}
    region = max(weights, key=lambda r: weights[r])
    first, last = silver.agg(F.min("date"), F.max("date")).first()
    context = (lake.read(tables.CONTEXT_DAILY, version=versions[tables.CONTEXT_DAILY])
               .where((F.col("region") == region) & F.col("date").between(first, last)
                      & F.col("anomaly_c").isNotNull()))
    daily = context.select("date", "anomaly_c", "anomaly_7d_c", "cold_spell").orderBy("date").toPandas()
    if daily.empty:
        return {}
    weekly_anomaly = (context.groupBy(F.date_trunc("week", "date").cast("date").alias("week_start"))
                      .agg(F.avg("anomaly_c").alias("anomaly")))
    sold = (silver.where(F.col("country").isin([c for c, r in mapping.items() if r == region]))
            .groupBy("item_id", "week_start").agg(F.sum("quantity").alias("units")))
    regular = sold.groupBy("item_id").count().where(F.col("count") >= WEATHER_MIN_WEEKS).select("item_id")
    # Every week of the period, 0 where an item sold nothing: a cold week without sales is evidence too.
    grid = (regular.crossJoin(weekly_anomaly).join(sold, ["item_id", "week_start"], "left")
            .fillna(0.0, ["units"])).persist()
    correlation = grid.groupBy("item_id").agg(F.corr("units", "anomaly").alias("corr")).where(
        F.col("corr").isNotNull())
    chosen_from = "the items whose weekly units correlate most negatively with the weekly anomaly"
    if tables.SYNTHETIC_TRUTH in versions:
        truth = lake.read(tables.SYNTHETIC_TRUTH, version=versions[tables.SYNTHETIC_TRUTH])
        planted = truth.where(F.col("cold_sensitivity") > 0).select(F.col("item_raw").cast("string").alias("item_id"))
        if planted.take(1):
            correlation = correlation.join(planted, "item_id")
            chosen_from = "the cold-sensitive items planted by the synthetic generator (synthetic_truth)"
    items = [(r["item_id"], r["corr"]) for r in
             correlation.orderBy("corr", "item_id").limit(WEATHER_ITEMS).collect()]
    ids = [item for item, _ in items]
    weekly_units = grid.where(F.col("item_id").isin(ids)).toPandas()
    grid.unpersist()
    return {"region": region, "daily": daily, "weekly_units": weekly_units, "items": items,
            "chosen_from": chosen_from, "titles": item_titles(ctx, versions, ids)}


def cold_spell_planted_truth(ctx: Any, interactions: DataFrame, truth: DataFrame, window: EvalWindow,
                             versions: dict[str, int]) -> DataFrame | None:
    """The window's purchases (``truth``: user_id, item_id) of the planted weather-sensitive items
    (``synthetic_truth.cold_sensitivity > 0``) by users whose country was in a cold spell when the
    lists were made (the day before the window start, `item_weather.country_weather`: what the model
    could know). None without planted items or weather; the user's country is that of their last
    purchase before the window end."""
    from seasonrec.features.item_weather import country_weather, read_context
    from seasonrec.features.weather import region_map

    if tables.SYNTHETIC_TRUTH not in versions or tables.CONTEXT_DAILY not in versions:
        return None
    planted = (ctx.lake.read(tables.SYNTHETIC_TRUTH, version=versions[tables.SYNTHETIC_TRUTH])
               .where(F.col("cold_sensitivity") > 0).select(F.col("item_raw").cast("string").alias("item_id")))
    context = read_context(ctx.lake)
    weather = country_weather(context, window.start, window.start, region_map(ctx.config), ctx.config.weather)
    cold = [country for country, (_, is_cold, _) in weather.items() if is_cold]
    if not cold or not planted.take(1):
        return None
    last = (interactions.where(F.col("ts") < F.lit(str(window.end)).cast("timestamp"))
            .groupBy("user_id").agg(F.max_by("country", "ts").alias("country")))
    users = last.where(F.col("country").isin(*cold)).select("user_id")
    return truth.join(planted, "item_id").join(users, "user_id").select("user_id", "item_id").persist()


def recall_of_pairs(recs: DataFrame, pairs: DataFrame, k: int) -> float | None:
    """Share of ``pairs`` (user_id, item_id) found in the users' top ``k`` of ``recs`` (micro recall;
    None when there are no pairs)."""
    total = pairs.count()
    if not total:
        return None
    top = recs.where(F.col("rank") <= k).select("user_id", "item_id")
    return pairs.join(top, ["user_id", "item_id"]).count() / total
