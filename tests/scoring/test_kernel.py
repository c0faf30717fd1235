"""The NumPy core against a brute-force full sort: exact order, scores within float tolerance."""

from __future__ import annotations

import numpy as np
import pytest

from seasonrec.core.topk import brute_force_top_k, score_block, top_candidates, top_k_columns


def _lists(result, n_users):
    return [list(result.columns[result.user_rows == u]) for u in range(n_users)]


@pytest.mark.parametrize("n_items", [40, 5000])  # argpartition path and group-max prefilter path
def test_top_k_equals_brute_force(n_items):
    rng = np.random.default_rng(n_items)
    users = rng.standard_normal((23, 8)).astype(np.float32)
    items = rng.standard_normal((n_items, 8)).astype(np.float32)
    result = score_block(users, np.ascontiguousarray(items.T), 10)
    expected = brute_force_top_k(users, items, 10)
    assert _lists(result, 23) == [[c for c, _ in row] for row in expected]
    np.testing.assert_allclose(result.scores, [s for row in expected for _, s in row], rtol=1e-5, atol=1e-5)
    assert list(result.ranks[result.user_rows == 0]) == list(range(1, 11))


def test_exclusions_and_nan_never_recommended():
    rng = np.random.default_rng(3)
    users = rng.standard_normal((4, 4)).astype(np.float32)
    items = rng.standard_normal((3000, 4)).astype(np.float32)
    best = brute_force_top_k(users, items, 3)
    exclude = (np.array([0, 0, 2]), np.array([best[0][0][0], best[0][1][0], best[2][0][0]]))
    users[3] = np.nan
    result = score_block(users, np.ascontiguousarray(items.T), 5, exclude=exclude)
    expected = brute_force_top_k(users[:3], items, 5, exclude=set(zip(*map(np.ndarray.tolist, exclude), strict=True)))
    assert _lists(result, 3) == [[c for c, _ in row] for row in expected]
    assert not (result.user_rows == 3).any()  # no vector -> no rows (the engine reports it)


def test_category_cap_is_greedy_over_the_full_ranking():
    rng = np.random.default_rng(5)
    users = rng.standard_normal((9, 6)).astype(np.float32)
    items = rng.standard_normal((2000, 6)).astype(np.float32)
    categories = rng.integers(0, 4, 2000).astype(np.int32)
    result = score_block(users, np.ascontiguousarray(items.T), 10, categories=categories, max_per_category=2)
    for user, ranked in enumerate(brute_force_top_k(users, items, 2000)):
        taken, expected = {}, []
        for column, _ in ranked:
            if taken.get(categories[column], 0) < 2:
                expected.append(column)
                taken[categories[column]] = taken.get(categories[column], 0) + 1
        assert list(result.columns[result.user_rows == user]) == expected[:10]  # 4 categories x 2 = 8 items


def test_rerank_reorders_the_candidates():
    rng = np.random.default_rng(9)
    users = rng.standard_normal((5, 4)).astype(np.float32)
    items = rng.standard_normal((300, 4)).astype(np.float32)
    bias = rng.standard_normal(300).astype(np.float32)
    result = score_block(users, np.ascontiguousarray(items.T), 5, candidates=50,
                         rerank=lambda cols, values: values + bias[cols])
    for user, ranked in enumerate(brute_force_top_k(users, items, 50)):
        final = sorted(((s + bias[c], c) for c, s in ranked), key=lambda t: (-t[0], t[1]))[:5]
        assert list(result.columns[result.user_rows == user]) == [c for _, c in final]
        np.testing.assert_allclose(result.scores[result.user_rows == user], [s for s, _ in final], atol=1e-5)


def test_top_k_columns_handles_ties_and_width_beyond_row():
    scores = np.array([[1, 3, 3, 2], [0, 0, 0, 0]], np.float32)
    cols, values = top_k_columns(scores, 10)
    assert cols.tolist() == [[1, 2, 3, 0], [0, 1, 2, 3]]
    assert values[0].tolist() == [3, 3, 2, 1]


