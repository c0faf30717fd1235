"""A global LightGBM forecaster: one direct multi-horizon model across all items per origin.

One example is (item, origin week ``t``, step ``s``): features known at ``t`` (only weeks
``< t`` enter them), the calendar of the target week ``t + s``, and the target = demand of week
``t + s``. The step is a feature, so one model forecasts every step directly (no recursion).

Features (demand features are divided by the item's scale at ``t``, the mean demand of its last 13
observed weeks, else of all its weeks, else 1, so one tree serves slow and fast sellers):

- lags 1..4 and the week 52 weeks before the target (NaN where the item did not exist yet), last
  year's target week smoothed over 3 weeks, over the scale and over last year's level at the origin;
  rolling means over 4, 8 and 13 weeks; share of non-zero weeks; weeks since the first sale;
  log of the scale;
- orders (``ORDER_FEATURES``, from ``orders`` = distinct invoices per item-week in
  ``gold_weekly_demand``): units are lumpy because of occasional wholesale orders, the number of
  orders is a steadier signal of demand. The order trend (last week's and the 4- and 8-week mean
  order counts over the 13-week mean), log1p of the 13-week order rate, log units per order over 13
  weeks, and a spike-proof demand level: the 4- and 13-week order rate x the median units per order
  over 13 weeks, over the scale. Category/total series read their summed order lines;
- target week: woy_sin, woy_cos, holiday and festival week flags (``series.CALENDAR_FEATURES``);
- item: category (LightGBM categorical) and log price;
- pooled seasonality of the item's category and of the whole store (weekly sums over items, which
  are much smoother than one item): recent level (4-week over 13-week mean at ``t``), and last
  year's same week relative to last year's level at the origin and to the last 52 weeks' mean —
  the Christmas ramp of the previous December where the data holds one (NaN otherwise);
- the step ``s``;
- weather (``forecast.weather_features``, item model only, ``WEATHER_FEATURES``; built point in time
  by `seasonrec.features.weather.weekly_weather` from ``context_daily``, region-weighted by units
  sold): the trailing 7-day temperature anomaly at the origin, the target week's anomaly as known at
  the origin (observed days, else decayed persistence, i.e. the normal after a few weeks), the item's
  weather sensitivity (slope of log1p weekly units on the weekly anomaly over the 104 weeks before
  the origin), sensitivity x (target anomaly - the anomaly of the scale's 13 weeks), and weather-adjusted
  levels: the mean of the last 4 / 13 weeks with each week's weather effect divided out, times the
  target week's expected effect, over the scale (``_weather_levels``).

Category and total series (``forecast.gbm_aggregate_levels``): a second model per origin, trained
on the aggregate series only (few series, so training origins every week and smaller trees:
``gbm_aggregate_num_leaves``, ``gbm_aggregate_min_data_in_leaf``) with the same features — the
aggregate's own lags and last year's weeks, the calendar, and pooled seasonality (a category reads
its own sums and the store's, the total the store's) and their summed order lines. Their scale is
the 13-week mean without its largest week (``_trimmed_mean``). It is a candidate at those levels,
chosen or not by the same backtest rule as every model (``selection``).

Measured on Online Retail origins 2011-05-31 and 2011-06-30 (13 weeks, 4 backtest windows; gbm's
item WAPE over the best classical method): the order features took the items from 0.853 / 0.967 to
0.840 / 0.927 (pinball 6.38 / 7.30 -> 6.38 / 7.09), but the mean's bias from +4.8% / -12.9% to
-4.8% / -18.5%. A trimmed item scale (without the largest of 13 weeks) was worse for items (0.870 /
1.011), so items keep the plain mean; it helped the category/total model (category 1.42 / 1.64 ->
1.34 / 1.34, total 2.46 / 1.92 -> 2.18 / 1.56, still not chosen there). On the earlier validation
origins 2011-03-31 / 04-30 / 05-31 (``bench/forecast_lab.py``, which also records every variant tried
there: rounds, leaves, recency weights, seeds, stride, smoothed-level features; none moved the p50
by more than 0.01) the order features left the p50's WAPE ratio where it was (0.847 -> 0.845 on
average) and pushed the mean model's summed bias further from zero (+12.8% / +7.6% / +4.8% without
them, +18.9% / +13.9% / -4.8% with), so only the quantile models read them (``MEAN_FEATURES``).

Objectives: LightGBM quantile models for P10/P50/P90 and a mean (expected units) model, by default
squared error (``forecast.gbm_mean_objective``). Targets are divided by the scale and each example
weighs its scale, so the pinball loss minimised is the one in units (pinball is homogeneous of
degree 1). Quantiles are sorted per row, forecasts are clipped at 0.

Why squared error for the mean: on Online Retail as of 2011-06-30 (13 weeks, ~3,300 items) every
mean objective was unbiased in sample, but out of sample the log-link ones undershot the total
badly (bias of the summed mean: Tweedie p=1.3 -73%, p=1.1 -64%, Poisson -54%, squared error -12%;
window average -15%): wholesale spikes fitted on the log scale do not carry over.

No leakage: the model of an origin trains only on examples whose target week lies before that
origin, and every feature of an example uses weeks before its own ``t``; features are built once
(all rows before the final cutoff) and each origin's model takes the subset it may see.

Spark and size limit: the features are built per item bucket with ``applyInPandas`` (the pooled
category/total sums are computed in Spark and shipped to the workers as small arrays), then
collected to the driver, where LightGBM trains one model per origin and objective. Driver memory is
about ``rows x (features + 6) x 8`` bytes twice over (pandas + LightGBM's binned copy), with ``rows
~ items x weeks of history / gbm_origin_stride x steps``: Online Retail (~3,300 items, ~30 weeks, 14
steps, stride 2) is 0.45M rows as of 2011-06-30 (driver Python peak 1.3 GB).
``forecast.gbm_max_training_rows`` (default 2M) caps the rows: ``training_keep_fraction`` estimates
the rows from each item's weeks of history before any feature is built, and above the cap every item
keeps the same hashed share of its training origins (``feature_frame``), so the driver's memory and
LightGBM's time stop growing with the catalogue while every item is still forecast. Measured
(``bench/bench_forecast.py``, 2 cores, 2026-12-05): a synthetic 20,000-item catalogue (2M sales over
two years, ~7.6M rows uncapped, 26% kept) took 1,165 s for the whole forecast job with 4 backtest
windows (LightGBM 822 s of it: 65-238 s per origin for 0.7-2.0M rows; statsforecast 187 s), driver
Python peak 4.8 GB; on Online Retail's validation origins keeping a half / a quarter / a tenth of
the origins cost 0.005 / 0.011 / 0.016 of the WAPE ratio to the best classical method
(``bench/forecast_lab.py``). Beyond one driver, train per category on the executors or with
``xgboost.spark`` instead.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from seasonrec.core.randomness import hashed_uniform
from seasonrec.features.calendar import WEEKS
from seasonrec.forecasting import series as S

log = logging.getLogger(__name__)

SCALE_WEEKS = 13
LAGS = (1, 2, 3, 4)
ROLLING = (4, 8, 13)
ORDER_FEATURES = ["orders_rel_1", "orders_rel_4", "orders_rel_8", "log_orders_13", "log_units_per_order_13",
                  "order_demand_4", "order_demand_13"]
ITEM_FEATURES = [f"lag_{k}" for k in LAGS] + [f"mean_{m}" for m in ROLLING] + [
    "lag_season", "last_year_mean", "last_year_ramp", "nonzero_share", "weeks_since_first", "log_scale",
    *ORDER_FEATURES]
POOLED_FEATURES = [f"{pool}_{name}" for pool in ("category", "total")
                   for name in ("recent", "last_year_ramp", "last_year_index")]
FEATURES = [*ITEM_FEATURES, *S.CALENDAR_FEATURES, "category_index", "log_price", *POOLED_FEATURES, "step"]
# The mean (expected units) model reads no order features: on the validation origins 2011-03-31,
# 04-30 and 05-31 they moved its summed bias from +12.8% / +7.6% / +4.8% to +18.9% / +13.9% / -4.8%
# (``bench/forecast_lab.py``).
MEAN_FEATURES = [f for f in FEATURES if f not in ORDER_FEATURES]
# Weather (forecast.weather_features, item model only; see `weather_rows`).
WEATHER_LEVEL_WEEKS = (4, 13)  # recent weeks the weather-adjusted levels average
MAX_WEATHER_SENSITIVITY = 1.0  # |log change per degree| the levels use: exp() of a wild slope explodes
WEATHER_FEATURES = ["weather_anomaly_origin", "weather_anomaly_target", "weather_sensitivity", "weather_effect",
                    *(f"weather_level_{m}" for m in WEATHER_LEVEL_WEEKS)]
WEATHER_SENSITIVITY_WEEKS = 104  # weeks before the origin the item's weather sensitivity is estimated on
WEATHER_SENSITIVITY_MIN_WEEKS = 8


def feature_names(weather: bool) -> list[str]:
    """The quantile models' features: ``FEATURES``, plus ``WEATHER_FEATURES`` with ``weather``."""
    return [*FEATURES, *WEATHER_FEATURES] if weather else list(FEATURES)


