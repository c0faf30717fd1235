"""Candidate sources, item activity (point-in-time) and the LightGBM ranker, on small hand-made data."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from seasonrec.features.item_activity import (
    COUNTRY_PRIOR_BASKETS,
    RECENT_WEEKS,
    SEASON_AHEAD_WEEKS,
    ItemActivity,
    item_activity,
)
from seasonrec.features.item_neighbours import ItemNeighbours, fit_content_neighbours, fit_copurchase
from seasonrec.training.candidates import (
    CandidateRequest,
    CoPurchaseSource,
    PopularNowSource,
    RebuySource,
    TrendingSource,
    all_pairs,
)
from seasonrec.training.rerank import FEATURE_NAMES, fit_ranker

ITEMS = np.array(["A", "B", "C", "D"])
MONDAY = dt.date(2011, 1, 3)


def _silver(spark, rows: list[tuple]) -> object:
    """silver_interactions-like rows from (user, item, date, invoice[, country]) tuples."""
    country = ["country"] if rows and len(rows[0]) == 5 else []
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "date", "invoice", *country])
    frame["ts"] = pd.to_datetime(frame["date"])
    frame["week_start"] = [d - dt.timedelta(days=d.weekday()) for d in frame["date"]]
    schema = "user_id string, item_id string, date date, invoice string, " + "".join(f"{c} string, " for c in country)
    return spark.createDataFrame(frame, schema + "ts timestamp, week_start date")


def test_item_activity_reads_only_whole_weeks_before_the_date(spark):
    day = MONDAY + dt.timedelta(weeks=8)
    rows = [("u1", "A", MONDAY + dt.timedelta(weeks=w, days=1), f"i{w}") for w in range(8)]  # A: steady
    rows += [(None, "B", MONDAY + dt.timedelta(weeks=w, days=2), f"g{w}-{n}") for w in range(4, 8)
             for n in range(w)]  # B: ramping up, guest checkouts only
    later = [("u2", "C", day + dt.timedelta(days=d), f"late{d}") for d in range(0, 20)]
    signals = item_activity(_silver(spark, rows + later), ITEMS, day + dt.timedelta(weeks=4)).at(day)
    assert signals["recent"].tolist() == [4.0, 4 + 5 + 6 + 7, 0.0, 0.0]  # guests count; C sold only later
    assert signals["trend"][1] > 1.0 and abs(signals["trend"][0]) < 1e-6
    assert signals["has_last_year"].max() == 0.0
    # u1's first basket (week 0, item A) is the only first order; guest baskets never are.
    np.testing.assert_allclose(signals["log_first_orders"], [np.log1p(1.0), 0, 0, 0])
    # Scrambling everything on/after the date changes nothing at the date.
    scrambled = [("u3", "D", day + dt.timedelta(days=d), f"x{d}") for d in range(0, 30)]
    again = item_activity(_silver(spark, rows + scrambled), ITEMS, day + dt.timedelta(weeks=4)).at(day)
    for name, values in signals.items():
        np.testing.assert_array_equal(values, again[name], err_msg=name)
    # A mid-week date sees only the whole weeks before it.
    assert item_activity(_silver(spark, rows), ITEMS, day).at(day - dt.timedelta(days=3))["recent"][0] == 4.0


def test_last_year_signal_when_the_data_reaches_back():
    counts = np.zeros((2, 60), np.float32)
    counts[0, 2:6] = 10  # item 0 sold in weeks 2..5 of last year
    counts[1, 50:54] = 3  # item 1 sells now
    activity = ItemActivity(MONDAY, counts, np.zeros_like(counts))
    signals = activity.at(MONDAY + dt.timedelta(weeks=54))  # weeks ahead of last year = 2..9
    assert signals["has_last_year"][0] == 1.0
    np.testing.assert_allclose(signals["log_last_year_ahead"], [np.log1p(40 / SEASON_AHEAD_WEEKS), 0], rtol=1e-6)
    # Where last year is covered, "the weeks ahead" is last year's season, not what sells now.
    np.testing.assert_array_equal(signals["log_season_ahead"], signals["log_last_year_ahead"])


def test_first_season_reads_the_covered_part_of_last_year_and_falls_back_to_recent():
    counts = np.zeros((2, 50), np.float32)
    counts[0, 0:3] = 12  # item 0: the data's first weeks (a December)
    counts[1, 44:48] = 2  # item 1 sells in the 4 weeks before the date (and in weeks 16..19)
    counts[1, 16:20] = 1
    activity = ItemActivity(MONDAY, counts, np.zeros_like(counts))
    # 48 weeks in: last year's 8 weeks ahead start 4 weeks before the data, so 4 of them are covered.
    signals = activity.at(MONDAY + dt.timedelta(weeks=48))
    assert signals["has_last_year"][0] == 4 / SEASON_AHEAD_WEEKS
    np.testing.assert_allclose(signals["log_last_year_ahead"], [np.log1p(36 / 4), 0], rtol=1e-6)
    assert signals["last_year_ratio"].tolist() == [0.0, 0.0]  # the weeks before it are not covered
    assert signals["log_season_ahead"][0] > signals["log_season_ahead"][1] == 0.0
    # Relative to its usual level (36 baskets over 48 weeks) last December's item is in season ahead.
    np.testing.assert_allclose(signals["log_lift_ahead"][0], np.log((9 + 0.5) / (36 / 48 + 0.5)), rtol=1e-6)
    assert signals["log_lift_ahead"][1] < 0
    # 20 weeks in, nothing a year back: the weeks ahead are expected to sell like the recent ones.
    early = ItemActivity(MONDAY, counts[:, :21], np.zeros_like(counts[:, :21])).at(MONDAY + dt.timedelta(weeks=20))
    assert early["has_last_year"].max() == 0.0 and early["recent"][1] == 4.0
    np.testing.assert_allclose(early["log_season_ahead"], np.log1p(early["recent"] / RECENT_WEEKS), rtol=1e-6)
    assert early["log_lift_ahead"][1] > 0 > early["log_lift_ahead"][0]  # selling above its usual level now


def test_copurchase_neighbours_from_baskets_including_guests(spark):
    rows = []
    for n in range(6):  # A and B bought together by guests, C alone
        rows += [(None, "A", MONDAY, f"g{n}"), (None, "B", MONDAY, f"g{n}")]
        rows += [("u1", "C", MONDAY + dt.timedelta(days=n + 1), f"c{n}")]
    rows += [("u2", "A", MONDAY, "k1"), ("u2", "D", MONDAY, "k1")]
    copurchase = fit_copurchase(_silver(spark, rows), ITEMS, MONDAY + dt.timedelta(days=30), neighbours=2)
    assert copurchase.items[0, 0] == 1 and copurchase.items[1, 0] == 0  # A <-> B first
    assert set(copurchase.items[0].tolist()) == {1, 3}
    assert (copurchase.items[2] == -1).all()  # C never shares a basket
    np.testing.assert_allclose(copurchase.weights[0, 0], 6 / np.sqrt(7 * 6), rtol=1e-6)

    history = np.array([[1, 0], [2, 1], [0, 0]])  # positions + 1: user0 bought A; user1 B then A
    scores = copurchase.user_scores(history)
    expected = np.zeros((3, 4), np.float32)
    for user, row in enumerate(history):
        for slot, item in enumerate(row):
            if item:
                for j, w in zip(copurchase.items[item - 1], copurchase.weights[item - 1], strict=True):
                    if j >= 0:
                        expected[user, j] += w * 0.8 ** slot
    np.testing.assert_allclose(scores, expected, rtol=1e-6)

    # Affinity over the whole purchase summary: user0 bought A 3 times, user1 B once and A twice.
    bought, counts = np.array([[1, 0], [1, 2], [0, 0]]), np.array([[3, 0], [2, 1], [0, 0]])
    affinity = copurchase.affinity_scores(bought, counts)
    expected = np.zeros((3, 4), np.float32)
    for user in range(3):
        for item, times in zip(bought[user], counts[user], strict=True):
            for j, w in zip(copurchase.items[item - 1], copurchase.weights[item - 1], strict=True):
                if item and j >= 0:
                    expected[user, j] += w * np.log1p(times)
    np.testing.assert_allclose(affinity, expected, rtol=1e-6)
    assert affinity[0, 1] > 0 and not affinity[2].any()


def test_sources_propose_rebuys_neighbours_trending_and_popular():
    signals = {"recent": np.array([10.0, 3.0, 0.0, 1.0], np.float32),
               "trend": np.array([0.0, 1.5, 0.0, -1.0], np.float32),
               "log_last_year_ahead": np.zeros(4, np.float32), "has_last_year": np.zeros(4, np.float32)}
    copurchase = ItemNeighbours(np.array([[3, -1], [-1, -1], [-1, -1], [0, -1]]), np.array([[0.5, 0], [0, 0], [0, 0],
                                                                                         [0.5, 0]], np.float32))
    history = np.array([[1, 0], [0, 0]])
    request = CandidateRequest(history=history, bought_items=np.array([[1, 0], [0, 0]]), item_signals=signals,
                               copurchase=copurchase.user_scores(history))
    assert RebuySource().pairs(request, 5)[1].tolist() == [0]
    rows, items = CoPurchaseSource().pairs(request, 1)
    assert rows.tolist() == [0] and items.tolist() == [3]
    assert TrendingSource().pairs(request, 1)[1].tolist() == [1, 1]  # every user, new ones included
    assert PopularNowSource().pairs(request, 2)[1].tolist() == [0, 1, 0, 1]
    rows, items = all_pairs(request, {"rebuy": 5, "copurchase": 5, "trending": 1})
    assert set(zip(rows.tolist(), items.tolist(), strict=True)) == {(0, 0), (0, 3), (0, 1), (1, 1)}


def test_lambdarank_ranker_learns_the_signal_and_round_trips():
    rng = np.random.default_rng(0)
    n_units, width = 400, 30
    features = rng.normal(size=(n_units, width, len(FEATURE_NAMES))).astype(np.float32)
    signal = features[:, :, FEATURE_NAMES.index("copurchase")]
    labels = (signal + 0.3 * rng.normal(size=signal.shape) > 1.5).astype(np.float32)
    ranker = fit_ranker(features[:300], labels[:300], seed=1, valid=(features[300:350], labels[300:350]))
    scores = ranker.score(features[350:])
    top = np.argsort(-scores, axis=1)[:, :3]
    hit = np.take_along_axis(labels[350:], top, 1).mean()
    assert hit > 3 * labels.mean()
    assert max(ranker.feature_importance(), key=ranker.feature_importance().get) == "copurchase"
    from seasonrec.training.rerank import Ranker

    again = Ranker.from_arrays(ranker.to_arrays(), FEATURE_NAMES)
    np.testing.assert_allclose(again.score(features[350:]), scores, rtol=1e-6)


def test_content_neighbours_share_tokens_and_category_never_themselves():
    tokens = np.array([[1, 2, 0], [1, 2, 0], [3, 0, 0], [1, 0, 0]])  # 0 and 1 identical, 2 unrelated
    neighbours = fit_content_neighbours(tokens, np.array([0, 0, 1, 0]), neighbours=2, block_size=3)
    assert neighbours.items[0, 0] == 1 and neighbours.items[1, 0] == 0
    np.testing.assert_allclose(neighbours.weights[0, 0], 1.0, rtol=1e-6)
    assert (neighbours.items[2] == -1).all()  # nothing in common with anyone
    assert all(i not in row for i, row in enumerate(neighbours.items.tolist()))


def _tail_pool(n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 items, the last 10 the tail; every user's ranker rates two tail items (30, 31) just below
    the head's top 5 and has bought them (repeat-buy shows them). Returns (candidates, scores, bought)."""
    row = np.concatenate([np.linspace(1.0, 0.5, 30), [0.925, 0.92], np.linspace(0.3, 0.2, 8)]).astype(np.float32)
    bought = np.zeros((n_users, 5), np.int64)
    bought[:, :2] = [31, 32]  # positions + 1 of items 30, 31
    return np.tile(np.arange(40), (n_users, 1)), np.tile(row, (n_users, 1)), bought


