"""Candidate sources of the ranker, besides the two-tower retrieval (which is the scoring GEMM itself).

Every source has the same small interface, ``pairs(request, limit) -> (user rows, item positions)``:
which items it proposes for each user of a block, at most ``limit`` per user. The scorer promotes
all proposed pairs into the ranker's pool next to the two-tower's best items
(`seasonrec.core.topk.top_candidates`), so one pool serves training, evaluation and the Spark
scoring UDF alike.

- ``RebuySource``: the user's most bought items (exact purchase summary cut at the request date).
- ``CoPurchaseSource``: neighbours of the user's recent items in shared baskets (cosine over baskets,
  guest baskets included, `seasonrec.features.item_neighbours.fit_copurchase`); reaches tail items
  that sell together with what the user buys.
- ``ContentSource``: neighbours of the user's recent items by description tokens and category
  (TF-IDF cosine, `seasonrec.features.item_neighbours.fit_content_neighbours`): reaches tail items
  with few or no sales.
- ``TrendingSource``: items whose sales ramp up now (recent weeks vs the 4 before), i.e. a season
  that is starting, for every user (new users included).
- ``LastYearSource``: what sold in the weeks ahead one year earlier (when the data reaches back).
- ``NewCustomerFavouritesSource``: what new customers put in their first basket lately (cold start).
- ``PopularNowSource``: the most bought items of the last 4 weeks.

The request carries the block's encoded history and purchase summary plus the item signals at the
request date (`seasonrec.features.item_activity.ItemActivity.at`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# The global sources' best items per (source name, limit) for one set of item signals: the same for
# every user at a date, so a caller answering many requests keeps them (`TwoStageModel.top_lists`).
TopLists = dict[tuple[str, int], np.ndarray]


@dataclass(frozen=True)
class CandidateRequest:
    """One block of users at one date, as every source sees it."""

    history: np.ndarray  # int [n, L] item position + 1, most recent first, 0 = padding
    bought_items: np.ndarray  # int [n, M] item position + 1, most bought first, 0 = padding
    item_signals: dict[str, np.ndarray]  # ItemActivity.at(date): float32 [n_items] each
    copurchase: np.ndarray | None  # float32 [n, n_items] co-purchase score of every item (ItemNeighbours)
    content: np.ndarray | None = None  # float32 [n, n_items] content similarity to the user's recent items
    top_lists: TopLists | None = None  # memo of the global sources' lists for these item_signals (None: per call)

    @property
    def n_users(self) -> int:
        """Number of user rows in the block."""
        return len(self.history)


class CandidateSource(Protocol):
    """What every candidate source implements: a ``name`` (its key in the source limits and reports) and `pairs`."""

    name: str

    def pairs(self, request: CandidateRequest, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(user rows, item positions): at most ``limit`` proposals per user row."""
        ...


def top_positions(values: np.ndarray, limit: int) -> np.ndarray:
    """The positions of the ``limit`` largest values, best first, ties by position: exactly
    ``np.argsort(-values, kind="stable")[:limit]`` (NaNs last) in O(n) instead of a full sort, which
    matters when a server answers one user at a time over a large catalogue."""
    negated = -np.asarray(values)
    if limit <= 0:
        return np.empty(0, np.int64)
    if limit >= negated.size:
        return np.argsort(negated, kind="stable")
    cut = np.partition(negated, limit - 1)[limit - 1]
    if np.isnan(cut):  # fewer than `limit` real values: the full sort is as cheap and keeps NaN order
        return np.argsort(negated, kind="stable")[:limit]
    better = np.flatnonzero(negated < cut)
    chosen = np.concatenate([better, np.flatnonzero(negated == cut)[: limit - better.size]])
    return chosen[np.lexsort((chosen, negated[chosen]))]


