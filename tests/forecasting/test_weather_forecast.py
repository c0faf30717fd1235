"""Weather in the global LightGBM forecaster: cold-sensitive items forecast from origins inside cold
spells (the synthetic generator's weather and sensitivity), with vs without weather features.

Issue #19's bar: WAPE of the weather-sensitive items at horizons 1-2 weeks improves by >= 10%.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seasonrec.config import SyntheticConfig, WeatherConfig
from seasonrec.data import synthetic
from seasonrec.features import weather as W
from seasonrec.forecasting import gbm
from seasonrec.forecasting import series as S
from support import make_config

START = dt.date(2008, 9, 1)  # a Monday
END = dt.date(2011, 12, 25)
SENSITIVE, STEADY = 8, 10
STEPS = 3
BAR = 0.9  # WAPE with weather <= 90% of WAPE without
# Cold-spell origins scored: up to 12 in the last 150 weeks. With 6 in the last 100, a seed's figure
# rested on ~100 item-weeks and followed the luck of its spells (2 of 5 seeds cleared the bar).
ORIGINS, SPAN_WEEKS = 12, 150


def planted_demand(seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(weekly item demand, context_daily rows): SENSITIVE items whose rate follows the generator's
    cold multiplier of the GB trailing anomaly (averaged over the week) and STEADY items that ignore it."""
    config = SyntheticConfig(seed=seed, countries=["GB"], start=START, end=END)
    weather = synthetic.trailing_anomaly(synthetic.weather_frame(config))
    weather["week_start"] = [d - dt.timedelta(days=d.weekday()) for d in weather["date"]]
    weekly_multiplier = (weather.assign(m=synthetic.cold_multiplier(weather["anomaly_trailing"].to_numpy()))
                         .groupby("week_start")["m"].mean())
    weeks = [START + dt.timedelta(weeks=i) for i in range((END - START).days // 7 + 1)]
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(SENSITIVE + STEADY):
        sensitive = i < SENSITIVE
        base = rng.uniform(8, 30)
        for week in weeks:
            rate = base * (weekly_multiplier[week] if sensitive else 1.0)
            rows.append((f"{'W' if sensitive else 'T'}{i:02d}", "warmers" if sensitive else "home", 3.0, week,
                         float(rng.poisson(rate))))
    demand = pd.DataFrame(rows, columns=["item_id", "category", "price", "week_start", "quantity"])
    demand["orders"] = demand["quantity"]
    context = W.context_frame(weather[["date", "region", "temp_mean_c"]], WeatherConfig(), "synthetic")
    return demand, context


def cold_spell_origins(weekly: W.WeeklyWeather, week_starts: list[dt.date], n: int = ORIGINS,
                      span: int = SPAN_WEEKS) -> list[S.Origin]:
    """The latest ``n`` Mondays of the last ``span`` weeks whose previous 7 days were a cold spell (trailing
    anomaly <= weather.cold_spell_c), at least 3 weeks apart; window 0 is the latest."""
    threshold = WeatherConfig().cold_spell_c
    picked: list[int] = []
    for t in range(len(week_starts) - STEPS - 1, len(week_starts) - span, -1):
        if weekly.at_origin[t] <= threshold and all(abs(t - p) >= 3 for p in picked):
            picked.append(t)
        if len(picked) == n:
            break
    return [S.Origin(k, week_starts[t], STEPS, week_starts[t]) for k, t in enumerate(picked)]


@pytest.fixture(scope="module")
def forecasts(spark, tmp_path_factory) -> dict:
    demand, context = planted_demand()
    week_starts = sorted(set(demand["week_start"]))
    weekly = W.weekly_weather(context, {"synthetic_gb": 1.0}, week_starts, STEPS, WeatherConfig())
    origins = cold_spell_origins(weekly, week_starts)
    config = make_config(Path(tmp_path_factory.mktemp("weather_gbm")), "forecast.gbm_aggregate_levels=false",
                         "forecast.gbm_rounds=100", "forecast.gbm_threads=2").forecast
    calendar = S.weekly_calendar(spark, week_starts[0], week_starts[-1], None).toPandas()
    known = spark.createDataFrame(demand[demand["week_start"] < origins[0].cutoff])
    out = {}
    for name, weather in (("without", None), ("with", weekly)):
        frame, info = gbm.gbm_forecasts(known, calendar, origins, config, 2, weather)
        out[name] = frame.toPandas()
        assert not info["windows_skipped"], info
    return {"demand": demand, "origins": origins, "weekly": weekly, "week_starts": week_starts, **out}


def wape_h12(forecast: pd.DataFrame, demand: pd.DataFrame, origins: list[S.Origin], prefix: str) -> float:
    rows = []
    for origin in origins:
        weeks = origin.weeks[:2]  # horizons 1 and 2 weeks
        part = forecast[(forecast["window"] == origin.window) & forecast["week_start"].isin(weeks)
                        & forecast["series_id"].str.startswith(prefix)]
        rows.append(part)
    joined = pd.concat(rows).merge(demand.rename(columns={"item_id": "series_id"}), on=["series_id", "week_start"])
    return float(np.abs(joined["p50"] - joined["quantity"]).sum() / joined["quantity"].sum())


def test_origins_are_inside_cold_spells(forecasts) -> None:
    weekly, week_starts = forecasts["weekly"], forecasts["week_starts"]
    assert len(forecasts["origins"]) >= 3
    for origin in forecasts["origins"]:
        assert weekly.at_origin[week_starts.index(origin.cutoff)] <= WeatherConfig().cold_spell_c


def test_weather_features_improve_cold_spell_forecasts_of_sensitive_items(forecasts) -> None:
    demand, origins = forecasts["demand"], forecasts["origins"]
    without = wape_h12(forecasts["without"], demand, origins, "W")
    with_weather = wape_h12(forecasts["with"], demand, origins, "W")
    print(f"sensitive items, horizons 1-2, cold-spell origins: WAPE without {without:.3f}, with {with_weather:.3f}")
    assert with_weather <= BAR * without, (without, with_weather)
    # Items that ignore the weather do not get worse by more than noise.
    steady = [wape_h12(forecasts[k], demand, origins, "T") for k in ("without", "with")]
    assert steady[1] <= 1.1 * steady[0], steady


def test_the_forecast_reads_no_realised_weather_after_its_origin(forecasts, spark, tmp_path) -> None:
    """Leakage: weather observed after the final origin, changed, changes nothing in its features."""
    demand, origins, weekly = forecasts["demand"], forecasts["origins"], forecasts["weekly"]
    week_starts = forecasts["week_starts"]
    t = week_starts.index(origins[0].cutoff)
    tampered = W.WeeklyWeather(weekly.observed.copy(), weekly.at_origin.copy(), weekly.expected.copy())
    tampered.observed[t:] += 20.0  # the realised future
    tampered.at_origin[t + 1:] += 20.0
    tampered.expected[t + 1:] += 20.0
    item = demand[demand["item_id"] == "W00"]
    quantity = item[item["week_start"] < origins[0].cutoff]["quantity"].to_numpy()
    calendar = np.zeros((len(week_starts) + STEPS, len(S.CALENDAR_FEATURES)))
    rows = [gbm.item_rows(0, quantity, np.array([t]), STEPS, calendar, False, weather=w) for w in (weekly, tampered)]
    for name in gbm.WEATHER_FEATURES:
        np.testing.assert_array_equal(rows[0][name], rows[1][name])
    assert np.isfinite(rows[0]["weather_sensitivity"]).all() and (rows[0]["weather_sensitivity"] < 0).all()
