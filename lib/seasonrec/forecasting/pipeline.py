"""One forecast run: series -> candidate models at every origin -> backtest -> selection -> cold start.

Candidates: the global LightGBM model (``gbm``, :mod:`seasonrec.forecasting.gbm`), the global
LSTM (Horovod) and the statsforecast baselines, each forecasting every origin from the weeks before it,
plus their combination (``combination``: median quantiles, average mean; see
:mod:`seasonrec.forecasting.combination`) and, at the category and total levels, the sums of the item
forecasts (``item_sum``, ``forecast.item_sum_source``: by default of the model the item level chooses, so
the aggregate levels choose again once the items' choice is made; see :mod:`seasonrec.forecasting.item_sums`).

Tables written (all through ``ctx.lake`` with the run's commit info):

- ``gold_weekly_demand`` (overwrite): see :mod:`seasonrec.forecasting.series`.
- ``demand_forecast`` (partitioned by ``as_of``; a re-run replaces its ``as_of``): item_id,
  level (item/category/total; ``item_id`` holds the category name or ``total`` there), week_start,
  p10, p50, p90, mean (expected units), model (the chosen model, ``bottom_up`` for a category
  without its own forecast, or ``cold_start_category`` / ``cold_start_total``), as_of, run_id,
  cold_start.
- ``forecast_backtest`` (partitioned by ``as_of``; replaced likewise): one row per model x series x
  backtest window: as_of, run_id, level, item_id, segment, model, window, origin, n_weeks, actual,
  forecast (sum of p50), mean_forecast (sum of mean), abs_error, wape, mase (p50), bias (p50),
  mean_bias, pinball, coverage, selected.
- ``forecast_backtest_weekly`` (partitioned by ``as_of``; replaced likewise): the chosen model's forecast
  of every series at every backtest origin, week by week: as_of, run_id, level, item_id, model, window,
  origin, week_start, p10, p50, p90, mean, actual (the evaluation report draws its fan chart from it
  when no forecast precedes the evaluated window).

Before scoring, every model's item-level P10 is floored to whole units (``whole_unit_intervals``).

Model choice is global per level, or per level and volume class, and judged out of sample (nested
over the backtest windows): see :mod:`seasonrec.forecasting.selection`; the run summary reports
the out-of-sample scores under ``selection``. Items with fewer than ``min_history_weeks`` weeks of
history (or none) get the mean forecast of the established items of their category (else of all
items), flagged ``cold_start``.

Coherence of ``mean``: the item means (cold-start items included) are reconciled to the chosen
category or total forecasts (``forecast.reconciliation``, chosen on the backtest windows by the bias
of the summed mean: see :mod:`seasonrec.forecasting.reconcile`), and category and total ``mean``
are then the sums of their items' ``mean``, so expected units add up across the hierarchy. Each
level's P10/P50/P90 is that level's chosen model's forecast of its own series (quantiles do not add
up); the category and total series have the classical candidates and a LightGBM model of their own
(``forecast.gbm_aggregate_levels``). A category that has no forecast of its own gets the sums of its
items' quantiles, marked ``bottom_up``. The run summary reports the choice under ``reconciliation``.

Drift correction (``forecast.drift_correction``, see :mod:`seasonrec.forecasting.drift`): before
cold start and reconciliation, each level's chosen forecast may be scaled by a level factor learned
on the backtest windows (``auto``: only where the factor estimated on windows 2..K lowered window
1's bias, and for the quantiles its pinball loss). Which level's factor reaches the written means
follows from the reconciliation: the items' under ``bottom_up``, the category's or the total's under
``middle_out`` / ``top_down``. The run summary reports it under ``drift_correction``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from seasonrec import tables
from seasonrec.context import JobContext, JobError
from seasonrec.forecasting import combination as COMB
from seasonrec.forecasting import deep
from seasonrec.forecasting import drift as DRIFT
from seasonrec.forecasting import item_sums as ITEMS
from seasonrec.forecasting import reconcile as REC
from seasonrec.forecasting import selection as SEL
from seasonrec.forecasting import series as S
from seasonrec.forecasting.baselines import BASELINE_MODELS, FORECAST_SCHEMA, baseline_forecasts

log = logging.getLogger(__name__)

QUANTITY_COLUMNS = COMB.QUANTITY_COLUMNS


@dataclass
class ForecastRun:
    """What `run_forecast` produced: the dates, the origins, the weekly demand, every candidate model's forecasts, this
    run's backtest and final forecast rows, and the summary."""

    as_of: dt.date
    horizon: int
    origins: list[S.Origin]
    weekly_demand: DataFrame  # gold_weekly_demand as read back from the lake
    candidates: DataFrame  # every model's forecasts at every origin (FORECAST_SCHEMA)
    backtest: DataFrame  # forecast_backtest rows of this run
    forecast: DataFrame  # demand_forecast rows of this run
    summary: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- inputs
def _read_inputs(ctx: JobContext) -> tuple[DataFrame, DataFrame | None, DataFrame | None]:
    lake = ctx.lake
    if not lake.exists(tables.SILVER_INTERACTIONS):
        raise JobError(f"table '{tables.SILVER_INTERACTIONS}' does not exist {lake.where}; "
                       "run `seasonrec ingest` and `seasonrec features` first")
    interactions = lake.read(tables.SILVER_INTERACTIONS).select("item_id", "week_start", "quantity", "invoice")
    items = lake.read(tables.SILVER_ITEMS) if lake.exists(tables.SILVER_ITEMS) else None
    calendar = lake.read(tables.CALENDAR) if lake.exists(tables.CALENDAR) else None
    return interactions, items, calendar