TAIL_IS_LAST_10 = np.arange(40) >= 30
LOG_Q = np.log(np.linspace(1.0, 0.01, 40)).astype(np.float32)


def test_discovery_default_is_the_largest_boost_within_the_recall_budget():
    from seasonrec.training.pipeline import DISCOVERY_GRID, calibrate_discovery

    k = 5
    candidates, scores, bought = _tail_pool(4)
    targets = [[30, 0], [31], [30, 1], [0]]  # the users re-buy their tail items: the boost pays
    value, curve = calibrate_discovery(scores, candidates, targets, bought, LOG_Q, TAIL_IS_LAST_10, k, head=2,
                                       boost=TAIL_IS_LAST_10[candidates])
    assert curve[0]["tail_share"] == 0.0 and value > 0
    chosen = next(p for p in curve if p["discovery"] == value)
    assert chosen["within_budget"] and chosen["tail_share"] >= 2 / k and chosen["tail_recall"] > 0
    assert all(p["within_budget"] for p in curve if p["discovery"] <= value)
    later = [p for p in curve if p["discovery"] > value]
    assert value == DISCOVERY_GRID[-1] or not later[0]["within_budget"]


def test_item_repeat_rate_counts_occasions_per_known_buyer(spark):
    from seasonrec.features.item_neighbours import item_repeat_rate

    rows = [("u1", "A", MONDAY + dt.timedelta(days=d), f"a{d}") for d in range(3)]  # u1 buys A on 3 days
    rows += [("u2", "A", MONDAY, "b0"), ("u2", "B", MONDAY, "b0"), (None, "B", MONDAY, "g0")]
    rows += [("u3", "C", MONDAY + dt.timedelta(days=40), "late")]  # after the cutoff
    rate = item_repeat_rate(_silver(spark, rows), ITEMS, MONDAY + dt.timedelta(days=30))
    np.testing.assert_allclose(rate, [np.log(4 / 2), 0.0, 0.0, 0.0], rtol=1e-6)


