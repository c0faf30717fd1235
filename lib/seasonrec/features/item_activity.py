"""What each item sold, week by week, as of a date: the item side of candidate generation and ranking.

Built in Spark from *all* of ``silver_interactions`` (guest checkouts included: they are real
baskets), collected once as a small dense matrix (items x weeks of basket counts), then read at any
date with :meth:`ItemActivity.at`, which only looks at whole weeks that ended on or before that
date. Training (one date per validation week), scoring (the scored day) and evaluation (the window
start) all go through the same ``at``, so the ranker's item features are point-in-time by
construction (``tests/training/test_candidates.py`` scrambles later weeks and checks nothing moves).

Signals per item at date ``d`` (``RECENT_WEEKS`` = 4):

- ``recent``: baskets in the 4 whole weeks before ``d``; ``previous``: the 4 weeks before those;
- ``trend``: log((recent + 1) / (previous + 1)), the ramp of a season that is starting;
- ``log_last_year_ahead``: log1p of the mean weekly baskets over the ``SEASON_AHEAD_WEEKS`` weeks
  starting 52 weeks before ``d`` (what this time of year sold last year), counting only the weeks the
  data covers; ``has_last_year``: the covered share of those weeks (0 when the data does not reach
  back a year). Partial coverage counts: the first holiday season of a shop whose data starts in
  December reads last December for a window that starts in November, as seasonal popularity does;
- ``last_year_ratio``: log((ahead mean + 1) / (mean of the 4 weeks before them + 1)), last year's ramp
  into the weeks ahead (0 when the weeks before are not covered);
- ``log_season_ahead``: the popularity expected in the weeks ahead: ``log_last_year_ahead`` where last
  year is covered, else log1p of the recent mean weekly baskets. One meaning in both regimes, so a
  ranker fitted on a window without a year of history (every first year) still learns how much
  "popular in the weeks ahead" is worth, and reads last year's season when the data has one;
- ``log_lift_ahead``: the same idea relative to the item's usual level: log((weekly baskets expected
  ahead + 0.5) / (mean weekly baskets over all weeks before ``d`` + 0.5)), i.e. last year's seasonal
  index of the weeks ahead where covered, else how far above its usual level the item sells now;
- ``log_first_orders``: log1p(first baskets of new customers holding the item in the last
  ``FIRST_ORDER_WEEKS`` weeks): what people buy when they arrive, the cold-start signal.

Per country (`CountryActivity`, read the same way with :meth:`CountryActivity.at`): how much more
(or less) of its baskets a country gives an item than the whole shop does over the last
``FIRST_ORDER_WEEKS`` weeks (`CountryMix`): the context a new user brings besides the date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec.features.calendar import WEEKS, monday

RECENT_WEEKS = 4
FIRST_ORDER_WEEKS = 8
# "This time of year": a shopping window of 4-6 weeks plus the run-up into it. Long enough that a
# window starting in November reaches last December when the data starts on December 1st.
SEASON_AHEAD_WEEKS = 8
ACTIVITY_FEATURES = ("log_recent", "trend", "log_last_year_ahead", "last_year_ratio", "has_last_year",
                     "log_season_ahead", "log_lift_ahead", "log_first_orders")
LIFT_SMOOTHING = 0.5  # baskets per week: keeps an item with 0 or 1 sales from having an extreme lift
# Pseudo-baskets of the shop-wide mix added to each country's: a country with few baskets keeps
# lifts near 0 instead of +-log(share) from a handful of sales.
COUNTRY_PRIOR_BASKETS = 20.0


def basket_key() -> F.Column:
    """A basket: one known user's purchases of one day, or one guest invoice."""
    # concat_ws skips nulls, so guests must be told apart explicitly (else one day = one guest basket).
    return (F.when(F.col("user_id").isNotNull(), F.concat_ws("|", F.col("user_id"), F.col("date").cast("string")))
            .otherwise(F.concat(F.lit("guest|"), F.coalesce(F.col("invoice"), F.col("ts").cast("string")))))