def build_weekly_demand(ctx: JobContext, final: S.Origin) -> tuple[DataFrame, DataFrame]:
    """Write ``gold_weekly_demand`` from silver; return it (read back) and the weekly calendar.

    The calendar runs from the first week with sales through the last forecast week.
    """
    interactions, items, calendar = _read_inputs(ctx)
    bounds = interactions.agg(F.min("week_start").alias("first"), F.max("week_start").alias("last")).first()
    if bounds is None or bounds["first"] is None:
        raise JobError(f"table '{tables.SILVER_INTERACTIONS}' is empty; nothing to forecast")
    first_week, end_week = bounds["first"], bounds["last"]
    if first_week >= final.cutoff:
        raise JobError(f"--as-of {final.cutoff - dt.timedelta(days=1)} is before the first week with sales "
                       f"({first_week}); pick a later date")
    calendar_end = max(end_week, final.cutoff + dt.timedelta(weeks=final.steps))
    week_calendar = S.weekly_calendar(ctx.spark, first_week, calendar_end, calendar)
    demand = S.weekly_item_demand(interactions, items, week_calendar, end_week)
    ctx.lake.write(demand, tables.WEEKLY_DEMAND, mode="overwrite", commit_info=ctx.commit_info())
    return ctx.lake.read(tables.WEEKLY_DEMAND), week_calendar


# ---------------------------------------------------------------------------- LSTM (driver side)
def lstm_forecasts(ctx: JobContext, item_demand: DataFrame, origins: list[S.Origin],
                   week_calendar: Any) -> tuple[DataFrame, dict[str, Any]]:
    """Train the global LSTM (Petastorm, ``training.backend``; one model per origin) and forecast every origin.

    ``item_demand``: item_id, category, week_start, quantity with ``week_start`` < the final cutoff.
    ``week_calendar``: pandas frame of weekly calendar features covering every forecast week.
    Returns (``FORECAST_SCHEMA`` rows of model ``lstm``, info: training examples per window, skipped
    windows, losses, whether the ranks stayed in sync).
    """
    from seasonrec.core import backends

    config = ctx.config.forecast
    examples = LstmExamples.build(ctx, item_demand, origins, week_calendar)
    train = examples.training.cache()
    per_window = train.agg(*[F.sum((F.col("target_end") < c).cast("int")).alias(str(w))
                             for w, c in examples.cutoffs.items()]).first()
    counts = {w: int(per_window[str(w)] or 0) for w in examples.cutoffs}
    backend = backends.make_backend(ctx.config.training.backend, config.num_proc)
    windows = [(w, c, backend.steps_per_epoch(counts[w], config.batch_size))
               for w, c in examples.cutoffs.items() if counts[w] >= config.batch_size]
    info: dict[str, Any] = {"examples": counts,
                            "windows_skipped": sorted(set(examples.cutoffs) - {w for w, _, _ in windows})}
    empty = ctx.spark.createDataFrame([], FORECAST_SCHEMA)
    if not windows:
        log.warning("LSTM: too few training examples at every origin (%s); no LSTM forecasts", counts)
        return empty, info
    model_kwargs = {"lookback": examples.spec.lookback, "steps": examples.spec.steps,
                    "n_items": examples.n_items, "n_categories": examples.n_categories, "units": config.lstm_units,
                    "embedding_dim": config.item_embedding_dim}
    with ctx.step(f"LSTM: {backend.name} training of {len(windows)} model(s) on {backend.size} process(es)"):
        results = backend.fit(ctx, train, deep.train_fn, windows=windows, model_kwargs=model_kwargs,
                              quantiles=list(config.quantiles), epochs=config.epochs, batch_size=config.batch_size,
                              learning_rate=config.learning_rate, seed=config.seed)
    trained = results[0]
    digests_agree = all(r[w]["digest"] == trained[w]["digest"] for r in results for w in trained)
    info.update({"loss": {int(w): [round(v, 4) for v in t["loss"]] for w, t in trained.items()},
                 "ranks_in_sync": digests_agree})
    rows = []
    for window, trained_window in trained.items():
        model = deep.build_model(**model_kwargs)
        model.set_weights(trained_window["weights"])
        if window == 0:
            _save_lstm(ctx, model)
        part = examples.inference[examples.inference["window"] == window]
        if not part.empty:
            rows.append(_lstm_rows(model, part, next(o for o in origins if o.window == window)))
    if not rows:
        return empty, info
    return ctx.spark.createDataFrame(pd.concat(rows, ignore_index=True), FORECAST_SCHEMA), info


