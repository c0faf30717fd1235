"""The Spark synthetic generator: reproducible, scales with n_events, planted peaks where promised."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from seasonrec.config import SyntheticConfig
from seasonrec.data import synthetic


def test_generator_is_reproducible_whatever_the_partitioning(spark) -> None:
    config = SyntheticConfig(seed=3, n_users=50, n_items=30, n_events=1500, partitions=1)
    one, truth = synthetic.events(spark, config)
    three, _ = synthetic.events(spark, config.model_copy(update={"partitions": 3}))
    rows = one.collect()
    assert sorted(rows) == sorted(three.collect())
    purchases = [r for r in rows if not r["invoice"].startswith("C")]
    assert len(purchases) == 1500  # every event is one purchase line
    cancellations = [r for r in rows if r["invoice"].startswith("C")]
    assert 0 < len(cancellations) < 0.1 * len(purchases)
    assert all(float(r["quantity"]) < 0 for r in cancellations)
    days = sorted(dt.date.fromisoformat(r["timestamp"][:10]) for r in rows)
    assert config.start <= days[0] < dt.date(2010, 1, 15) and dt.date(2011, 11, 1) < days[-1] <= config.end
    assert truth.count() == 30 and truth.where("is_seasonal").count() >= 5
    other_seed, _ = synthetic.events(spark, config.model_copy(update={"seed": 4}))
    assert len(set(other_seed.collect()) - set(rows)) > 1000


def test_planted_calendar_effects(spark) -> None:
    config = SyntheticConfig(seed=5, n_users=200, n_items=80, n_events=20000)
    events = synthetic.events(spark, config)[0].cache()
    daily = (events.where(~F.col("invoice").startswith("C"))
             .withColumn("date", F.to_date(F.substring("timestamp", 1, 10)))
             .groupBy("date", "country").count().cache())

    def per_day(where: str) -> float:
        rows = daily.where(where).agg(F.sum("count").alias("n"), F.countDistinct("date").alias("d")).first()
        return rows["n"] / rows["d"]

    november_december = per_day("month(date) IN (11, 12) AND year(date) = 2010")
    june_july = per_day("month(date) IN (6, 7) AND year(date) = 2010")
    assert november_december > 1.4 * june_july  # the Nov-Dec peak
    singles_day_cn = daily.where("date = '2010-11-11' AND country = 'CN'").first()["count"]
    cn_november = per_day("country = 'CN' AND month(date) = 11 AND year(date) = 2010 AND day(date) != 11")
    assert singles_day_cn > 4 * cn_november
    christmas = events.where(F.col("category") == "christmas_decor").withColumn("m", F.substring("timestamp", 6, 2))
    in_season = christmas.where("m IN ('11', '12')").count()
    assert in_season > 0.6 * christmas.count()
