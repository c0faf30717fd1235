"""Weather as seasonal context: the `context_daily` table and its point-in-time accessor.

`context_daily` has one row per (date, region): ``temp_mean_c`` (``precipitation_mm`` and
``sunshine_h`` where the source has them, else null), the day-of-year climate normal
``temp_normal_c``, ``anomaly_c`` = temperature - normal, ``anomaly_7d_c`` (trailing mean of the
anomaly over ``weather.rolling_days`` = 7 days, the day included, at least half of them observed),
``cold_spell`` (anomaly_7d_c <= ``weather.cold_spell_c`` = -2 degC), ``warm_spell`` (anomaly_7d_c >=
``weather.warm_spell_c`` = +2 degC), ``weather_known`` and ``source``. A country of
``features.countries`` without a weather region gets rows with region = its code, null weather and
weather_known = false (never an error).

Climate normal: the mean temperature of each day of the year (29 February folded into 28 February)
over ``weather.normal_first_year`` .. ``normal_last_year`` (1991-2020, the WMO standard period)
where the source has at least one full year there, else over every year it has; then a circular
moving average over ``weather.normal_smoothing_days`` (31) days. The normal is a fixed reference
climatology (with HadCET, 1991-2020 includes years after 2011: each year weighs 1/30 in a smoothed
day-of-year mean; the accessor reads it only from rows up to the decision date).

Point in time (`weather_as_of`): a feature for a decision at date d reads only rows dated <= d. For
a later date it never uses the realised value: the anomaly is **decayed persistence**, the last
observed daily anomaly x phi^(days after it), phi = the lag-1 autocorrelation of the region's daily
anomalies over the `PERSISTENCE_DAYS` before d (clipped to 0 .. `MAX_PERSISTENCE`); the temperature is
the normal + that anomaly. With phi ~ 0.8 (HadCET) a cold snap keeps ~20% of its anomaly a week
later and ~4% after two weeks: the features fall back to the normal (anomaly 0) within the horizon.

Sources (``weather.source``): ``file`` (CSV/Parquet with date, region, temp_mean_c and optional
precipitation_mm, sunshine_h, e.g. HadCET; ``weather.regions`` maps countries to regions; on a
cluster any table with those columns exported to CSV/Parquet), ``synthetic`` (the generator's
weather, one region per ``data.synthetic.countries`` code), ``none`` (no table; forecasting weather
features are then the normal: anomaly 0). Bad rows of a file go to ``quarantine``
(`seasonrec.data.validation.WEATHER_RULES`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.config import SeasonrecConfig, WeatherConfig
from seasonrec.data.ingest import as_quarantine

DAYS_IN_YEAR = 365  # day-of-year bins of the normal (29 February shares 28 February's)
PERSISTENCE_DAYS = 3650  # daily anomalies before d that phi is estimated on
MAX_PERSISTENCE = 0.98
QUARANTINE_SOURCE = "weather_file"
OPTIONAL_VARIABLES = ("precipitation_mm", "sunshine_h")
CONTEXT_COLUMNS = tables.spec(tables.CONTEXT_DAILY).column_names


def fold_day_of_year(dates: Sequence[dt.date] | pd.Series) -> np.ndarray:
    """Day of year 1..365 of ``dates``; in leap years 29 February maps to 59 (28 February) and later days
    move back by one, so a calendar day has the same bin every year."""
    stamps = pd.to_datetime(pd.Series(list(dates)))
    doy = stamps.dt.dayofyear.to_numpy()
    leap_after_feb = stamps.dt.is_leap_year.to_numpy() & (stamps.dt.month.to_numpy() > 2)
    return np.where(leap_after_feb, doy - 1, np.minimum(doy, DAYS_IN_YEAR)).astype(int)


def climate_normal(dates: Sequence[dt.date] | pd.Series, temps: np.ndarray, config: WeatherConfig) -> np.ndarray:
    """The smoothed day-of-year normal: array of 365 values (index doy - 1), NaN where no data.

    ``dates``/``temps``: one region's observations. Years ``normal_first_year .. normal_last_year``
    if at least one full year of them is observed, else every year (the longest available span).
    """
    dates = pd.Series(list(dates))
    years = pd.to_datetime(dates).dt.year.to_numpy()
    temps = np.asarray(temps, dtype=float)
    inside = (years >= config.normal_first_year) & (years <= config.normal_last_year) & np.isfinite(temps)
    use = inside if inside.sum() >= DAYS_IN_YEAR else np.isfinite(temps)
    doy = fold_day_of_year(dates[use]) - 1
    sums = np.bincount(doy, weights=temps[use], minlength=DAYS_IN_YEAR)
    counts = np.bincount(doy, minlength=DAYS_IN_YEAR).astype(float)
    with np.errstate(invalid="ignore"):
        daily = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    half = config.normal_smoothing_days // 2
    known = np.isfinite(daily)
    padded = np.concatenate([daily[-half:], daily, daily[:half]]) if half else daily
    padded_known = np.concatenate([known[-half:], known, known[:half]]) if half else known
    kernel = np.ones(2 * half + 1)
    total = np.convolve(np.where(padded_known, padded, 0.0), kernel, mode="valid")
    n = np.convolve(padded_known.astype(float), kernel, mode="valid")
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def context_frame(observations: pd.DataFrame, config: WeatherConfig, source: str,
                  unknown_countries: Sequence[str] = (), unknown_range: tuple[dt.date, dt.date] | None = None
                  ) -> pd.DataFrame:
    """`context_daily` rows (pandas, the table's columns) from validated observations.

    ``observations``: date (datetime.date), region, temp_mean_c and optionally precipitation_mm,
    sunshine_h; at most one row per date and region. Every region gets every day from its first to
    its last observation (missing days: null weather, weather_known false). ``unknown_countries``
    (codes without a region) get rows over ``unknown_range`` with region = the code, null weather and
    weather_known false.
    """
    parts = []
    for region, rows in observations.groupby("region", sort=True):
        rows = rows.assign(date=pd.to_datetime(rows["date"])).set_index("date").sort_index()
        days = pd.date_range(rows.index.min(), rows.index.max(), freq="D")
        rows = rows.reindex(days)
        temps = rows["temp_mean_c"].to_numpy(dtype=float)
        normal_by_day = climate_normal(days.date, temps, config)
        normal = normal_by_day[fold_day_of_year(days.date) - 1]
        anomaly = temps - normal
        min_days = (config.rolling_days + 1) // 2
        trailing = pd.Series(anomaly).rolling(config.rolling_days, min_periods=min_days).mean().to_numpy()
        frame = pd.DataFrame({
            "date": days.date, "region": str(region), "temp_mean_c": temps,
            **{name: (rows[name].to_numpy(dtype=float) if name in rows else np.full(len(days), np.nan))
               for name in OPTIONAL_VARIABLES},
            "temp_normal_c": normal, "anomaly_c": anomaly, "anomaly_7d_c": trailing,
            "cold_spell": np.nan_to_num(trailing, nan=0.0) <= config.cold_spell_c,
            "warm_spell": np.nan_to_num(trailing, nan=0.0) >= config.warm_spell_c,
            "weather_known": np.isfinite(temps), "source": source})
        parts.append(frame)
    if unknown_countries and unknown_range is not None:
        days = pd.date_range(unknown_range[0], unknown_range[1], freq="D").date
        for country in sorted(set(unknown_countries)):
            parts.append(pd.DataFrame({
                "date": days, "region": country, "temp_mean_c": np.nan, "precipitation_mm": np.nan,
                "sunshine_h": np.nan, "temp_normal_c": np.nan, "anomaly_c": np.nan, "anomaly_7d_c": np.nan,
                "cold_spell": False, "warm_spell": False, "weather_known": False, "source": source}))
    if not parts:
        return pd.DataFrame({c: [] for c in CONTEXT_COLUMNS})
    return pd.concat(parts, ignore_index=True)[list(CONTEXT_COLUMNS)]


def region_map(config: SeasonrecConfig) -> dict[str, str]:
    """Country code (as silver writes it) -> weather region for the configured source ({} for none)."""
    from seasonrec.data import synthetic
    from seasonrec.features.silver import country_code_of

    weather = config.weather
    if weather.source == "synthetic":
        return {c: synthetic.weather_region(c) for c in config.data.synthetic.countries}
    if weather.source == "file":
        return {country_code_of(country) or country: region for country, region in weather.regions.items()}
    return {}


# ---------------------------------------------------------------- reading a source
def read_file_observations(spark: SparkSession, config: WeatherConfig, path: str | None = None
                           ) -> tuple[pd.DataFrame, DataFrame, int]:
    """Read and validate a weather file: (valid observations as pandas, quarantine rows as a Spark frame
    in the quarantine table's columns, rows read).

    Every row is either valid or quarantined with the first `validation.WEATHER_RULES` reason that
    refuses it; a missing file or missing columns stop the job with one line (JobError).
    """
    from seasonrec.context import JobError
    from seasonrec.data import validation
    from seasonrec.data.sources import resolve_path

    missing_file = f"weather file not found: {path or config.path}; set weather.path (or weather.source=none)"
    try:
        location = resolve_path(path or config.path)
    except JobError:
        raise JobError(missing_file) from None
    if "://" not in location and not os.path.exists(location):
        raise JobError(missing_file)
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    if config.format == "csv":
        raw = spark.read.options(header="true", inferSchema="false").csv(location)
    else:
        raw = spark.read.parquet(location)
    missing = sorted({"date", "region", "temp_mean_c"} - set(raw.columns))
    if missing:
        raise JobError(f"weather file {location}: columns {missing} are missing (has {raw.columns}); "
                       "weather.source=file needs date, region, temp_mean_c")
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    raw_line = (F.to_csv(F.struct(*[F.col(f"`{c}`").cast("string") for c in raw.columns]))
                if config.format == "csv" else F.to_json(F.struct(*[F.col(f"`{c}`") for c in raw.columns])))
    temp = F.trim(F.col("temp_mean_c").cast("string")).cast("double")
    typed = raw.select(
        F.input_file_name().alias("source_file"), raw_line.alias("raw_line"),
        F.when(F.trim(F.col("region").cast("string")) != "", F.trim(F.col("region").cast("string"))).alias("region"),
        F.to_date(F.trim(F.col("date").cast("string")), "yyyy-MM-dd").alias("date_d"),
        F.when(~F.isnan(temp) & (F.abs(temp) != float("inf")), temp).alias("temp_d"),
        *[(F.col(name).cast("double") if name in raw.columns else F.lit(None).cast("double")).alias(name)
          for name in OPTIONAL_VARIABLES])
    early = validation.weather_reason_column(config, validation.WEATHER_RULES[:-1])
    key = Window.partitionBy("date_d", "region")
    typed = (typed.withColumn("early", early)
             .withColumn("duplicates", F.when(F.col("early").isNull(),
                                              F.sum(F.col("early").isNull().cast("int")).over(key)).otherwise(0))
             .withColumn("reason", validation.weather_reason_column(config))
             .withColumn("occurrence", F.row_number().over(Window.partitionBy("source_file", "raw_line")
                                                           .orderBy("raw_line")))).cache()
    n_read = typed.count()
    good = (typed.where(F.col("reason").isNull())
            .select(F.col("date_d").alias("date"), "region", F.col("temp_d").alias("temp_mean_c"),
                    *OPTIONAL_VARIABLES).toPandas())
    bad = as_quarantine(typed.where(F.col("reason").isNotNull()).select(
        F.lit(QUARANTINE_SOURCE).alias("source"), "source_file", "reason", "raw_line",
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.sha2(F.concat_ws("\u0001", F.lit(QUARANTINE_SOURCE), "raw_line", F.col("occurrence").cast("string")),
               256).alias("row_hash")))
    return good, bad, n_read


def build_context(ctx: Any, calendar_range: tuple[dt.date, dt.date], path: str | None = None) -> dict[str, Any]:
    """The features job's weather step: write `context_daily` (and quarantine the bad rows of a file).

    ``calendar_range``: the days countries without weather get rows for. Returns the step summary
    (rows, regions, quarantined rows); with ``weather.source: none`` writes nothing.
    """
    from seasonrec.data import synthetic

    config = ctx.config
    weather = config.weather
    if weather.source == "none":
        return {"source": "none", "written": False}
    mapping = region_map(config)
    quarantined = 0
    if weather.source == "synthetic":
        bronze = ctx.lake.read(tables.BRONZE_TRANSACTIONS)
        if bronze.where(F.col("source") == "synthetic").limit(1).count() == 0:
            # Generated weather next to real sales would be noise posing as signal.
            return {"source": "synthetic", "written": False,
                    "skipped": "bronze holds no synthetic rows: set weather.source=file (or none) for real data"}
        observations = synthetic.weather_frame(config.data.synthetic)[["date", "region", "temp_mean_c"]]
        source = "synthetic"
    else:
        observations, bad, _ = read_file_observations(ctx.spark, weather, path)
        quarantined = bad.count()
        if quarantined:
            ctx.lake.merge(bad, tables.QUARANTINE, ["row_hash"], when_matched="ignore",
                           commit_info=ctx.commit_info())
        source = "file"
    countries = sorted(set(config.features.countries) | set(mapping))
    regions_seen = set(observations["region"])
    unknown = [c for c in countries if mapping.get(c) not in regions_seen]
    frame = context_frame(observations, weather, source, unknown, calendar_range)
    spark_frame = ctx.spark.createDataFrame(list(frame.itertuples(index=False, name=None)),
                                            tables.spec(tables.CONTEXT_DAILY).ddl)
    ctx.lake.write(spark_frame, tables.CONTEXT_DAILY, commit_info=ctx.commit_info())
    known = frame[frame["weather_known"]]
    return {"source": source, "written": True, "rows": len(frame), "regions": sorted(regions_seen),
            "countries_without_weather": unknown, "quarantined": quarantined,
            "first": str(known["date"].min()) if len(known) else None,
            "last": str(known["date"].max()) if len(known) else None}


# ---------------------------------------------------------------- point in time
def persistence(anomalies: np.ndarray) -> float:
    """Lag-1 autocorrelation of a daily anomaly series (NaN gaps skipped), clipped to 0 .. MAX_PERSISTENCE."""
    a = np.asarray(anomalies, dtype=float)
    pairs = np.isfinite(a[1:]) & np.isfinite(a[:-1])
    if pairs.sum() < 30:
        return 0.0
    x, y = a[:-1][pairs], a[1:][pairs]
    denominator = float(np.sqrt(((x - x.mean()) ** 2).sum() * ((y - y.mean()) ** 2).sum()))
    phi = float(((x - x.mean()) * (y - y.mean())).sum() / denominator) if denominator > 0 else 0.0
    return float(np.clip(phi, 0.0, MAX_PERSISTENCE))


def weather_as_of(context: pd.DataFrame, decision_date: dt.date, target_dates: Sequence[dt.date], region: str,
                  config: WeatherConfig) -> pd.DataFrame:
    """Weather features of ``region`` on ``target_dates`` as known at the end of ``decision_date``.

    ``context``: `context_daily` rows (pandas; only rows dated <= ``decision_date`` are read).
    Returns one row per target date: date, observed (a realised value was used), temp_mean_c
    (observed, else normal + expected anomaly), temp_normal_c, anomaly_c (observed, else decayed
    persistence: last observed anomaly x phi^days), anomaly_7d_c (trailing mean over
    ``config.rolling_days`` of those daily values), cold_spell, warm_spell (thresholds of ``config``)
    and weather_known (the region has observations up to d; false: normal NaN, anomalies 0).
    """
    targets = pd.Series(pd.to_datetime(list(target_dates)))
    past = context[(context["region"] == region) & (pd.to_datetime(context["date"]) <= pd.Timestamp(decision_date))]
    past = past[past["weather_known"].astype(bool) & past["anomaly_c"].notna()]
    if past.empty:
        zeros = np.zeros(len(targets))
        return pd.DataFrame({"date": targets.dt.date, "observed": False, "temp_mean_c": np.nan,
                             "temp_normal_c": np.nan, "anomaly_c": zeros, "anomaly_7d_c": zeros,
                             "cold_spell": False, "warm_spell": False, "weather_known": False})
    past = past.assign(date=pd.to_datetime(past["date"])).sort_values("date")
    normal_by_day = np.full(DAYS_IN_YEAR, np.nan)
    normal_by_day[fold_day_of_year(past["date"]) - 1] = past["temp_normal_c"].to_numpy(dtype=float)
    observed = past.set_index("date")["anomaly_c"]
    recent = observed[observed.index > pd.Timestamp(decision_date) - pd.Timedelta(days=PERSISTENCE_DAYS)]
    recent = recent.reindex(pd.date_range(recent.index.min(), recent.index.max(), freq="D"))
    phi = persistence(recent.to_numpy())
    last_day, last_anomaly = observed.index.max(), float(observed.iloc[-1])
    days = pd.date_range(targets.min() - pd.Timedelta(days=config.rolling_days - 1), targets.max(), freq="D")
    after = days > pd.Timestamp(decision_date)
    values = observed.reindex(days).to_numpy(dtype=float)
    values[after] = last_anomaly * phi ** ((days[after] - last_day).days.to_numpy())
    was_observed = ~after & np.isfinite(values)
    trailing = pd.Series(values).rolling(config.rolling_days, min_periods=1).mean().to_numpy()
    at = days.get_indexer(targets)
    normal = normal_by_day[fold_day_of_year(targets) - 1]
    anomaly, anomaly_7d = np.nan_to_num(values[at]), np.nan_to_num(trailing[at])
    temps = past.set_index("date")["temp_mean_c"].reindex(targets).to_numpy(dtype=float)
    temps = np.where(was_observed[at], temps, normal + anomaly)
    return pd.DataFrame({"date": targets.dt.date, "observed": was_observed[at], "temp_mean_c": temps,
                         "temp_normal_c": normal, "anomaly_c": anomaly, "anomaly_7d_c": anomaly_7d,
                         "cold_spell": anomaly_7d <= config.cold_spell_c,
                         "warm_spell": anomaly_7d >= config.warm_spell_c, "weather_known": True})


@dataclass(frozen=True)
class WeeklyWeather:
    """Weekly weather inputs of the forecaster, by global week index ``w`` (week ``week_starts[w]``).

    ``observed[w]``: mean observed daily anomaly of week w (NaN: unknown; read only for weeks before
    an origin); ``at_origin[t]``: trailing anomaly (anomaly_7d_c) of the last day before week t;
    ``expected[t, s]``: mean anomaly of week t + s as known on the last day before week t
    (`weather_as_of`: observed days, else decayed persistence). All are the region-weighted means.
    """

    observed: np.ndarray
    at_origin: np.ndarray
    expected: np.ndarray


def weekly_weather(context: pd.DataFrame | None, region_weights: dict[str, float], week_starts: Sequence[dt.date],
                   steps: int, config: WeatherConfig) -> WeeklyWeather:
    """`WeeklyWeather` over ``week_starts`` (consecutive Mondays) for ``steps`` forecast weeks.

    ``region_weights``: weight per weather region (e.g. its share of units sold); without a context
    or weights every anomaly is 0 (the climate normal) and ``observed`` is NaN.
    """
    n = len(week_starts)
    if context is None or context.empty or not region_weights:
        return WeeklyWeather(np.full(n, np.nan), np.zeros(n), np.zeros((n, steps)))
    total = sum(region_weights.values())
    observed, at_origin, expected = np.zeros(n), np.zeros(n), np.zeros((n, steps))
    first = pd.Timestamp(week_starts[0])
    for region, weight in region_weights.items():
        rows = context[context["region"] == region]
        daily = rows.assign(date=pd.to_datetime(rows["date"])).set_index("date")["anomaly_c"]
        index = ((daily.index - first).days // 7).to_numpy()
        inside = (index >= 0) & (index < n)
        sums = np.bincount(index[inside], weights=np.nan_to_num(daily.to_numpy()[inside]), minlength=n)
        counts = np.bincount(index[inside], weights=np.isfinite(daily.to_numpy()[inside]).astype(float),
                             minlength=n)
        with np.errstate(invalid="ignore"):
            observed += weight / total * np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        for t, monday in enumerate(week_starts):
            decision = monday - dt.timedelta(days=1)
            targets = [decision + dt.timedelta(days=k) for k in range(0, 7 * steps + 1)]
            known = weather_as_of(rows, decision, targets, region, config)
            at_origin[t] += weight / total * known["anomaly_7d_c"].iloc[0]
            week_means = known["anomaly_c"].to_numpy()[1:].reshape(steps, 7).mean(axis=1)
            expected[t] += weight / total * week_means
    return WeeklyWeather(observed, at_origin, expected)


def region_weights(units_by_country: dict[str, float], mapping: dict[str, str]) -> dict[str, float]:
    """Weight per weather region: the share of units of the countries mapped to it (countries without
    a region drop out; the weights sum to 1, or {} when no country has weather)."""
    weights: dict[str, float] = {}
    for country, units in units_by_country.items():
        region = mapping.get(country)
        if region is not None and units > 0:
            weights[region] = weights.get(region, 0.0) + float(units)
    total = sum(weights.values())
    return {region: units / total for region, units in weights.items()} if total > 0 else {}
