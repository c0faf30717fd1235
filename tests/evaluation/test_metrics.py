"""Metrics against values computed by hand on a tiny example (see the comments next to each number)."""

from __future__ import annotations

from math import log2

import pytest

from seasonrec.evaluation.metrics import EvaluationInputs, evaluate_method, normalize_recs

REC_SCHEMA = "user_id string, rank int, item_id string, score double"
ITEM_SCHEMA = ("item_id string, popularity_tier string, self_information double, popularity_decile int, "
               "is_seasonal boolean")


def _lookup(rows: list[dict], metric: str, k: int | None = None, segment: str = "all") -> float:
    found = [r["value"] for r in rows if r["metric"] == metric and r["k"] == k and r["segment"] == segment]
    assert len(found) == 1, (metric, k, segment, found)
    return found[0]


@pytest.fixture(scope="module")
def tiny(spark):
    # u1 bought a, b, c; u2 bought d; u3 bought nothing (excluded, counted); u4 bought e but gets no list.
    truth = spark.createDataFrame([("u1", "a"), ("u1", "b"), ("u1", "c"), ("u2", "d"), ("u4", "e"),
                                   ("u9", "a")],  # u9 is not a target user: ignored
                                  "user_id string, item_id string")
    recs = spark.createDataFrame([
        ("u1", 1, "a", 0.9), ("u1", 2, "x", 0.8), ("u1", 3, "b", 0.7), ("u1", 4, "a", 0.1),  # a twice: keeps rank 1
        ("u2", 1, "y", 0.9), ("u2", 2, "d", 0.5),  # fewer items than K=3
        ("u3", 1, "a", 0.9), ("u3", 2, "z", 0.5),
    ], REC_SCHEMA)
    users = spark.createDataFrame([("u1",), ("u2",), ("u3",), ("u4",)], "user_id string")
    segments = spark.createDataFrame([("u1", "activity=high"), ("u2", "user_type=new"), ("u4", "user_type=new")],
                                     "user_id string, segment string")
    items = spark.createDataFrame([
        ("a", "head", 1.0, 1, False), ("x", "torso", 2.0, 2, False), ("y", "head", 1.0, 1, False),
        ("d", "tail", 3.0, 10, True), ("z", "tail", 4.0, 9, False), ("b", "tail", 3.0, 5, True),
    ], ITEM_SCHEMA)
    inputs = EvaluationInputs(truth=truth, users=users, segments=segments, items=items, catalog_size=10,
                              k_list=[2, 3], max_self_information=5.0)
    return evaluate_method(recs, inputs)


def test_ranking_metrics_match_hand_computed_values(tiny):
    rows = tiny
    idcg2, idcg3 = 1 + 1 / log2(3), 1 + 1 / log2(3) + 1 / log2(4)
    # u1: hits a@1 (K=2), a@1,b@3 (K=3); u2: d@2 with 1 relevant item; u4: no list -> zeros.
    u1 = {"p2": 1 / 2, "r2": 1 / 3, "n2": 1 / idcg2, "ap2": 1 / 2,
          "p3": 2 / 3, "r3": 2 / 3, "n3": (1 + 1 / log2(4)) / idcg3, "ap3": (1 / 1 + 2 / 3) / 3}
    u2 = {"p2": 1 / 2, "r2": 1.0, "n2": 1 / log2(3), "ap2": 1 / 2,
          "p3": 1 / 3, "r3": 1.0, "n3": 1 / log2(3), "ap3": 1 / 2}
    for k in (2, 3):
        assert _lookup(rows, "precision", k) == pytest.approx((u1[f"p{k}"] + u2[f"p{k}"]) / 3)
        assert _lookup(rows, "recall", k) == pytest.approx((u1[f"r{k}"] + u2[f"r{k}"]) / 3)
        assert _lookup(rows, "ndcg", k) == pytest.approx((u1[f"n{k}"] + u2[f"n{k}"]) / 3)
        assert _lookup(rows, "map", k) == pytest.approx((u1[f"ap{k}"] + u2[f"ap{k}"]) / 3)
        assert _lookup(rows, "hit_rate", k) == pytest.approx(2 / 3)
    assert _lookup(rows, "n_users") == 3  # u1, u2, u4
    assert _lookup(rows, "n_users_no_relevant") == 1  # u3
    assert _lookup(rows, "user_coverage") == pytest.approx(2 / 3)  # u4 has no list
    # segments: u2 and u4 are new; u1 alone is high activity
    assert _lookup(rows, "recall", 2, "user_type=new") == pytest.approx((1.0 + 0.0) / 2)
    assert _lookup(rows, "n_users", None, "user_type=new") == 2
    assert _lookup(rows, "ndcg", 3, "activity=high") == pytest.approx(u1["n3"])


