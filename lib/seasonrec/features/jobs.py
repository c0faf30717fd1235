"""`seasonrec features`: bronze -> silver (interactions, items, calendar) -> gold (items, users, examples)."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec.config import SplitConfig

DESCRIPTION = ("silver + gold: interactions, items, calendar, weather context, item/user features, leak-free "
               "training examples")


def _moment(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date or time (YYYY-MM-DD[THH:MM:SS])") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``seasonrec features`` options: ``--since`` (incremental silver rebuild from that UTC date or time)."""
    parser.add_argument("--since", type=_moment, default=None,
                        help="incremental: rebuild only silver months touched by bronze rows ingested at/after "
                             "this UTC date or time (YYYY-MM-DD[THH:MM:SS]); gold is always rebuilt from silver")


def _silver_interactions(ctx, since: dt.datetime | None, salt: str) -> dict[str, Any]:
    from seasonrec import tables
    from seasonrec.context import JobError
    from seasonrec.features import silver

    config = ctx.config.features
    lake = ctx.lake
    scheme = {silver.PSEUDONYM_PROPERTY: silver.PSEUDONYM_SCHEME}
    bronze = lake.read(tables.BRONZE_TRANSACTIONS)
    if since is not None and lake.exists(tables.SILVER_INTERACTIONS):
        problem = silver.pseudonym_scheme_problem(lake.properties(tables.SILVER_INTERACTIONS))
        if problem:
            raise JobError(problem)
        new_rows = bronze.where(F.col("ingested_at") >= F.lit(since).cast("timestamp"))
        first = new_rows.agg(F.min("ts").alias("first")).first()["first"]
        if first is None:
            return {"mode": "incremental", "months_rebuilt": 0}
        # Rebuild every month from the earliest touched one on, so returns in a new month still
        # net against purchases of that month and later.
        month_start = dt.datetime(first.year, first.month, 1)
        rows = silver.interactions(bronze.where(F.col("ts") >= F.lit(month_start)), config, salt)
        months = [r["event_month"] for r in rows.select("event_month").distinct().collect()]
        lake.write(rows, tables.SILVER_INTERACTIONS, partition_by=["event_month"], replace_partitions=True,
                   commit_info=ctx.commit_info(), properties=scheme)
        return {"mode": "incremental", "months_rebuilt": len(months), "from_month": month_start.strftime("%Y-%m")}
    rows = silver.interactions(bronze, config, salt)
    lake.write(rows, tables.SILVER_INTERACTIONS, partition_by=["event_month"], commit_info=ctx.commit_info(),
               properties=scheme)
    return {"mode": "full"}


def run(ctx, args: argparse.Namespace) -> dict[str, Any]:
    """Build silver (interactions, items), the calendar, the daily weather context and gold (item features, user
    features, training examples) from bronze.

    Returns the summary: silver (the incremental rebuild), weather, as_of, row counts per table (``rows``),
    examples_by_split_label, popularity_tiers, n_categories.
    """
    from seasonrec import tables
    from seasonrec.context import JobError
    from seasonrec.features import calendar as calendar_mod
    from seasonrec.features import silver, weather

    lake = ctx.lake
    config = ctx.config.features
    salt = silver.salt(config, ctx.config.env)  # before any work: outside env local/test it must be set
    if not lake.exists(tables.BRONZE_TRANSACTIONS):
        raise JobError(f"{tables.BRONZE_TRANSACTIONS} does not exist {lake.where}; run `seasonrec ingest` first")
    summary: dict[str, Any] = {}
    with ctx.step("silver interactions"):
        summary["silver"] = _silver_interactions(ctx, args.since, salt)
    bronze = lake.read(tables.BRONZE_TRANSACTIONS)
    with ctx.step("silver items"):
        lake.write(silver.items(bronze, config), tables.SILVER_ITEMS, commit_info=ctx.commit_info())
    interactions = lake.read(tables.SILVER_INTERACTIONS)
    start, end = _calendar_span(interactions, ctx.config.split)
    with ctx.step("calendar"):
        lake.write(calendar_mod.calendar(ctx.spark, start, end, sorted(set(config.countries))), tables.CALENDAR,
                   commit_info=ctx.commit_info())
    with ctx.step(f"weather context ({ctx.config.weather.source})"):
        summary["weather"] = weather.build_context(ctx, (start, end))
    summary.update(_gold_tables(ctx, interactions, summary["weather"].get("rows", 0)))
    return summary