@dataclass
class LstmExamples:
    """The LSTM's examples: ``training`` (Spark rows item_index, category_index, target_end, history,
    future, target, shuffled with ``forecast.seed``) and ``inference`` (pandas rows item_id, window,
    item_index, category_index, history, future, scale, one per item with enough history at each
    origin, built only from the weeks before it), the origins' ``cutoffs`` as week indices, and the
    embedding sizes."""

    training: DataFrame
    inference: pd.DataFrame
    cutoffs: dict[int, int]
    spec: deep.ExampleSpec
    n_items: int
    n_categories: int

    TRAIN_SCHEMA = ("item_index int, category_index int, target_end int, history array<float>, "
                    "future array<float>, target array<float>")
    INFER_SCHEMA = ("item_id string, window int, item_index int, category_index int, history array<float>, "
                    "future array<float>, scale float")

    @classmethod
    def build(cls, ctx: JobContext, item_demand: DataFrame, origins: list[S.Origin],
              week_calendar: Any) -> LstmExamples:
        """Examples of every item, built per item bucket with ``applyInPandas`` (see `lstm_forecasts`)."""
        config = ctx.config.forecast
        spec = deep.ExampleSpec(config.lookback_weeks, origins[0].steps, config.season_length,
                                config.min_history_weeks, config.example_stride)
        week_index = deep.WeekIndex(min(week_calendar["week_start"]))
        calendar_values = week_calendar.sort_values("week_start")[S.CALENDAR_FEATURES].to_numpy(dtype="float32")
        item_rows = item_demand.select("item_id", "category").distinct().orderBy("item_id").collect()
        item_index = {row["item_id"]: i + 1 for i, row in enumerate(item_rows)}
        category_index = {c: i + 1 for i, c in enumerate(sorted({row["category"] for row in item_rows}))}
        codes = {row["item_id"]: (item_index[row["item_id"]], category_index[row["category"]]) for row in item_rows}
        cutoffs = {o.window: week_index.of(o.cutoff) for o in origins}

        def examples_for(group: pd.DataFrame, training: bool) -> pd.DataFrame:
            out = [_item_examples(item_id, rows.sort_values("week_start"), codes[item_id], training, spec,
                                  week_index, calendar_values, cutoffs)
                   for item_id, rows in group.groupby("item_id", sort=False)]
            out = [frame for frame in out if frame is not None]
            if not out:
                return pd.DataFrame(columns=tables.ddl_column_names(cls.TRAIN_SCHEMA if training else cls.INFER_SCHEMA))
            return pd.concat(out, ignore_index=True)

        groups = _item_groups(ctx)
        bucketed = item_demand.withColumn("bucket", F.pmod(F.xxhash64("item_id"), F.lit(groups)))
        training = (bucketed.groupBy("bucket").applyInPandas(lambda g: examples_for(g, True), cls.TRAIN_SCHEMA)
                    .orderBy(F.rand(config.seed)))
        inference = (bucketed.groupBy("bucket").applyInPandas(lambda g: examples_for(g, False), cls.INFER_SCHEMA)
                     .toPandas())
        return cls(training, inference, cutoffs, spec, len(item_index), len(category_index))


def _item_groups(ctx: JobContext) -> int:
    """How many item buckets a per-item ``applyInPandas`` step uses: ``forecast.baseline_groups``, else
    2 x the cluster's default parallelism (so every core gets work and stragglers are short)."""
    return ctx.config.forecast.baseline_groups or 2 * ctx.spark.sparkContext.defaultParallelism


def _item_examples(item_id: str, rows: pd.DataFrame, codes: tuple[int, int], training: bool,
                   spec: deep.ExampleSpec, week_index: deep.WeekIndex, calendar_values: np.ndarray,
                   cutoffs: dict[int, int]) -> pd.DataFrame | None:
    """One item's LSTM examples (``rows``: its weeks in order): training examples at every training
    origin, else one inference example per origin it has ``spec.min_history`` weeks before; None if none."""
    first = week_index.of(rows["week_start"].iloc[0])
    quantity = rows["quantity"].to_numpy(dtype="float64")
    item_code, category_code = codes
    if training:
        starts = deep.training_origins(first, len(quantity), spec)
        if not starts:
            return None
        made = deep.item_examples(first, quantity, calendar_values, starts, spec, with_target=True)
        return pd.DataFrame({"item_index": item_code, "category_index": category_code,
                             "target_end": np.asarray(starts, dtype="int32") + spec.steps - 1,
                             "history": list(made["history"]), "future": list(made["future"]),
                             "target": list(made["target"])})
    out = []
    for window, cutoff in cutoffs.items():
        if cutoff - first < spec.min_history:
            continue
        # Inference at an origin sees only the weeks before it.
        made = deep.item_examples(first, quantity[:cutoff - first], calendar_values, [cutoff], spec, with_target=False)
        out.append(pd.DataFrame({"item_id": item_id, "window": window, "item_index": item_code,
                                 "category_index": category_code, "history": list(made["history"]),
                                 "future": list(made["future"]), "scale": made["scale"]}))
    return pd.concat(out, ignore_index=True) if out else None


def _lstm_rows(model: Any, part: pd.DataFrame, origin: S.Origin) -> pd.DataFrame:
    """``FORECAST_SCHEMA`` rows (pandas) of the trained ``model`` for the inference examples ``part`` of
    ``origin``: its output weeks only."""
    examples = {"history": np.stack(part["history"].to_numpy()), "future": np.stack(part["future"].to_numpy()),
                "item_index": part["item_index"].to_numpy(), "category_index": part["category_index"].to_numpy(),
                "scale": part["scale"].to_numpy(dtype="float32")}
    values = deep.predict_quantiles(model, examples)
    rows = []
    for step, week in enumerate(origin.weeks):
        if week < origin.first_output:
            continue
        rows.append(pd.DataFrame({
            "level": S.ITEM, "series_id": part["item_id"].to_numpy(), "window": origin.window, "week_start": week,
            "model": "lstm", "p10": values[:, step, 0].astype("float64"),
            "p50": values[:, step, 1].astype("float64"), "p90": values[:, step, 2].astype("float64"),
            # The pinball-trained LSTM has no mean head; its median stands in for expected units.
            "mean": values[:, step, 1].astype("float64")}))
    return pd.concat(rows, ignore_index=True)


def _save_lstm(ctx: JobContext, model: Any) -> None:
    model_dir = ctx.config.paths.model_dir
    if "://" in model_dir:
        return
    path = os.path.join(model_dir, "demand_lstm", ctx.run_id)
    os.makedirs(path, exist_ok=True)
    model.save_weights(os.path.join(path, "weights.h5"))