def test_long_tail_and_seasonal_metrics_match_hand_computed_values(tiny):
    rows = tiny
    # top-2 slots: u1 a,x  u2 y,d  u3 a,z -> 5 distinct of 10 catalog items, tail: d,z
    assert _lookup(rows, "coverage", 2) == pytest.approx(5 / 10)
    assert _lookup(rows, "tail_share", 2) == pytest.approx(2 / 6)
    assert _lookup(rows, "novelty", 2) == pytest.approx((1 + 2 + 1 + 3 + 1 + 4) / 6)
    # top-3 adds u1's b (tail, 3 bits): 6 distinct, 7 slots
    assert _lookup(rows, "coverage", 3) == pytest.approx(6 / 10)
    assert _lookup(rows, "tail_share", 3) == pytest.approx(3 / 7)
    # tail relevant: u1 {b, c (unknown item = tail)}, u2 {d}, u4 {e (unknown)}
    assert _lookup(rows, "tail_recall", 2) == pytest.approx((0 + 1 + 0) / 3)
    assert _lookup(rows, "tail_recall", 3) == pytest.approx((1 / 2 + 1 + 0) / 3)
    # seasonal relevant: u1 {b}, u2 {d}
    assert _lookup(rows, "seasonal_recall", 2) == pytest.approx((0 + 1) / 2)
    assert _lookup(rows, "seasonal_recall", 3) == pytest.approx((1 + 1) / 2)
    assert _lookup(rows, "n_users_seasonal_relevant") == 2
    assert _lookup(rows, "n_users_tail_relevant") == 3
    assert _lookup(rows, "seasonal_recall", 3, "user_type=new") == pytest.approx(1.0)  # u2 only
    # relevant pairs by decile: a(1), b(5), c,d,e (10; c,e unknown)
    assert _lookup(rows, "recall_by_decile", 2, "item_decile=01") == pytest.approx(1.0)
    assert _lookup(rows, "recall_by_decile", 2, "item_decile=05") == pytest.approx(0.0)
    assert _lookup(rows, "recall_by_decile", 3, "item_decile=05") == pytest.approx(1.0)
    assert _lookup(rows, "recall_by_decile", 2, "item_decile=10") == pytest.approx(1 / 3)


def test_ties_are_broken_by_score_then_item_id(spark):
    recs = spark.createDataFrame([
        ("u", 1, "m", 0.9), ("u", 1, "k", 0.9),  # same rank, same score -> k before m
        ("u", 2, "q", 0.1), ("u", 2, "p", 0.5),  # same rank -> higher score first: p, then q
    ], REC_SCHEMA)
    ordered = [(r["rank"], r["item_id"]) for r in normalize_recs(recs, 10).orderBy("rank").collect()]
    assert ordered == [(1, "k"), (2, "m"), (3, "p"), (4, "q")]
    truth = spark.createDataFrame([("u", "m")], "user_id string, item_id string")
    users = spark.createDataFrame([("u",)], "user_id string")
    rows = evaluate_method(recs, EvaluationInputs(truth, users, None, None, catalog_size=4, k_list=[1, 2]))
    assert _lookup(rows, "hit_rate", 1) == 0.0
    assert _lookup(rows, "ndcg", 2) == pytest.approx(1 / log2(3))
    assert _lookup(rows, "map", 2) == pytest.approx(1 / 2)


def test_nobody_relevant_reports_counts_without_averages(spark):
    recs = spark.createDataFrame([("u", 1, "a", 1.0)], REC_SCHEMA)
    truth = spark.createDataFrame([], "user_id string, item_id string")
    users = spark.createDataFrame([("u",)], "user_id string")
    rows = evaluate_method(recs, EvaluationInputs(truth, users, None, None, catalog_size=1, k_list=[5]))
    assert _lookup(rows, "n_users") == 0
    assert _lookup(rows, "n_users_no_relevant") == 1
    assert _lookup(rows, "coverage", 5) == 1.0
    assert not [r for r in rows if r["metric"] == "seasonal_recall"]