def test_discovery_default_never_spends_more_than_the_recall_budget():
    from seasonrec.training.pipeline import DISCOVERY_RECALL_BUDGET, calibrate_discovery

    k = 5
    candidates, scores, bought = _tail_pool(4)
    targets = [[0, 1, 3], [1, 2], [0, 3], [2, 4]]  # users buy head items: boosting the tail costs recall
    value, curve = calibrate_discovery(scores, candidates, targets, bought, LOG_Q, TAIL_IS_LAST_10, k, head=2,
                                       boost=TAIL_IS_LAST_10[candidates])
    chosen = next(p for p in curve if p["discovery"] == value)
    assert chosen["recall"] >= (1 - DISCOVERY_RECALL_BUDGET) * curve[0]["recall"]
    assert any(p["tail_share"] >= 2 / k and p["recall"] < chosen["recall"] for p in curve)  # the tail was dearer
    assert all(p["ndcg"] >= curve[0]["ndcg"] - 1e-9 for p in curve if p["discovery"] <= value)


def test_cross_fitted_scores_never_see_their_own_units():
    """A fold's scores come from a ranker that neither fitted nor early-stopped on that fold."""
    from seasonrec.training.pipeline import cross_fit

    rng = np.random.default_rng(3)
    n_units, width = 240, 20
    features = rng.normal(size=(n_units, width, len(FEATURE_NAMES))).astype(np.float32)
    labels = (features[:, :, FEATURE_NAMES.index("copurchase")] + 0.3 * rng.normal(size=(n_units, width)) > 1.5)
    labels = labels.astype(np.float32)
    folds = np.arange(n_units) % 4
    scores, trees = cross_fit(features, labels, folds, seed=1, params={})
    assert len(trees) == 4 and min(trees) >= 1
    top = np.argsort(-scores, axis=1)[:, :3]
    assert np.take_along_axis(labels, top, 1).mean() > 3 * labels.mean()  # out of fold, still learned

    scrambled = labels.copy()
    scrambled[folds == 0] = rng.permutation(scrambled[folds == 0].reshape(-1)).reshape(-1, width)
    again, _ = cross_fit(features, scrambled, folds, seed=1, params={})
    np.testing.assert_array_equal(again[folds == 0], scores[folds == 0])
    assert not np.array_equal(again[folds == 1], scores[folds == 1])  # fold 0 fits fold 1's scorer


