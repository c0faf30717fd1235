"""Forecast combination: several candidates pooled week by week, itself a candidate.

Pooling forecasts of different families (a global GBM, exponential smoothing, an intermittent-
demand model, a moving average) cancels part of their independent errors; on lumpy weekly demand
the combination is often better than each member and rarely much worse than the best (the M4/M5
lesson). It is not assumed to win: ``combination`` enters the backtest like any model, and the
selection (`seasonrec.forecasting.selection`) keeps it only where its out-of-sample loss is lowest.

Per (level, series, origin, week): the quantiles (p10, p50, p90) are the members' medians and the
mean is the members' average. Medians because one member's interval can blow up on a lumpy item
(non-seasonal AutoETS's P90 did on Online Retail's backtest windows: pinball 12.8 where the other
members had 6.3-7.4) and an average would carry that into the combination; the median of ordered
quantiles stays ordered. The mean is averaged because expected units pool linearly (what a planner
sums). A week is combined only where every member present in the run forecast it, so the
combination never silently degrades to a subset.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

COMBINATION = "combination"
QUANTILE_COLUMNS = ("p10", "p50", "p90")
QUANTITY_COLUMNS = (*QUANTILE_COLUMNS, "mean")


def combination_members(configured: list[str], models: list[str]) -> list[str]:
    """The configured members that the run forecasts (``models``), in configured order; [] when fewer than 2."""
    members = [m for m in configured if m in models]
    return members if len(members) >= 2 else []


def combine(candidates: DataFrame, members: list[str]) -> DataFrame:
    """The ``combination`` candidate from ``candidates`` (level, series_id, window, week_start, model,
    p10, p50, p90, mean): one row per (level, series_id, window, week_start) that all ``members``
    forecast, with model = ``COMBINATION``, the members' median of p10/p50/p90 and their average mean."""
    keys = ["level", "series_id", "window", "week_start"]
    combined = (candidates.where(F.col("model").isin(members)).groupBy(*keys)
                .agg(F.countDistinct("model").alias("_members"), *[F.median(c).alias(c) for c in QUANTILE_COLUMNS],
                     F.avg("mean").alias("mean")))
    return (combined.where(F.col("_members") == len(members))
            .select(*keys, F.lit(COMBINATION).alias("model"), *QUANTITY_COLUMNS))
