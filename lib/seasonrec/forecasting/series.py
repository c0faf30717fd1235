"""Weekly demand series built in Spark, and the forecast origins of one run.

``gold_weekly_demand`` (one row per item and week, Monday ``week_start``):
item_id, week_start, quantity (net units; weeks without sales filled with 0 from the item's first
sale to the last week of data), orders (distinct invoices holding the item that week, 0 in weeks
without sales), category, price, week_of_year, woy_sin, woy_cos, is_holiday_week,
is_festival_week.

An *origin* is a point in time a forecast is made from: every model sees only weeks with
``week_start < origin.cutoff`` (the leakage guard is that one filter, applied in Spark before any
model code runs). The final origin forecasts the weeks after ``--as-of``; backtest origins sit
``k * horizon`` weeks earlier and are scored against the weeks that followed them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from seasonrec.features.calendar import monday

ITEM, CATEGORY, TOTAL = "item", "category", "total"
TOTAL_KEY = "total"
UNKNOWN_CATEGORY = "unknown"
CALENDAR_FEATURES = ["woy_sin", "woy_cos", "is_holiday_week", "is_festival_week"]
WEEKS_PER_YEAR = 52.1775


@dataclass(frozen=True)
class Origin:
    """A forecast origin: history is ``week_start < cutoff``; forecasts cover ``steps`` weeks from it.

    ``window`` 0 is the real forecast; ``window`` k >= 1 is the k-th backtest window counted back
    from ``--as-of``. ``first_output`` skips the partially observed week that contains ``--as-of``.
    """

    window: int
    cutoff: dt.date
    steps: int
    first_output: dt.date

    @property
    def is_backtest(self) -> bool:
        """True for a backtest window (``window`` >= 1), False for the real forecast."""
        return self.window > 0

    @property
    def weeks(self) -> list[dt.date]:
        """The ``steps`` week starts forecast from ``cutoff``."""
        return [self.cutoff + dt.timedelta(weeks=s) for s in range(self.steps)]

    @property
    def output_weeks(self) -> list[dt.date]:
        """The forecast weeks that are reported: ``weeks`` from ``first_output`` on."""
        return [w for w in self.weeks if w >= self.first_output]


def plan_origins(as_of: dt.date, horizon: int, backtest_windows: int) -> list[Origin]:
    """The final origin (window 0) and ``backtest_windows`` non-overlapping earlier ones.

    History ends with the last full week (Mon..Sun) on or before ``as_of``. Forecast weeks are the
    ``horizon`` full weeks after ``as_of``; when ``as_of`` is not a Sunday, the week holding it is
    only partly observed, so it is neither history nor output (the models still step over it).
    """
    next_day = as_of + dt.timedelta(days=1)
    cutoff = monday(next_day)
    first_output = cutoff if next_day.weekday() == 0 else cutoff + dt.timedelta(weeks=1)
    gap = (first_output - cutoff).days // 7
    origins = [Origin(0, cutoff, gap + horizon, first_output)]
    for k in range(1, backtest_windows + 1):
        start = cutoff - dt.timedelta(weeks=k * horizon)
        origins.append(Origin(k, start, horizon, start))
    return origins


def origins_frame(spark: SparkSession, origins: list[Origin]) -> DataFrame:
    """The origins as a Spark DataFrame (window, cutoff, steps, first_output), to join with series."""
    schema = T.StructType([
        T.StructField("window", T.IntegerType(), False),
        T.StructField("cutoff", T.DateType(), False),
        T.StructField("steps", T.IntegerType(), False),
        T.StructField("first_output", T.DateType(), False),
    ])
    return spark.createDataFrame([(o.window, o.cutoff, o.steps, o.first_output) for o in origins], schema)


# ---------------------------------------------------------------------------- calendar
def weekly_calendar(spark: SparkSession, first_week: dt.date, last_week: dt.date,
                    calendar: DataFrame | None) -> DataFrame:
    """One row per Monday in [first_week, last_week] with week-of-year terms and holiday flags.

    Week-of-year terms are computed from the date, so weeks beyond the daily ``calendar`` table
    (future forecast weeks) still get them; holiday/festival flags come from ``calendar`` and are
    0 where it has no rows.
    """
    n_weeks = (last_week - first_week).days // 7 + 1
    weeks = spark.createDataFrame([(first_week + dt.timedelta(weeks=i),) for i in range(n_weeks)], "week_start date")
    angle = 2 * math.pi * F.dayofyear(F.col("week_start")) / F.lit(365.25)
    weeks = weeks.select(
        "week_start",
        F.weekofyear("week_start").alias("week_of_year"),
        F.sin(angle).alias("woy_sin"),
        F.cos(angle).alias("woy_cos"),
    )
    if calendar is None:
        flags = weeks.select("week_start", F.lit(0).alias("is_holiday_week"), F.lit(0).alias("is_festival_week"))
    else:
        flags = (calendar.groupBy("week_start")
                 .agg(F.max(F.col("is_holiday").cast("int")).alias("is_holiday_week"),
                      F.max(F.col("is_festival").cast("int")).alias("is_festival_week")))
    return (weeks.join(flags, "week_start", "left")
            .fillna(0, subset=["is_holiday_week", "is_festival_week"])
            .select("week_start", "week_of_year", "woy_sin", "woy_cos",
                    F.col("is_holiday_week").cast("int").alias("is_holiday_week"),
                    F.col("is_festival_week").cast("int").alias("is_festival_week")))


# ---------------------------------------------------------------------------- series
def weekly_item_demand(interactions: DataFrame, items: DataFrame | None, week_calendar: DataFrame,
                       end_week: dt.date) -> DataFrame:
    """``gold_weekly_demand``: net weekly units per item, zero weeks filled, calendar + item attributes.

    ``interactions`` needs item_id, week_start, quantity (net; a week whose returns exceed its
    sales counts as 0) and optionally invoice (``orders`` counts distinct invoices; without it, the
    item's sales lines). Each item's series runs from its first sale week to ``end_week``.
    """
    orders = (F.countDistinct("invoice") if "invoice" in interactions.columns else F.count(F.lit(1)))
    sales = (interactions.where(F.col("week_start") <= F.lit(end_week))
             .groupBy("item_id", "week_start").agg(F.sum("quantity").alias("quantity"), orders.alias("orders")))
    spine = (sales.groupBy("item_id").agg(F.min("week_start").alias("first_week"))
             .select("item_id", F.explode(F.sequence("first_week", F.lit(end_week),
                                                     F.expr("interval 7 days"))).alias("week_start")))
    series = (spine.join(sales, ["item_id", "week_start"], "left")
              .select("item_id", "week_start",
                      F.greatest(F.coalesce(F.col("quantity").cast("double"), F.lit(0.0)), F.lit(0.0))
                      .alias("quantity"),
                      F.coalesce(F.col("orders").cast("double"), F.lit(0.0)).alias("orders")))
    if items is not None:
        attributes = items.select("item_id", "category", F.col("price").cast("double").alias("price"))
        series = series.join(attributes, "item_id", "left")
    else:
        series = (series.withColumn("category", F.lit(None).cast("string"))
                  .withColumn("price", F.lit(None).cast("double")))
    series = series.withColumn("category", F.coalesce(F.col("category"), F.lit(UNKNOWN_CATEGORY)))
    return series.join(week_calendar, "week_start", "left").select(
        "item_id", "week_start", "quantity", "orders", "category", "price", "week_of_year", *CALENDAR_FEATURES)


def all_level_series(item_demand: DataFrame) -> DataFrame:
    """Item, category and total series in one frame: level, series_id, week_start, quantity.

    Aggregates are sums of the (zero-filled) item series, so a category's series starts with its
    first-selling item.
    """
    items = item_demand.select(F.lit(ITEM).alias("level"), F.col("item_id").alias("series_id"),
                               "week_start", "quantity")
    categories = (item_demand.groupBy("category", "week_start").agg(F.sum("quantity").alias("quantity"))
                  .select(F.lit(CATEGORY).alias("level"), F.col("category").alias("series_id"),
                          "week_start", "quantity"))
    total = (item_demand.groupBy("week_start").agg(F.sum("quantity").alias("quantity"))
             .select(F.lit(TOTAL).alias("level"), F.lit(TOTAL_KEY).alias("series_id"), "week_start", "quantity"))
    return items.unionByName(categories).unionByName(total)


def history_before(series: DataFrame, origins: DataFrame, min_history_weeks: int) -> DataFrame:
    """Each series once per origin, cut to ``week_start < cutoff`` (the leakage guard).

    Series with fewer than ``min_history_weeks`` weeks before the cutoff are left out (they get a
    cold-start forecast at the final origin and are not scored in backtests).
    """
    from pyspark.sql.window import Window

    cut = series.crossJoin(F.broadcast(origins)).where(F.col("week_start") < F.col("cutoff"))
    per_series = Window.partitionBy("level", "series_id", "window")
    return (cut.withColumn("n_history", F.count(F.lit(1)).over(per_series))
            .where(F.col("n_history") >= min_history_weeks).drop("n_history"))