def test_earlier_window_units_train_every_fold_without_the_two_tower_score():
    """Units of earlier windows join each fold's fit (any pool width), never its scored units, and
    carry no two-tower score: a ranker fitted on them alone cannot split on it."""
    from seasonrec.training.pipeline import cross_fit
    from seasonrec.training.rerank import TWO_TOWER_FEATURES, without_two_tower

    rng = np.random.default_rng(5)
    features = rng.normal(size=(200, 20, len(FEATURE_NAMES))).astype(np.float32)
    labels = (features[:, :, FEATURE_NAMES.index("score")] + features[:, :, FEATURE_NAMES.index("copurchase")]
              > 1.8).astype(np.float32)
    earlier = rng.normal(size=(300, 35, len(FEATURE_NAMES))).astype(np.float32)
    earlier_labels = (earlier[:, :, FEATURE_NAMES.index("score")] + earlier[:, :, FEATURE_NAMES.index("copurchase")]
                      > 1.8).astype(np.float32)
    blanked = without_two_tower(earlier)
    assert np.isnan(blanked[:, :, [FEATURE_NAMES.index(n) for n in TWO_TOWER_FEATURES]]).all()
    assert np.isfinite(earlier).all()  # a copy: the caller's array is unchanged
    alone = fit_ranker(blanked, earlier_labels, seed=1, rounds=20)
    assert all(alone.feature_importance().get(name, 0) == 0 for name in TWO_TOWER_FEATURES)
    assert alone.feature_importance()["copurchase"] > 0

    folds = np.arange(200) % 4
    plain, _ = cross_fit(features, labels, folds, seed=1, params={})
    with_earlier, trees = cross_fit(features, labels, folds, seed=1, params={}, extra=[(blanked, earlier_labels)])
    assert len(trees) == 4 and not np.array_equal(plain, with_earlier)  # every fold learned from them too
    top = np.argsort(-with_earlier, axis=1)[:, :3]
    assert np.take_along_axis(labels, top, 1).mean() > 3 * labels.mean()


