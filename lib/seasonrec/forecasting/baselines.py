"""Per-series statistical baselines from statsforecast, run in parallel with Spark ``applyInPandas``.

Models (statsforecast 2.x, C++ core, no numba):

- ``seasonal_naive``: ``SeasonalNaive(season_length)``; where a series has fewer than
  ``season_length`` weeks the library returns NaN, and ``Naive`` (last week) is used instead.
- ``naive``: ``Naive`` (last week's demand), native intervals;
- ``window_average``: ``WindowAverage(window_average_weeks)`` (mean of the last weeks), conformal
  intervals as below;
- ``ets``: ``AutoETS(season_length=ets_season_length)``; native intervals.
- ``croston``: ``CrostonOptimized``; ``tsb``: ``TSB(alpha_d, alpha_p)`` — intermittent demand.
  These have no native intervals, so they get statsforecast's conformal intervals from one-step
  errors over up to 26 rolling windows (constant width over the horizon, like their forecast).

All intervals are central ``(q_hi - q_lo)`` intervals; p10 = lower, p50 = the point forecast,
p90 = upper, clipped at 0 and kept ordered (demand is never negative). ``mean`` (expected units)
is the point forecast, which is what these methods estimate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec.config import ForecastConfig
from seasonrec.tables import ddl_column_names

BASELINE_MODELS = ("seasonal_naive", "naive", "window_average", "ets", "croston", "tsb")
FORECAST_SCHEMA = ("level string, series_id string, window int, week_start date, model string, "
                   "p10 double, p50 double, p90 double, mean double")
_CONFORMAL_WINDOWS = 26


def interval_level(quantiles: list[float]) -> int:
    """The central interval's level in percent from the ``[low, 0.5, high]`` quantiles (statsforecast's ``level``).

    >>> interval_level([0.1, 0.5, 0.9])
    80
    """
    return round((quantiles[2] - quantiles[0]) * 100)


def _statsforecast_models(names: list[str], config: ForecastConfig) -> list[Any]:
    from statsforecast.models import TSB, AutoETS, CrostonOptimized, Naive, SeasonalNaive, WindowAverage
    from statsforecast.utils import ConformalIntervals

    conformal = ConformalIntervals(h=1, n_windows=_CONFORMAL_WINDOWS, method="conformal_error")
    factories: dict[str, Callable[[], Any]] = {
        "seasonal_naive": lambda: SeasonalNaive(season_length=config.season_length, alias="seasonal_naive"),
        "naive": lambda: Naive(alias="naive"),
        "window_average": lambda: WindowAverage(window_size=config.window_average_weeks, alias="window_average",
                                                prediction_intervals=conformal),
        "ets": lambda: AutoETS(season_length=config.ets_season_length, alias="ets"),
        "croston": lambda: CrostonOptimized(alias="croston", prediction_intervals=conformal),
        "tsb": lambda: TSB(alpha_d=config.tsb_alpha_d, alpha_p=config.tsb_alpha_p, alias="tsb",
                           prediction_intervals=conformal),
    }
    models = [factories[name]() for name in names]
    if "seasonal_naive" in names:
        models.append(Naive(alias="_naive"))
    return models


def forecast_group(history: Any, config: ForecastConfig, model_names: list[str]) -> Any:
    """statsforecast on one group of series that share an origin (a pandas frame in, rows out).

    ``history`` columns: level, series_id, window, steps, first_output, week_start, quantity.
    """
    import numpy as np
    import pandas as pd
    from statsforecast import StatsForecast

    columns = ddl_column_names(FORECAST_SCHEMA)
    if history.empty:
        return pd.DataFrame(columns=columns)
    steps = int(history["steps"].iloc[0])
    first_output = pd.Timestamp(history["first_output"].iloc[0])
    level = interval_level(config.quantiles)
    frame = pd.DataFrame({
        "unique_id": history["level"] + "\x1f" + history["series_id"],
        "ds": pd.to_datetime(history["week_start"]),
        "y": history["quantity"].astype("float64"),
    }).sort_values(["unique_id", "ds"])
    engine = StatsForecast(models=_statsforecast_models(model_names, config), freq="W-MON", n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "shorter than season_length": handled by the Naive fallback
        predicted = engine.forecast(df=frame, h=steps, level=[level])
    predicted = predicted[predicted["ds"] >= first_output]
    keys = predicted["unique_id"].str.split("\x1f", n=1, expand=True)
    parts = []
    for name in model_names:
        p50 = predicted[name].to_numpy(dtype="float64")
        lo = predicted[f"{name}-lo-{level}"].to_numpy(dtype="float64")
        hi = predicted[f"{name}-hi-{level}"].to_numpy(dtype="float64")
        if name == "seasonal_naive":
            missing = np.isnan(p50)
            p50 = np.where(missing, predicted["_naive"].to_numpy(dtype="float64"), p50)
            lo = np.where(missing, predicted[f"_naive-lo-{level}"].to_numpy(dtype="float64"), lo)
            hi = np.where(missing, predicted[f"_naive-hi-{level}"].to_numpy(dtype="float64"), hi)
        p50 = np.clip(np.nan_to_num(p50), 0, None)
        lo = np.minimum(np.clip(np.nan_to_num(lo), 0, None), p50)
        hi = np.maximum(np.nan_to_num(hi), p50)
        parts.append(pd.DataFrame({
            "level": keys[0].to_numpy(), "series_id": keys[1].to_numpy(),
            "window": int(history["window"].iloc[0]), "week_start": predicted["ds"].dt.date.to_numpy(),
            "model": name, "p10": lo, "p50": p50, "p90": hi, "mean": p50,
        }))
    return pd.concat(parts, ignore_index=True)[columns]


def baseline_forecasts(history: DataFrame, config: ForecastConfig, model_names: list[str],
                       groups_per_origin: int) -> DataFrame:
    """Forecasts of every baseline for every (series, origin) in ``history`` (see ``history_before``).

    Series are hashed into ``groups_per_origin`` buckets per origin; each bucket is one
    ``applyInPandas`` call that fits all its series with one ``StatsForecast``.
    """
    names = [m for m in model_names if m in BASELINE_MODELS]
    if not names:
        return history.sparkSession.createDataFrame([], FORECAST_SCHEMA)
    bucketed = history.select(
        "level", "series_id", "window", "steps", "first_output", "week_start", "quantity",
        F.pmod(F.xxhash64("level", "series_id"), F.lit(groups_per_origin)).alias("bucket"))

    def run(group: Any) -> Any:
        return forecast_group(group, config, names)

    return bucketed.groupBy("window", "bucket").applyInPandas(run, FORECAST_SCHEMA)
