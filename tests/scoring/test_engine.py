"""The Spark UDF against brute force, real MLlib ALS, unseen users, filters, and the Delta job."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.core.topk import brute_force_top_k
from seasonrec.scoring.engine import ScoringOptions, build_recommendations, recommend
from seasonrec.scoring.jobs import score_and_write
from seasonrec.scoring.models import ALSFactorsModel, ItemBiasReranker
from support import as_table

N_USERS, N_ITEMS, DIM = 40, 60, 6


def _factors_model(seed: int = 0) -> ALSFactorsModel:
    rng = np.random.default_rng(seed)
    return ALSFactorsModel(np.arange(N_USERS) * 3, rng.standard_normal((N_USERS, DIM)).astype(np.float32),
                           np.arange(N_ITEMS) + 1000, rng.standard_normal((N_ITEMS, DIM)).astype(np.float32),
                           model_version="factors-v1")


def _users(spark, ids):
    return spark.createDataFrame(pd.DataFrame({"user_id": np.asarray(ids, np.int64), "country": "GB"}))


def _collect(df) -> dict[int, list[tuple[int, int, float]]]:
    lists: dict[int, list] = {}
    for row in sorted(df.collect(), key=lambda r: (r["user_id"], r["rank"])):  # one action: exact counters
        lists.setdefault(row["user_id"], []).append((row["rank"], row["item_id"], row["score"]))
    return lists


def test_udf_top_k_equals_brute_force_numpy(spark):
    model = _factors_model()
    options = ScoringOptions(top_k=7, user_block_size=6, partitions=3)  # several blocks and partitions
    run = build_recommendations(spark, model, _users(spark, np.arange(N_USERS) * 3), {"season_north": "summer"},
                                options)
    got = _collect(run.recommendations)
    expected = brute_force_top_k(model.user_matrix(pd.DataFrame({"user_id": np.arange(N_USERS) * 3}), {}),
                                 model.item_matrix, 7)
    assert len(got) == N_USERS
    for user_row, ranked in enumerate(expected):
        rows = got[user_row * 3]
        assert [r for r, _, _ in rows] == list(range(1, 8))
        assert [i for _, i, _ in rows] == [1000 + c for c, _ in ranked]
        np.testing.assert_allclose([s for _, _, s in rows], [s for _, s in ranked], rtol=1e-5, atol=1e-5)
    stats = run.worker_stats()
    assert stats["users"] == N_USERS and stats["unseen_users"] == 0
    assert stats["model_loads"] <= stats["tasks"] and stats["max_worker_rss_mb"] > 0


def test_same_lists_as_mllib_als_recommend_for_all_users(spark):
    from pyspark.ml.recommendation import ALS

    rng = np.random.default_rng(1)
    ratings = spark.createDataFrame(pd.DataFrame({"user": rng.integers(0, 30, 600), "item": rng.integers(0, 50, 600),
                                                  "rating": rng.random(600).astype(np.float64)}))
    als = ALS(rank=5, maxIter=3, implicitPrefs=True, seed=3, userCol="user", itemCol="item").fit(ratings)
    model = ALSFactorsModel.from_als(als)
    users = spark.createDataFrame(pd.DataFrame({"user_id": np.sort(model._user_ids).astype(np.int64)}))
    ours = _collect(build_recommendations(spark, model, users, {}, ScoringOptions(top_k=5)).recommendations)
    theirs = {row["user"]: row["recommendations"] for row in als.recommendForAllUsers(5).collect()}
    assert set(ours) == set(theirs)
    for user, recs in theirs.items():
        np.testing.assert_allclose([s for _, _, s in ours[user]], [r["rating"] for r in recs], rtol=1e-4, atol=1e-5)
        assert [i for _, i, _ in ours[user]] == [r["item"] for r in recs]


def test_unseen_users_are_scored_and_counted(spark):
    model = _factors_model()
    model.history_key = "last_items"  # unseen users are folded in from the items they bought
    users = spark.createDataFrame(pd.DataFrame({"user_id": np.array([0, 3, 9999, 12345], np.int64),
                                                "last_items": [[1001], [], [1005, 1006], []]}))
    run = build_recommendations(spark, model, users, {}, ScoringOptions(top_k=4, partitions=2))
    got = _collect(run.recommendations)
    assert sorted(got) == [0, 3, 9999, 12345] and all(len(rows) == 4 for rows in got.values())
    assert run.worker_stats()["unseen_users"] == 2
    folded = model.item_matrix[[5, 6]].mean(axis=0)  # history fold-in for user 9999
    assert got[9999][0][1] == 1000 + int(np.argmax(model.item_matrix @ folded))


def test_filters_sellable_exclude_bought_category_cap_and_rerank(spark):
    base = _factors_model()
    bias = np.linspace(0, 3, N_ITEMS).astype(np.float32)
    model = ItemBiasReranker(base, bias)
    sellable = {1000 + i for i in range(0, N_ITEMS, 2)}
    categories = {1000 + i: f"c{i % 3}" for i in range(N_ITEMS)}
    users = _users(spark, [0, 3])
    user_vectors = base.user_matrix(pd.DataFrame({"user_id": [0, 3]}), {})
    best_first_stage = brute_force_top_k(user_vectors, base.item_matrix, N_ITEMS)
    bought_item = next(1000 + c for c, _ in best_first_stage[0] if 1000 + c in sellable)
    bought = users.sparkSession.createDataFrame(pd.DataFrame({"user_id": [0], "item_id": [bought_item]}))
    options = ScoringOptions(top_k=6, rerank_candidates=20, max_per_category=2)
    run = build_recommendations(spark, model, users, {}, options, sellable_item_ids=sellable, bought_df=bought,
                                item_categories=categories, catalog_item_ids=[*categories, 777])
    got = _collect(run.recommendations)
    for user_row, user in enumerate([0, 3]):
        candidates = [(1000 + c, s) for c, s in best_first_stage[user_row]
                      if 1000 + c in sellable and not (user == 0 and 1000 + c == bought_item)][:20]
        final = sorted(((s + bias[i - 1000], i) for i, s in candidates), key=lambda t: (-t[0], t[1]))
        taken, expected = {}, []
        for _, item in final:
            if taken.get(categories[item], 0) < 2:
                expected.append(item)
                taken[categories[item]] = taken.get(categories[item], 0) + 1
        assert [i for _, i, _ in got[user]] == expected[:6]
    assert bought_item not in [i for _, i, _ in got[0]]
    assert run.facts["items_without_embedding"] == 1 and run.facts["items_without_embedding_sample"] == [777]
    assert run.facts["items_scored"] == N_ITEMS // 2 and run.facts["reranked"]


def _tiny_lake(ctx) -> None:
    spark, lake = ctx.spark, ctx.lake
    days = pd.date_range("2011-06-01", "2011-12-31", freq="D")
    season = ["winter" if d.month in (12, 1, 2) else "summer" if d.month in (6, 7, 8) else "autumn" for d in days]
    calendar = pd.DataFrame({"date": days.date, "week_of_year": days.isocalendar().week.astype(int).to_numpy(),
                             "season_north": season, "season_south": season, "is_holiday": False})
    lake.write(as_table(spark.createDataFrame(calendar), tables.CALENDAR), tables.CALENDAR)
    items = pd.DataFrame({"item_id": [str(1000 + i) for i in range(N_ITEMS)] + ["9999"],
                          "category": [f"c{i % 3}" for i in range(N_ITEMS + 1)]})
    lake.write(as_table(spark.createDataFrame(items), tables.ITEM_FEATURES), tables.ITEM_FEATURES)
    catalogue = items.assign(title=[f"ITEM {i} TITLE" for i in items["item_id"]], price=1.25)
    lake.write(as_table(spark.createDataFrame(catalogue), tables.SILVER_ITEMS), tables.SILVER_ITEMS)
    sales = pd.DataFrame({"user_id": [0, 3, 6] * 10, "item_id": [str(1000 + i) for i in range(30)],
                          "date": [dt.date(2011, 6, 10)] * 30})
    sales_df = spark.createDataFrame(sales).withColumn("event_month", F.lit("2011-06"))
    lake.write(as_table(sales_df, tables.SILVER_INTERACTIONS), tables.SILVER_INTERACTIONS)
    users = pd.DataFrame({"user_id": np.arange(N_USERS, dtype=np.int64) * 3, "last_items": [[]] * N_USERS})
    lake.write(as_table(spark.createDataFrame(users, "user_id long, last_items array<string>"), tables.USER_FEATURES),
               tables.USER_FEATURES)


def _string_item_model() -> ALSFactorsModel:
    base = _factors_model()
    # String ids on both sides, as silver_interactions and gold_user_features hold them.
    return ALSFactorsModel(np.array([str(u) for u in base._user_ids], object), base._user_factors,
                           np.array([str(i) for i in base.item_ids], object),
                           base.item_matrix, model_version="factors-v1")


def test_job_writes_partition_and_rerun_replaces_it(job_context):
    ctx = job_context("score", "scoring.top_k=5", "scoring.sellable_weeks=8")
    _tiny_lake(ctx)
    first = score_and_write(ctx, _string_item_model(), "2011-07-15")
    assert first["rows"] == N_USERS * 5 and first["users_scored"] == N_USERS and first["items_scored"] == 30
    assert first["items_without_embedding"] == 1 and first["users_without_recommendations"] == 0
    other = score_and_write(job_context("score", "scoring.top_k=5", "scoring.sellable_weeks=0"),
                            _string_item_model(), "2011-07-16")
    assert other["items_scored"] == N_ITEMS
    rerun_ctx = job_context("score", "scoring.top_k=5", "scoring.sellable_weeks=8")
    score_and_write(rerun_ctx, _string_item_model(), "2011-07-15")
    table = ctx.lake.read(tables.RECOMMENDATIONS)
    by_date = {str(r["context_date"]): (r["n"], r["runs"]) for r in
               table.groupBy("context_date").agg(F.count("*").alias("n"),
                                                 F.collect_set("run_id").alias("runs")).collect()}
    other_run = table.where("context_date = '2011-07-16'").first()["run_id"]
    assert by_date == {"2011-07-15": (N_USERS * 5, [rerun_ctx.run_id]), "2011-07-16": (N_USERS * 5, [other_run])}
    assert other_run not in (ctx.run_id, rerun_ctx.run_id)
    assert table.columns == list(tables.spec(tables.RECOMMENDATIONS).column_names)
    assert table.where("title IS NULL OR price IS NULL OR reason IS NULL OR buy_again IS NULL").count() == 0
    assert table.where(F.col("model_version") != "factors-v1").count() == 0
    # No users to score: the job fails and the date keeps its previous lists.
    from seasonrec.context import JobError

    empty_ctx = job_context("score", "scoring.top_k=5", "scoring.sellable_weeks=8")
    no_users = ctx.lake.read(tables.USER_FEATURES).limit(0)
    with pytest.raises(JobError, match="produced no recommendations"):
        score_and_write(empty_ctx, _string_item_model(), "2011-07-15", users_df=no_users)
    after = ctx.lake.read(tables.RECOMMENDATIONS).where("context_date = '2011-07-15'")
    assert after.count() == N_USERS * 5 and {r["run_id"] for r in after.collect()} == {rerun_ctx.run_id}


def test_recommend_api_and_bad_date(job_context):
    from seasonrec.context import JobError

    ctx = job_context("evaluate", "scoring.sellable_weeks=0")
    _tiny_lake(ctx)
    df = recommend(ctx, _string_item_model(), None, "2011-12-20", 3)
    assert df.columns == ["user_id", "rank", "item_id", "score"] and df.count() == N_USERS * 3
    with pytest.raises(JobError, match="not in the calendar"):
        recommend(ctx, _string_item_model(), None, "2030-01-01", 3)


def test_recommendations_carry_title_reason_and_buy_again(job_context):
    """The written rows say what the item is and why it is there; `seasonrec show` prints them."""
    from deltalake import DeltaTable

    from seasonrec.features.item_neighbours import ItemNeighbours
    from seasonrec.show import show

    ctx = job_context("score", "scoring.top_k=5", "scoring.sellable_weeks=0")
    _tiny_lake(ctx)
    model = _string_item_model()
    first = brute_force_top_k(model.user_matrix(pd.DataFrame({"user_id": ["0"]}), {}), model.item_matrix, 5)[0]
    top = [c for c, _ in first]
    recent, older = next(c for c in range(N_ITEMS) if c not in top), next(c for c in reversed(range(N_ITEMS))
                                                                           if c not in top)
    neighbours = np.full((N_ITEMS, 2), -1, np.int64)
    neighbours[recent] = [top[1], top[0]]  # top[0] is also bought: re-buy comes first
    neighbours[older] = [top[1], -1]  # also a neighbour of an older recent item: the most recent one is named
    model.copurchase = ItemNeighbours(neighbours, np.ones((N_ITEMS, 2), np.float32))
    lift = np.zeros((N_ITEMS, 52), np.float32)
    lift[top[2], 27] = 0.8  # 2011-07-15 is in ISO week 28
    lift[top[3], 10] = 0.8  # in season in March, not in July
    model.weights = {"season_lift": lift}
    users = pd.DataFrame({"user_id": ["0", "3"], "bought_items": [[top[0]], []],
                          "last_items": [[recent, older], []]})
    users_df = as_table(ctx.spark.createDataFrame(users, "user_id string, bought_items array<int>, "
                                                         "last_items array<int>"), tables.USER_FEATURES)
    score_and_write(ctx, model, "2011-07-15", users_df=users_df)
    rows = {(r["user_id"], r["rank"]): r for r in ctx.lake.read(tables.RECOMMENDATIONS).collect()}
    mine = [rows[("0", rank)] for rank in range(1, 6)]
    assert [r["item_id"] for r in mine] == [str(1000 + c) for c in top]
    assert [r["reason"] for r in mine] == ["re-buy", f"similar to ITEM {1000 + recent} TITLE", "in season",
                                          "popular now", "popular now"]
    assert [r["title"] for r in mine] == [f"ITEM {1000 + c} TITLE" for c in top]
    assert {r["category"] for r in mine} == {f"c{c % 3}" for c in top} and {r["price"] for r in mine} == {1.25}
    # buy_again is every purchase before the date (silver), not only the purchase summary given to the model
    bought_before = {("0", str(1000 + i)) for i in range(0, 30, 3)} | {("3", str(1000 + i)) for i in range(1, 30, 3)}
    assert all(r["buy_again"] == ((u, r["item_id"]) in bought_before) for (u, _), r in rows.items())
    assert any(r["buy_again"] for r in rows.values()) and not all(r["buy_again"] for r in rows.values())
    assert {r["reason"] for (u, _), r in rows.items() if u == "3"} <= {"in season", "popular now"}
    fields = {f.name: f.nullable for f in DeltaTable(ctx.lake.path(tables.RECOMMENDATIONS)).schema().fields}
    assert not any(fields[c] for c in ("context_date", "user_id", "rank", "item_id", "reason", "buy_again"))

    lines = show(ctx.lake, tables.RECOMMENDATIONS, limit=5).splitlines()
    header = lines[0].split()
    assert header[:9] == ["user_id", "rank", "item_id", "score", "title", "category", "price", "reason", "buy_again"]
    assert len(lines) == 8 and lines[-1] == "(5 rows of recommendations; more match, raise --limit)"
    assert f"ITEM {1000 + top[0]} TITLE" in lines[2] and "re-buy" in lines[2]
    assert f"similar to ITEM {1000 + recent} TITLE" in lines[3]


def test_an_older_recommendations_table_is_refused_not_silently_narrowed(job_context, monkeypatch):
    """delta-rs would commit the new partition under the old schema and drop title, reason, ... on read."""
    import seasonrec.lake as lake_module
    from seasonrec.context import JobError

    ctx = job_context("score", "scoring.top_k=5", "scoring.sellable_weeks=0")
    _tiny_lake(ctx)
    old = ctx.spark.createDataFrame([("0", 1, "1000", 1.0, "v0", dt.date(2011, 7, 1), "old")],
                                    "user_id string, rank int, item_id string, score double, model_version string, "
                                    "context_date date, run_id string")
    with monkeypatch.context() as patch:  # written as the job wrote it before the readable columns
        patch.setattr(lake_module, "check_schema", lambda *args: None)
        ctx.lake.write(old, tables.RECOMMENDATIONS)
    version = ctx.lake.version(tables.RECOMMENDATIONS)
    with pytest.raises(JobError, match=r"has the columns of an older seasonrec \(missing \['title', 'category'"):
        score_and_write(ctx, _string_item_model(), "2011-07-15")
    assert ctx.lake.version(tables.RECOMMENDATIONS) == version