def _global_top(request: CandidateRequest, name: str, limit: int,
                values: Callable[[], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The same `limit` best items (value > 0) proposed to every user; ``values()`` gives each item's
    value and is only called when ``request.top_lists`` does not hold the list yet."""
    order = None if request.top_lists is None else request.top_lists.get((name, limit))
    if order is None:
        scores = values()
        order = top_positions(scores, limit)
        order = order[scores[order] > 0.0]
        if request.top_lists is not None:
            request.top_lists[(name, limit)] = order
    return np.repeat(np.arange(request.n_users), order.size), np.tile(order, request.n_users)


@dataclass(frozen=True)
class RebuySource:
    """Proposes the user's most bought items (the purchase summary, most bought first)."""

    name: str = "rebuy"

    def pairs(self, request: CandidateRequest, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(user rows, item positions) of each user's first ``limit`` items of ``bought_items``."""
        items = request.bought_items[:, :limit]
        rows, slots = np.nonzero(items > 0)
        return rows, items[rows, slots].astype(np.int64) - 1


def _per_user_top(scores: np.ndarray | None, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `limit` best columns with a positive score."""
    if scores is None or not scores.size or limit <= 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    width = min(limit, scores.shape[1])
    top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
    rows = np.repeat(np.arange(len(scores)), width)
    cols = top.ravel()
    keep = scores[rows, cols] > 0
    return rows[keep], cols[keep].astype(np.int64)


@dataclass(frozen=True)
class CoPurchaseSource:
    """Proposes the items most bought together with the user's recent items."""

    name: str = "copurchase"

    def pairs(self, request: CandidateRequest, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(user rows, item positions): each user's ``limit`` best items by co-purchase score
        (``request.copurchase``)."""
        return _per_user_top(request.copurchase, limit)


@dataclass(frozen=True)
class ContentSource:
    """Proposes items similar in description and category to the user's recent items."""

    name: str = "content"

    def pairs(self, request: CandidateRequest, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(user rows, item positions): each user's ``limit`` best items by content similarity (``request.content``)."""
        return _per_user_top(request.content, limit)


@dataclass(frozen=True)
class TrendingSource:
    """Proposes the items whose sales ramp up now, the same list for every user."""

    name: str = "trending"

    def pairs(self, request: CandidateRequest, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(user rows, item positions): the ``limit`` items with the best ``trend x log1p(recent)`` (> 0) for every
        user."""
        signals = request.item_signals
        # Ramp-up weighted by volume, so a jump from 0 to 1 basket does not outrank a season's start.
        return _global_top(request, self.name, limit, lambda: signals["trend"] * np.log1p(signals["recent"]))


@dataclass(frozen=True)
class LastYearSource:
    """Proposes what sold in the weeks ahead one year earlier, the same list for every user."""

    name: str = "last_year"

    def pairs(self, request: CandidateRequest, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(user rows, item positions): the ``limit`` items with most sales in last year's weeks ahead, for every user;
        nothing when the signals reach back less than a year."""
        signals = request.item_signals
        if not signals["has_last_year"].any():
            return np.empty(0, np.int64), np.empty(0, np.int64)
        return _global_top(request, self.name, limit, lambda: signals["log_last_year_ahead"])


@dataclass(frozen=True)
class NewCustomerFavouritesSource:
    """Proposes what new customers put in their first basket lately (cold start)."""

    name: str = "first_orders"

    def pairs(self, request: CandidateRequest, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(user rows, item positions): the ``limit`` items most present in recent first orders, for every user."""
        return _global_top(request, self.name, limit, lambda: request.item_signals["log_first_orders"])


@dataclass(frozen=True)
class PopularNowSource:
    """Proposes the most bought items of the last weeks, the same list for every user."""

    name: str = "popular_now"

    def pairs(self, request: CandidateRequest, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(user rows, item positions): the ``limit`` items with the most recent sales, for every user."""
        return _global_top(request, self.name, limit, lambda: request.item_signals["recent"])


SOURCES: tuple[CandidateSource, ...] = (RebuySource(), CoPurchaseSource(), ContentSource(), TrendingSource(),
                                        LastYearSource(), NewCustomerFavouritesSource(), PopularNowSource())


def all_pairs(request: CandidateRequest, limits: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Union of every source's proposals (duplicates kept; the pool deduplicates by column)."""
    parts = [source.pairs(request, limits.get(source.name, 0)) for source in SOURCES
             if limits.get(source.name, 0) > 0]
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rows = np.concatenate([p[0] for p in parts]).astype(np.int64)
    cols = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return rows, cols
