"""Silver and calendar on the shared synthetic lake: netting, pseudonymization, festivals, seasons."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from pyspark.sql import functions as F

from seasonrec import tables


def test_cancellations_are_netted_and_users_pseudonymized(feature_lake) -> None:
    lake = feature_lake.lake
    bronze = lake.read(tables.BRONZE_TRANSACTIONS)
    silver = lake.read(tables.SILVER_INTERACTIONS)
    cancelled = bronze.where(F.col("invoice").startswith("C"))
    n_cancelled = cancelled.count()
    assert n_cancelled > 50
    # Each return hits the pair's latest purchase at or before it and never drives it below zero, so the net
    # quantity is bought - returned except for the part of a return larger than the purchase it hits
    # (a repeat purchase in between absorbed it): that leftover must stay a small share of all returns.
    bought = bronze.where("quantity > 0").agg(F.sum("quantity")).first()[0]
    returned = -cancelled.agg(F.sum("quantity")).first()[0]
    net = silver.agg(F.sum("quantity")).first()[0]
    assert bought - returned <= net < bought - 0.9 * returned
    # Cancelled invoices disappear (unless a repeat of the pair in the 3 days between absorbed the return).
    originals = cancelled.select(F.substring("invoice", 2, 100).alias("invoice"))
    assert silver.join(originals, "invoice").count() <= 0.1 * n_cancelled
    assert silver.where("quantity <= 0 OR revenue <= 0").count() == 0
    raw_users = {r[0] for r in bronze.select("user_raw").distinct().collect()}
    silver_users = {r[0] for r in silver.select("user_id").distinct().collect()}
    assert not raw_users & silver_users
    assert all(len(u) == 24 for u in silver_users)


def test_salt_is_never_written_to_the_lake(feature_lake) -> None:
    salt = os.environ["SEASONREC_SALT"].encode()
    root = Path(feature_lake.lake.root)
    offenders = [p for p in root.rglob("*") if p.is_file() and salt in p.read_bytes()]
    assert offenders == []


def test_calendar_festivals_holidays_and_seasons(feature_lake) -> None:
    calendar = {r["date"]: r for r in feature_lake.lake.read(tables.CALENDAR).collect()}
    assert min(calendar) <= dt.date(2009, 12, 1) and max(calendar) >= dt.date(2012, 12, 31)
    festivals = {
        dt.date(2010, 11, 26): "black_friday", dt.date(2010, 11, 29): "cyber_monday",
        dt.date(2011, 11, 11): "singles_day", dt.date(2011, 12, 12): "double_12",
        dt.date(2011, 2, 3): "spring_festival", dt.date(2011, 9, 12): "mid_autumn",
        dt.date(2011, 2, 14): "valentines_day", dt.date(2011, 9, 5): "back_to_school",
        dt.date(2010, 12, 25): "christmas",
    }
    for day, name in festivals.items():
        assert calendar[day]["festival_name"] == name, day
        assert calendar[day]["is_festival"] and calendar[day]["days_to_next_event"] == 0
    assert calendar[dt.date(2011, 11, 8)]["days_to_next_event"] == 3
    assert calendar[dt.date(2011, 11, 13)]["days_since_last_event"] == 2
    assert calendar[dt.date(2011, 11, 10)]["event_window"] == "singles_day"
    christmas = calendar[dt.date(2010, 12, 25)]
    assert christmas["is_holiday"] and "GB: Christmas Day" in christmas["holiday_name"]
    assert "CN:" in calendar[dt.date(2011, 2, 3)]["holiday_name"]
    july = calendar[dt.date(2011, 7, 15)]
    assert (july["season_north"], july["season_south"]) == ("summer", "winter")
    assert calendar[dt.date(2011, 1, 3)]["week_start"] == dt.date(2011, 1, 3)
    assert calendar[dt.date(2011, 1, 9)]["week_start"] == dt.date(2011, 1, 3)
    assert all(1 <= r["week_of_year"] <= 52 for r in calendar.values())
    assert abs(calendar[dt.date(2011, 1, 3)]["woy_sin"]) < 1e-9 and calendar[dt.date(2011, 1, 3)]["woy_cos"] == 1.0


def test_silver_items_have_titles_categories_and_prices(feature_lake) -> None:
    items = feature_lake.lake.read(tables.SILVER_ITEMS)
    assert items.count() == 120
    assert items.where(F.col("title").isNull() | F.col("category").isNull() | (F.col("price") <= 0)).count() == 0
    assert items.select("item_id").distinct().count() == 120