def mean_feature_names(weather: bool) -> list[str]:
    """The mean model's features: ``MEAN_FEATURES``, plus ``WEATHER_FEATURES`` with ``weather``."""
    return [*MEAN_FEATURES, *WEATHER_FEATURES] if weather else list(MEAN_FEATURES)
_KEYS = ["item_id", "window", "origin", "target_week", "scale", "target"]
_MIN_TRAINING_ROWS = 200
_KEEP_SALT = "gbm_training_origins"  # hashed_uniform salt of the kept training origins


def _window_mean(cumsum: np.ndarray, cumcount: np.ndarray, end: np.ndarray, length: int) -> np.ndarray:
    """Mean of the observed values in weeks [end - length, end) (NaN where none is observed)."""
    start = np.clip(end - length, 0, None)
    total = cumsum[end] - cumsum[start]
    count = cumcount[end] - cumcount[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _windows(values: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """``(len(ends), length)`` array of ``values[end - length : end]`` per end, NaN before the array."""
    padded = np.concatenate([np.full(length, np.nan), values])
    return padded[ends[:, None] + np.arange(length)[None, :]]


def _trimmed_mean(values: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """Mean of the observed values in weeks [end - length, end) without the largest one.

    With fewer than 4 observed weeks it is the plain mean (NaN where none is observed): one wholesale
    week then neither dominates the item's scale nor, with few weeks, empties it.
    """
    window = _windows(values, ends, length)
    known = np.isfinite(window)
    count = known.sum(axis=1)
    total = np.where(known, window, 0.0).sum(axis=1)
    largest = np.where(known, window, -np.inf).max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        trimmed = np.where(count >= 4, (total - largest) / np.maximum(count - 1, 1), total / count)
    return np.where(count > 0, trimmed, np.nan)


def _window_median(values: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """Median of the finite values in weeks [end - length, end) (NaN where none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmedian(_windows(values, ends, length), axis=1)


def _at(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[index], NaN where the index falls outside the array."""
    inside = (index >= 0) & (index < len(values))
    out = np.full(index.shape, np.nan)
    out[inside] = values[index[inside]]
    return out


def _weather_sensitivity(demand: np.ndarray, anomaly: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Slope of ``demand`` (weekly, e.g. log1p units) on the week's observed anomaly over the
    ``WEATHER_SENSITIVITY_WEEKS`` weeks before each end (weeks ``< end`` only; NaN with fewer than
    ``WEATHER_SENSITIVITY_MIN_WEEKS``)."""
    n = max(len(demand), len(anomaly), int(ends.max(initial=0)) + 1)
    y = np.full(n, np.nan)
    y[:len(demand)] = demand
    a = np.full(n, np.nan)
    a[:len(anomaly)] = anomaly
    both = np.isfinite(y) & np.isfinite(a)
    y0, a0 = np.where(both, y, 0.0), np.where(both, a, 0.0)

    def window(values: np.ndarray) -> np.ndarray:
        cum = np.concatenate([[0.0], np.cumsum(values)])
        return cum[ends] - cum[np.clip(ends - WEATHER_SENSITIVITY_WEEKS, 0, None)]

    count, sa, sy = window(both.astype(float)), window(a0), window(y0)
    saa, say = window(a0 * a0), window(a0 * y0)
    variance = count * saa - sa * sa
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = (count * say - sa * sy) / variance
    return np.where((count >= WEATHER_SENSITIVITY_MIN_WEEKS) & (variance > 1e-9), slope, np.nan)


def weather_rows(demand: np.ndarray, weather: Any, t: np.ndarray, step: np.ndarray, unique_t: np.ndarray,
                 back: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Weather features of rows with origin week ``t`` and step ``step`` (point in time).

    ``weather``: `seasonrec.features.weather.WeeklyWeather` by global week. ``weather_anomaly_origin``:
    the trailing 7-day anomaly on the day before week t; ``weather_anomaly_target``: the target week's
    mean anomaly as known then (observed, else decayed persistence: 0 = the normal after a few weeks);
    ``weather_sensitivity``: the item's slope of log1p(units) on the weekly observed anomaly over the
    weeks before t (a relative effect: -0.3 = 30% more per degree colder); ``weather_effect``:
    sensitivity x (target anomaly - mean anomaly of the scale's 13 weeks), the expected log change of
    the target against the scale; ``weather_level_4``/``_13``: `_weather_levels`.
    """
    last = len(weather.at_origin) - 1
    origin = np.clip(t, 0, last)
    target = weather.expected[origin, np.clip(step.astype(np.int64), 0, weather.expected.shape[1] - 1)]
    slopes = _weather_sensitivity(np.log1p(np.clip(demand, 0, None)), weather.observed, unique_t)  # per origin
    sensitivity = slopes[back]
    observed = np.concatenate([[0.0], np.cumsum(np.nan_to_num(weather.observed))])
    known = np.concatenate([[0.0], np.cumsum(np.isfinite(weather.observed).astype(float))])
    scale_anomaly = np.nan_to_num(_window_mean(observed, known, origin, SCALE_WEEKS))
    rows = {"weather_anomaly_origin": weather.at_origin[origin], "weather_anomaly_target": target,
            "weather_sensitivity": sensitivity, "weather_effect": sensitivity * (target - scale_anomaly)}
    rows.update(_weather_levels(demand, weather.observed, slopes, unique_t, back, target, scale))
    return rows


def _weather_levels(demand: np.ndarray, observed: np.ndarray, slopes: np.ndarray, unique_t: np.ndarray,
                    back: np.ndarray, target: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """``weather_level_<m>`` for m in ``WEATHER_LEVEL_WEEKS``: a weather-adjusted persistence forecast
    over the scale. The item's mean units of the m weeks before the origin with each week's weather
    effect divided out (exp(sensitivity x the week's observed anomaly)), times the target week's
    expected effect (exp(sensitivity x ``target``)); sensitivity unknown: no adjustment.

    Why: the effect is multiplicative and convex, so a cold spell lifts the recent mean far more
    than sensitivity x the mean anomaly says; the trees found the thaw after a spell from
    ``weather_effect`` alone only for some spells. On the synthetic cold-spell test (12 seeds, up to
    12 origins each, ``bench/weather_forecast_seeds.py``) the sensitive items' WAPE at horizons 1-2
    fell 25.6% with weather instead of 22.0%.
    ``demand``/``observed``: weekly units and observed anomaly by global week; ``slopes``: the
    item's weather sensitivity at each origin of ``unique_t`` (`_weather_sensitivity`); ``back``:
    each row's origin; ``target``/``scale``: per row.
    """
    slope = np.clip(np.nan_to_num(slopes), -MAX_WEATHER_SENSITIVITY, MAX_WEATHER_SENSITIVITY)
    anomaly = np.full(len(demand), np.nan)
    anomaly[:min(len(demand), len(observed))] = observed[:len(demand)]
    out = {}
    for weeks in WEATHER_LEVEL_WEEKS:
        units, weather = _windows(demand, unique_t, weeks), _windows(anomaly, unique_t, weeks)
        with warnings.catch_warnings(), np.errstate(invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: NaN level
            level = np.nanmean(units * np.exp(-slope[:, None] * np.nan_to_num(weather)), axis=1)
        out[f"weather_level_{weeks}"] = level[back] * np.exp(slope[back] * target) / scale
    return out


def pooled_features(pooled: np.ndarray, origin: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Seasonal indices of one pooled weekly series (a category's or the store's sums).

    ``pooled[w]``: units of global week ``w`` (NaN where unknown: before the data or at/after the
    final cutoff). ``origin``/``target``: week indexes per row; only weeks before ``origin`` are read
    (``target - 52 < origin`` because steps are below 52).
    Returns ``recent`` (4-week over 13-week mean before the origin), ``last_year_ramp`` (last
    year's target week over last year's 13 weeks before the origin) and ``last_year_index`` (last
    year's target week over the mean of the 52 weeks before the origin).
    """
    known = np.isfinite(pooled)
    cumsum = np.concatenate([[0.0], np.cumsum(np.where(known, pooled, 0.0))])
    cumcount = np.concatenate([[0.0], np.cumsum(known.astype(float))])

    def full_mean(end: np.ndarray, length: int) -> np.ndarray:
        # Only windows that lie wholly in the known data: a half-year mean is no annual level.
        mean = _window_mean(cumsum, cumcount, np.clip(end, 0, len(pooled)), length)
        complete = (end - length >= 0) & (cumcount[np.clip(end, 0, len(pooled))]
                                          - cumcount[np.clip(end - length, 0, len(pooled))] == length)
        return np.where(complete, mean, np.nan)

    last_year = _at(pooled, target - WEEKS)
    with np.errstate(invalid="ignore", divide="ignore"):
        recent = full_mean(origin, 4) / full_mean(origin, 13)
        ramp = last_year / full_mean(origin - WEEKS, 13)
        index = last_year / full_mean(origin, WEEKS)
    clean = {"recent": recent, "last_year_ramp": ramp, "last_year_index": index}
    return {k: np.where(np.isfinite(v), v, np.nan) for k, v in clean.items()}


def item_rows(first: int, quantity: np.ndarray, origins: np.ndarray, steps: int, calendar: np.ndarray,
              with_target: bool, orders: np.ndarray | None = None, scale_kind: str = "mean",
              weather: Any = None) -> dict[str, np.ndarray]:
    """Feature rows of one item for every origin in ``origins`` x step in ``range(steps)``.

    ``quantity[i]``: demand of global week ``first + i`` (the item's observed weeks); ``calendar[w]``:
    the ``CALENDAR_FEATURES`` of global week ``w`` (covering every target week). Features of origin
    ``t`` read ``quantity`` (and ``orders``) only at weeks ``< t``. ``orders[i]``: the number of
    orders (distinct invoices) holding the item in that week; without it the order features are NaN.
    With ``with_target``, rows whose target week is not observed are dropped and ``target``
    (units / scale) is set; otherwise ``target`` is NaN. ``scale_kind``: "mean" (of the last 13
    observed weeks) or "trimmed" (the same without its largest week, ``_trimmed_mean``). ``weather``:
    a `WeeklyWeather` adds ``WEATHER_FEATURES`` (``weather_rows``).
    Returns 1-d arrays: origin, step, target_week, scale, target and every item/calendar feature.
    """
    n_weeks = first + len(quantity)
    demand = np.full(max(n_weeks, int(origins.max(initial=0)) + 1), np.nan)
    demand[first:n_weeks] = quantity
    observed = np.isfinite(demand)
    cumsum = np.concatenate([[0.0], np.cumsum(np.where(observed, demand, 0.0))])
    cumcount = np.concatenate([[0.0], np.cumsum(observed.astype(float))])
    cumnonzero = np.concatenate([[0.0], np.cumsum((np.where(observed, demand, 0.0) > 0).astype(float))])

    t = np.repeat(origins.astype(np.int64), steps)
    step = np.tile(np.arange(steps, dtype=np.int64), len(origins))
    week = t + step
    if with_target:
        keep = week < n_weeks
        t, step, week = t[keep], step[keep], week[keep]
    history = t - first  # observed weeks before the origin (all weeks from the first sale are rows)
    unique_t, back = np.unique(t, return_inverse=True)
    if scale_kind == "trimmed":
        recent = _trimmed_mean(demand, unique_t, SCALE_WEEKS)[back]
    else:
        recent = _window_mean(cumsum, cumcount, t, SCALE_WEEKS)
    overall = np.where(history > 0, (cumsum[t] - cumsum[first]) / np.maximum(history, 1), np.nan)
    scale = np.where(recent > 0, recent, np.where(overall > 0, overall, 1.0))
    rows: dict[str, np.ndarray] = {"origin": t, "step": step.astype(np.float64), "target_week": week,
                                   "scale": scale}
    for k in LAGS:
        rows[f"lag_{k}"] = _at(demand, t - k) / scale
    for m in ROLLING:
        rows[f"mean_{m}"] = _window_mean(cumsum, cumcount, t, m) / scale
    season_week = week - WEEKS
    # steps < 52, so week - 52 < t; the guard states the no-leakage rule rather than relying on it
    rows["lag_season"] = np.where(season_week < t, _at(demand, season_week), np.nan) / scale
    # Last year's target week smoothed over weeks w-53..w-51 (one item-week is mostly noise), over the
    # scale and over last year's level before the origin (the item's own seasonal ramp).
    last_year = _window_mean(cumsum, cumcount, np.clip(week - WEEKS + 2, 0, t), 3)
    last_year_level = _window_mean(cumsum, cumcount, np.clip(t - WEEKS, 0, None), SCALE_WEEKS)
    rows["last_year_mean"] = np.where(week - WEEKS + 2 <= t, last_year, np.nan) / scale
    with np.errstate(invalid="ignore", divide="ignore"):
        ramp = last_year / last_year_level
    rows["last_year_ramp"] = np.where(np.isfinite(ramp) & (week - WEEKS + 2 <= t), ramp, np.nan)
    rows["nonzero_share"] = np.where(history > 0, (cumnonzero[t] - cumnonzero[first]) / np.maximum(history, 1),
                                     np.nan)
    rows["weeks_since_first"] = history.astype(np.float64)
    rows["log_scale"] = np.log(scale)
    rows.update(_order_features(demand, orders, first, n_weeks, t, unique_t, back, scale))
    if weather is not None:
        rows.update(weather_rows(demand, weather, t, step, unique_t, back, scale))
    calendar_rows = calendar[np.clip(week, 0, len(calendar) - 1)]
    for j, name in enumerate(S.CALENDAR_FEATURES):
        rows[name] = calendar_rows[:, j].astype(np.float64)
    rows["target"] = _at(demand, week) / scale if with_target else np.full(len(t), np.nan)
    return rows


def _order_features(demand: np.ndarray, orders: np.ndarray | None, first: int, n_weeks: int, t: np.ndarray,
                    unique_t: np.ndarray, back: np.ndarray, scale: np.ndarray) -> dict[str, np.ndarray]:
    """Order-count features at each row's origin ``t`` (weeks ``< t`` only).

    Units are lumpy (one wholesale order can be a quarter's demand) while the number of orders per
    week is a steadier signal: ``orders_rel_k`` = orders of the last week / mean of the last 4 and 8
    weeks over the 13-week mean (the order trend), ``log_orders_13`` (log1p of the 13-week order
    rate), ``log_units_per_order_13``, and ``order_demand_k`` = the k-week order rate x the median
    units per order over 13 weeks, over the scale (a demand level a single spike barely moves).
    """
    names = ORDER_FEATURES
    if orders is None:
        return {name: np.full(len(t), np.nan) for name in names}
    weekly = np.full(len(demand), np.nan)
    weekly[first:n_weeks] = orders
    observed = np.isfinite(weekly)
    cumsum = np.concatenate([[0.0], np.cumsum(np.where(observed, weekly, 0.0))])
    cumcount = np.concatenate([[0.0], np.cumsum(observed.astype(float))])
    units = np.concatenate([[0.0], np.cumsum(np.where(np.isfinite(demand), demand, 0.0))])
    rate_13 = _window_mean(cumsum, cumcount, t, SCALE_WEEKS)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_order = np.where(weekly > 0, demand / weekly, np.nan)
        median_per_order = _window_median(per_order, unique_t, SCALE_WEEKS)[back]
        start = np.clip(t - SCALE_WEEKS, 0, None)
        units_per_order = (units[t] - units[start]) / (cumsum[t] - cumsum[start])
        out = {"orders_rel_1": _at(weekly, t - 1) / rate_13,
               "orders_rel_4": _window_mean(cumsum, cumcount, t, 4) / rate_13,
               "orders_rel_8": _window_mean(cumsum, cumcount, t, 8) / rate_13,
               "log_orders_13": np.log1p(rate_13),
               "log_units_per_order_13": np.log(units_per_order),
               "order_demand_4": _window_mean(cumsum, cumcount, t, 4) * median_per_order / scale,
               "order_demand_13": rate_13 * median_per_order / scale}
    return {name: np.where(np.isfinite(out[name]), out[name], np.nan) for name in names}


def series_frame(series_id: str, first: int, quantity: np.ndarray, origin_sets: list[tuple[int, np.ndarray, bool]],
                 steps: int, calendar: np.ndarray, category_pool: np.ndarray, total_pool: np.ndarray,
                 category_code: int, log_price: float, orders: np.ndarray | None = None,
                 scale_kind: str = "mean", weather: Any = None) -> Any:
    """Feature rows (``_KEYS + FEATURES``) of one weekly series for each ``(window, origins, with_target)``.

    ``quantity``: the series from global week ``first``; ``category_pool``/``total_pool``: the pooled
    weekly sums it reads its pooled seasonal features from (an aggregate series reads its own sums);
    ``orders``: order counts aligned with ``quantity`` (None: order features NaN); ``scale_kind``: see
    ``item_rows``; ``weather``: adds ``WEATHER_FEATURES`` (``item_rows``).
    Returns None when no row is made.
    """
    import pandas as pd

    parts = []
    for window, origins, with_target in origin_sets:
        if len(origins) == 0:
            continue
        made = item_rows(first, quantity, origins, steps, calendar, with_target, orders, scale_kind, weather)
        if len(made["origin"]) == 0:
            continue
        for pool, values in (("category", category_pool), ("total", total_pool)):
            for name, column in pooled_features(values, made["origin"], made["target_week"]).items():
                made[f"{pool}_{name}"] = column
        frame = pd.DataFrame(made)
        frame["item_id"], frame["window"] = series_id, window
        frame["category_index"] = category_code
        frame["log_price"] = log_price
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)[_KEYS + feature_names(weather is not None)] if parts else None


def kept_training_origins(series_id: str, origins: np.ndarray, keep: float) -> np.ndarray:
    """Boolean mask over one series' training ``origins`` (week indexes): the share ``keep`` of them the
    training-row cap keeps, by a hash of (``series_id``, origin), so every run and worker keeps the same
    ones (all True for ``keep`` >= 1)."""
    if keep >= 1.0:
        return np.ones(len(origins), dtype=bool)
    return hashed_uniform(_KEEP_SALT, series_id, origins) < keep


def _origin_sets(first: int, n_weeks: int, origins_by_window: dict[int, int], final_cutoff: int,
                 min_history: int, origin_stride: int, max_history: int, series_id: str = "",
                 training_keep: float = 1.0) -> list[tuple[int, np.ndarray, bool]]:
    """Training origins (``window`` -1) and the inference origins a series with ``n_weeks`` from ``first`` gets.

    ``training_keep`` < 1 keeps that share of the training origins (`kept_training_origins`;
    `training_keep_fraction` sets it).
    """
    earliest = max(first + 2, final_cutoff - max_history)
    train_origins = np.arange(earliest + (-earliest) % origin_stride, first + n_weeks, origin_stride)
    if training_keep < 1.0:
        train_origins = train_origins[kept_training_origins(series_id, train_origins, training_keep)]
    infer = [(w, np.array([c]), False) for w, c in origins_by_window.items() if c - first >= min_history]
    return [(-1, train_origins, True), *infer]


def _empty_frame(weather: bool = False) -> Any:
    import pandas as pd

    return pd.DataFrame({c: pd.Series(dtype="object" if c == "item_id" else "float64")
                         for c in _KEYS + feature_names(weather)})


def training_keep_fraction(weeks_per_item: np.ndarray, steps: int, origin_stride: int, max_history: int,
                           max_rows: int) -> tuple[float, int]:
    """(share of training origins to keep, estimated training rows at the final origin without sampling).

    ``weeks_per_item``: each item's weeks of history before the final cutoff. An item with ``n`` weeks
    has an origin every ``origin_stride`` weeks over its last ``min(n - 2, max_history)`` weeks, and an
    origin ``d`` weeks before the cutoff has ``min(steps, d)`` targets before it. ``max_rows`` 0: no
    limit (share 1.0).
    """
    span = np.clip(np.asarray(weeks_per_item, dtype=np.float64) - 2, 0, max_history)
    ramp = np.minimum(span, steps)
    rows = (ramp * (ramp + 1) / 2 + (span - ramp) * steps) / origin_stride
    estimated = int(rows.sum())
    if max_rows <= 0 or estimated <= max_rows:
        return 1.0, estimated
    return max_rows / estimated, estimated


def feature_frame(group: Any, origins_by_window: dict[int, int], final_cutoff: int, steps: int,
                  calendar: np.ndarray, pooled: dict[str, np.ndarray], category_codes: dict[str, int],
                  min_history: int, origin_stride: int, max_history: int, weather: Any = None,
                  training_keep: float = 1.0) -> Any:
    """All feature rows of the items in one pandas group (columns ``_KEYS + FEATURES``, plus
    ``WEATHER_FEATURES`` with a ``weather`` `WeeklyWeather`).

    ``group``: item_id, category, price, week_index, quantity, orders (weeks before the final cutoff;
    orders may be null: order features NaN).
    Training rows (``window`` -1): origins every ``origin_stride`` weeks (aligned on the global week
    index), at least 2 weeks after the first sale and at most ``max_history`` weeks before the
    final cutoff, targets before ``final_cutoff``; ``training_keep`` < 1 keeps that hashed share of
    each item's training origins (`training_keep_fraction`). Inference rows (``window`` = the
    origin's window): items with at least ``min_history`` weeks before that origin.
    """
    import pandas as pd

    parts: list[pd.DataFrame] = []
    for item_id, rows in group.groupby("item_id", sort=True):
        rows = rows.sort_values("week_index")
        first = int(rows["week_index"].iloc[0])
        quantity = rows["quantity"].to_numpy(dtype=np.float64)
        orders = rows["orders"].to_numpy(dtype=np.float64) if "orders" in rows else None
        if orders is not None and not np.isfinite(orders).any():
            orders = None
        category = str(rows["category"].iloc[0])
        price = float(rows["price"].iloc[0]) if pd.notna(rows["price"].iloc[0]) else np.nan
        origin_sets = _origin_sets(first, len(quantity), origins_by_window, final_cutoff, min_history,
                                   origin_stride, max_history, str(item_id), training_keep)
        frame = series_frame(item_id, first, quantity, origin_sets, steps, calendar, pooled[category],
                             pooled[S.TOTAL_KEY], category_codes[category], np.log(price) if price > 0 else np.nan,
                             orders, weather=weather)
        if frame is not None:
            parts.append(frame)
    return pd.concat(parts, ignore_index=True) if parts else _empty_frame(weather is not None)


def aggregate_feature_frame(pooled: dict[str, np.ndarray], category_codes: dict[str, int],
                            origins_by_window: dict[int, int], final_cutoff: int, steps: int, calendar: np.ndarray,
                            min_history: int, max_history: int,
                            pooled_orders: dict[str, np.ndarray] | None = None) -> Any:
    """Feature rows of the category series and the total series (a ``level`` column says which).

    The same features as an item's: the aggregate's own lags, rolling means and last year's weeks,
    the calendar of the target week, and pooled seasonality (a category reads its own sums and the
    store's; the total reads the store's twice). ``category_index`` is the category's code, the
    total gets its own code; there is no price. The scale is the trimmed 13-week mean (without the
    largest week). ``pooled_orders``: the aggregates' weekly sums of
    item order counts (order lines), for the order features. Training origins every week (few series).
    """
    import pandas as pd

    parts = []
    for key, values in sorted(pooled.items()):
        known = np.flatnonzero(np.isfinite(values[:final_cutoff]))
        if len(known) == 0:
            continue
        first = int(known[0])
        quantity = np.nan_to_num(values[first:final_cutoff])
        orders = (np.nan_to_num(pooled_orders[key][first:final_cutoff])
                  if pooled_orders is not None and key in pooled_orders else None)
        is_total = key == S.TOTAL_KEY
        origin_sets = _origin_sets(first, len(quantity), origins_by_window, final_cutoff, min_history, 1,
                                   max_history)
        frame = series_frame(key, first, quantity, origin_sets, steps, calendar, values, pooled[S.TOTAL_KEY],
                             len(category_codes) if is_total else category_codes[key], np.nan, orders, "trimmed")
        if frame is not None:
            parts.append(frame.assign(level=S.TOTAL if is_total else S.CATEGORY))
    if not parts:
        return _empty_frame().assign(level=pd.Series(dtype="object"))
    return pd.concat(parts, ignore_index=True)


def _lgb_params(config: Any) -> dict[str, Any]:
    return {"learning_rate": config.gbm_learning_rate, "num_leaves": config.gbm_num_leaves,
            "min_data_in_leaf": config.gbm_min_data_in_leaf, "feature_fraction": 0.8, "bagging_fraction": 0.8,
            "bagging_freq": 1, "lambda_l2": 1.0, "seed": config.seed, "deterministic": True,
            "force_row_wise": True, "num_threads": config.gbm_threads, "verbosity": -1}


def fit_predict(train: Any, infer: Any, quantiles: list[float], config: Any,
                params: dict[str, Any] | None = None, weather: bool = False) -> np.ndarray:
    """Train the quantile and mean models on ``train`` and predict ``infer``.

    Both frames hold ``FEATURES`` and ``scale`` (``train`` also ``target`` = units / scale). Returns
    an ``(len(infer), 4)`` array in units: p10, p50, p90 (sorted per row) and mean, all >= 0. The
    quantile models read ``FEATURES``, the mean model ``MEAN_FEATURES``.
    ``params`` override the LightGBM parameters taken from ``config``; ``weather``: both also read
    ``WEATHER_FEATURES``.
    """
    import lightgbm as lgb

    base = {**_lgb_params(config), **(params or {})}
    models = [(feature_names(weather), {"objective": "quantile", "alpha": q}) for q in quantiles]
    models.append((mean_feature_names(weather), {"objective": config.gbm_mean_objective,
                                   "tweedie_variance_power": config.gbm_tweedie_power}))
    datasets: dict[tuple[str, ...], Any] = {}
    out = np.zeros((len(infer), 4))
    for j, (features, objective) in enumerate(models):
        key = tuple(features)
        if key not in datasets:  # one binned dataset per feature set
            datasets[key] = lgb.Dataset(train[features], label=train["target"].to_numpy(),
                                        weight=train["scale"].to_numpy(),
                                        categorical_feature=["category_index"], free_raw_data=False)
        booster = lgb.train({**base, **objective}, datasets[key], num_boost_round=config.gbm_rounds)
        out[:, j] = booster.predict(infer[features]) * infer["scale"].to_numpy()
    out = np.clip(out, 0.0, None)
    out[:, :3] = np.sort(out[:, :3], axis=1)
    return out


def pooled_sums(sums: Any, final_cutoff: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, int]]:
    """Weekly units and order lines per category and for the whole store, as arrays by week index.

    ``sums``: pandas category, week_index, quantity, orders (weeks before ``final_cutoff``).
    Returns (units by key, order lines by key, category code by category); keys are the categories
    and ``series.TOTAL_KEY``; arrays have ``final_cutoff`` weeks, NaN before a category's first sale
    (0 for its later weeks without rows) and, for the store, before the first category's.
    """
    pooled: dict[str, np.ndarray] = {}
    pooled_orders: dict[str, np.ndarray] = {}
    for category, rows in sums.groupby("category"):
        values = np.full(final_cutoff, np.nan)
        index = rows["week_index"].to_numpy(dtype=np.int64)
        values[index.min():] = 0.0  # weeks after the category's first sale without rows sold nothing
        order_values = values.copy()
        values[index] = rows["quantity"].to_numpy(dtype=np.float64)
        order_values[index] = rows["orders"].to_numpy(dtype=np.float64)
        pooled[str(category)] = values
        pooled_orders[str(category)] = order_values
    if not pooled:
        return {}, {}, {}
    category_codes = {c: i for i, c in enumerate(sorted(pooled))}
    pooled[S.TOTAL_KEY] = np.nansum(np.stack(list(pooled.values())), axis=0)
    # Weeks before the data start are unknown for the store too (nansum made them 0).
    pooled[S.TOTAL_KEY][: min(int(np.argmax(np.isfinite(v))) for k, v in pooled.items() if k != S.TOTAL_KEY)] = np.nan
    pooled_orders[S.TOTAL_KEY] = np.where(np.isfinite(pooled[S.TOTAL_KEY]),
                                          np.nansum(np.stack(list(pooled_orders.values())), axis=0), np.nan)
    return pooled, pooled_orders, category_codes


def gbm_forecasts(item_demand: Any, week_calendar: Any, origins: list[S.Origin], config: Any,
                  groups: int, weather: Any = None) -> tuple[Any, dict[str, Any]]:
    """Forecasts of the global LightGBM model at every origin (``FORECAST_SCHEMA`` rows, model "gbm").

    ``item_demand``: Spark frame item_id, category, price, week_start, quantity (and optionally
    orders: distinct invoices per item-week) with ``week_start`` before the final cutoff;
    ``week_calendar``: pandas weekly calendar (``series.weekly_calendar``) covering every forecast week;
    ``config``: ``ForecastConfig``; ``groups``: ``applyInPandas`` buckets; ``weather``: a
    `seasonrec.features.weather.WeeklyWeather` over the calendar's weeks (the item model then reads
    ``WEATHER_FEATURES``; None: no weather features). Returns (Spark frame, info dict: rows and
    seconds per origin).
    """
    import pandas as pd
    from pyspark.sql import functions as F

    from seasonrec.forecasting.baselines import FORECAST_SCHEMA
    from seasonrec.forecasting.deep import WeekIndex

    spark = item_demand.sparkSession
    final = origins[0]
    week_index = WeekIndex(min(week_calendar["week_start"]))
    calendar = week_calendar.sort_values("week_start")[S.CALENDAR_FEATURES].to_numpy(dtype=np.float64)
    final_cutoff = week_index.of(final.cutoff)
    steps = max(o.steps for o in origins)
    origins_by_window = {o.window: week_index.of(o.cutoff) for o in origins}

    # Pooled weekly sums (small: categories x weeks) computed in Spark, shipped to the workers.
    has_orders = "orders" in item_demand.columns
    orders_column = F.col("orders").cast("double") if has_orders else F.lit(None).cast("double")
    sums = (item_demand.groupBy("category", "week_start")
            .agg(F.sum("quantity").alias("quantity"), F.sum(orders_column).alias("orders")).toPandas())
    sums["week_index"] = [week_index.of(w) for w in sums["week_start"]]
    pooled, pooled_orders, category_codes = pooled_sums(sums, final_cutoff)
    if not category_codes:
        return spark.createDataFrame([], FORECAST_SCHEMA), {"windows_skipped": sorted(origins_by_window)}

    types = {"item_id": "string", "window": "int", "origin": "long", "target_week": "long", "category_index": "int"}
    schema = ", ".join(f"{c} {types.get(c, 'double')}" for c in _KEYS + feature_names(weather is not None))

    started = time.perf_counter()
    weeks_per_item = item_demand.groupBy("item_id").count().toPandas()["count"].to_numpy()
    keep, estimated = training_keep_fraction(weeks_per_item, steps, config.gbm_origin_stride,
                                             config.gbm_max_history_weeks, config.gbm_max_training_rows)
    if keep < 1.0:
        log.info("gbm: ~%d training rows > forecast.gbm_max_training_rows %d: keeping %.1f%% of the training "
                 "origins (hashed per item and origin)", estimated, config.gbm_max_training_rows, 100 * keep)

    def build(group: pd.DataFrame) -> pd.DataFrame:
        return feature_frame(group, origins_by_window, final_cutoff, steps, calendar, pooled, category_codes,
                             config.min_history_weeks, config.gbm_origin_stride, config.gbm_max_history_weeks,
                             weather, keep)

    rows = _item_feature_rows(item_demand, orders_column, week_index.start, groups, build, schema)
    info: dict[str, Any] = {"feature_rows": len(rows), "feature_seconds": round(time.perf_counter() - started, 2),
                            "estimated_training_rows": estimated, "training_origins_kept": round(keep, 4)}
    out, info["training_rows"], info["windows_skipped"] = _forecast_origins(
        rows.assign(level=S.ITEM), origins, origins_by_window, week_index, config, None, "items",
        weather is not None)
    if config.gbm_aggregate_levels:
        aggregate_rows = aggregate_feature_frame(pooled, category_codes, origins_by_window, final_cutoff, steps,
                                                 calendar, config.min_history_weeks, config.gbm_max_history_weeks,
                                                 pooled_orders if has_orders else None)
        params = {"num_leaves": config.gbm_aggregate_num_leaves,
                  "min_data_in_leaf": config.gbm_aggregate_min_data_in_leaf}
        aggregate_out, info["aggregate_training_rows"], info["aggregate_windows_skipped"] = _forecast_origins(
            aggregate_rows, origins, origins_by_window, week_index, config, params, "category/total series")
        out.extend(aggregate_out)
    info["seconds"] = round(time.perf_counter() - started, 2)
    if not out:
        return spark.createDataFrame([], FORECAST_SCHEMA), info
    return spark.createDataFrame(pd.concat(out, ignore_index=True), FORECAST_SCHEMA), info


def _item_feature_rows(item_demand: Any, orders_column: Any, first_week: Any, groups: int,
                       build: Callable[[Any], Any], schema: str) -> Any:
    """The item model's feature rows (pandas): ``build`` applied with ``applyInPandas`` to ``groups`` item
    buckets of ``item_demand`` (week_start as weeks since ``first_week``, unknown categories named, prices
    and quantities as doubles, ``orders_column`` as orders), in a fixed order."""
    from pyspark.sql import functions as F

    indexed = item_demand.select(
        "item_id", F.coalesce(F.col("category"), F.lit(S.UNKNOWN_CATEGORY)).alias("category"),
        F.col("price").cast("double").alias("price"),
        (F.datediff("week_start", F.lit(first_week)) / 7).cast("int").alias("week_index"),
        F.col("quantity").cast("double").alias("quantity"), orders_column.alias("orders"),
        F.pmod(F.xxhash64("item_id"), F.lit(groups)).alias("bucket"))
    rows = indexed.groupBy("bucket").applyInPandas(build, schema).toPandas()
    # Row order from Spark is not deterministic; LightGBM's result depends on it.
    return rows.sort_values(["window", "item_id", "origin", "step"], kind="mergesort").reset_index(drop=True)


def _forecast_origins(rows: Any, origins: list[S.Origin], origins_by_window: dict[int, int], week_index: Any,
                      config: Any, params: dict[str, Any] | None,
                      what: str, weather: bool = False) -> tuple[list[Any], dict[int, int], list[int]]:
    """One model per origin on ``rows`` (``feature_frame`` rows plus ``level``): forecast frames,
    training rows per window, windows skipped (too few training rows or nothing to forecast)."""
    import pandas as pd

    training = rows[rows["window"] == -1]
    out: list[pd.DataFrame] = []
    training_rows: dict[int, int] = {}
    skipped: list[int] = []
    for origin in origins:
        cutoff = origins_by_window[origin.window]
        train = training[training["target_week"] < cutoff]
        # Rows are built with the final origin's steps (its gap week + horizon); a backtest window forecasts
        # only its own ``steps`` weeks, else its last row would be the next window's week (or the partly
        # observed week of --as-of, whose actual is unknown), scored beside the other models' horizon.
        infer = rows[(rows["window"] == origin.window) & (rows["target_week"] < cutoff + origin.steps)]
        training_rows[origin.window] = len(train)
        if len(train) < _MIN_TRAINING_ROWS or infer.empty:
            skipped.append(origin.window)
            continue
        fit_started = time.perf_counter()
        values = fit_predict(train, infer, list(config.quantiles), config, params, weather)
        log.info("gbm (%s): origin %s, %d training rows, %.1fs", what, origin.cutoff, len(train),
                 time.perf_counter() - fit_started)
        weeks = [week_index.week(int(w)) for w in infer["target_week"]]
        frame = pd.DataFrame({"level": infer["level"].to_numpy(), "series_id": infer["item_id"].to_numpy(),
                              "window": origin.window, "week_start": weeks, "model": "gbm", "p10": values[:, 0],
                              "p50": values[:, 1], "p90": values[:, 2], "mean": values[:, 3]})
        out.append(frame[frame["week_start"] >= origin.first_output])
    return out, training_rows, skipped
