"""Forecasting fixtures: a small lake with planted seasonal weekly demand, and one forecast run on it.

The shared synthetic data (conf/test.yaml) has about one event per item and week, too thin to tell a
seasonal model from a naive one, so these tests plant their own curves directly as silver tables:

- ``seasonal`` items: a bump around a Christmas peak week (weeks 44-50), 3-5x the base level;
- ``steady`` items: flat base level; ``sparse`` items: intermittent (mostly zero weeks);
- all levels grow 15% a year (as Online Retail does), Poisson noise on top;
- ``new_item`` first sells 3 weeks before as-of, ``never_sold`` only exists in silver_items.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pytest

from seasonrec import tables
from seasonrec.context import JobContext
from support import make_config

START = dt.date(2008, 9, 1)  # a Monday
END = dt.date(2011, 12, 26)
AS_OF = dt.date(2011, 10, 2)  # a Sunday: forecast weeks 2011-10-03 .. 2011-12-26
HORIZON = 13
PEAK_RADIUS = 3  # weeks either side of the planted peak that count as peak season


@dataclass(frozen=True)
class PlantedItem:
    item_id: str
    kind: str  # seasonal / steady / sparse / new
    category: str
    base: float
    amplitude: float = 0.0
    peak_week: int = 0

    def rate(self, week: dt.date) -> float:
        years = (week - START).days / 365.25
        level = self.base * 1.15 ** years
        if self.kind == "sparse":
            return self.base
        if self.kind != "seasonal":
            return level
        woy = week.isocalendar()[1]
        distance = min(abs(woy - self.peak_week), 52 - abs(woy - self.peak_week))
        return level * (1 + self.amplitude * math.exp(-0.5 * (distance / 2.5) ** 2))


def planted_items(seed: int = 3) -> list[PlantedItem]:
    rng = np.random.default_rng(seed)
    items = [PlantedItem(f"S{i:02d}", "seasonal", "christmas", float(rng.uniform(3, 8)),
                         float(rng.uniform(3, 5)), int(rng.integers(44, 51))) for i in range(12)]
    items += [PlantedItem(f"T{i:02d}", "steady", "home", float(rng.uniform(2, 10))) for i in range(8)]
    items += [PlantedItem(f"Z{i:02d}", "sparse", "garden", float(rng.uniform(0.1, 0.3))) for i in range(6)]
    items.append(PlantedItem("new_item", "new", "home", 5.0))
    return items


def weeks_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]


def write_planted_lake(ctx: JobContext, items: list[PlantedItem], seed: int = 5) -> None:
    """silver_interactions (one guest row per item and selling week), silver_items and a daily calendar,
    with every column the tables have (the forecast reads item, week, quantity, category, price and
    the holiday/festival flags; the rest is filled so the tables keep their declared shape)."""
    import pandas as pd
    from pyspark.sql import functions as F

    rng = np.random.default_rng(seed)
    rows = []
    for item in items:
        first = AS_OF - dt.timedelta(days=20) if item.kind == "new" else START
        for week in weeks_between(first - dt.timedelta(days=first.weekday()), END):
            quantity = int(rng.poisson(item.rate(week)))
            if quantity > 0:
                rows.append((item.item_id, week, week + dt.timedelta(days=2), float(quantity)))
    spark = ctx.spark
    sales = spark.createDataFrame(pd.DataFrame(rows, columns=["item_id", "week_start", "date", "quantity"]))
    interactions = sales.select(
        F.lit(None).cast("string").alias("user_id"), "item_id", F.col("date").cast("timestamp").alias("ts"),
        F.col("date").cast("date").alias("date"), F.col("week_start").cast("date").alias("week_start"), "quantity",
        F.lit(2.5).alias("price"), (F.col("quantity") * 2.5).alias("revenue"), F.lit("GB").alias("country"),
        F.concat(F.lit("inv-"), F.col("item_id"), F.col("date").cast("string")).alias("invoice"),
        F.date_format("date", "yyyy-MM").alias("event_month"))
    catalogue = [(i.item_id, f"title {i.item_id}", i.category, 2.5) for i in items]
    catalogue.append(("never_sold", "title never_sold", "home", 4.0))
    silver_items = spark.createDataFrame(catalogue, "item_id string, title string, category string, price double")
    days = [START + dt.timedelta(days=d) for d in range((END - START).days + 7)]
    flags = spark.createDataFrame(pd.DataFrame({
        "date": days,
        "is_holiday": [(d.month, d.day) in {(12, 25), (12, 26), (1, 1)} for d in days],
        "is_festival": [d.month == 12 and d.day <= 24 for d in days],
    }))
    angle = 2 * math.pi * F.dayofyear("date") / F.lit(365.25)
    calendar = flags.select(
        F.col("date").cast("date").alias("date"), F.date_trunc("week", "date").cast("date").alias("week_start"),
        F.year("date").alias("year"), F.least(F.weekofyear("date"), F.lit(52)).alias("week_of_year"),
        F.month("date").alias("month"), ((F.dayofweek("date") + 5) % 7 + 1).alias("day_of_week"),
        F.sin(angle).alias("woy_sin"), F.cos(angle).alias("woy_cos"),
        F.lit("winter").alias("season_north"), F.lit("summer").alias("season_south"), "is_holiday",
        F.when(F.col("is_holiday"), F.lit("holiday")).alias("holiday_name"), "is_festival",
        F.when(F.col("is_festival"), F.lit("advent")).alias("festival_name"),
        F.lit(0).alias("days_to_next_event"), F.lit(0).alias("days_since_last_event"),
        F.lit(None).cast("string").alias("event_window"))
    lake, info = ctx.lake, ctx.commit_info()
    lake.write(interactions, tables.SILVER_INTERACTIONS, partition_by=["event_month"], commit_info=info)
    lake.write(silver_items, tables.SILVER_ITEMS, commit_info=info)
    lake.write(calendar, tables.CALENDAR, commit_info=info)


@pytest.fixture(scope="session")
def planted() -> list[PlantedItem]:
    return planted_items()


@pytest.fixture(scope="session")
def planted_ctx(spark, tmp_path_factory, planted) -> JobContext:
    root = tmp_path_factory.mktemp("forecast_planted")
    # Kept small for CI (~27 items x 3 years): one backtest window, LSTM trained on every 2nd origin
    # with a 13-week lookback, small batches so the few examples still give ~15 steps per epoch.
    config = make_config(root, "forecast.epochs=8", "forecast.backtest_windows=1", "forecast.example_stride=2",
                         "forecast.lookback_weeks=13", "forecast.batch_size=64", "forecast.baseline_groups=2")
    ctx = JobContext.create(config, "forecast", spark)
    write_planted_lake(ctx, planted)
    return ctx


@pytest.fixture(scope="session")
def planted_run(planted_ctx):
    """One full forecast run (baselines + Horovod LSTM + backtest + tables) shared by the tests."""
    from seasonrec.forecasting.pipeline import run_forecast

    return run_forecast(planted_ctx, AS_OF, HORIZON)