def whole_unit_intervals(candidates: DataFrame) -> DataFrame:
    """Item-level P10 of every model floored to whole units; p50 non-negative; quantiles ordered.

    Item demand is counted in whole units, so an item's P10 is an integer. A continuous model
    (the LSTM, with its softplus gaps) gives an intermittent item a P10 of e.g. 0.3 where the
    integer P10 is 0: zero-sales weeks, the most common outcome, would fall outside the interval.
    Flooring P10 snaps the lower bound to the integer below.

    P90 is deliberately *not* ceiled: an integer actual is <= a continuous P90 exactly when it is
    <= floor(P90), so the continuous bound already is an integer bound, and ceiling it adds the
    whole next unit to every interval. On the planted test data (tests/forecasting), floor+ceil
    gave LSTM P10-P90 coverage 0.872 on seasonal, 0.904 on steady items and 0.911 overall (target
    0.8, asserted band 0.68-0.92); flooring P10 only: 0.849 and 0.905 overall in two runs (the
    Horovod-trained LSTM is not bit-reproducible run to run), intermittent items 0.949 in both.
    Category and total series are sums over many items and are left as they are.
    """
    is_item = F.col("level") == S.ITEM
    p50 = F.greatest(F.col("p50"), F.lit(0.0))
    p10 = F.least(F.floor(F.greatest(F.col("p10"), F.lit(0.0))).cast("double"), p50)
    p90 = F.greatest(F.col("p90"), p50)
    return candidates.select(
        "level", "series_id", "window", "week_start", "model",
        F.when(is_item, p10).otherwise(F.col("p10")).alias("p10"),
        F.when(is_item, p50).otherwise(F.col("p50")).alias("p50"),
        F.when(is_item, p90).otherwise(F.col("p90")).alias("p90"),
        F.greatest(F.coalesce(F.col("mean"), F.col("p50")), F.lit(0.0)).alias("mean"))


# ---------------------------------------------------------------------------- backtest
def origin_of(origins: list[S.Origin]) -> Any:
    """Column: the cutoff date of the backtest origin in the ``window`` column."""
    return F.create_map(*[x for o in origins if o.is_backtest for x in (F.lit(o.window), F.lit(o.cutoff))])[
        F.col("window")]


def backtest_errors(candidates: DataFrame, series: DataFrame, history: DataFrame, origins: list[S.Origin],
                    season_length: int, quantiles: list[float]) -> DataFrame:
    """Per model x series x backtest window: errors of the forecasts against the weeks that followed.

    MASE divides by the in-sample mean absolute seasonal difference (lag ``season_length`` when the
    series has more history than that at the origin, else lag 1).
    """
    q_lo, q_hi = quantiles[0], quantiles[2]
    backtest = candidates.where(F.col("window") > 0)
    actual = series.select("level", "series_id", "week_start", F.col("quantity").alias("actual"))
    scored = backtest.join(actual, ["level", "series_id", "week_start"], "left").fillna(0.0, subset=["actual"])
    error = F.col("p50") - F.col("actual")

    def pinball(q: float, col: str) -> Any:
        diff = F.col("actual") - F.col(col)
        return F.greatest(F.lit(q) * diff, F.lit(q - 1) * diff)

    per_window = scored.groupBy("level", "series_id", "model", "window").agg(
        F.count(F.lit(1)).alias("n_weeks"),
        F.sum("actual").alias("actual"),
        F.sum("p50").alias("forecast"),
        F.sum("mean").alias("mean_forecast"),
        F.sum(F.abs(error)).alias("abs_error"),
        F.sum(error).alias("error"),
        F.avg((pinball(q_lo, "p10") + pinball(0.5, "p50") + pinball(q_hi, "p90")) / 3).alias("pinball"),
        F.avg(((F.col("actual") >= F.col("p10")) & (F.col("actual") <= F.col("p90"))).cast("double"))
        .alias("coverage"))
    ordered = Window.partitionBy("level", "series_id", "window").orderBy("week_start")
    n_per = Window.partitionBy("level", "series_id", "window")
    lagged = (history.where(F.col("window") > 0)
              .withColumn("n", F.count(F.lit(1)).over(n_per))
              .withColumn("lag", F.when(F.col("n") > season_length,
                                        F.lag("quantity", season_length).over(ordered))
                          .otherwise(F.lag("quantity", 1).over(ordered))))
    scale = (lagged.where(F.col("lag").isNotNull())
             .groupBy("level", "series_id", "window")
             .agg(F.avg(F.abs(F.col("quantity") - F.col("lag"))).alias("scale")))
    return (per_window.join(scale, ["level", "series_id", "window"], "left")
            .select("level", F.col("series_id").alias("item_id"), "model", "window",
                    origin_of(origins).alias("origin"), "n_weeks", "actual", "forecast", "mean_forecast",
                    "abs_error",
                    F.when(F.col("actual") > 0, F.col("abs_error") / F.col("actual")).alias("wape"),
                    F.when(F.col("scale") > 0, F.col("abs_error") / F.col("n_weeks") / F.col("scale")).alias("mase"),
                    F.when(F.col("actual") > 0, F.col("error") / F.col("actual")).alias("bias"),
                    F.when(F.col("actual") > 0, (F.col("mean_forecast") - F.col("actual")) / F.col("actual"))
                    .alias("mean_bias"),
                    "pinball", "coverage"))


def final_forecast(candidates: DataFrame, weights: DataFrame) -> DataFrame:
    """The real forecast (window 0) of every series: candidate forecasts weighted by the chosen ``weights`` (level,
    series_id, model, weight, chosen). Returns level, series_id, week_start, chosen and the weighted p10, p50, p90,
    mean."""
    final = candidates.where(F.col("window") == 0).join(weights, ["level", "series_id", "model"])
    return final.groupBy("level", "series_id", "week_start", "chosen").agg(
        *[F.sum(F.col(c) * F.col("weight")).alias(c) for c in QUANTITY_COLUMNS])


