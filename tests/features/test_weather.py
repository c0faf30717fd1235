"""Weather context: normals, anomalies and spells, the file source with quarantine, the point-in-time
accessor (leakage), and the weather the synthetic generator plants."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seasonrec import tables
from seasonrec.config import ConfigError, SyntheticConfig, WeatherConfig
from seasonrec.data import synthetic
from seasonrec.features import weather as W
from support import REPO, make_config

HADCET = REPO.parent / "shared" / "data" / "weather" / "hadcet_daily_1991_2021.csv"
HADCET = HADCET if HADCET.exists() else Path("/work/shared/data/weather/hadcet_daily_1991_2021.csv")
SYNTHETIC = SyntheticConfig(seed=7, countries=["GB", "AU"], start=dt.date(2009, 12, 1), end=dt.date(2011, 12, 31))


@pytest.fixture(scope="module")
def planted_weather() -> pd.DataFrame:
    return synthetic.weather_frame(SYNTHETIC)


@pytest.fixture(scope="module")
def context(planted_weather: pd.DataFrame) -> pd.DataFrame:
    return W.context_frame(planted_weather[["date", "region", "temp_mean_c"]], WeatherConfig(), "synthetic",
                           ["US"], (dt.date(2011, 1, 1), dt.date(2011, 1, 31)))


def test_normal_anomaly_and_spells_recover_the_planted_weather(planted_weather, context) -> None:
    config = WeatherConfig()
    assert set(context.columns) == set(tables.spec(tables.CONTEXT_DAILY).column_names)
    assert not context.duplicated(["date", "region"]).any()
    for country in ("GB", "AU"):
        rows = context[context["region"] == synthetic.weather_region(country)].reset_index(drop=True)
        truth = planted_weather[planted_weather["country"] == country].reset_index(drop=True)
        doy = pd.to_datetime(rows["date"]).dt.dayofyear.to_numpy()
        analytic = synthetic.weather_normal(doy, country in synthetic.SOUTHERN)
        assert np.abs(rows["temp_normal_c"] - analytic).mean() < 0.8, country  # 11 years, smoothed
        assert np.corrcoef(rows["anomaly_c"], truth["anomaly_c"])[0, 1] > 0.95
    # Southern hemisphere: July is the cold month.
    au = context[context["region"] == "synthetic_au"]
    assert au[pd.to_datetime(au["date"]).dt.month == 7]["temp_normal_c"].mean() < 5
    trailing = context["anomaly_7d_c"].fillna(0.0)
    assert (context["cold_spell"] == (trailing <= config.cold_spell_c)).all()
    assert (context["warm_spell"] == (trailing >= config.warm_spell_c)).all()
    assert 0.02 < context["cold_spell"].mean() < 0.4 and context["warm_spell"].any()
    unknown = context[context["region"] == "US"]
    assert len(unknown) == 31 and not unknown["weather_known"].any() and unknown["temp_mean_c"].isna().all()


@pytest.mark.skipif(not HADCET.exists(), reason="shared HadCET file not present")
def test_hadcet_normals_find_the_cold_december_2010() -> None:
    observations = pd.read_csv(HADCET)
    observations["date"] = pd.to_datetime(observations["date"]).dt.date
    context = W.context_frame(observations, WeatherConfig(), "file")
    months = pd.to_datetime(context["date"])
    december = {year: context[(months.dt.year == year) & (months.dt.month == 12)]
                for year in (2010, 2011)}
    assert december[2010]["temp_mean_c"].mean() == pytest.approx(-0.7, abs=0.1)  # the README's figure
    assert december[2010]["anomaly_c"].mean() < -5 and december[2010]["cold_spell"].mean() > 0.6
    assert 0 < december[2011]["anomaly_c"].mean() < 2
    january = context[(months.dt.month == 1) & (months.dt.day == 15)]["temp_normal_c"].iloc[0]
    july = context[(months.dt.month == 7) & (months.dt.day == 15)]["temp_normal_c"].iloc[0]
    assert 3 < january < 6 and 15 < july < 19


def test_weather_as_of_never_reads_observations_after_the_decision_date(context) -> None:
    config = WeatherConfig()
    region = "synthetic_gb"
    decision = dt.date(2010, 12, 12)
    targets = [decision + dt.timedelta(days=k) for k in range(-10, 22)]
    honest = W.weather_as_of(context, decision, targets, region, config)
    # Replace every value after the decision date (realised weather and normals) by something else.
    future = pd.to_datetime(context["date"]) > pd.Timestamp(decision)
    tampered = context.copy()
    for column in ("temp_mean_c", "temp_normal_c", "anomaly_c", "anomaly_7d_c"):
        tampered.loc[future, column] = tampered.loc[future, column] + 15.0
    pd.testing.assert_frame_equal(honest, W.weather_as_of(tampered, decision, targets, region, config))
    after = honest[pd.to_datetime(honest["date"]) > pd.Timestamp(decision)]
    assert not after["observed"].any() and honest["observed"].sum() == 11
    # Decayed persistence: the same sign as the last observation, shrinking towards the normal.
    last = context[(context["region"] == region) & (context["date"] == decision)]["anomaly_c"].iloc[0]
    history = context[(context["region"] == region) & ~future]
    phi = W.persistence(history["anomaly_c"].to_numpy()[-W.PERSISTENCE_DAYS:])
    assert abs(phi - synthetic.WEATHER_AR) < 0.03  # the planted AR(1) persistence, estimated before d
    days_ahead = np.arange(1, len(after) + 1)
    np.testing.assert_allclose(after["anomaly_c"].to_numpy(), last * phi ** days_ahead)
    realised = context[(context["region"] == region) & future].set_index("date")["anomaly_c"]
    assert not np.allclose(after["anomaly_c"].to_numpy(), realised.reindex(after["date"]).to_numpy())
    # A country without weather: normals (anomaly 0), flagged, never an error.
    unknown = W.weather_as_of(context, decision, targets, "US", config)
    assert not unknown["weather_known"].any() and (unknown["anomaly_c"] == 0).all()


def test_weekly_forecast_weather_is_point_in_time(context) -> None:
    config = WeatherConfig()
    weeks = [dt.date(2010, 1, 4) + dt.timedelta(weeks=i) for i in range(80)]
    weights = {"synthetic_gb": 0.7, "synthetic_au": 0.3}
    honest = W.weekly_weather(context, weights, weeks, 4, config)
    t = 48
    future = pd.to_datetime(context["date"]) >= pd.Timestamp(weeks[t])
    tampered = context.copy()
    tampered.loc[future, "anomaly_c"] -= 10.0
    leaked = W.weekly_weather(tampered, weights, weeks, 4, config)
    # Everything known at week t's origin is unchanged; the observed history after it did change.
    np.testing.assert_allclose(honest.expected[: t + 1], leaked.expected[: t + 1])
    np.testing.assert_allclose(honest.at_origin[: t + 1], leaked.at_origin[: t + 1])
    np.testing.assert_allclose(honest.observed[:t], leaked.observed[:t])
    assert not np.allclose(honest.observed[t:], leaked.observed[t:])
    none = W.weekly_weather(None, weights, weeks, 4, config)
    assert (none.expected == 0).all() and (none.at_origin == 0).all()


def test_region_map_and_config_errors() -> None:
    config = make_config(Path("/tmp/unused"), "weather.source=file",
                         "weather.regions={'United Kingdom': central_england}")
    assert W.region_map(config) == {"GB": "central_england"}
    assert W.region_weights({"GB": 80.0, "FR": 20.0}, W.region_map(config)) == {"central_england": 1.0}
    assert W.region_weights({"FR": 20.0}, W.region_map(config)) == {}
    with pytest.raises(ConfigError, match=r"weather\.source.*'none', 'file' or 'synthetic'"):
        make_config(Path("/tmp/unused"), "weather.source=satellite")
    with pytest.raises(ConfigError, match="weather.colour"):
        make_config(Path("/tmp/unused"), "weather.colour=blue")


def test_file_source_writes_context_and_quarantines_bad_rows(job_context, tmp_path: Path) -> None:
    lines = ["date,region,temp_mean_c"]
    day = dt.date(2010, 1, 1)
    for k in range(400):
        lines.append(f"{day + dt.timedelta(days=k)},central_england,{5 + 6 * np.sin(k / 58):.1f}")
    bad = ["2010-13-45,central_england,4.0", "2011-02-10,central_england,75.0", "2011-02-11,central_england,abc",
           "2011-02-12,,3.0", "2010-03-01,central_england,9.9"]  # the last repeats 2010-03-01
    path = tmp_path / "weather.csv"
    path.write_text("\n".join(lines + bad) + "\n", encoding="utf-8")
    ctx = job_context("features", "weather.source=file", f"weather.path={path}",
                      "weather.regions={GB: central_england}", "features.countries=[GB, FR]")
    summary = W.build_context(ctx, (dt.date(2010, 1, 1), dt.date(2010, 12, 31)))
    assert summary["quarantined"] == 6 and summary["countries_without_weather"] == ["FR"]
    context = ctx.lake.read(tables.CONTEXT_DAILY).toPandas()
    england = context[context["region"] == "central_england"]
    assert len(england) == 400 and not england.duplicated("date").any()
    missing = england[england["date"] == dt.date(2010, 3, 1)]  # both copies quarantined: the day is unknown
    assert not missing["weather_known"].iloc[0] and np.isnan(missing["temp_mean_c"].iloc[0])
    assert england["temp_mean_c"].max() < 60
    france = context[context["region"] == "FR"]
    assert len(france) == 365 and not france["weather_known"].any()
    reasons = ctx.lake.read(tables.QUARANTINE).groupBy("reason").count().toPandas()
    assert dict(zip(reasons["reason"], reasons["count"], strict=True)) == {
        "unparseable_date": 1, "temperature_out_of_range": 1, "non_numeric_temperature": 1,
        "missing_region": 1, "duplicate_date_region": 2}
    W.build_context(ctx, (dt.date(2010, 1, 1), dt.date(2010, 12, 31)))  # a re-run adds nothing
    assert ctx.lake.read(tables.QUARANTINE).count() == 6
    none = job_context("features", "weather.source=none", f"paths.lake_root={tmp_path}/lake_without_weather")
    assert W.build_context(none, (dt.date(2010, 1, 1), dt.date(2010, 1, 2)))["written"] is False
    assert not none.lake.exists(tables.CONTEXT_DAILY)


def test_synthetic_generator_plants_cold_sensitive_items(spark) -> None:
    config = SyntheticConfig(seed=7, n_users=120, n_items=80, n_events=6000, countries=["GB", "FR"],
                             start=dt.date(2010, 1, 1), end=dt.date(2011, 12, 31))
    transactions, truth = synthetic.events(spark, config)
    planted = truth.where("cold_sensitivity > 0").toPandas()
    assert len(planted) == synthetic.COLD_SENSITIVE_ITEMS
    assert set(planted["category"]) == {synthetic.COLD_SENSITIVE_CATEGORY}
    purchases = transactions.where(~transactions.invoice.startswith("C"))
    assert purchases.count() == config.n_events  # the extra purchases are part of n_events
    sales = purchases.where(purchases.item.isin(*planted["item_raw"])).toPandas()
    sales["date"] = pd.to_datetime(sales["timestamp"]).dt.date
    sales["units"] = sales["quantity"].astype(float)
    sales["extra"] = sales["invoice"].astype(int) >= synthetic.COLD_SENSITIVE_INVOICE_BASE
    weather = synthetic.trailing_anomaly(synthetic.weather_frame(config))
    weather = weather[(weather["date"] >= config.start) & (weather["date"] <= config.end)]
    gb_weather = weather[weather["country"] == "GB"][["date", "anomaly_trailing"]]

    def cold_over_warm(rows: pd.DataFrame) -> float:
        daily = (rows[rows["country"] == "GB"].groupby("date")["units"].sum().rename("units").reset_index()
                 .merge(gb_weather, on="date", how="right").fillna({"units": 0.0}))
        cold = daily[daily["anomaly_trailing"] <= -2]["units"].mean()
        return cold / daily[daily["anomaly_trailing"] >= 2]["units"].mean()

    assert cold_over_warm(sales[sales["extra"]]) > 2.0  # planted: about exp(0.3 x 4 degC) = 3.3; unplanted: 1
    assert cold_over_warm(sales) > 1.15  # diluted by the items' ordinary, weather-blind purchases


def _planted_sales(spark, context: pd.DataFrame, day: dt.date, tamper: bool) -> object:
    """silver-like rows: item A sells more in GB weeks colder than normal, B and Z are flat; ``tamper`` adds a
    burst of A and B on and after ``day`` (what the features must never see)."""
    gb = context[context["region"] == "synthetic_gb"].set_index("date")["anomaly_c"]
    rows = []
    start = dt.date(2010, 1, 4)
    for week in range(60):
        monday = start + dt.timedelta(weeks=week)
        cold = -float(np.nanmean([gb.get(monday + dt.timedelta(days=d), np.nan) for d in range(7)]))
        rows += [(f"g{week}-{n}", "A", monday, "GB") for n in range(int(max(0.0, 4 + 2 * cold)))]
        rows += [(f"b{week}-{n}", "B", monday, "GB") for n in range(4)]
        rows += [(f"x{week}-{n}", "C", monday, "AU") for n in range(3)]
        # A big flat seller outside the scored items: shares then move with A's demand, not B's.
        rows += [(f"z{week}-{n}", "Z", monday, "GB") for n in range(150)]
    if tamper:
        rows += [(f"late{n}", item, day + dt.timedelta(days=n % 20), "GB") for n in range(300) for item in "AB"]
    frame = pd.DataFrame(rows, columns=["invoice", "item_id", "date", "country"])
    frame["user_id"] = None
    frame["ts"] = pd.to_datetime(frame["date"])
    frame["week_start"] = [d - dt.timedelta(days=d.weekday()) for d in frame["date"]]
    return spark.createDataFrame(frame, "invoice string, item_id string, date date, country string, user_id string, "
                                        "ts timestamp, week_start date")


def test_ranker_weather_features_never_read_weather_or_sales_on_or_after_the_date(spark, context) -> None:
    """The leakage pattern of the item signals (scramble everything from the decision date on, nothing
    moves) applied to the ranker's weather features: user weather, item sensitivity, interaction."""
    from seasonrec.features.item_weather import weather_history
    from seasonrec.training.rerank import WEATHER_FEATURE_NAMES, PoolInputs, weather_features

    config = WeatherConfig()
    items = np.array(["A", "B", "C", "D"])
    regions = {"GB": "synthetic_gb", "AU": "synthetic_au", "US": "synthetic_us"}  # US: no weather
    day = dt.date(2011, 1, 17)
    before = dt.date(2011, 3, 1)

    def features(context: pd.DataFrame, tamper: bool, anomaly: float | None = None) -> np.ndarray:
        history = weather_history(_planted_sales(spark, context, day, tamper), items, before, context, regions,
                                  config)
        weather = history.at(day)
        countries = ["GB", "AU", "US", None]
        pool = PoolInputs(history=np.zeros((4, 1), np.int64), bought=(np.zeros((4, 1)),) * 3,
                          week_kernel=np.zeros((4, 52)), copurchase=None, copurchase_affinity=None, content=None,
                          item_signals={}, weather=weather.user_weather(countries, [None, None, None, anomaly]),
                          weather_sensitivity=weather.sensitivity)
        return weather_features(pool, np.tile(np.arange(4), (4, 1)))

    honest = features(context, tamper=False)
    assert honest.shape == (4, 4, len(WEATHER_FEATURE_NAMES))
    sensitivity = honest[0, :, WEATHER_FEATURE_NAMES.index("item_weather_sensitivity")]
    assert sensitivity[0] < -0.1 and abs(sensitivity[1]) < 0.05 and sensitivity[3] == 0  # A cold-loving; D unsold
    gb = context[(context["region"] == "synthetic_gb") & (context["date"] == day - dt.timedelta(days=1))]
    np.testing.assert_allclose(honest[0, 0, 0], gb["anomaly_7d_c"].iloc[0], rtol=1e-5)
    assert (honest[2:, :, :4] == 0).all()  # a country without weather, and no country: zeros, known 0
    # Weather and sales from the decision date on are rewritten: no weather feature moves.
    future = pd.to_datetime(context["date"]) >= pd.Timestamp(day)
    tampered = context.copy()
    for column in ("temp_mean_c", "anomaly_c", "anomaly_7d_c"):
        tampered.loc[future, column] = tampered.loc[future, column] - 12.0
    tampered.loc[future, "cold_spell"] = True
    np.testing.assert_array_equal(honest, features(tampered, tamper=True))
    # ... while the weather of the day before the date does reach them (the test can fail).
    yesterday = pd.to_datetime(context["date"]) == pd.Timestamp(day - dt.timedelta(days=1))
    moved = context.copy()
    moved.loc[yesterday, "anomaly_c"] -= 5.0
    assert not np.array_equal(honest, features(moved, tamper=False))
    # A supplied anomaly (a served request's anomaly_7d_c) replaces the country's, spells from the thresholds.
    supplied = features(context, tamper=False, anomaly=-3.0)
    assert supplied[3, 0, :4].tolist() == [-3.0, 1.0, 0.0, 1.0]
    np.testing.assert_allclose(supplied[3, :, 5], sensitivity * -3.0, rtol=1e-6)
