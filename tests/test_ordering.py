"""global_order / ntile give exactly the values of the unpartitioned windows they replace."""

from __future__ import annotations

import random

import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

from seasonrec.core.ordering import POSITION, SUM_BEFORE, global_order, ntile


@pytest.fixture(scope="module")
def frame(spark):
    rng = random.Random(3)
    rows = []
    for i in range(997):
        count = rng.choice([None, *range(6)])  # many ties and some nulls on the first key
        price = rng.choice([None, 0.0, -1.5, 2.25, float(rng.randint(0, 9))])
        rows.append((f"id{i:04d}" if i % 50 else None if i == 0 else f"é{i}", count, price, rng.randint(0, 40)))
    return spark.createDataFrame(rows, "item_id string, n long, price double, volume long").repartition(7)


@pytest.mark.parametrize(("rows_per_bucket", "local_rows"), [(9, 0), (100, 0), (500_000, 0), (500_000, 20_000)])
@pytest.mark.parametrize("order", [
    [("n", True), ("item_id", False)],
    [("n", False), ("price", True), ("item_id", True)],
    [("price", False), ("item_id", False)],
    [("item_id", False)],
])
def test_positions_and_running_sums_equal_the_unpartitioned_window(frame, order, rows_per_bucket,
                                                                  local_rows) -> None:
    """Sampled cuts (local_rows=0) into 2..111 buckets, and the one-collect path of small frames."""
    window = Window.orderBy(*[F.col(name).desc() if desc else F.col(name).asc() for name, desc in order])
    expected = frame.select(
        "item_id", (F.row_number().over(window) - 1).alias("pos"),
        F.coalesce(F.sum("volume").over(window.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0)).alias("before"),
        *[F.ntile(k).over(window).alias(f"tile{k}") for k in (5, 10, 996, 1500)])
    ordered = global_order(frame, order, sum_col="volume", rows_per_bucket=rows_per_bucket, local_rows=local_rows)
    actual = ordered.frame.select(
        "item_id", F.col(POSITION).alias("pos"), F.col(SUM_BEFORE).alias("before"),
        *[ntile(F.col(POSITION), ordered.rows, k).alias(f"tile{k}") for k in (5, 10, 996, 1500)])
    assert ordered.rows == 997
    assert ordered.total == frame.agg(F.sum("volume")).first()[0]
    assert actual.schema["pos"].dataType.simpleString() == "bigint"
    assert sorted(actual.collect(), key=lambda r: r.pos) == sorted(expected.collect(), key=lambda r: r.pos)


def test_no_single_partition_window_in_the_plan(frame) -> None:
    plan = global_order(frame, [("item_id", False)], rows_per_bucket=100, local_rows=0).frame._jdf.queryExecution()
    physical = plan.executedPlan().toString()
    assert "Window [" in physical and "_order_bucket" in physical.split("Window [", 1)[1].split("\n", 1)[0]


def test_tiny_frames_and_ties(spark) -> None:
    empty = spark.createDataFrame([], "k string")
    assert global_order(empty, [("k", False)]).frame.count() == 0
    assert global_order(empty, [("k", False)], local_rows=0).frame.count() == 0
    ties = spark.createDataFrame([("a", 1), ("b", 2), ("b", 3), ("b", 4), ("c", 5)], "k string, v long")
    ordered = global_order(ties, [("k", False)], sum_col="v")  # not a total order: ties share a bucket
    rows = sorted((r.k, r[POSITION], r[SUM_BEFORE]) for r in ordered.frame.collect())
    assert [(k, p) for k, p, _ in rows][0] == ("a", 0) and rows[-1][:2] == ("c", 4) and rows[-1][2] == 10
    assert sorted(p for _, p, _ in rows) == [0, 1, 2, 3, 4]
    one = global_order(spark.createDataFrame([("a",)], "k string"), [("k", False)], sum_col=None)
    assert [tuple(r) for r in one.frame.collect()] == [("a", 0)]


def test_dense_index_equals_the_old_row_number_window(spark) -> None:
    """features.gold.dense_index (user and item indexes) numbers ids exactly as
    ``row_number().over(Window.orderBy(id)) - 1`` did, duplicates and a null id included."""
    from seasonrec.features.gold import dense_index

    rng = random.Random(5)
    ids = [f"U{rng.randint(0, 30_000):06d}" for _ in range(25_000)] + ["é", "", None, None]
    events = spark.createDataFrame([(i,) for i in ids], "user_id string").repartition(5)
    old = (events.select("user_id").distinct()
           .withColumn("user_index", F.row_number().over(Window.orderBy("user_id")) - 1))
    new = dense_index(events, "user_id", "user_index")
    assert new.schema["user_index"].dataType.simpleString() == "int"
    expected = sorted((r.user_id or "\0null", r.user_index) for r in old.collect())
    assert sorted((r.user_id or "\0null", r.user_index) for r in new.collect()) == expected
    assert [index for _, index in sorted(expected, key=lambda pair: pair[1])] == list(range(len(expected)))


def test_nan_ties_and_non_integral_sums(spark) -> None:
    rows = [(float("nan"), i) for i in range(3)] + [(1.0, 3), (None, 4), (float("nan"), 5)]
    frame = spark.createDataFrame(rows, "x double, v long")
    window = Window.orderBy(F.col("x").asc())
    expected = sorted(r[0] for r in frame.select((F.row_number().over(window) - 1).alias("p")).collect())
    ordered = global_order(frame, [("x", False)], sum_col="v")  # not total: NaN ties share a bucket
    assert sorted(r[POSITION] for r in ordered.frame.collect()) == expected
    assert {r.v: r[POSITION] for r in ordered.frame.collect()}[4] == 0 and ordered.total == 15
    with pytest.raises(ValueError, match="integral"):
        global_order(frame, [("v", False)], sum_col="x")