def coherent_means(forecast: DataFrame, catalogue: DataFrame) -> DataFrame:
    """Category and total ``mean`` = the sums of their items' ``mean`` (bottom-up).

    ``forecast``: level, series_id, week_start, chosen, p10, p50, p90, mean, cold_start rows of all
    levels; ``catalogue``: item_id, category. Categories without a forecast of their own get rows
    with the sums of their items' quantiles (model ``bottom_up``). Returns the same columns.
    """
    items = _with_category(forecast.where(F.col("level") == S.ITEM), catalogue)
    sums = [F.sum(c).alias(c) for c in QUANTITY_COLUMNS]
    by_category = (items.groupBy(F.col("category").alias("series_id"), "week_start").agg(*sums)
                   .withColumn("level", F.lit(S.CATEGORY)))
    by_total = (items.groupBy("week_start").agg(*sums)
                .withColumn("series_id", F.lit(S.TOTAL_KEY)).withColumn("level", F.lit(S.TOTAL)))
    bottom_up = by_category.unionByName(by_total).alias("b")
    upper = forecast.where(F.col("level") != S.ITEM).alias("u")
    merged = upper.join(bottom_up, ["level", "series_id", "week_start"], "full_outer").select(
        "level", "series_id", "week_start",
        F.coalesce(F.col("u.chosen"), F.lit("bottom_up")).alias("chosen"),
        *[F.coalesce(F.col(f"u.{q}"), F.col(f"b.{q}")).alias(q) for q in ("p10", "p50", "p90")],
        F.coalesce(F.col("b.mean"), F.lit(0.0)).alias("mean"),
        F.coalesce(F.col("u.cold_start"), F.lit(False)).alias("cold_start"))
    return forecast.where(F.col("level") == S.ITEM).unionByName(merged)


def cold_start(forecast: DataFrame, catalogue: DataFrame, weeks: list[dt.date]) -> DataFrame:
    """Forecasts for catalogue items without an item-level forecast: their category's mean item.

    ``catalogue``: item_id, category (every sellable item). Categories without any established
    item fall back to the mean over all established items.
    """
    spark = forecast.sparkSession
    item_rows = forecast.where(F.col("level") == S.ITEM)
    established = item_rows.select(F.col("series_id").alias("item_id")).distinct()
    cold = catalogue.join(established, "item_id", "left_anti")
    with_category = item_rows.join(catalogue.withColumnRenamed("item_id", "series_id"), "series_id", "left")
    per_category = with_category.groupBy("category", "week_start").agg(
        *[F.avg(c).alias(c) for c in QUANTITY_COLUMNS])
    per_total = item_rows.groupBy("week_start").agg(*[F.avg(c).alias(c) for c in QUANTITY_COLUMNS])
    week_frame = spark.createDataFrame([(w,) for w in weeks], "week_start date")
    grid = cold.crossJoin(week_frame)
    by_category = grid.join(per_category, ["category", "week_start"], "left")
    filled = (by_category.alias("c").join(per_total.alias("t"), "week_start", "left")
              .select(F.lit(S.ITEM).alias("level"), F.col("item_id").alias("series_id"), "week_start",
                      F.when(F.col("c.p50").isNotNull(), F.lit("cold_start_category"))
                      .when(F.col("t.p50").isNotNull(), F.lit("cold_start_total"))
                      .otherwise(F.lit("cold_start_zero")).alias("chosen"),
                      *[F.coalesce(F.col(f"c.{q}"), F.col(f"t.{q}"), F.lit(0.0)).alias(q)
                        for q in QUANTITY_COLUMNS]))
    return filled


def forecast_weather(ctx: JobContext, week_calendar: Any, steps: int, cutoff: dt.date) -> Any:
    """The forecaster's `seasonrec.features.weather.WeeklyWeather` over ``week_calendar``'s weeks.

    ``week_calendar``: the pandas weekly calendar (consecutive Mondays, the gbm's week index);
    ``steps``: forecast weeks per origin; ``cutoff``: the final origin (region weights = each
    weather region's share of the units sold before it, countries without weather left out).
    Without `context_daily` (``weather.source: none``) or a country with weather, every anomaly is 0.
    """
    from seasonrec.features import weather as W

    first = min(week_calendar["week_start"])
    week_starts = [first + dt.timedelta(weeks=i) for i in range(len(week_calendar))]
    lake = ctx.lake
    context = lake.read(tables.CONTEXT_DAILY).toPandas() if lake.exists(tables.CONTEXT_DAILY) else None
    units = (lake.read(tables.SILVER_INTERACTIONS).where(F.col("date") < F.lit(cutoff))
             .groupBy("country").agg(F.sum("quantity").alias("units")).collect())
    weights = W.region_weights({r["country"]: r["units"] or 0.0 for r in units if r["country"]},
                               W.region_map(ctx.config))
    log.info("forecast weather: region weights %s", weights)
    return W.weekly_weather(context, weights, week_starts, steps, ctx.config.weather)