def _calendar_span(interactions: DataFrame, split: SplitConfig) -> tuple[dt.date, dt.date]:
    """The calendar's first and last day: from January of the first data (or training-end) year to December
    of the year after the data (or test) ends, so forecasts have future days. Raises JobError when
    ``interactions`` (silver) is empty."""
    from seasonrec.context import JobError

    bounds = interactions.agg(F.min("date").alias("lo"), F.max("date").alias("hi")).first()
    if bounds["lo"] is None:
        raise JobError("silver_interactions is empty: every bronze row was filtered (non-product codes, "
                       "fully returned, zero price)")
    return (dt.date(min(bounds["lo"], split.train_end).year, 1, 1),
            dt.date(max(bounds["hi"], split.test_end).year + 1, 12, 31))


def _gold_tables(ctx, interactions: DataFrame, weather_rows: int) -> dict[str, Any]:
    """Write gold item features, user features and training examples as of ``split.train_end`` from silver
    ``interactions`` and the calendar; returns the summary's as_of, rows (every table built by `run`;
    ``weather_rows``: the context table's), examples_by_split_label, popularity_tiers and n_categories."""
    from seasonrec import tables
    from seasonrec.features import gold, silver

    lake, config, split = ctx.lake, ctx.config.features, ctx.config.split
    calendar = lake.read(tables.CALENDAR)
    items = lake.read(tables.SILVER_ITEMS)
    as_of = split.train_end
    with ctx.step("gold item features"):
        lake.write(gold.item_features(items, interactions, as_of, config), tables.ITEM_FEATURES,
                   commit_info=ctx.commit_info())
    item_features = lake.read(tables.ITEM_FEATURES)
    n_items = item_features.count()
    n_categories = item_features.select("category_index").distinct().count()
    with ctx.step("gold user features"):
        lake.write(gold.user_features(silver.personal(interactions), item_features, calendar, as_of, config,
                                      n_categories),
                   tables.USER_FEATURES, commit_info=ctx.commit_info())
    user_features = lake.read(tables.USER_FEATURES)
    with ctx.step("gold training examples"):
        examples = gold.training_examples(silver.personal(interactions), item_features, user_features, calendar,
                                          split, config, n_items)
        lake.write(examples, tables.TRAINING_EXAMPLES, partition_by=["split"], commit_info=ctx.commit_info())
    examples = lake.read(tables.TRAINING_EXAMPLES)
    by_split = {f"{r['split']}/{r['label']}": r["count"]
                for r in examples.groupBy("split", "label").count().collect()}
    tiers = {r["popularity_tier"]: r["count"] for r in item_features.groupBy("popularity_tier").count().collect()}
    return {
        "as_of": as_of.isoformat(),
        "rows": {
            tables.SILVER_INTERACTIONS: interactions.count(),
            "silver_guest_rows": interactions.where(F.col("user_id").isNull()).count(),
            tables.SILVER_ITEMS: items.count(),
            tables.CALENDAR: calendar.count(),
            tables.CONTEXT_DAILY: weather_rows,
            tables.ITEM_FEATURES: n_items,
            tables.USER_FEATURES: user_features.count(),
            tables.TRAINING_EXAMPLES: sum(by_split.values()),
        },
        "examples_by_split_label": dict(sorted(by_split.items())),
        "popularity_tiers": tiers,
        "n_categories": n_categories,
    }
