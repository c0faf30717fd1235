"""Full-catalog ranking metrics and the repeat-buy baseline (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Item positions of the k highest scores per row, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def recall_at_k(recommended: np.ndarray, targets: Sequence[Sequence[int]], k: int) -> float:
    """Mean over users of |top-k ∩ bought| / |bought| (users without purchases are skipped)."""
    values = [len(set(row[:k].tolist()) & set(t)) / len(set(t))
              for row, t in zip(recommended, targets, strict=True) if len(t)]
    return float(np.mean(values)) if values else 0.0


def ndcg_at_k(recommended: np.ndarray, targets: Sequence[Sequence[int]], k: int) -> float:
    """Mean over users of binary-relevance NDCG@k: ``recommended`` int [n, m] item positions, best first, ``targets``
    the positions each user bought (users without purchases are skipped; 0.0 when none is left).

    >>> import numpy as np
    >>> ndcg_at_k(np.array([[3, 1, 2]]), [[1]], k=3)
    0.6309297535714575
    """
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    values = []
    for row, t in zip(recommended, targets, strict=True):
        wanted = set(t)
        if not wanted:
            continue
        gains = np.array([1.0 if item in wanted else 0.0 for item in row[:k].tolist()])
        ideal = discounts[: min(len(wanted), k)].sum()
        values.append(float((gains * discounts[: len(gains)]).sum() / ideal))
    return float(np.mean(values)) if values else 0.0


def tail_share(recommended: np.ndarray, is_tail: np.ndarray, k: int) -> float:
    """Share of recommended slots (top k) holding tail items."""
    return float(is_tail[recommended[:, :k]].mean()) if len(recommended) else 0.0


def tail_recall(recommended: np.ndarray, targets: Sequence[Sequence[int]], is_tail: np.ndarray, k: int) -> float:
    """Recall@k over tail purchases only (users without one are skipped)."""
    values = [len(set(row[:k].tolist()) & set(t)) / len(t) for row, t in
              ((row, [i for i in t if is_tail[i]]) for row, t in zip(recommended, targets, strict=True)) if t]
    return float(np.mean(values)) if values else 0.0


def repeat_buy_top_k(history: np.ndarray, popularity: np.ndarray, k: int) -> np.ndarray:
    """The user's most-bought items (ties: first listed), then globally popular items.

    history: int [n, L] of item_index + 1 (0 = padding), most recent first; or a purchase summary
    (each item once, already most bought first), whose order is then kept.
    """
    by_popularity = np.argsort(-popularity, kind="stable")
    out = np.zeros((len(history), k), dtype=np.int64)
    for i, row in enumerate(history):
        items = [int(x) - 1 for x in row if x > 0]
        counts: dict[int, int] = {}
        first_seen: dict[int, int] = {}
        for pos, item in enumerate(items):
            counts[item] = counts.get(item, 0) + 1
            first_seen.setdefault(item, pos)
        ranked = sorted(counts, key=lambda item: (-counts[item], first_seen[item]))[:k]
        chosen = set(ranked)
        for item in by_popularity:
            if len(ranked) >= k:
                break
            if int(item) not in chosen:
                ranked.append(int(item))
        out[i] = ranked[:k]
    return out
