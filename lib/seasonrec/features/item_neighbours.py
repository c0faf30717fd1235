"""Item-to-item neighbours: who sells together (co-purchase, from baskets in Spark) and what looks
alike (content, from descriptions and category), plus how habitually each item is bought again.

Like `seasonrec.features.item_activity`, these are item-side facts at a date: co-purchase
neighbours and repeat rates only use baskets strictly before the date they are fitted at, so
training fits them at ``split.train_end`` and scoring/evaluation can refit them at the scored day
(``scoring.fresh_copurchase``). `ItemNeighbours` is plain numpy (it travels inside the model and the
request context); the fitting functions run in Spark.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from seasonrec.features.item_activity import basket_key

RECENCY_DECAY = 0.8  # weight of the i-th most recent history item: RECENCY_DECAY ** i (user tower pools too)
MAX_BASKET_ITEMS = 60  # larger (wholesale) baskets are cut to their first items by hash: pairs grow as n^2


@dataclass(frozen=True)
class ItemNeighbours:
    """Top neighbours per item: ``items`` [n_items, N] positions (-1 = none), ``weights`` [n_items, N]
    similarities. One class for co-purchase (baskets) and content (descriptions) neighbours."""

    items: np.ndarray
    weights: np.ndarray

    def user_scores(self, history: np.ndarray) -> np.ndarray:
        """[n, n_items] float32: sum over the user's recent items (decayed by recency) of their
        neighbours' similarities. ``history``: int [n, L] item position + 1, most recent first."""
        decay = np.broadcast_to(RECENCY_DECAY ** np.arange(history.shape[1], dtype=np.float32), history.shape)
        return self._spread(history, decay)

    def affinity_scores(self, bought_items: np.ndarray, bought_counts: np.ndarray) -> np.ndarray:
        """[n, n_items] float32: SAR-style affinity, the sum over everything the user bought (each
        weighted by log1p(times bought)) of its neighbours' similarities; the whole purchase summary,
        where `user_scores` sees the recent items only. ``bought_items``: int [n, M] item position + 1
        (0 pads), ``bought_counts``: [n, M] times bought."""
        return self._spread(bought_items, np.log1p(np.clip(bought_counts.astype(np.float32), 0, None)))

    def _spread(self, items: np.ndarray, item_weights: np.ndarray) -> np.ndarray:
        """Sum of each listed item's neighbours' similarities x that item's weight, per user row.
        ``items``: int [n, L] item position + 1 (0 pads); ``item_weights``: [n, L]."""
        n_users, length = items.shape
        n_items = self.items.shape[0]
        scores = np.zeros((n_users, n_items), np.float32)
        if not n_items or not length:
            return scores
        positions = items.astype(np.int64) - 1
        rows, slots = np.nonzero(positions >= 0)
        if not rows.size:
            return scores
        src = positions[rows, slots]
        neighbours = self.items[src]  # [m, N]
        weights = self.weights[src] * np.asarray(item_weights, np.float32)[rows, slots][:, None]
        ok = neighbours >= 0
        flat = np.repeat(rows, neighbours.shape[1]).reshape(neighbours.shape)[ok] * n_items + neighbours[ok]
        np.add.at(scores.reshape(-1), flat, weights[ok])
        return scores

    def to_arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """``{prefix}_items`` (int32) and ``{prefix}_weights`` (float32) arrays, for an ``.npz`` artifact."""
        return {f"{prefix}_items": self.items.astype(np.int32), f"{prefix}_weights": self.weights.astype(np.float32)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> ItemNeighbours | None:
        """The neighbours `to_arrays` stored under ``prefix``, or None when ``arrays`` has none."""
        if f"{prefix}_items" not in arrays:
            return None
        return cls(np.asarray(arrays[f"{prefix}_items"]), np.asarray(arrays[f"{prefix}_weights"]))


def _top_neighbours(similarity_rows: np.ndarray, offset: int, neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """Best `neighbours` columns (positive similarity, never the row's own item) of a block of rows."""
    block = similarity_rows.copy()
    block[np.arange(len(block)), offset + np.arange(len(block))] = 0.0
    width = min(neighbours, block.shape[1])
    top = np.argpartition(-block, width - 1, axis=1)[:, :width]
    values = np.take_along_axis(block, top, 1)
    order = np.argsort(-values, axis=1, kind="stable")
    top, values = np.take_along_axis(top, order, 1), np.take_along_axis(values, order, 1)
    items = np.full((len(block), neighbours), -1, np.int32)
    weights = np.zeros((len(block), neighbours), np.float32)
    items[:, :width] = np.where(values > 0, top, -1)
    weights[:, :width] = np.where(values > 0, values, 0.0)
    return items, weights


def fit_content_neighbours(token_ids: np.ndarray, category_index: np.ndarray, neighbours: int,
                           block_size: int = 1024) -> ItemNeighbours:
    """Content neighbours: TF-IDF cosine over description tokens plus the category as one more token.

    ``token_ids``: int [n_items, T] (0 = padding); ``category_index``: int [n_items]. Sparse products
    in row blocks, so memory is block_size x n_items.
    """
    from scipy import sparse

    n_items = len(token_ids)
    vocab = int(token_ids.max(initial=0)) + 1
    rows, slots = np.nonzero(token_ids > 0)
    cols = np.concatenate([token_ids[rows, slots].astype(np.int64), vocab + category_index.astype(np.int64)])
    rows = np.concatenate([rows, np.arange(n_items)])
    matrix = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                               shape=(n_items, vocab + int(category_index.max(initial=0)) + 1))
    matrix.data[:] = 1.0  # a token counts once per item
    document_frequency = np.asarray((matrix > 0).sum(axis=0)).ravel()
    idf = np.log((1 + n_items) / (1 + document_frequency)).astype(np.float32) + 1.0
    matrix = sparse.csr_matrix(matrix.multiply(idf[None, :]))
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    matrix = sparse.csr_matrix(matrix.multiply(1.0 / np.maximum(norms, 1e-12)[:, None]))
    items = np.full((n_items, neighbours), -1, np.int32)
    weights = np.zeros((n_items, neighbours), np.float32)
    for start in range(0, n_items, block_size):
        block = (matrix[start:start + block_size] @ matrix.T).toarray().astype(np.float32)
        items[start:start + block_size], weights[start:start + block_size] = _top_neighbours(block, start, neighbours)
    return ItemNeighbours(items, weights)


def fit_copurchase(interactions: DataFrame, item_ids: np.ndarray, before: dt.date,
                   neighbours: int) -> ItemNeighbours:
    """Cosine co-purchase neighbours from baskets strictly before ``before`` (guest baskets included).

    sim(i, j) = baskets with both / sqrt(baskets with i * baskets with j); each item keeps its
    ``neighbours`` best. Runs in Spark; collects n_items x neighbours numbers.
    """
    spark = interactions.sparkSession
    index = spark.createDataFrame([(str(item), i) for i, item in enumerate(item_ids)], "item_id string, pos int")
    baskets = (interactions.where(F.col("date") < F.lit(before))
               .select(basket_key().alias("basket"), F.col("item_id").cast("string").alias("item_id"))
               .distinct().join(F.broadcast(index), "item_id")
               .withColumn("r", F.row_number().over(Window.partitionBy("basket").orderBy(F.xxhash64("pos"))))
               .where(F.col("r") <= MAX_BASKET_ITEMS).select("basket", "pos"))
    per_item = baskets.groupBy("pos").agg(F.count("*").alias("n"))
    pairs = (baskets.alias("a").join(baskets.alias("b"), "basket")
             .where(F.col("a.pos") != F.col("b.pos"))
             .groupBy(F.col("a.pos").alias("i"), F.col("b.pos").alias("j")).agg(F.count("*").alias("c")))
    sims = (pairs.join(per_item.select(F.col("pos").alias("i"), F.col("n").alias("ni")), "i")
            .join(per_item.select(F.col("pos").alias("j"), F.col("n").alias("nj")), "j")
            .withColumn("sim", F.col("c") / F.sqrt(F.col("ni") * F.col("nj")))
            .withColumn("r", F.row_number().over(Window.partitionBy("i").orderBy(F.col("sim").desc(), "j")))
            .where(F.col("r") <= neighbours).select("i", "j", "sim", "r").toPandas())
    items = np.full((len(item_ids), neighbours), -1, np.int32)
    weights = np.zeros((len(item_ids), neighbours), np.float32)
    if len(sims):
        i, r = sims["i"].to_numpy(np.int64), sims["r"].to_numpy(np.int64) - 1
        items[i, r] = sims["j"].to_numpy(np.int32)
        weights[i, r] = sims["sim"].to_numpy(np.float32)
    return ItemNeighbours(items, weights)


def item_repeat_rate(interactions: DataFrame, item_ids: np.ndarray, before: dt.date) -> np.ndarray:
    """float32 [n_items]: log(purchase occasions / distinct buyers) of each item from known users'
    purchases strictly before ``before`` (0 = every buyer bought it once; items without buyers 0).
    How habitually an item is bought again: consumables high, one-off gifts low."""
    rows = (interactions.where((F.col("date") < F.lit(before)) & F.col("user_id").isNotNull())
            .groupBy(F.col("item_id").cast("string").alias("item_id"))
            .agg(F.countDistinct("user_id", "date").alias("occasions"), F.countDistinct("user_id").alias("buyers"))
            .toPandas())
    position = {str(item): i for i, item in enumerate(item_ids)}
    rate = np.zeros(len(item_ids), np.float32)
    for item, occasions, buyers in rows.itertuples(index=False):
        if item in position and buyers:
            rate[position[item]] = np.log(occasions / buyers)
    return rate