def test_earlier_windows_are_back_to_back_before_training_end():
    from seasonrec.training.pipeline import earlier_windows

    windows = earlier_windows(dt.date(2011, 8, 1), dt.date(2011, 9, 1), 3)
    assert windows[0] == (dt.date(2011, 7, 1), dt.date(2011, 8, 1))
    assert all(end - start == dt.timedelta(days=31) for start, end in windows)
    assert all(windows[i + 1][1] == windows[i][0] for i in range(2))
    assert earlier_windows(dt.date(2011, 8, 1), dt.date(2011, 9, 1), 0) == []


def test_discovery_budget_must_hold_in_every_fold_not_only_on_average():
    from seasonrec.training.pipeline import calibrate_discovery

    k = 5
    candidates, scores, bought = _tail_pool(8)
    # Fold 0 buys the tail (a boost helps it), fold 1 buys head items 3 and 4 (a boost pushes them out).
    targets = [[30, 31, 0], [30, 33, 1], [31, 34, 2], [30, 35, 3]] + [[0, 4], [1, 3], [2, 4], [0, 1]]
    folds = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    tail = TAIL_IS_LAST_10[candidates]
    pooled, _ = calibrate_discovery(scores, candidates, targets, bought, LOG_Q, TAIL_IS_LAST_10, k, head=1, boost=tail)
    robust, curve = calibrate_discovery(scores, candidates, targets, bought, LOG_Q, TAIL_IS_LAST_10, k,
                                        folds=folds, head=1, boost=tail)
    assert pooled > 0  # on average the tail pays for itself...
    assert robust < pooled  # ...but not in fold 1, so the robust default boosts less
    chosen = next(p for p in curve if p["discovery"] == robust)
    assert chosen["within_budget"] and chosen["ndcg"] >= 0.95 * curve[0]["ndcg"]


