"""The forecast combination: members' median quantiles and average mean, only where every member forecast."""

from __future__ import annotations

import datetime as dt

from seasonrec.forecasting.baselines import FORECAST_SCHEMA
from seasonrec.forecasting.combination import COMBINATION, combination_members, combine
from support import rows_frame

WEEK = dt.date(2011, 7, 4)


def test_members_are_the_configured_models_the_run_has_and_at_least_two():
    assert combination_members(["gbm", "ets", "tsb"], ["naive", "tsb", "gbm"]) == ["gbm", "tsb"]
    assert combination_members(["gbm", "ets"], ["gbm", "naive"]) == []


def test_combination_takes_median_quantiles_and_average_mean_where_all_members_forecast(spark):
    rows = [("item", "A", 1, WEEK, "gbm", 1.0, 2.0, 3.0, 2.0),
            ("item", "A", 1, WEEK, "ets", 0.0, 4.0, 90.0, 5.0),  # an interval that blew up
            ("item", "A", 1, WEEK, "tsb", 2.0, 3.0, 5.0, 2.0),
            ("item", "A", 1, WEEK, "naive", 9.0, 9.0, 9.0, 9.0),  # not a member
            ("item", "A", 1, WEEK + dt.timedelta(weeks=1), "gbm", 1.0, 1.0, 1.0, 1.0)]  # the others are missing
    combined = combine(rows_frame(spark, rows, FORECAST_SCHEMA), ["gbm", "ets", "tsb"]).toPandas()
    assert len(combined) == 1 and combined.model.iloc[0] == COMBINATION
    row = combined.iloc[0]
    assert (row.p10, row.p50, row.p90, row["mean"]) == (1.0, 3.0, 5.0, 3.0)
