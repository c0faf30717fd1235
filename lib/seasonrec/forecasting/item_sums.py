"""The ``item_sum`` candidate: a category's and the store's forecast summed from their items' forecasts.

A category or the whole store is one series with less than a year of history on Online Retail: its
own models (classical, or the aggregate LightGBM) cannot see what the item model sees across
thousands of items (lags, orders, prices, pooled seasonality). Summing the item forecasts carries
that up the hierarchy, the bottom-up forecast of hierarchical forecasting, offered at the category
and total levels as one more candidate: the backtest keeps it only where its pinball loss wins
(`seasonrec.forecasting.selection`), like every model.

Per (window, category, week): ``mean`` = the item means summed over the category's items (by
default the forecasts of the model the item level chose, ``forecast.item_sum_source``), divided by
the category's established share (`reconcile.established_shares`: the part of a category's sales
that items old enough to be forecast make; the rest comes from items too new to have a forecast,
which the category's actual includes). ``p50`` = the same sum: a sum of many items' demand is far
less skewed than one item's, so its median sits near its mean, while the sum of item medians would
fall well short of it. ``p10``/``p90`` keep the relative width of the level's own chosen forecast of
that category (``sum x own p10 / own p50``, likewise p90; quantiles do not add up across items).
The total is the sum over categories, its interval scaled likewise from the total's own forecast.
Rows only where the aggregate has a forecast of its own.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec.forecasting import series as S

ITEM_SUM = "item_sum"
_KEYS = ["level", "series_id", "window", "week_start"]


def item_sum_candidates(items: DataFrame, aggregates: DataFrame, shares: DataFrame) -> DataFrame:
    """The ``item_sum`` candidate rows at the category and total levels.

    ``items``: the item forecasts to sum with each item's ``category``; ``aggregates``: one forecast per
    category/total series whose interval width the sums keep (both: level, series_id, window,
    week_start, model, p10, p50, p90, mean); ``shares``: window, category, share
    (`reconcile.established_shares`; a missing category counts 1.0). Returns rows of the forecast
    columns with model = ``ITEM_SUM``.

    Example (``chosen``: each level's chosen forecasts; ``catalogue``: item_id, category)::

        items = chosen.where("level = 'item'").join(catalogue.withColumnRenamed("item_id", "series_id"),
                                                    "series_id")
        item_sum_candidates(items, chosen.where("level != 'item'"), shares)
    """
    share = F.coalesce(F.col("share"), F.lit(1.0))
    categories = (items.groupBy("window", "category", "week_start").agg(F.sum("mean").alias("summed"))
                  .join(shares, ["window", "category"], "left")
                  .where(share > 0)
                  .select(F.lit(S.CATEGORY).alias("level"), F.col("category").alias("series_id"), "window",
                          "week_start", (F.col("summed") / share).alias("summed")))
    total = (categories.groupBy("window", "week_start").agg(F.sum("summed").alias("summed"))
             .select(F.lit(S.TOTAL).alias("level"), F.lit(S.TOTAL_KEY).alias("series_id"), "window", "week_start",
                     "summed"))
    own = aggregates.select(*_KEYS, F.col("p10").alias("own_p10"), F.col("p50").alias("own_p50"),
                            F.col("p90").alias("own_p90"))
    summed = F.col("summed")
    has_median = F.col("own_p50") > 0
    p10 = F.when(has_median, summed * F.col("own_p10") / F.col("own_p50")).otherwise(0.0)
    p90 = F.when(has_median, summed * F.col("own_p90") / F.col("own_p50")).otherwise(summed + F.col("own_p90"))
    return (categories.unionByName(total).join(own, _KEYS)
            .select(*_KEYS, F.lit(ITEM_SUM).alias("model"), F.least(p10, summed).alias("p10"), summed.alias("p50"),
                    F.greatest(p90, summed).alias("p90"), summed.alias("mean")))