@dataclass(frozen=True)
class ItemActivity:
    """Weekly basket counts per item: ``counts[i, w]`` for item position i and week ``first_week + w``;
    ``first_orders[i, w]``: the same for customers' first baskets only."""

    first_week: dt.date
    counts: np.ndarray  # float32 [n_items, n_weeks]
    first_orders: np.ndarray  # float32 [n_items, n_weeks]
    by_country: CountryActivity | None = None  # the same baskets per country (`country_mix`)

    def _window(self, end: int, weeks: int, counts: np.ndarray | None = None) -> np.ndarray:
        counts = self.counts if counts is None else counts
        start = max(end - weeks, 0)
        end = min(max(end, 0), counts.shape[1])
        if end <= start:
            return np.zeros(counts.shape[0], np.float32)
        return counts[:, start:end].sum(axis=1)

    def _covered_mean(self, start: int, weeks: int) -> tuple[np.ndarray, int]:
        """Mean weekly count over the weeks [start, start + weeks) the data covers, and how many it covers."""
        first, end = max(start, 0), min(start + weeks, self.counts.shape[1])
        if end <= first:
            return np.zeros(self.counts.shape[0], np.float32), 0
        return self.counts[:, first:end].mean(axis=1), end - first

    def country_mix(self, day: dt.date) -> CountryMix | None:
        """The countries' item mix at ``day`` (`CountryActivity.at`), None without country data."""
        return None if self.by_country is None else self.by_country.at(day)

    def at(self, day: dt.date) -> dict[str, np.ndarray]:
        """Item signals at ``day`` from whole weeks ending on or before it: {name: float32 [n_items]}
        for every name in ``ACTIVITY_FEATURES`` plus ``recent`` (raw counts)."""
        weeks_before = (day - self.first_week).days // 7  # whole weeks fully before `day`
        recent = self._window(weeks_before, RECENT_WEEKS)
        previous = self._window(weeks_before - RECENT_WEEKS, RECENT_WEEKS)
        year_start = weeks_before - WEEKS  # always <= weeks_before - SEASON_AHEAD_WEEKS: all in the past
        ahead, covered = self._covered_mean(year_start, SEASON_AHEAD_WEEKS)
        before, covered_before = self._covered_mean(year_start - RECENT_WEEKS, RECENT_WEEKS)
        log_ahead = np.log1p(ahead)
        ratio = np.log((ahead + 1.0) / (before + 1.0)) if covered and covered_before else np.zeros_like(ahead)
        expected = ahead if covered else recent / RECENT_WEEKS
        usual, _ = self._covered_mean(0, weeks_before)  # mean weekly baskets over every week before `day`
        lift_ahead = np.log((expected + LIFT_SMOOTHING) / (usual + LIFT_SMOOTHING))
        return {
            "recent": recent.astype(np.float32),
            "log_recent": np.log1p(recent).astype(np.float32),
            "trend": np.log((recent + 1.0) / (previous + 1.0)).astype(np.float32),
            "log_last_year_ahead": log_ahead.astype(np.float32),
            "last_year_ratio": ratio.astype(np.float32),
            "has_last_year": np.full(len(recent), covered / SEASON_AHEAD_WEEKS, np.float32),
            "log_season_ahead": np.log1p(expected).astype(np.float32),
            "log_lift_ahead": lift_ahead.astype(np.float32),
            "log_first_orders": np.log1p(self._window(weeks_before, FIRST_ORDER_WEEKS,
                                                      self.first_orders)).astype(np.float32),
        }


