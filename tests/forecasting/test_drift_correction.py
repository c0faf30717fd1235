"""Drift (level) correction: the robust factor, the nested decision on planted drift, and a run with it on."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from pyspark.sql import functions as F

from seasonrec.context import JobContext
from seasonrec.forecasting import drift as DRIFT
from seasonrec.forecasting import series as S
from support import make_config

from .conftest import AS_OF, write_planted_lake

QUANTILES = [0.1, 0.5, 0.9]
START = dt.date(2011, 1, 3)
ROWS_SCHEMA = ("level string, series_id string, window int, week_start date, p10 double, p50 double, "
               "p90 double, mean double, actual double")


def test_robust_factor_is_a_shrunk_clipped_median():
    # median 1.3 (the outlier 5.0 does not move it), shrunk by 3/(3+1) in log space
    assert DRIFT.robust_factor([1.2, 5.0, 1.3]) == pytest.approx(1.3 ** 0.75)
    assert DRIFT.robust_factor([1.25]) == pytest.approx(1.25 ** 0.5)  # one window: half-way
    assert DRIFT.robust_factor([1.2, 1.5]) == pytest.approx(math.sqrt(1.2 * 1.5) ** (2 / 3))
    assert DRIFT.robust_factor([3.0, 3.0, 3.0]) == 1.5 and DRIFT.robust_factor([0.3] * 3) == 0.67
    assert DRIFT.robust_factor([]) == 1.0 and DRIFT.robust_factor([float("nan"), 0.0]) == 1.0


def _rows(level: str, window: int, quantiles: tuple[float, float, float], mean: float, actual: float,
          n_series: int = 2, weeks: int = 4) -> list[tuple]:
    start = START + dt.timedelta(weeks=weeks * (10 - window))
    return [(level, f"{level}{s}", window, start + dt.timedelta(weeks=k), *quantiles, mean, actual)
            for s in range(n_series) for k in range(weeks)]


def _planted(spark):
    """Three levels, three backtest windows (1 = latest):

    - total: persistent drift, every window sells 25% more than the model's mean and quantiles;
    - category: drift in windows 2 and 3 only, window 1 is on target (the drift has ended);
    - item: the quantiles are right, only the mean is 20% low, in every window.
    """
    rows = []
    for window in (1, 2, 3):
        rows += _rows(S.TOTAL, window, (80.0, 100.0, 120.0), 100.0, 125.0, n_series=1)
        rows += _rows(S.CATEGORY, window, (8.0, 10.0, 12.0), 10.0, 10.0 if window == 1 else 13.0)
        rows += _rows(S.ITEM, window, (9.0, 10.0, 11.0), 8.0, 10.0)
    return spark.createDataFrame(rows, ROWS_SCHEMA)


def test_auto_adopts_a_persistent_drift_and_rejects_one_that_did_not_hold_out_of_sample(spark):
    decision = DRIFT.choose(_planted(spark), QUANTILES, "auto")
    total, category, item = (decision["levels"][lv] for lv in (S.TOTAL, S.CATEGORY, S.ITEM))

    # total: estimated on windows 2-3 (ratio 1.25, shrunk 2/3), checked on window 1: bias -20% -> -7%
    assert total["nested"]["estimated_on_windows"] == [2, 3] and total["nested"]["scored_on_window"] == 1
    assert total["nested"]["factor"] == pytest.approx(1.25 ** (2 / 3), abs=1e-4)
    assert total["nested"]["mean_bias_before"] == pytest.approx(-0.2)
    assert abs(total["nested"]["mean_bias_after"]) < 0.1
    assert total["nested"]["pinball_after"] < total["nested"]["pinball_before"]
    assert total["applied_to"] == ["mean", "quantiles"]
    # the final factor comes from all three windows
    assert decision["mean_factors"][S.TOTAL] == pytest.approx(1.25 ** 0.75)
    assert decision["quantile_factors"][S.TOTAL] == pytest.approx(1.25 ** 0.75)

    # category: windows 2-3 say +30%, window 1 (unseen by the estimate) is on target -> not applied
    assert category["nested"]["mean_bias_before"] == pytest.approx(0.0)
    assert category["nested"]["mean_bias_after"] > 0.15
    assert category["applied_to"] == [] and S.CATEGORY not in decision["mean_factors"]

    # item: the mean is corrected, the (already right) quantiles are not
    assert item["applied_to"] == ["mean"]
    assert item["nested"]["pinball_after"] > item["nested"]["pinball_before"]
    assert S.ITEM in decision["mean_factors"] and S.ITEM not in decision["quantile_factors"]


def test_on_forces_every_level_off_does_nothing_and_one_window_is_no_evidence(spark):
    rows = _planted(spark)
    forced = DRIFT.choose(rows, QUANTILES, "on")
    assert set(forced["mean_factors"]) == set(forced["quantile_factors"]) == {S.TOTAL, S.CATEGORY, S.ITEM}
    # category: median of (1.0, 1.3, 1.3) = 1.3, shrunk 3/4
    assert forced["mean_factors"][S.CATEGORY] == pytest.approx(1.3 ** 0.75)
    assert DRIFT.choose(rows, QUANTILES, "off") == {"mode": "off", "mean_factors": {}, "quantile_factors": {},
                                                     "levels": {}}
    single = DRIFT.choose(rows.where(F.col("window") == 1), QUANTILES, "auto")
    assert single["mean_factors"] == {} and single["quantile_factors"] == {}
    assert single["levels"][S.TOTAL]["nested"] is None
    assert "fewer than 2" in single["levels"][S.TOTAL]["reason"]
    with pytest.raises(ValueError, match="forecast.drift_correction"):
        DRIFT.choose(rows, QUANTILES, "sometimes")


def test_apply_scales_each_level_and_keeps_item_intervals_whole_and_ordered(spark):
    forecast = spark.createDataFrame(
        [(S.ITEM, "a", 0, START, 3.0, 4.0, 4.5, 4.2, 0.0), (S.ITEM, "b", 0, START, 0.0, 0.4, 2.0, 0.5, 0.0),
         (S.TOTAL, S.TOTAL_KEY, 0, START, 80.0, 100.0, 120.0, 90.0, 0.0)], ROWS_SCHEMA)
    decision = {"mean_factors": {S.ITEM: 1.2, S.TOTAL: 1.1}, "quantile_factors": {S.ITEM: 1.5}}
    out = DRIFT.apply(forecast, decision).toPandas().set_index("series_id")
    assert out.loc["a", "mean"] == pytest.approx(4.2 * 1.2) and out.loc["total", "mean"] == pytest.approx(99.0)
    assert out.loc["a", "p10"] == 4.0 and out.loc["a", "p50"] == pytest.approx(6.0)  # floor(4.5) = 4
    assert out.loc["a", "p90"] == pytest.approx(6.75)
    assert out.loc["b", "p10"] == 0.0 and out.loc["b", "p90"] >= out.loc["b", "p50"]
    # the total's quantiles were not adopted: unchanged
    assert tuple(out.loc["total", ["p10", "p50", "p90"]]) == (80.0, 100.0, 120.0)
    assert list(out.columns) == [c for c in forecast.columns if c != "series_id"]
    assert DRIFT.apply(forecast, {"mean_factors": {}, "quantile_factors": {}}) is forecast


@pytest.fixture(scope="module")
def baseline_runs(spark, tmp_path_factory, planted):
    """Baselines-only runs on the planted lake (growing 15% a year), 3 backtest windows, drift off and on."""
    from seasonrec.forecasting.pipeline import run_forecast

    root = tmp_path_factory.mktemp("forecast_drift")
    runs = {}
    for mode in ("off", "on"):
        config = make_config(root, "forecast.models=[naive,window_average]", "forecast.backtest_windows=3",
                             "forecast.baseline_groups=2", f"forecast.drift_correction={mode}")
        ctx = JobContext.create(config, "forecast", spark)
        if mode == "off":
            write_planted_lake(ctx, planted)
        runs[mode] = run_forecast(ctx, AS_OF, 13, write=False)
    return runs


def test_a_run_with_the_correction_on_scales_each_level_and_stays_coherent(baseline_runs):
    off, on = (baseline_runs[m].forecast.toPandas() for m in ("off", "on"))
    decision = baseline_runs["on"].summary["drift_correction"]
    assert decision["mode"] == "on" and baseline_runs["off"].summary["drift_correction"]["mode"] == "off"
    assert set(decision["quantile_factors"]) == {S.ITEM, S.CATEGORY, S.TOTAL}
    assert all(f != 1.0 for f in decision["quantile_factors"].values())
    key = ["level", "item_id", "week_start"]
    both = off.merge(on, on=key, suffixes=("_off", "_on"))
    assert len(both) == len(off) == len(on)
    # each aggregate's own quantiles are its chosen model's, scaled by its level's factor
    for level in (S.CATEGORY, S.TOTAL):
        part = both[(both.level == level) & (both.model_on != "bottom_up")]
        assert len(part) > 0
        assert np.allclose(part.p50_on, part.p50_off * decision["quantile_factors"][level])
    # item means still add up to the category and total means
    items = on[on.level == "item"]
    total = on[on.level == "total"].set_index("week_start")["mean"].sort_index()
    assert np.allclose(items.groupby("week_start")["mean"].sum().sort_index(), total)
    categories = on[on.level == "category"].groupby("week_start")["mean"].sum().sort_index()
    assert np.allclose(categories, total)
