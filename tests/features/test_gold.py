"""Gold tables on the shared synthetic lake: contract, dense indexes, planted seasonality, leakage."""

from __future__ import annotations

import datetime as dt

import numpy as np
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.features import gold

CONTRACT = {
    tables.BRONZE_TRANSACTIONS: ["row_hash", "source", "source_file", "invoice", "user_raw", "item_raw", "ts",
                                 "quantity", "price", "description", "category", "country", "ingested_at"],
    tables.QUARANTINE: ["source", "source_file", "reason", "raw_line", "ingested_at"],
    tables.SYNTHETIC_TRUTH: ["item_raw", "category", "is_seasonal", "season_name", "peak_week", "cold_sensitivity"],
    tables.CONTEXT_DAILY: ["date", "region", "temp_mean_c", "precipitation_mm", "sunshine_h", "temp_normal_c",
                           "anomaly_c", "anomaly_7d_c", "cold_spell", "warm_spell", "weather_known", "source"],
    tables.SILVER_INTERACTIONS: ["user_id", "item_id", "ts", "date", "week_start", "quantity", "price", "revenue",
                                 "country", "invoice", "event_month"],
    tables.SILVER_ITEMS: ["item_id", "title", "category", "price"],
    tables.CALENDAR: ["date", "week_start", "year", "week_of_year", "month", "day_of_week", "woy_sin", "woy_cos",
                      "season_north", "season_south", "is_holiday", "holiday_name", "is_festival", "festival_name",
                      "days_to_next_event", "days_since_last_event"],
    tables.ITEM_FEATURES: ["item_id", "item_index", "category", "category_index", "price_mean", "price_bucket",
                           "tokens", "token_ids", "popularity_tier", "n_purchases", "seasonality", "peak_week",
                           "seasonality_strength"],
    tables.USER_FEATURES: ["user_id", "user_index", "country", "recency_days", "frequency", "monetary",
                           "category_affinity", "season_affinity", "last_items", "bought_items", "bought_counts",
                           "bought_days_ago", "as_of"],
    tables.TRAINING_EXAMPLES: ["user_id", "user_index", "item_index", "label", "ts", "date", "split", "woy_sin",
                               "woy_cos", "season_index", "is_holiday", "days_to_next_event",
                               "days_since_last_event", "history"],
}


def test_every_table_has_the_contract_columns(feature_lake) -> None:
    for name, columns in CONTRACT.items():
        present = feature_lake.lake.read(name).columns
        assert [c for c in columns if c not in present] == [], name


def test_indexes_are_dense_and_arrays_have_fixed_length(feature_lake) -> None:
    lake = feature_lake.lake
    items = lake.read(tables.ITEM_FEATURES)
    users = lake.read(tables.USER_FEATURES)
    n_items, n_users = items.count(), users.count()
    assert n_items == 120  # every synthetic item sold at least once
    assert 250 <= n_users <= 300
    assert sorted(r[0] for r in items.select("item_index").collect()) == list(range(n_items))
    assert sorted(r[0] for r in users.select("user_index").collect()) == list(range(n_users))
    n_categories = items.select("category_index").distinct().count()
    assert n_categories == 10
    assert items.where(F.size("seasonality") != 52).count() == 0
    assert users.where(F.size("category_affinity") != n_categories).count() == 0
    assert users.where(F.size("season_affinity") != len(gold.SEASON_AFFINITY_NAMES)).count() == 0
    examples = lake.read(tables.TRAINING_EXAMPLES)
    bounds = examples.agg(F.min("item_index"), F.max("item_index"), F.min("user_index"), F.max("user_index")).first()
    assert bounds[0] >= 0 and bounds[1] < n_items and bounds[2] >= 0 and bounds[3] < n_users
    tiers = {r[0]: r[1] for r in items.groupBy("popularity_tier").count().collect()}
    assert set(tiers) == {"head", "torso", "tail"} and tiers["tail"] > tiers["head"]  # long tail
    assert items.where(F.size("token_ids") == 0).count() == 0