def test_top_positions_equals_a_stable_full_sort() -> None:
    from seasonrec.training.candidates import top_positions

    rng = np.random.default_rng(3)
    for size, limit in ((50, 10), (1000, 30), (7, 7), (7, 20), (500, 1), (40, 0)):
        values = rng.integers(0, 6, size).astype(np.float32)  # many ties
        values[rng.random(size) < 0.1] = np.nan
        expected = np.argsort(-values, kind="stable")[:limit]
        np.testing.assert_array_equal(top_positions(values, limit), expected)


def test_cold_start_signal_ranks_only_users_without_history_and_is_chosen_on_held_out_new_users():
    from seasonrec.training.pipeline import UnitPools, choose_cold_start
    from seasonrec.training.rerank import Ranker, with_cold_start

    rng = np.random.default_rng(3)
    n_units, width = 60, 10
    features = rng.normal(size=(n_units, width, len(FEATURE_NAMES))).astype(np.float32)
    new = np.arange(n_units) % 2 == 0
    features[:, :, FEATURE_NAMES.index("user_is_new")] = new[:, None]
    first_orders = features[:, :, FEATURE_NAMES.index("log_first_orders")]
    candidates = np.tile(np.arange(width), (n_units, 1))
    # New users buy the item new customers buy most; ranker scores say the opposite.
    targets = [[int(np.argmax(first_orders[i]))] for i in range(n_units)]
    scores = -first_orders.copy()
    history = np.where(new[:, None], 0, np.ones((n_units, 3), np.int64))
    pools = UnitPools(first=candidates[:, :5], candidates=candidates, first_scores=scores, features=features,
                      bought_items=np.zeros((n_units, 3), np.int64), history=history)
    choice, recalls = choose_cold_start(pools, scores, targets, k=1)
    assert choice == "log_first_orders" and recalls["log_first_orders"] == 1.0 and recalls["ranker"] == 0.0
    adjusted = with_cold_start(scores, features, choice)
    np.testing.assert_array_equal(adjusted[~new], scores[~new])  # users with history keep the ranker's order
    assert (np.argmax(adjusted[new], axis=1) == np.argmax(first_orders[new], axis=1)).all()
    # When the ranker already serves new users best, nothing replaces it.
    assert choose_cold_start(pools, first_orders, targets, k=1)[0] is None

    ranker = fit_ranker(features, (first_orders > 1.0).astype(np.float32), seed=1, rounds=5)
    ranker.cold_start = "log_first_orders"
    again = Ranker.from_arrays(ranker.to_arrays(), FEATURE_NAMES, cold_start=ranker.cold_start)
    np.testing.assert_allclose(again.score(features), ranker.score(features), rtol=1e-6)
    assert (np.argmax(again.score(features)[new], axis=1) == np.argmax(first_orders[new], axis=1)).all()


