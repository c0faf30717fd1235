"""Weather in the ranker, point in time: the user's region's weather at a request date and each item's
learned weather sensitivity.

`WeatherHistory` is built once (Spark: basket counts per item, weather country and week; the
`context_daily` rows as pandas) and read at any request date ``d`` with :meth:`WeatherHistory.at`,
which returns a `WeatherAt` (the value of the request context's ``core.contract.WEATHER`` key):

- per country with a weather region: the trailing anomaly ``anomaly_7d_c`` and the cold/warm spell
  flags of the **last completed day** d - 1, read through `seasonrec.features.weather.weather_as_of`
  (only rows dated <= d - 1: a list made on day d cannot know day d's mean temperature). A later
  target date (serving a future day from a snapshot) gets the accessor's decayed persistence, never
  a realised value. Countries without weather are absent: their users get zeros and known = 0;
- per item, ``sensitivity``: the relative change of the item's share of baskets per degC of weekly
  anomaly, from whole weeks fully before d only (like `ItemActivity.at`): a weighted regression,
  over (country, week) pairs with observed weather, of the item's share of that country-week's
  baskets on the week's mean daily anomaly, with a country fixed effect, divided by the item's
  mean share (so -0.3 reads "3% more of the baskets per degC colder"), shrunk toward 0 by
  n / (n + `SENSITIVITY_SHRINK_BASKETS`) (n = the item's baskets in those weeks) and clipped to
  +-`MAX_SENSITIVITY`. Items without sales, or dates without two weeks of weather, get 0.

Everything is defined for new users (their country decides; none: zeros) and new items (0).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec.config import WeatherConfig
from seasonrec.features.calendar import monday
from seasonrec.features.item_activity import basket_key
from seasonrec.features.weather import weather_as_of

SENSITIVITY_SHRINK_BASKETS = 30.0  # an item with 30 baskets keeps half its estimated slope
MAX_SENSITIVITY = 1.0  # |relative share change per degC|: beyond it the estimate is noise
MIN_WEATHER_WEEKS = 2
# Columns of `WeatherAt.user_weather`, in order.
USER_WEATHER_COLUMNS = ("anomaly_7d_c", "cold_spell", "warm_spell", "weather_known")


@dataclass(frozen=True)
class WeatherAt:
    """The weather context of one request date ``day``.

    ``by_country``: country code -> (anomaly_7d_c, cold_spell, warm_spell) of the last completed
    day, for countries whose region has observations; ``sensitivity``: float32 [n_items];
    ``cold_spell_c`` / ``warm_spell_c``: the spell thresholds (for anomalies a request supplies).
    """

    day: dt.date
    by_country: dict[str, tuple[float, bool, bool]]
    sensitivity: np.ndarray
    cold_spell_c: float
    warm_spell_c: float

    def user_weather(self, countries: Sequence[object], anomalies: Sequence[object] | None = None) -> np.ndarray:
        """float32 [n, 4] (`USER_WEATHER_COLUMNS`) for users of ``countries`` (codes; None/unknown:
        zeros, known 0). ``anomalies`` (optional, per user; None/NaN = not given): a supplied
        trailing anomaly (e.g. a served request's ``anomaly_7d_c``) that replaces the country's,
        its spell flags from the same thresholds."""
        out = np.zeros((len(countries), len(USER_WEATHER_COLUMNS)), np.float32)
        for i, country in enumerate(countries):
            known = self.by_country.get(str(country)) if country is not None else None
            given = None if anomalies is None else anomalies[i]
            if given is not None and np.isfinite(float(given)):
                value = float(given)
                known = (value, value <= self.cold_spell_c, value >= self.warm_spell_c)
            if known is not None:
                out[i] = (known[0], float(known[1]), float(known[2]), 1.0)
        return out

    def moved_to(self, day: dt.date, context: pd.DataFrame, regions: dict[str, str],
                 config: WeatherConfig) -> WeatherAt:
        """This context for a later ``day`` knowing only ``context`` rows up to ``self.day`` - 1 (a
        served snapshot): the countries' weather is the accessor's decayed persistence, the item
        sensitivities stay as they were at ``self.day``."""
        if day <= self.day:
            return self
        return WeatherAt(day, country_weather(context, self.day, day, regions, config), self.sensitivity,
                         self.cold_spell_c, self.warm_spell_c)


def country_weather(context: pd.DataFrame, decided: dt.date, day: dt.date, regions: dict[str, str],
                    config: WeatherConfig) -> dict[str, tuple[float, bool, bool]]:
    """Country code -> (anomaly_7d_c, cold_spell, warm_spell) of ``day`` - 1 as known at the end of
    ``decided`` - 1 (`weather_as_of`: observed up to then, decayed persistence after), for countries
    of ``regions`` whose region has observations by then."""
    out: dict[str, tuple[float, bool, bool]] = {}
    decision, target = decided - dt.timedelta(days=1), day - dt.timedelta(days=1)
    for country, region in sorted(regions.items()):
        row = weather_as_of(context, decision, [target], region, config).iloc[0]
        if bool(row["weather_known"]):
            out[country] = (float(row["anomaly_7d_c"]), bool(row["cold_spell"]), bool(row["warm_spell"]))
    return out


@dataclass(frozen=True)
class WeatherHistory:
    """What `WeatherHistory.at` reads: basket counts ``counts[i, c, w]`` of item position i in
    country ``countries[c]`` and week ``first_week + w``, all baskets of that country-week in
    ``totals[c, w]``, the week's mean observed daily anomaly of the country's region in
    ``anomaly[c, w]`` (NaN: none), the `context_daily` rows (pandas) and the country -> region map."""

    first_week: dt.date
    countries: tuple[str, ...]
    counts: np.ndarray  # float32 [n_items, n_countries, n_weeks]
    totals: np.ndarray  # float64 [n_countries, n_weeks]
    anomaly: np.ndarray  # float64 [n_countries, n_weeks]
    context: pd.DataFrame
    regions: dict[str, str]
    config: WeatherConfig

    def at(self, day: dt.date) -> WeatherAt:
        """The weather context of a list made on ``day`` (see the module docstring)."""
        weeks_before = max(min((day - self.first_week).days // 7, self.counts.shape[2]), 0)
        sensitivity = item_sensitivity(self.counts[:, :, :weeks_before], self.totals[:, :weeks_before],
                                       self.anomaly[:, :weeks_before])
        return WeatherAt(day, country_weather(self.context, day, day, self.regions, self.config), sensitivity,
                         self.config.cold_spell_c, self.config.warm_spell_c)


def item_sensitivity(counts: np.ndarray, totals: np.ndarray, anomaly: np.ndarray) -> np.ndarray:
    """float32 [n_items] relative weather sensitivity (module docstring) from ``counts`` [I, C, W],
    ``totals`` [C, W] and ``anomaly`` [C, W] (NaN: unknown week)."""
    n_items = counts.shape[0]
    use = np.isfinite(anomaly) & (totals > 0)
    if use.sum() < MIN_WEATHER_WEEKS:
        return np.zeros(n_items, np.float32)
    weight = np.where(use, totals, 0.0)  # country-weeks weigh by their baskets
    a = np.where(use, anomaly, 0.0)
    by_country = np.maximum(weight.sum(axis=1, keepdims=True), 1e-12)
    centred = np.where(use, a - (weight * a).sum(axis=1, keepdims=True) / by_country, 0.0)  # [C, W]
    variance = float((weight * centred ** 2).sum())
    if variance <= 1e-9:
        return np.zeros(n_items, np.float32)
    used_counts = np.where(use[None], counts, 0.0)
    share = used_counts / np.maximum(totals, 1e-12)[None]  # [I, C, W]
    # The country fixed effect drops out: sum_w T (s - s_bar_c) centred = sum_w T s centred.
    slope = (weight[None] * share * centred[None]).sum(axis=(1, 2)) / variance
    baskets = used_counts.sum(axis=(1, 2))
    mean_share = baskets / max(float(weight.sum()), 1e-12)
    relative = np.where(mean_share > 0, slope / np.maximum(mean_share, 1e-12), 0.0)
    shrunk = relative * baskets / (baskets + SENSITIVITY_SHRINK_BASKETS)
    return np.clip(shrunk, -MAX_SENSITIVITY, MAX_SENSITIVITY).astype(np.float32)


def weather_history(interactions: DataFrame, item_ids: np.ndarray, before: dt.date, context: pd.DataFrame,
                    regions: dict[str, str], config: WeatherConfig) -> WeatherHistory | None:
    """`WeatherHistory` of every week starting before ``before``, or None when no country of
    ``regions`` (country code -> weather region) has weather in ``context`` (`context_daily` rows).

    ``interactions``: silver_interactions rows (guests count, as in `item_activity`). Collects items x
    weather countries x weeks numbers.
    """
    known = context[context["weather_known"].astype(bool)]
    regions = {country: region for country, region in regions.items() if region in set(known["region"])}
    if not regions:
        return None
    countries = tuple(sorted(regions))
    rows = (interactions.where((F.col("date") < F.lit(before)) & F.col("country").isin(*countries))
            .select("item_id", "country", "week_start", basket_key().alias("basket"))
            .groupBy("item_id", "country", "week_start").agg(F.countDistinct("basket").alias("n")).toPandas())
    totals_rows = (interactions.where((F.col("date") < F.lit(before)) & F.col("country").isin(*countries))
                   .select("country", "week_start", basket_key().alias("basket"))
                   .groupBy("country", "week_start").agg(F.countDistinct("basket").alias("n")).toPandas())
    first_week = monday(min(totals_rows["week_start"])) if len(totals_rows) else monday(before)
    n_weeks = (monday(before) - first_week).days // 7 + 1
    country_index = {c: i for i, c in enumerate(countries)}

    def week_of(values: pd.Series) -> np.ndarray:
        return np.array([(monday(w) - first_week).days // 7 for w in values], np.int64)

    counts = np.zeros((len(item_ids), len(countries), n_weeks), np.float32)
    position = {str(item): i for i, item in enumerate(item_ids)}
    if len(rows):
        item_pos = rows["item_id"].astype(str).map(position)
        keep = item_pos.notna().to_numpy()
        np.add.at(counts, (item_pos[keep].astype(np.int64).to_numpy(),
                           rows["country"].map(country_index).to_numpy()[keep], week_of(rows["week_start"])[keep]),
                  rows["n"].to_numpy(np.float32)[keep])
    totals = np.zeros((len(countries), n_weeks))
    if len(totals_rows):
        np.add.at(totals, (totals_rows["country"].map(country_index).to_numpy(), week_of(totals_rows["week_start"])),
                  totals_rows["n"].to_numpy(float))
    anomaly = np.full((len(countries), n_weeks), np.nan)
    dates = pd.to_datetime(known["date"])
    index = ((dates - pd.Timestamp(first_week)).dt.days // 7).to_numpy()
    for country, c in country_index.items():
        inside = (known["region"].to_numpy() == regions[country]) & (index >= 0) & (index < n_weeks)
        values = known["anomaly_c"].to_numpy(float)[inside]
        finite = np.isfinite(values)
        sums = np.bincount(index[inside][finite], weights=values[finite], minlength=n_weeks)
        seen = np.bincount(index[inside][finite], minlength=n_weeks)
        anomaly[c] = np.where(seen > 0, sums / np.maximum(seen, 1), np.nan)
    return WeatherHistory(first_week, countries, counts, totals, anomaly, context, regions, config)


def read_context(lake: Any) -> pd.DataFrame | None:
    """`context_daily` as pandas (date as datetime.date), or None when the lake has no such table."""
    from seasonrec import tables

    if not lake.exists(tables.CONTEXT_DAILY):
        return None
    frame = lake.read(tables.CONTEXT_DAILY).select(
        "date", "region", "temp_mean_c", "temp_normal_c", "anomaly_c", "anomaly_7d_c", "cold_spell", "warm_spell",
        "weather_known").toPandas()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    return frame


def load_weather_history(lake: Any, config: Any, item_ids: np.ndarray, before: dt.date
                         ) -> WeatherHistory | None:
    """`weather_history` from the lake's silver_interactions and context_daily with ``config``'s
    region map (`seasonrec.features.weather.region_map`); None without weather."""
    from seasonrec import tables
    from seasonrec.features.weather import region_map

    context = read_context(lake)
    if context is None or context.empty:
        return None
    interactions = lake.read(tables.SILVER_INTERACTIONS)
    return weather_history(interactions, item_ids, before, context, region_map(config), config.weather)