def test_planted_seasonal_items_are_found_with_the_right_peak(feature_lake) -> None:
    lake = feature_lake.lake
    truth = (lake.read(tables.SYNTHETIC_TRUTH).withColumnRenamed("item_raw", "item_id").drop("category")
             .withColumnRenamed("peak_week", "planted_peak"))
    items = (lake.read(tables.ITEM_FEATURES).join(truth, "item_id")
             .where(F.col("n_purchases") >= 15)
             .select("is_seasonal", "peak_week", "seasonality_strength", "planted_peak").collect())
    seasonal = [r for r in items if r["is_seasonal"]]
    staples = [r for r in items if not r["is_seasonal"]]
    assert len(seasonal) >= 8 and len(staples) >= 20

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    seasonal_strength = median([r["seasonality_strength"] for r in seasonal])
    staple_strength = median([r["seasonality_strength"] for r in staples])
    assert seasonal_strength > 2 * staple_strength, (seasonal_strength, staple_strength)

    def weeks_apart(a: int, b: int) -> int:
        return min(abs(a - b), 52 - abs(a - b))

    hits = [weeks_apart(r["peak_week"], r["planted_peak"]) <= 2 for r in seasonal]
    assert sum(hits) >= 0.8 * len(hits), [(r["peak_week"], r["planted_peak"]) for r in seasonal]


def test_repeat_buying_is_visible_in_history(feature_lake) -> None:
    positives = feature_lake.lake.read(tables.TRAINING_EXAMPLES).where("label = 1 AND size(history) > 0")
    repeat_share = positives.where(F.array_contains("history", F.col("item_index"))).count() / positives.count()
    assert repeat_share > 0.2


def test_history_never_contains_a_purchase_at_or_after_the_example(feature_lake) -> None:
    lake = feature_lake.lake
    examples = lake.read(tables.TRAINING_EXAMPLES)
    index = lake.read(tables.ITEM_FEATURES).select("item_id", "item_index")
    purchases = (lake.read(tables.SILVER_INTERACTIONS).join(index, "item_id")
                 .select("user_id", F.col("item_index").alias("h_item"), F.col("ts").alias("bought_at")))
    exploded = examples.select("user_id", "ts", "label", F.posexplode("history").alias("pos", "h_item"))
    # Each history entry must be justified by a purchase of that item strictly before the example.
    justified = (exploded.join(purchases, ["user_id", "h_item"], "left")
                 .groupBy("user_id", "ts", "label", "pos", "h_item")
                 .agg(F.min("bought_at").alias("first_bought")))
    assert exploded.count() > 1000
    assert justified.where(F.col("first_bought").isNull() | (F.col("first_bought") >= F.col("ts"))).count() == 0
    # And the most recent earlier basket is really the head of the history.
    assert examples.where("label = 1 AND size(history) > 20").count() == 0


def test_aggregate_features_ignore_data_after_the_cutoff(feature_lake) -> None:
    """Append fake purchases after the cutoff (and right after some examples): nothing before changes."""
    lake, config = feature_lake.lake, feature_lake.config
    interactions = lake.read(tables.SILVER_INTERACTIONS)
    silver_items = lake.read(tables.SILVER_ITEMS)
    calendar = lake.read(tables.CALENDAR)
    as_of = config.split.train_end
    late = (interactions.where(F.col("ts") < F.lit(as_of).cast("timestamp")).limit(500)
            .withColumn("ts", F.lit(dt.datetime(2011, 8, 2, 12)).cast("timestamp"))
            .withColumn("date", F.to_date("ts")).withColumn("invoice", F.lit("FUTURE")))
    polluted = interactions.unionByName(late)
    items_clean = gold.item_features(silver_items, interactions, as_of, config.features)
    items_polluted = gold.item_features(silver_items, polluted, as_of, config.features)
    assert items_clean.exceptAll(items_polluted).count() == 0
    n_categories = items_clean.select("category_index").distinct().count()
    users_clean = gold.user_features(interactions, items_clean, calendar, as_of, config.features, n_categories)
    users_polluted = gold.user_features(polluted, items_clean, calendar, as_of, config.features, n_categories)
    assert users_clean.exceptAll(users_polluted).count() == 0
    # The stored tables are exactly the as-of-cutoff computation.
    stored = lake.read(tables.ITEM_FEATURES)
    assert stored.select(*items_clean.columns).exceptAll(items_clean).count() == 0
    n_before = interactions.where(F.col("ts") < F.lit(as_of).cast("timestamp")).count()
    assert stored.agg(F.sum("n_purchases")).first()[0] == n_before


