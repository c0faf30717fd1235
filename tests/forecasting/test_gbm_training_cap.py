"""The cap on the global LightGBM model's training rows (``forecast.gbm_max_training_rows``): what it
estimates, which origins it keeps, and that a capped run still forecasts every item."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from seasonrec.config import ForecastConfig
from seasonrec.forecasting import gbm
from seasonrec.forecasting import series as S

FINAL_CUTOFF, STEPS, STRIDE, MAX_HISTORY = 150, 13, 2, 156


def _group(n_items: int = 40, seed: int = 3) -> pd.DataFrame:
    """Weekly rows of items whose first sale is spread over the 150 weeks before the cutoff."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_items):
        first = int(rng.integers(0, FINAL_CUTOFF - 10))
        weeks = np.arange(first, FINAL_CUTOFF)
        frames.append(pd.DataFrame({"item_id": f"item{i:03d}", "category": "basic", "price": 2.0, "week_index": weeks,
                                    "quantity": rng.poisson(3, len(weeks)).astype(float), "orders": np.nan}))
    return pd.concat(frames, ignore_index=True)


def _rows(group: pd.DataFrame, keep: float) -> pd.DataFrame:
    calendar = np.zeros((FINAL_CUTOFF + STEPS + 1, len(S.CALENDAR_FEATURES)))
    pooled = {"basic": np.ones(FINAL_CUTOFF), S.TOTAL_KEY: np.ones(FINAL_CUTOFF)}
    return gbm.feature_frame(group, {0: FINAL_CUTOFF, 1: FINAL_CUTOFF - STEPS}, FINAL_CUTOFF, STEPS, calendar,
                             pooled, {"basic": 0}, 8, STRIDE, MAX_HISTORY, training_keep=keep)


def test_the_row_estimate_matches_the_training_rows_the_features_make():
    group = _group()
    weeks_per_item = group.groupby("item_id").size().to_numpy()
    keep, estimated = gbm.training_keep_fraction(weeks_per_item, STEPS, STRIDE, MAX_HISTORY, max_rows=0)
    made = int((_rows(group, 1.0)["window"] == -1).sum())
    assert keep == 1.0
    assert abs(estimated - made) / made < 0.05, (estimated, made)
    share, _ = gbm.training_keep_fraction(weeks_per_item, STEPS, STRIDE, MAX_HISTORY, max_rows=made // 4)
    assert 0.22 < share < 0.28
    assert gbm.training_keep_fraction(weeks_per_item, STEPS, STRIDE, MAX_HISTORY, max_rows=10 * made)[0] == 1.0


def test_a_cap_keeps_a_hashed_share_of_training_origins_and_every_inference_row():
    group = _group()
    full, capped = _rows(group, 1.0), _rows(group, 0.3)
    origins = full[full["window"] == -1][["item_id", "origin"]].drop_duplicates()
    kept = capped[capped["window"] == -1][["item_id", "origin"]].drop_duplicates()
    assert set(map(tuple, kept.to_numpy())) < set(map(tuple, origins.to_numpy()))
    assert 0.25 < len(kept) / len(origins) < 0.35
    # every kept origin keeps all its steps: its rows are the uncapped run's rows
    merged = full.merge(kept, on=["item_id", "origin"])
    pd.testing.assert_frame_equal(merged.sort_values(list(full.columns[:4])).reset_index(drop=True),
                                  capped[capped["window"] == -1].sort_values(list(full.columns[:4]))
                                  .reset_index(drop=True), check_like=True)
    inference = [frame[frame["window"] >= 0].reset_index(drop=True) for frame in (full, capped)]
    pd.testing.assert_frame_equal(*inference)
    # the same origins whichever items share the worker's group, in whatever order
    halves = [group[group["item_id"] < "item020"], group[group["item_id"] >= "item020"].sample(frac=1, random_state=1)]
    split = pd.concat([_rows(half, 0.3) for half in halves])
    again = split[split["window"] == -1][["item_id", "origin"]].drop_duplicates()
    assert set(map(tuple, again.to_numpy())) == set(map(tuple, kept.to_numpy()))


def test_a_capped_run_trains_on_fewer_rows_and_still_forecasts_every_item(spark):
    start = dt.date(2009, 1, 5)
    rng = np.random.default_rng(8)
    n_weeks = 90
    origins = S.plan_origins(start + dt.timedelta(weeks=n_weeks, days=-1), horizon=6, backtest_windows=1)
    final = origins[0]
    rows = [(f"item{i}", "basic", 2.0, start + dt.timedelta(weeks=w), float(rng.poisson(2 + i % 5)), None)
            for i in range(12) for w in range(n_weeks)]
    demand = spark.createDataFrame(rows, "item_id string, category string, price double, week_start date, "
                                         "quantity double, orders double")
    calendar = S.weekly_calendar(spark, start, final.cutoff + dt.timedelta(weeks=final.steps), None).toPandas()
    base = {"horizon": 6, "backtest_windows": 1, "min_history_weeks": 8, "gbm_rounds": 20, "gbm_min_data_in_leaf": 20,
            "gbm_aggregate_levels": False}
    _, uncapped = gbm.gbm_forecasts(demand, calendar, origins, ForecastConfig(**base), groups=2)
    frame, capped = gbm.gbm_forecasts(demand, calendar, origins, ForecastConfig(**base, gbm_max_training_rows=2000),
                                      groups=2)
    assert uncapped["training_origins_kept"] == 1.0
    assert 0 < capped["training_origins_kept"] < 1.0
    kept_share = capped["training_rows"][0] / uncapped["training_rows"][0]
    assert abs(kept_share - capped["training_origins_kept"]) < 0.1, (kept_share, capped)
    forecasts = frame.toPandas()
    assert set(forecasts[forecasts["window"] == 0]["series_id"]) == {f"item{i}" for i in range(12)}
    assert np.isfinite(forecasts[["p10", "p50", "p90", "mean"]].to_numpy()).all()
