"""Calendar dimension: one row per day with holidays (the `holidays` package) and shopping festivals.

Columns: date, week_start, year, week_of_year (ISO, 53 folded into 52), month, day_of_week (1=Mon),
woy_sin, woy_cos, season_north, season_south (winter/spring/summer/autumn), is_holiday,
holiday_name ("GB: Christmas Day; ..."), is_festival, festival_name, days_to_next_event,
days_since_last_event, event_window (nearest event within +-3 days, else null).

The table is a few thousand rows, so it is built on the driver with pandas and written by Spark.
"""

from __future__ import annotations

import datetime as dt
import math

from pyspark.sql import DataFrame, SparkSession

from seasonrec import tables

SEASONS = ("winter", "spring", "summer", "autumn")  # season_index order
WEEKS = 52  # week-of-year buckets everywhere (ISO week 53 folds into 52)
# Festival keys used across features (season_affinity windows use them too).
FESTIVALS = ("valentines_day", "spring_festival", "easter", "back_to_school", "mid_autumn", "halloween",
             "singles_day", "black_friday", "cyber_monday", "double_12", "christmas", "new_year")
SHOPPING_FESTIVALS = ("singles_day", "black_friday", "cyber_monday", "double_12")
EVENT_WINDOW_DAYS = 3


def monday(day: dt.date) -> dt.date:
    """The Monday starting ``day``'s week (weeks run Monday to Sunday, like ``week_start``)."""
    return day - dt.timedelta(days=day.weekday())


def season_index(month: int, southern: bool = False) -> int:
    """Meteorological seasons: 0 winter (Dec-Feb north), 1 spring, 2 summer, 3 autumn."""
    north = {12: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2, 9: 3, 10: 3, 11: 3}[month]
    return (north + 2) % 4 if southern else north


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def festivals(year: int) -> dict[dt.date, str]:
    """Shopping festivals and major gift events of one year (movable ones computed)."""
    import holidays
    from dateutil.easter import easter

    black_friday = _nth_weekday(year, 11, 3, 4) + dt.timedelta(days=1)
    days = {
        dt.date(year, 1, 1): "new_year",
        dt.date(year, 2, 14): "valentines_day",
        easter(year): "easter",
        _nth_weekday(year, 9, 0, 1): "back_to_school",  # first Monday of September
        dt.date(year, 10, 31): "halloween",
        dt.date(year, 11, 11): "singles_day",
        black_friday: "black_friday",
        black_friday + dt.timedelta(days=3): "cyber_monday",
        dt.date(year, 12, 12): "double_12",
        dt.date(year, 12, 25): "christmas",
    }
    cn = holidays.country_holidays("CN", years=year)
    spring = [d for d, n in cn.items() if "Spring Festival" in n]
    autumn = [d for d, n in cn.items() if "Mid-Autumn" in n]
    if spring:
        days[min(spring)] = "spring_festival"
    if autumn:
        days[min(autumn)] = "mid_autumn"
    return days


def calendar_frame(start: dt.date, end: dt.date, countries: list[str]):
    """pandas frame of the calendar from `start` to `end` inclusive (a margin is added for event distances)."""
    import holidays
    import pandas as pd

    years = list(range(start.year - 1, end.year + 2))
    holiday_maps = {}
    for country in countries:
        try:
            holiday_maps[country] = holidays.country_holidays(country, years=years)
        except NotImplementedError:
            continue  # unknown country code: no holidays rather than a failed job
    events: dict[dt.date, str] = {}
    for year in years:
        events.update(festivals(year))
    event_days = sorted(events)
    rows = []
    day = start
    import bisect

    while day <= end:
        names = [f"{c}: {h[day]}" for c, h in holiday_maps.items() if day in h]
        iso = day.isocalendar()
        week = min(iso.week, 52)
        angle = 2 * math.pi * (week - 1) / 52
        i = bisect.bisect_left(event_days, day)
        next_event = event_days[i] if i < len(event_days) else None
        j = bisect.bisect_right(event_days, day) - 1
        last_event = event_days[j] if j >= 0 else None
        nearest = min((e for e in (next_event, last_event) if e is not None), key=lambda e: abs((e - day).days),
                      default=None)
        window = events[nearest] if nearest is not None and abs((nearest - day).days) <= EVENT_WINDOW_DAYS else None
        rows.append({
            "date": day,
            "week_start": day - dt.timedelta(days=day.weekday()),
            "year": day.year,
            "week_of_year": week,
            "month": day.month,
            "day_of_week": day.isoweekday(),
            "woy_sin": math.sin(angle),
            "woy_cos": math.cos(angle),
            "season_north": SEASONS[season_index(day.month)],
            "season_south": SEASONS[season_index(day.month, southern=True)],
            "is_holiday": bool(names),
            "holiday_name": "; ".join(names) if names else None,
            "is_festival": day in events,
            "festival_name": events.get(day),
            "days_to_next_event": (next_event - day).days if next_event else None,
            "days_since_last_event": (day - last_event).days if last_event else None,
            "event_window": window,
        })
        day += dt.timedelta(days=1)
    return pd.DataFrame(rows)




def calendar(spark: SparkSession, start: dt.date, end: dt.date, countries: list[str]) -> DataFrame:
    """The ``calendar`` table from ``start`` to ``end`` for ``countries`` as a Spark DataFrame (see
    `calendar_frame`)."""
    frame = calendar_frame(start, end, countries)
    return spark.createDataFrame(list(frame.itertuples(index=False, name=None)), tables.spec(tables.CALENDAR).ddl)


def calendar_row(calendar: DataFrame, day: dt.date) -> dict:
    """The row of ``day`` in the ``calendar`` table as a dict (a model's season/holiday context).

    Raises `seasonrec.context.JobError` naming the table's date range when ``day`` is outside it.
    """
    from pyspark.sql import functions as F

    from seasonrec.context import JobError

    rows = calendar.where(F.col("date") == F.lit(day)).limit(1).collect()
    if not rows:
        bounds = calendar.agg(F.min("date").alias("lo"), F.max("date").alias("hi")).first()
        raise JobError(f"date {day} is not in the calendar table ({bounds['lo']} .. {bounds['hi']}); "
                       "pick a date inside it or rebuild features")
    return rows[0].asDict(recursive=True)