def test_discovery_default_stops_at_the_first_value_out_of_budget():
    from seasonrec.training.pipeline import discovery_choice

    def point(value: float, within: bool) -> dict:
        return {"discovery": value, "within_budget": within}

    # A later value back within budget (noise near the cliff) is not taken: the knob stops at the cliff.
    assert discovery_choice([point(0.0, True), point(0.2, True), point(0.4, False), point(0.6, True)]) == 0.2
    assert discovery_choice([point(0.0, True), point(0.2, True), point(0.4, True)]) == 0.4
    assert discovery_choice([point(0.0, False), point(0.2, True)]) == 0.0  # no boost already out: spend nothing


def test_discovery_lifts_every_tail_item_by_the_same_share_of_the_users_spread():
    from seasonrec.training.rerank import with_discovery

    scores = np.array([[3.0, 2.0, 1.0, 0.0], [3.0, 2.0, 1.0, 0.0]], np.float32)
    is_tail = np.array([[False, False, True, True], [False, False, True, True]])
    boosted = with_discovery(scores, is_tail, 1.0, known=np.array([True, False]), head=0)
    spread = np.std(scores[0])
    np.testing.assert_allclose(boosted[0], scores[0] + spread * is_tail[0])  # head unchanged, tail + spread
    np.testing.assert_array_equal(boosted[1], scores[1])  # no history: nothing for the tail to fit
    assert list(np.argsort(-boosted[0])) == [0, 2, 1, 3]  # tail order kept, the best tail item moves up


def test_discovery_never_reorders_the_protected_head():
    from seasonrec.training.rerank import with_discovery

    rng = np.random.default_rng(5)
    scores = rng.normal(size=(30, 25)).astype(np.float32)
    is_tail = rng.random((30, 25)) < 0.4
    known = rng.random(30) < 0.8
    for value in (0.5, 2.0, 10.0):
        protected = with_discovery(scores, is_tail, value, known, head=5)
        order = np.argsort(-protected, axis=1, kind="stable")
        np.testing.assert_array_equal(order[:, :5], np.argsort(-scores, axis=1, kind="stable")[:, :5])
        # Below the head, the same order as the boost on every position.
        everywhere = np.argsort(-with_discovery(scores, is_tail, value, known, head=0), axis=1, kind="stable")
        for row in range(len(scores)):
            rest = [i for i in everywhere[row] if i not in set(order[row, :5])]
            assert rest == list(order[row, 5:])
        np.testing.assert_array_equal(protected[~known], scores[~known])  # no history: untouched
    assert (np.argsort(-with_discovery(scores, is_tail, 10.0, known, head=0), axis=1)[known, :5]
            != np.argsort(-scores, axis=1)[known, :5]).any()  # without the head, a big boost reorders it