# ---------------------------------------------------------------------------- the run
def run_forecast(ctx: JobContext, as_of: dt.date, horizon: int, write: bool = True) -> ForecastRun:
    """One forecast run from ``as_of`` for ``horizon`` weeks: weekly demand, every configured model at every origin,
    backtest, model choice, reconciliation, drift correction and cold start (the module docstring has the steps).

    With ``write`` (default), writes demand_forecast, forecast_backtest and forecast_backtest_weekly (the summary gets
    their versions); gold_weekly_demand is always written. A ``horizon`` over ``forecast.season_length - 3`` raises
    JobError. Returns the `ForecastRun`.
    """
    config = ctx.config.forecast
    if horizon + 1 > config.season_length - 2:
        raise JobError(f"--horizon {horizon} is too long: at most forecast.season_length - 3 "
                       f"({config.season_length - 3}) weeks")
    origins = S.plan_origins(as_of, horizon, config.backtest_windows)
    final = origins[0]
    with ctx.step("weekly demand series"):
        gold, week_calendar = build_weekly_demand(ctx, final)
        known = gold.where(F.col("week_start") < F.lit(final.cutoff)).cache()
        series = S.all_level_series(known).cache()
        n_series = series.select("level", "series_id").distinct().count()
        history = S.history_before(series, S.origins_frame(ctx.spark, origins), config.min_history_weeks).cache()
    info: dict[str, Any] = {}
    shares = REC.established_shares(known.select("item_id", "category", "week_start", "quantity"), origins,
                                    config.min_history_weeks).cache()
    candidates, preference = _candidate_forecasts(ctx, known, history, week_calendar, origins, info)
    catalogue = _catalogue(ctx, gold, as_of).cache()
    with ctx.step("backtest and model choice"):
        segments = SEL.series_segments(history, config.selection).cache()
        errors = _segment_errors(candidates, segments, series, history, origins, config).cache()
        choice = _choose_models(candidates, errors, segments, preference, info)
        if config.item_sum_source == "auto" or config.item_sum_source in preference:
            # The item level's choice does not depend on the aggregate candidates: choose again with
            # the item sums among the category and total candidates. Backtest errors are per series,
            # model and window, so only the item sums' are new.
            sums = _item_sums(candidates, choice, catalogue, shares, config, info)
            aggregate = F.col("level") != S.ITEM
            sum_errors = _segment_errors(sums, segments, series.where(aggregate), history.where(aggregate),
                                         origins, config)
            candidates = candidates.unionByName(sums)
            errors = errors.unionByName(sum_errors.cache())
            preference = [*preference, ITEMS.ITEM_SUM]
            choice.weights.unpersist()
            choice = _choose_models(candidates, errors, segments, preference, info)
        backtest = choice.backtest.select(F.lit(as_of).cast("date").alias("as_of"), F.lit(ctx.run_id).alias("run_id"),
                                          *BACKTEST_COLUMNS)
    with ctx.step("reconciliation of the means: choice on the backtest windows"):
        picked = SEL.chosen_rows(candidates.where(F.col("window") > 0), choice.segments, choice.ranking).cache()
        method = _reconciliation_method(picked, series, shares, catalogue, config.reconciliation, info)
    with ctx.step(f"drift correction ({config.drift_correction}): learned and checked on the backtest windows"):
        # Every level's chosen backtest rows against that level's own series (item rows: the items'
        # sales; zero where a forecast week had no row, as in ``backtest_errors``).
        level_actual = series.select("level", "series_id", "week_start", F.col("quantity").alias("actual"))
        picked_actual = (picked.join(level_actual, ["level", "series_id", "week_start"], "left")
                         .fillna(0.0, subset=["actual"]))
        drift = DRIFT.choose(picked_actual, list(config.quantiles), config.drift_correction)
        info["drift_correction"] = drift
    with ctx.step("final forecast of the chosen models"):
        # Materialised once (series x weeks rows): cold start, reconciliation and the coherent means
        # each read it, and would otherwise recompute the join of every candidate with the weights.
        chosen = final_forecast(candidates, choice.weights).localCheckpoint(eager=True)
    with ctx.step("cold start, reconciliation and coherent means"):
        forecast = _written_forecast(chosen, drift, catalogue, shares, method, final.output_weeks).select(
            "item_id", "level", "week_start", "p10", "p50", "p90", "mean", "model",
            F.lit(as_of).cast("date").alias("as_of"), F.lit(ctx.run_id).alias("run_id"), "cold_start")
        # Materialise and cut the lineage: the plan of every level, reconciliation and cold start is
        # so deep that printing it for the adaptive planner alone exhausted a 3 GB driver heap.
        forecast = forecast.localCheckpoint(eager=True)
    with ctx.step("backtest rows of every candidate"):
        backtest = backtest.localCheckpoint(eager=True)
    summary = _summary(forecast, backtest, n_series, origins, info)
    if write:
        with ctx.step("write demand_forecast, forecast_backtest and forecast_backtest_weekly"):
            weekly = picked_actual.select(
                F.lit(as_of).cast("date").alias("as_of"), F.lit(ctx.run_id).alias("run_id"), "level",
                F.col("series_id").alias("item_id"), "model", "window", origin_of(origins).alias("origin"),
                "week_start", "p10", "p50", "p90", "mean", "actual").localCheckpoint(eager=True)
            summary.update(_write_forecast_tables(ctx, forecast, backtest, weekly,
                                                  ctx.commit_info(as_of=str(as_of))))
    return ForecastRun(as_of, horizon, origins, gold, candidates, backtest, forecast, summary)


def _candidate_forecasts(ctx: JobContext, known: DataFrame, history: DataFrame, week_calendar: DataFrame,
                         origins: list[S.Origin], info: dict[str, Any]) -> tuple[DataFrame, list[str]]:
    """Every configured model's forecasts at every origin (``FORECAST_SCHEMA`` rows, P10 floored to whole
    units) plus their combination, cached; and the models in order of preference for ties.

    ``known``: gold_weekly_demand before the final cutoff; ``history``: every level's series with its
    backtest window (`series.history_before`). Each model's run figures go to ``info[<model>]``.
    """
    config = ctx.config.forecast
    groups = _item_groups(ctx)
    frames: list[DataFrame] = []
    baseline_names = [m for m in config.models if m in BASELINE_MODELS]
    if baseline_names:
        with ctx.step(f"statsforecast baselines {baseline_names} via applyInPandas"):
            started = _now()
            baselines = baseline_forecasts(history, config, baseline_names, groups).cache()
            n_rows = baselines.count()
            seconds = _now() - started
            fitted = history.select("level", "series_id", "window").distinct().count()
            info["baselines"] = {"series_x_origins": fitted, "rows": n_rows, "seconds": round(seconds, 2),
                                 "series_per_second": round(fitted / seconds, 1) if seconds > 0 else None}
        frames.append(baselines)
    calendar_frame = week_calendar.toPandas() if {"gbm", "lstm"} & set(config.models) else None
    if "gbm" in config.models:
        from seasonrec.forecasting.gbm import gbm_forecasts

        weather = None
        if config.weather_features:
            with ctx.step("weather features (point in time)"):
                weather = forecast_weather(ctx, calendar_frame, max(o.steps for o in origins), origins[0].cutoff)
        with ctx.step("global LightGBM" + (" with weather" if weather is not None else "")):
            gbm, info["gbm"] = gbm_forecasts(
                known.select("item_id", "category", "price", "week_start", "quantity", "orders"),
                calendar_frame, origins, config, groups, weather)
            info["gbm"]["weather_features"] = weather is not None
        frames.append(gbm.cache())
    if "lstm" in config.models:
        with ctx.step("global LSTM"):
            lstm, info["lstm"] = lstm_forecasts(ctx, known.select("item_id", "category", "week_start", "quantity"),
                                                origins, calendar_frame)
        frames.append(lstm.cache())
    candidates = frames[0]
    for frame in frames[1:]:
        candidates = candidates.unionByName(frame)
    candidates = whole_unit_intervals(candidates)
    members = COMB.combination_members(list(config.combination), list(config.models))
    if members:  # after the P10 flooring, so the combination averages what each member is scored on
        # Floored again: the members' median of an even number of whole-unit P10s can be x.5.
        candidates = candidates.unionByName(whole_unit_intervals(COMB.combine(candidates, members)))
    preference = [*config.models, COMB.COMBINATION] if members else list(config.models)
    return candidates.cache(), preference