def test_user_features_at_each_day_are_the_cutoff_features_of_that_day_and_ignore_later_purchases(feature_lake):
    """A training example on day d reads the user as `seasonrec score` would on d: the same columns as
    `user_features` cut at d, untouched by purchases on d or later (its own one included)."""
    from seasonrec.features import silver

    lake, config = feature_lake.lake, feature_lake.config
    interactions = silver.personal(lake.read(tables.SILVER_INTERACTIONS))
    items, calendar = lake.read(tables.ITEM_FEATURES), lake.read(tables.CALENDAR)
    n_categories = items.select("category_index").distinct().count()
    days = [config.split.train_end - dt.timedelta(days=90), config.split.train_end - dt.timedelta(days=20)]
    buyers = {day: [r["user_id"] for r in interactions.where(F.col("date") == F.lit(day)).select("user_id")
                    .distinct().limit(8).collect()] for day in days}
    cutoffs = lake.spark.createDataFrame([(u, day) for day, users in buyers.items() for u in users],
                                         "user_id string, cutoff_date date")
    columns = ["country", "recency_days", "frequency", "monetary", "category_affinity", "season_affinity"]
    at_days = gold.user_features_at(interactions, items, calendar, cutoffs, config.features, n_categories)
    got = {(r["user_id"], r["cutoff_date"]): r for r in at_days.collect()}
    assert len(got) == sum(len(users) for users in buyers.values()) >= 8
    for day, users in buyers.items():
        cut = gold.user_features(interactions, items, calendar, day, config.features, n_categories)
        for expected in cut.where(F.col("user_id").isin(users)).collect():
            row = got[(expected["user_id"], day)]
            assert [row[c] for c in columns[:3]] == [expected[c] for c in columns[:3]]
            for c in columns[3:]:  # sums and shares: the same rows, maybe added in another order
                assert np.allclose(row[c], expected[c], rtol=1e-9, atol=1e-12), c
    # Purchases on each cutoff day and later (the example's own) change nothing.
    later = (interactions.join(cutoffs, "user_id").where(F.col("date") >= F.col("cutoff_date"))
             .drop("cutoff_date").withColumn("quantity", F.col("quantity") * 5)
             .withColumn("revenue", F.col("revenue") * 5).withColumn("invoice", F.lit("LATER")))
    polluted = {(r["user_id"], r["cutoff_date"]): r for r in gold.user_features_at(
        interactions.unionByName(later), items, calendar, cutoffs, config.features, n_categories).collect()}
    assert later.count() > 0 and set(polluted) == set(got)
    for key, row in got.items():
        assert [polluted[key][c] for c in columns[:3]] == [row[c] for c in columns[:3]]
        for c in columns[3:]:
            assert np.allclose(polluted[key][c], row[c], rtol=1e-9, atol=1e-12), c