def test_discovery_boost_adds_the_rise_in_the_weeks_ahead_to_the_tail_flag():
    """`discovery_boost`: 1 per tail item plus DISCOVERY_LIFT_WEIGHT x the log lift ahead clipped to
    [0, DISCOVERY_LIFT_CAP]; with it the knob moves a popular item rising into the season above an
    equally scored flat one, by a share of the user's spread, below the protected head."""
    from seasonrec.training.rerank import (
        DISCOVERY_LIFT_CAP,
        DISCOVERY_LIFT_WEIGHT,
        discovery_boost,
        with_discovery,
    )

    features = np.zeros((1, 5, len(FEATURE_NAMES)), np.float32)
    features[0, :, FEATURE_NAMES.index("log_lift_ahead")] = [-1.0, 0.0, 0.0, np.log(2.0), 5.0]
    is_tail = np.array([[False, False, True, False, True]])
    boost = discovery_boost(is_tail, features)
    np.testing.assert_allclose(boost[0], [0.0, 0.0, 1.0, DISCOVERY_LIFT_WEIGHT * np.log(2.0),
                                          1.0 + DISCOVERY_LIFT_WEIGHT * DISCOVERY_LIFT_CAP], rtol=1e-6)

    scores = np.array([[5.0, 3.0, 0.0, 3.0, -9.0]], np.float32)  # candidates 1 and 3 tie; 3 is rising
    order = np.argsort(-with_discovery(scores, boost, 1.0, head=1), axis=1, kind="stable")[0]
    # spread 4.96: tail item 2 gains a whole spread (0 -> 4.96), rising item 3 a share of one (weight x
    # log 2), enough to pass its tie; item 4 (tail, lift capped) gains less than two spreads and stays last.
    assert list(order) == [0, 2, 3, 1, 4]
    assert list(np.argsort(-with_discovery(scores, boost, 0.0, head=1), axis=1, kind="stable")[0]) == [0, 1, 3, 2, 4]


def test_country_mix_lifts_what_a_country_buys_more_than_the_shop_and_reads_only_the_past(spark):
    """The country lift (`CountryMix`) and the cold-start signal that uses it: a new user from FR gets
    FR's favourite first among items new customers buy alike; nothing on/after the date moves it."""
    from seasonrec.training.rerank import with_cold_start

    day = MONDAY + dt.timedelta(weeks=8)
    rows = [(f"g{w}{n}", "A", MONDAY + dt.timedelta(weeks=w, days=1), f"a{w}{n}", "GB") for w in range(8)
            for n in range(6)]  # A: the UK's item
    rows += [(f"f{w}{n}", "B", MONDAY + dt.timedelta(weeks=w, days=2), f"b{w}{n}", "FR") for w in range(8)
             for n in range(3)]  # B: France's
    rows += [(f"h{w}", "C", MONDAY + dt.timedelta(weeks=w, days=3), f"c{w}", "GB") for w in range(8)]
    mix = item_activity(_silver(spark, rows), ITEMS, day).country_mix(day)
    assert mix.countries == ("FR", "GB")
    lift = dict(zip(mix.countries, mix.lift, strict=True))
    assert lift["FR"][1] > 0 > lift["FR"][0] and lift["GB"][0] > 0 > lift["GB"][1]
    assert (mix.lift[:, 3] == 0).all()  # D never sold: no lift anywhere
    # 24 FR baskets of B shrunk towards the shop's mix by COUNTRY_PRIOR_BASKETS pseudo-baskets
    share_b = 24 / (48 + 24 + 8)
    expected = np.log(((24 + COUNTRY_PRIOR_BASKETS * share_b) / (24 + COUNTRY_PRIOR_BASKETS)) / share_b)
    assert lift["FR"][1] == np.float32(expected)
    np.testing.assert_array_equal(mix.user_lift(["FR", "XX", None])[1:], 0.0)  # unknown countries: 0
    later = [(f"x{d}", "D", day + dt.timedelta(days=d), f"x{d}", "FR") for d in range(30)]
    again = item_activity(_silver(spark, rows + later), ITEMS, day + dt.timedelta(weeks=5)).country_mix(day)
    np.testing.assert_array_equal(again.lift, mix.lift)

    features = np.zeros((2, 4, len(FEATURE_NAMES)), np.float32)
    features[:, :, FEATURE_NAMES.index("user_is_new")] = 1.0
    features[:, :, FEATURE_NAMES.index("log_first_orders")] = [1.0, 1.0, 1.0, 0.0]
    features[:, :, FEATURE_NAMES.index("country_lift")] = mix.user_lift(["FR", "GB"])
    ranked = np.argsort(-with_cold_start(np.zeros((2, 4), np.float32), features, "first_orders_in_country"), axis=1)
    assert ranked[:, 0].tolist() == [1, 0]  # FR -> B, GB -> A