BACKTEST_COLUMNS = ("level", "item_id", "segment", "model", "window", "origin", "n_weeks", "actual", "forecast",
                    "mean_forecast", "abs_error", "wape", "mase", "bias", "mean_bias", "pinball", "coverage",
                    "selected")


@dataclass
class ModelChoice:
    """What `_choose_models` decided: each series' volume-class ``segments`` per window, the chosen model
    ``weights`` per series, the models' ``ranking`` per level and segment, and every candidate's
    ``backtest`` errors (``BACKTEST_COLUMNS``, ``selected`` marking the chosen model's rows)."""

    segments: DataFrame
    weights: DataFrame
    ranking: Any
    backtest: DataFrame


def _segment_errors(candidates: DataFrame, segments: DataFrame, series: DataFrame, history: DataFrame,
                    origins: list[S.Origin], config: Any) -> DataFrame:
    """`backtest_errors` of ``candidates`` on the windows after their origins, with each series' volume-class
    ``segment`` at that origin (`selection.series_segments`; ``all`` where it has none)."""
    return (backtest_errors(candidates, series, history, origins, config.season_length, list(config.quantiles))
            .join(segments.withColumnRenamed("series_id", "item_id"), ["level", "item_id", "window"], "left")
            .fillna(SEL.ALL, subset=["segment"]))


def _choose_models(candidates: DataFrame, errors: DataFrame, segments: DataFrame, preference: list[str],
                   info: dict[str, Any]) -> ModelChoice:
    """Choose per level (and volume class) out of sample (`selection.choose_models`) on the ``errors`` of
    every candidate (`_segment_errors`); the choice's report goes to ``info["selection"]``."""
    weights, info["selection"], ranking = SEL.choose_models(errors, candidates, segments, preference)
    weights = weights.cache()
    chosen_pairs = weights.select("level", F.col("series_id").alias("item_id"), "model",
                                  F.lit(True).alias("selected"))
    backtest = (errors.join(chosen_pairs, ["level", "item_id", "model"], "left")
                .fillna(False, subset=["selected"]).select(*BACKTEST_COLUMNS))
    return ModelChoice(segments, weights, ranking, backtest)


def _item_sums(candidates: DataFrame, choice: ModelChoice, catalogue: DataFrame, shares: DataFrame, config: Any,
               info: dict[str, Any]) -> DataFrame:
    """The ``item_sum`` candidate (`item_sums.item_sum_candidates`) at every window: the item forecasts of
    ``forecast.item_sum_source`` (``auto``: the model the item level chose, per segment) summed per category
    and over the store, with the interval of each aggregate level's chosen model. Checkpointed: a few rows
    whose plan would otherwise repeat the candidates' lineage in every later query (analysing it took
    minutes). The source goes to ``info["item_sum"]``.
    """
    chosen = SEL.chosen_rows(candidates, choice.segments, choice.ranking)
    source = config.item_sum_source
    if source == "auto":
        items = chosen.where(F.col("level") == S.ITEM)
        ranking = choice.ranking
        picked = ranking[(ranking["level"] == S.ITEM) & (ranking["rank"] == 0)] if len(ranking) else ranking
        info["item_sum"] = {"source": "auto", "item_models": sorted(set(picked["model"])) if len(picked) else []}
    else:
        items = candidates.where((F.col("level") == S.ITEM) & (F.col("model") == source))
        info["item_sum"] = {"source": source, "item_models": [source]}
    return ITEMS.item_sum_candidates(_with_category(items, catalogue), chosen.where(F.col("level") != S.ITEM),
                                     shares).localCheckpoint(eager=True)


def _reconciliation_method(picked: DataFrame, series: DataFrame, shares: DataFrame, catalogue: DataFrame,
                           configured: str, info: dict[str, Any]) -> str:
    """The reconciliation method to apply: ``configured``, or with ``auto`` the one whose reconciled backtest
    means (of the chosen models' ``picked`` backtest rows) had the lowest summed bias; the choice goes to
    ``info["reconciliation"]``."""
    actual = series.where(F.col("level") == S.ITEM).select("series_id", "week_start",
                                                            F.col("quantity").alias("actual"))
    bias = REC.backtest_bias(_with_category(picked.where(F.col("level") == S.ITEM), catalogue),
                             picked.where(F.col("level") != S.ITEM), shares, actual)
    info["reconciliation"] = REC.choose_method(bias) if len(bias) else {"chosen": "bottom_up"}
    method = info["reconciliation"]["chosen"] if configured == "auto" else configured
    info["reconciliation"]["applied"] = method
    return method


