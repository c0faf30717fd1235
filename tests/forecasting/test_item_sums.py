"""The item_sum candidate: item means summed per category (over the established share) and over the store."""

from __future__ import annotations

import datetime as dt

import pytest

from seasonrec.forecasting.baselines import FORECAST_SCHEMA
from seasonrec.forecasting.item_sums import ITEM_SUM, item_sum_candidates
from support import rows_frame

WEEK = dt.date(2011, 7, 4)
ITEM_SCHEMA = FORECAST_SCHEMA + ", category string"


def test_item_sums_divide_by_the_established_share_and_keep_the_aggregate_interval_width(spark):
    items = [("item", "a1", 1, WEEK, "gbm", 0.0, 2.0, 9.0, 4.0, "A"),
             ("item", "a2", 1, WEEK, "gbm", 1.0, 3.0, 8.0, 5.0, "A"),
             ("item", "b1", 1, WEEK, "gbm", 0.0, 1.0, 3.0, 2.0, "B")]
    aggregates = [("category", "A", 1, WEEK, "croston", 5.0, 10.0, 20.0, 11.0),
                  ("category", "B", 1, WEEK, "croston", 1.0, 2.0, 2.0, 2.0),
                  ("total", "total", 1, WEEK, "tsb", 8.0, 16.0, 24.0, 16.0),
                  ("category", "A", 1, WEEK + dt.timedelta(weeks=1), "croston", 1.0, 1.0, 1.0, 1.0)]  # no items
    shares = rows_frame(spark, [(1, "A", 0.9)], "window int, category string, share double")  # B: no row = 1.0
    out = item_sum_candidates(rows_frame(spark, items, ITEM_SCHEMA), rows_frame(spark, aggregates, FORECAST_SCHEMA),
                              shares).toPandas()
    assert set(out.model) == {ITEM_SUM} and len(out) == 3
    by = out.set_index("series_id")
    a, b, total = by.loc["A"], by.loc["B"], by.loc["total"]
    assert a["mean"] == pytest.approx(9.0 / 0.9) and a.p50 == pytest.approx(a["mean"])
    assert (a.p10, a.p90) == (pytest.approx(a.p50 * 0.5), pytest.approx(a.p50 * 2.0))
    assert b["mean"] == pytest.approx(2.0) and b.p90 == pytest.approx(2.0)
    assert total["mean"] == pytest.approx(10.0 + 2.0) and total.level == "total"
    assert (total.p10, total.p90) == (pytest.approx(12.0 * 0.5), pytest.approx(12.0 * 1.5))


def test_no_rows_for_an_aggregate_without_a_forecast_of_its_own(spark):
    items = [("item", "a1", 1, WEEK, "gbm", 0.0, 2.0, 9.0, 4.0, "A")]
    shares = rows_frame(spark, [], "window int, category string, share double")
    out = item_sum_candidates(rows_frame(spark, items, ITEM_SCHEMA), rows_frame(spark, [], FORECAST_SCHEMA), shares)
    assert out.count() == 0