def test_splits_labels_and_negatives(feature_lake) -> None:
    lake, config = feature_lake.lake, feature_lake.config
    examples = lake.read(tables.TRAINING_EXAMPLES)
    split = config.split
    bounds = {r["split"]: (r["lo"], r["hi"]) for r in
              examples.groupBy("split").agg(F.min("ts").alias("lo"), F.max("ts").alias("hi")).collect()}
    assert set(bounds) == {"train", "validation", "test"}
    assert bounds["train"][1].date() < split.train_end <= bounds["validation"][0].date()
    assert bounds["validation"][1].date() < split.validation_end <= bounds["test"][0].date()
    assert bounds["test"][1].date() < split.test_end
    assert bounds["train"][0].date() < dt.date(2010, 6, 1)  # a full prior year is there
    counts = {r["label"]: r["count"] for r in examples.groupBy("label").count().collect()}
    ratio = counts[0] / counts[1]
    assert 0.8 * config.features.negatives_per_positive <= ratio <= config.features.negatives_per_positive
    positives = examples.where("label = 1").select("user_index", "ts", "item_index")
    clashes = examples.where("label = 0").join(positives, ["user_index", "ts", "item_index"])
    assert clashes.count() == 0
    assert examples.where(F.col("season_index").isNull() | F.col("woy_sin").isNull()).count() == 0


def test_user_features_are_as_of_the_cutoff(feature_lake) -> None:
    lake, config = feature_lake.lake, feature_lake.config
    users = lake.read(tables.USER_FEATURES)
    assert users.where(F.col("as_of") != F.lit(config.split.train_end)).count() == 0
    active = users.where("frequency > 0")
    assert active.count() > 200
    assert active.where("recency_days < 1").count() == 0
    sums = active.select(F.aggregate("category_affinity", F.lit(0.0), lambda a, x: a + x).alias("s")).collect()
    assert all(abs(r["s"] - 1.0) < 1e-6 for r in sums)
    assert active.where(F.size("last_items") == 0).count() == 0


def test_bought_summary_is_exact_and_cut_at_the_date(feature_lake) -> None:
    from seasonrec.features.as_of import user_features_as_of

    lake, config = feature_lake.lake, feature_lake.config
    items = lake.read(tables.ITEM_FEATURES).select("item_id", "item_index")
    silver = lake.read(tables.SILVER_INTERACTIONS).join(items, "item_id")
    later = config.split.validation_end
    for as_of, users in ((config.split.train_end, lake.read(tables.USER_FEATURES)),
                         (later, user_features_as_of(lake, config, later))):
        expected = {(r["user_id"], r["item_index"]): (r["n"], r["days"]) for r in (
            silver.where(F.col("ts") < F.lit(as_of).cast("timestamp"))
            .groupBy("user_id", "item_index")
            .agg(F.countDistinct("ts").alias("n"), F.datediff(F.lit(as_of), F.max("date")).alias("days"))
            .collect())}
        rows = users.select("user_id", "bought_items", "bought_counts", "bought_days_ago", "as_of").collect()
        assert {r["as_of"] for r in rows} == {as_of}
        got = {}
        for r in rows:
            assert len(r["bought_items"]) <= config.features.bought_items_max
            assert list(r["bought_counts"]) == sorted(r["bought_counts"], reverse=True)  # most bought first
            for item, n, days in zip(r["bought_items"], r["bought_counts"], r["bought_days_ago"], strict=True):
                got[(r["user_id"], item)] = (n, days)
        assert got and set(got) <= set(expected)
        assert all(got[key] == expected[key] for key in got)
        assert min(days for _, days in got.values()) >= 1  # nothing from the cutoff day or later
        per_user = {u for u, _ in expected}
        capped = {u for u in per_user if sum(1 for v, _ in expected if v == u) > config.features.bought_items_max}
        assert {u for u, _ in got} == per_user and sum(1 for k in expected if k[0] not in capped) == sum(
            1 for k in got if k[0] not in capped)
    # The later cut sees the validation month: more purchases than the training cut.
    assert user_features_as_of(lake, config, later).agg(F.sum(F.aggregate(
        "bought_counts", F.lit(0), lambda a, x: a + x))).first()[0] > lake.read(tables.USER_FEATURES).agg(
        F.sum(F.aggregate("bought_counts", F.lit(0), lambda a, x: a + x))).first()[0]