@pytest.mark.parametrize("n_items", [40, 5000])  # argpartition path and group-max prefilter path
def test_ties_at_the_cut_off_go_to_the_lower_column(n_items):
    rng = np.random.default_rng(n_items + 2)
    scores = rng.integers(0, 3, (17, n_items)).astype(np.float32)  # three values: ties everywhere
    scores[0, :5] = [1, 1, 1, 1, 0]
    cols, values = top_k_columns(scores, 3 if n_items == 40 else 12)  # 40 < 16 x 3: narrow
    for row in range(17):
        expected = np.lexsort((np.arange(n_items), -scores[row]))[: cols.shape[1]]
        assert cols[row].tolist() == expected.tolist()
        np.testing.assert_array_equal(values[row], scores[row, expected])
    assert top_k_columns(np.array([[1, 1, 1, 1, 0]], np.float32), 2)[0].tolist() == [[0, 1]]


@pytest.mark.parametrize("n_items", [60, 5000])
def test_top_candidates_always_hold_included_items_with_their_true_scores(n_items):
    rng = np.random.default_rng(n_items + 1)
    scores = rng.standard_normal((6, n_items)).astype(np.float32)
    original = scores.copy()
    worst = np.argsort(scores, axis=1)[:, :3]  # the three lowest-scored columns of each row
    rows = np.repeat(np.arange(6), 3)
    include = (rows, worst.ravel())
    scores[0, worst[0, 0]] = -np.inf  # an excluded item stays out even when included
    original[0, worst[0, 0]] = -np.inf
    cols, values = top_candidates(scores, 10, include)
    np.testing.assert_array_equal(scores, original)  # restored
    for row in range(6):
        wanted = [c for c in worst[row] if np.isfinite(original[row, c])]
        assert set(wanted) <= set(cols[row].tolist())
        others = [c for c in np.argsort(-original[row], kind="stable") if c not in wanted][: 10 - len(wanted)]
        assert set(cols[row].tolist()) == set(wanted) | set(others)
        np.testing.assert_array_equal(values[row], original[row, cols[row]])
        assert np.all(np.diff(values[row]) <= 0)  # ranked by true score


def test_score_block_reranks_included_items_it_would_otherwise_miss():
    rng = np.random.default_rng(4)
    users = rng.standard_normal((3, 4)).astype(np.float32)
    items = rng.standard_normal((400, 4)).astype(np.float32)
    lowest = np.argsort(users @ items.T, axis=1)[:, 0]
    boost = np.zeros(400, np.float32)
    boost[lowest] = 100.0
    result = score_block(users, np.ascontiguousarray(items.T), 3, candidates=20,
                         include=(np.arange(3), lowest), rerank=lambda cols, values: values + boost[cols])
    assert [int(result.columns[result.user_rows == u][0]) for u in range(3)] == lowest.tolist()
    without = score_block(users, np.ascontiguousarray(items.T), 3, candidates=20,
                          rerank=lambda cols, values: values + boost[cols])
    assert not set(lowest.tolist()) & set(without.columns.tolist())


def test_top_candidates_widen_to_hold_every_distinct_included_item():
    rng = np.random.default_rng(7)
    scores = rng.standard_normal((3, 200)).astype(np.float32)
    worst = np.argsort(scores, axis=1)[:, :15]
    rows = np.repeat(np.arange(3), 15)
    include = (np.concatenate([rows, rows]), np.concatenate([worst.ravel(), worst.ravel()]))  # duplicates too
    cols, values = top_candidates(scores, 10, include)
    assert cols.shape == (3, 15)  # 15 distinct proposals per row: none dropped
    for row in range(3):
        assert set(cols[row].tolist()) == set(worst[row].tolist())
        assert np.all(np.diff(values[row]) <= 0)
    narrow, _ = top_candidates(scores, 20, (np.array([0]), np.array([worst[0, 0]])))
    assert narrow.shape == (3, 20) and worst[0, 0] in narrow[0]