def item_activity(interactions: DataFrame, item_ids: np.ndarray, before: dt.date) -> ItemActivity:
    """Basket counts per (item of ``item_ids``, week) for every week starting before ``before``, all
    baskets and customers' first baskets.

    ``interactions``: silver_interactions rows (all of them: guests count; a guest basket is never a
    known first order). Items absent from ``item_ids`` are ignored; items without sales have zero
    rows. Collects items x weeks numbers.
    """
    from pyspark.sql import Window

    first_date = F.min("date").over(Window.partitionBy("user_id"))
    rows = (interactions.where(F.col("date") < F.lit(before))
            .withColumn("first_order", F.col("user_id").isNotNull() & (F.col("date") == first_date))
            .select("item_id", "week_start", "first_order", basket_key().alias("basket"))
            .groupBy("item_id", "week_start")
            .agg(F.countDistinct("basket").alias("n"),
                 F.countDistinct(F.when(F.col("first_order"), F.col("basket"))).alias("n_first"))
            .toPandas())
    # Hand-made frames (tests, other sources) may lack the country: no country mix then.
    by_country = country_activity(interactions, item_ids, before) if "country" in interactions.columns else None
    if rows.empty:
        empty = np.zeros((len(item_ids), 0), np.float32)
        return ItemActivity(monday(before), empty, empty.copy(), by_country)
    first_week = monday(min(rows["week_start"]))
    n_weeks = (monday(before) - first_week).days // 7 + 1
    position = {str(item): i for i, item in enumerate(item_ids)}
    item_pos = rows["item_id"].astype(str).map(position)
    keep = item_pos.notna().to_numpy()
    index = (item_pos[keep].astype(np.int64).to_numpy(),
             np.array([(monday(w) - first_week).days // 7 for w in rows["week_start"]], np.int64)[keep])
    matrices = []
    for column in ("n", "n_first"):
        counts = np.zeros((len(item_ids), n_weeks), np.float32)
        np.add.at(counts, index, rows[column].to_numpy(np.float32)[keep])
        matrices.append(counts)
    return ItemActivity(first_week, *matrices, by_country)


@dataclass(frozen=True)
class CountryMix:
    """Each country's item mix relative to the whole shop's at one date.

    ``lift[c, i]`` = log(share of item i in country c's baskets / its share in all baskets), with the
    country's counts shrunk towards the shop's mix by ``COUNTRY_PRIOR_BASKETS`` pseudo-baskets;
    ``countries[c]`` its country code. Items without sales and unknown countries get 0.
    """

    countries: tuple[str, ...]
    lift: np.ndarray  # float32 [n_countries, n_items]

    def user_lift(self, countries: list[Any]) -> np.ndarray:
        """float32 [n_users, n_items]: the row of each user's country (zeros: unknown or no country)."""
        row = {country: i for i, country in enumerate(self.countries)}
        out = np.zeros((len(countries), self.lift.shape[1]), np.float32)
        for u, country in enumerate(countries):
            i = row.get(str(country)) if country is not None else None
            if i is not None:
                out[u] = self.lift[i]
        return out


@dataclass(frozen=True)
class CountryActivity:
    """Weekly basket counts per (country, item), sparse: ``counts[k]`` baskets of item ``items[k]`` in
    country ``countries[country[k]]`` in week ``first_week + week[k]``."""

    first_week: dt.date
    countries: tuple[str, ...]
    country: np.ndarray  # int64 [nnz]
    items: np.ndarray  # int64 [nnz]
    week: np.ndarray  # int64 [nnz]
    counts: np.ndarray  # float32 [nnz]
    n_items: int

    def at(self, day: dt.date) -> CountryMix:
        """`CountryMix` over the ``FIRST_ORDER_WEEKS`` whole weeks before ``day`` (none on or after it)."""
        end = (day - self.first_week).days // 7
        keep = (self.week >= end - FIRST_ORDER_WEEKS) & (self.week < end)
        counts = np.zeros((len(self.countries), self.n_items), np.float64)
        np.add.at(counts, (self.country[keep], self.items[keep]), self.counts[keep])
        return CountryMix(self.countries, country_lift(counts))


def country_lift(counts: np.ndarray) -> np.ndarray:
    """float32 [n_countries, n_items] `CountryMix.lift` of basket counts [n_countries, n_items]."""
    total = counts.sum(axis=0)
    share = total / max(total.sum(), 1.0)
    per_country = counts.sum(axis=1, keepdims=True)
    smoothed = (counts + COUNTRY_PRIOR_BASKETS * share) / (per_country + COUNTRY_PRIOR_BASKETS)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(share > 0, np.log(smoothed / np.where(share > 0, share, 1.0)), 0.0)
    return lift.astype(np.float32)


def country_activity(interactions: DataFrame, item_ids: np.ndarray, before: dt.date) -> CountryActivity:
    """Basket counts per (country, item of ``item_ids``, week) for every week starting before
    ``before`` (guests included; rows without a country are left out). Collects the non-zero cells."""
    rows = (interactions.where((F.col("date") < F.lit(before)) & F.col("country").isNotNull())
            .select("country", "item_id", "week_start", basket_key().alias("basket"))
            .groupBy("country", "item_id", "week_start").agg(F.countDistinct("basket").alias("n"))
            .toPandas())
    position = {str(item): i for i, item in enumerate(item_ids)}
    item_pos = rows["item_id"].astype(str).map(position)
    rows = rows[item_pos.notna().to_numpy()]
    item_pos = item_pos[item_pos.notna()]
    first_week = monday(min(rows["week_start"])) if len(rows) else monday(before)
    countries = tuple(sorted(rows["country"].astype(str).unique()))
    index = {country: i for i, country in enumerate(countries)}
    return CountryActivity(
        first_week, countries, rows["country"].astype(str).map(index).to_numpy(np.int64),
        item_pos.astype(np.int64).to_numpy(),
        np.array([(monday(w) - first_week).days // 7 for w in rows["week_start"]], np.int64),
        rows["n"].to_numpy(np.float32), len(item_ids))