def _written_forecast(chosen: DataFrame, drift: dict[str, Any], catalogue: DataFrame, shares: DataFrame,
                      method: str, weeks: list[dt.date]) -> DataFrame:
    """Every level's final forecast as demand_forecast writes it (without as_of and run_id): the chosen
    models' forecasts scaled by the ``drift`` factors, cold-start items added, item means reconciled with
    ``method`` and category/total means summed from them. Columns: item_id, level, week_start, p10, p50,
    p90, mean, model, cold_start."""
    # The drift factors scale each level's chosen forecast before cold start and reconciliation,
    # so cold-start items inherit their category's corrected level and the means still add up.
    chosen = DRIFT.apply(chosen, drift)
    cold = cold_start(chosen, catalogue, weeks)
    items = (chosen.where(F.col("level") == S.ITEM).withColumn("cold_start", F.lit(False))
             .unionByName(cold.withColumn("cold_start", F.lit(True))))
    aggregates = chosen.where(F.col("level") != S.ITEM).withColumn("cold_start", F.lit(False))
    reconciled = REC.reconcile_item_means(
        _with_category(items.withColumn("window", F.lit(0)), catalogue),
        aggregates.withColumn("window", F.lit(0)), shares, method).drop("window", "category")
    every_level = coherent_means(reconciled.unionByName(aggregates), catalogue)
    return every_level.select(F.col("series_id").alias("item_id"), "level", "week_start", "p10", "p50", "p90",
                              "mean", F.col("chosen").alias("model"), "cold_start")


def _write_forecast_tables(ctx: JobContext, forecast: DataFrame, backtest: DataFrame, weekly: DataFrame,
                           commit: dict[str, Any]) -> dict[str, int]:
    """Replace this as_of's partitions of demand_forecast, forecast_backtest and forecast_backtest_weekly;
    returns their new versions under ``<table>_version``."""
    versions = {}
    for frame, table in ((forecast, tables.DEMAND_FORECAST), (backtest, tables.FORECAST_BACKTEST),
                         (weekly, tables.FORECAST_BACKTEST_WEEKLY)):
        versions[f"{table}_version"] = ctx.lake.write(frame, table, mode="overwrite", partition_by=["as_of"],
                                                      replace_partitions=True, commit_info=commit)
    return versions


def _now() -> float:
    import time

    return time.perf_counter()


def _catalogue(ctx: JobContext, gold: DataFrame, as_of: dt.date) -> DataFrame:
    """Every item known on ``as_of`` (item_id, category): those with a sale on or before it, and
    silver_items' items that never sold. An item first sold after ``as_of`` is left out: a forecast made
    on an earlier date (a backtest of the past) cannot know it will exist, and its cold-start rows would
    otherwise add future launches to the category and total means."""
    first_sale = (ctx.lake.read(tables.SILVER_INTERACTIONS).groupBy("item_id")
                  .agg(F.min("date").alias("first_sale")))
    known = first_sale.where(F.col("first_sale") <= F.lit(as_of)).select("item_id")
    sold = gold.select("item_id", "category").distinct()
    if ctx.lake.exists(tables.SILVER_ITEMS):
        listed = (ctx.lake.read(tables.SILVER_ITEMS)
                  .select("item_id", F.coalesce(F.col("category"), F.lit(S.UNKNOWN_CATEGORY)).alias("category")))
        sold = listed.unionByName(sold.join(listed.select("item_id"), "item_id", "left_anti"))
    never_sold = sold.join(first_sale.select("item_id"), "item_id", "left_anti")
    return sold.join(known, "item_id").unionByName(never_sold)


def _with_category(rows: DataFrame, catalogue: DataFrame) -> DataFrame:
    """``rows`` (item level, ``series_id`` = item) with the item's ``category`` (``unknown`` if none)."""
    return (rows.join(catalogue.select(F.col("item_id").alias("series_id"), "category"), "series_id", "left")
            .withColumn("category", F.coalesce(F.col("category"), F.lit(S.UNKNOWN_CATEGORY))))


def _summary(forecast: DataFrame, backtest: DataFrame, n_series: int, origins: list[S.Origin],
             info: dict[str, Any]) -> dict[str, Any]:
    counts = {(r["level"], r["cold_start"]): r["n"] for r in
              forecast.groupBy("level", "cold_start").agg(F.countDistinct("item_id").alias("n")).collect()}
    chosen: dict[str, dict[str, int]] = {}
    for r in forecast.groupBy("level", "model").agg(F.countDistinct("item_id").alias("n")).collect():
        chosen.setdefault(r["level"], {})[r["model"]] = r["n"]
    per_model = {}
    for r in (backtest.where("level = 'item'").groupBy("model")
              .agg((F.sum("abs_error") / F.sum("actual")).alias("wape"), F.avg("mase").alias("mase"),
                   ((F.sum("forecast") - F.sum("actual")) / F.sum("actual")).alias("bias"),
                   ((F.sum("mean_forecast") - F.sum("actual")) / F.sum("actual")).alias("mean_bias"),
                   F.avg("coverage").alias("coverage")).collect()):
        per_model[r["model"]] = {k: None if r[k] is None else round(float(r[k]), 4)
                                 for k in ("wape", "mase", "bias", "mean_bias", "coverage")}
    return {
        "forecast_weeks": [str(w) for w in origins[0].output_weeks],
        "backtest_origins": [str(o.cutoff) for o in origins[1:]],
        "series": n_series,
        "items_forecast": counts.get(("item", False), 0),
        "items_cold_start": counts.get(("item", True), 0),
        "categories": counts.get(("category", False), 0),
        "chosen_models": chosen.get(S.ITEM, {}),
        "chosen_models_by_level": chosen,
        "backtest_item_level": per_model,
        **info,
    }
