"""Second stage: re-rank the first stage's top candidates with user x item features (numpy only).

Features of (user, candidate item) for the target date:
  first-stage score and its gap to the user's best candidate; from the user's exact purchase
  summary (gold `bought_*` columns, cut at the request date): log times bought, whether bought,
  the item's share of the user's purchases and log days since it was last bought; how recently it
  appears in the recent-history array (0.8 ** position); the item's seasonal fit for the target
  week (the model's week kernel . the item's 52-week seasonality lift), that fit for re-buys, and
  log popularity.
The candidates are the first stage's top C plus every item the user bought (see
`seasonrec.scoring.kernel.top_candidates`), so a strong re-buy is never lost before re-ranking.
The scorer is an L2-regularised logistic regression over standardised features, fitted on
validation-window candidates (label: the user bought the candidate in that window). It is kept
only when it beats the first stage on held-out validation users.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FEATURE_NAMES = ["score", "score_gap", "log_times_bought", "bought_before", "bought_share", "recency_weight",
                 "log_days_since_bought", "seasonal_fit", "seasonal_fit_rebuy", "log_popularity"]


def candidate_features(history: np.ndarray, bought: tuple[np.ndarray, np.ndarray, np.ndarray],
                       candidates: np.ndarray, scores: np.ndarray, week_kernel: np.ndarray,
                       season_lift: np.ndarray, log_q: np.ndarray) -> np.ndarray:
    """[n, c, len(FEATURE_NAMES)] float32.

    history: int [n, L] of item_index + 1 (0 = padding, most recent first); bought: (item_index + 1,
    times bought, days since last bought), each [n, M] (see `encoding.bought_matrices`); candidates:
    int [n, c] item positions; scores: [n, c]; week_kernel: [n, 52] (zeros when the context is ablated).
    """
    bought_items, bought_counts, bought_days = bought
    match = candidates[:, :, None] == (bought_items.astype(np.int64) - 1)[:, None, :]  # [n, c, M]
    times = np.einsum("ncm,nm->nc", match, bought_counts.astype(np.float32))
    days = np.einsum("ncm,nm->nc", match, np.log1p(np.clip(bought_days.astype(np.float32), 0, None)))
    was_bought = (times > 0).astype(np.float32)
    share = times / np.maximum(bought_counts.sum(axis=1, keepdims=True), 1.0)
    in_history = candidates[:, :, None] == (history.astype(np.int64) - 1)[:, None, :]  # [n, c, L]
    first_pos = np.where(in_history.any(axis=2), in_history.argmax(axis=2), -1)
    recency_weight = np.where(first_pos >= 0, 0.8 ** np.maximum(first_pos, 0), 0.0).astype(np.float32)
    kernel = week_kernel / np.maximum(week_kernel.sum(axis=1, keepdims=True), 1e-6)
    fit = np.einsum("nw,ncw->nc", kernel, season_lift[candidates]).astype(np.float32)
    return np.stack([
        scores.astype(np.float32),
        (scores - scores.max(axis=1, keepdims=True)).astype(np.float32),
        np.log1p(times),
        was_bought,
        share,
        recency_weight,
        days,
        fit,
        fit * was_bought,
        log_q[candidates].astype(np.float32),
    ], axis=2).astype(np.float32)


@dataclass
class Reranker:
    weights: np.ndarray  # [F]
    bias: float
    mean: np.ndarray
    std: np.ndarray

    def score(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std) @ self.weights + self.bias

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"rerank_weights": self.weights.astype(np.float32), "rerank_bias": np.float32(self.bias),
                "rerank_mean": self.mean.astype(np.float32), "rerank_std": self.std.astype(np.float32)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Reranker:
        return cls(np.asarray(arrays["rerank_weights"]), float(arrays["rerank_bias"]),
                   np.asarray(arrays["rerank_mean"]), np.asarray(arrays["rerank_std"]))


def fit_reranker(features: np.ndarray, labels: np.ndarray, l2: float = 1e-3, iterations: int = 50) -> Reranker:
    """Logistic regression by Newton's method (few features, so exact and fast)."""
    x = features.reshape(-1, features.shape[-1]).astype(np.float64)
    y = labels.reshape(-1).astype(np.float64)
    mean = x.mean(axis=0)
    std = np.where(x.std(axis=0) > 1e-8, x.std(axis=0), 1.0)
    z = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    # Balance positives and negatives so rare positives still shape the ranking.
    pos = max(y.sum(), 1.0)
    sample_weight = np.where(y > 0, len(y) / (2 * pos), len(y) / (2 * max(len(y) - pos, 1.0)))
    w = np.zeros(z.shape[1])
    reg = l2 * np.eye(z.shape[1])
    reg[-1, -1] = 0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ w, -30, 30)))
        grad = z.T @ (sample_weight * (p - y)) / len(y) + reg @ w
        hess = (z * (sample_weight * p * (1 - p))[:, None]).T @ z / len(y) + reg
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return Reranker(w[:-1].astype(np.float32), float(w[-1]), mean.astype(np.float32), std.astype(np.float32))
