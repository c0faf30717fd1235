"""Baselines evaluated next to the model, and the one door through which any of them sees data.

Leakage guard: fitting code never receives a raw interactions DataFrame. The evaluation job builds a
single :class:`TrainingView` whose ``cutoff`` is the evaluated window's start; baselines and the ALS
grid only get that view (or narrower views cut from it), and a view never returns a row with
``ts >= cutoff`` nor accepts a cutoff beyond its own (:class:`LeakageError`). So for
``--split test`` no test-window row can reach fitting or tuning; the ALS grid is tuned on the
validation window (``[train_end, validation_end)``), fitted on rows before ``train_end``, and the
chosen setting is refitted on everything before the test window.

Every baseline returns DataFrame[user_id, rank, item_id, score] (rank 1..K, ties broken by
item_id) for the target users, the same shape as the model's recommendations.

- global_popularity: items by distinct buyers over all history before the window
- recent_popularity: same over the last ``recent_weeks`` weeks before the window
- seasonal_popularity: same over the window's weeks one year earlier (364 days, same weekdays),
  filled with recent popularity when last year has fewer than K items (e.g. no data a year back)
- repeat_buy: the user's own items by number of purchases (then most recent), filled with recent popularity
- item_knn: item-to-item co-purchase (cosine over users' distinct items, ``knn_neighbors`` per item);
  a user's score for j is the sum of similarities from the user's recent items
- als: Spark MLlib ALS, implicit preferences on log1p(purchase count); grid over rank x regParam x alpha
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from seasonrec.config import EvaluationConfig, SplitConfig

log = logging.getLogger(__name__)

BASELINES = ("global_popularity", "recent_popularity", "seasonal_popularity", "repeat_buy", "item_knn", "als")


class LeakageError(RuntimeError):
    """Data at or after the evaluated window was about to reach fitting or tuning."""


@dataclass(frozen=True)
class EvalWindow:
    """[start, end) in dates (UTC midnight)."""

    name: str
    start: dt.date
    end: dt.date

    @classmethod
    def from_split(cls, split: SplitConfig, name: str) -> EvalWindow:
        """The ``validation`` or ``test`` window of ``split``; any other ``name`` raises ValueError."""
        if name == "validation":
            return cls("validation", split.train_end, split.validation_end)
        if name == "test":
            return cls("test", split.validation_end, split.test_end)
        raise ValueError(f"split '{name}' is not evaluable; allowed: validation, test")

    @property
    def days(self) -> int:
        """Length of the window in days (end exclusive)."""
        return (self.end - self.start).days

    def weeks_of_year(self) -> set[int]:
        """ISO weeks the window touches, 53 folded into 52 (the features' 1..52 convention)."""
        days = (self.start + dt.timedelta(d) for d in range(max(self.days, 1)))
        return {min(day.isocalendar()[1], 52) for day in days}

    def contains(self, column: str = "ts") -> Any:
        """Spark condition: ``column`` (a timestamp) is in [start, end)."""
        return (F.col(column) >= _ts(self.start)) & (F.col(column) < _ts(self.end))


def _ts(day: dt.date) -> Any:
    return F.lit(dt.datetime(day.year, day.month, day.day)).cast("timestamp")


def tuning_window(split: SplitConfig, evaluated: EvalWindow) -> EvalWindow:
    """Where the ALS grid is scored: the validation window when evaluating test; when evaluating
    validation itself, the same-length window just before it (the validation rows stay unseen)."""
    if evaluated.name == "test":
        return EvalWindow.from_split(split, "validation")
    days = max(evaluated.days, 7)
    return EvalWindow("pre_validation", evaluated.start - dt.timedelta(days), evaluated.start)


class TrainingView:
    """Interactions with ``ts < cutoff``: the only input fitting and tuning code accepts."""

    def __init__(self, interactions: DataFrame, cutoff: dt.date, evaluated: EvalWindow | None = None):
        if evaluated is not None and cutoff > evaluated.start:
            raise LeakageError(f"training cutoff {cutoff} is after the start of the {evaluated.name} window "
                               f"({evaluated.start}); fitting may only use rows before the evaluated window")
        self.cutoff = cutoff
        self._interactions = interactions
        self._frame = interactions.where(F.col("ts") < _ts(cutoff))

    @classmethod
    def for_window(cls, interactions: DataFrame, window: EvalWindow) -> TrainingView:
        """The view of ``interactions`` before ``window.start``: what methods evaluated on ``window`` may fit on."""
        return cls(interactions, window.start, window)

    def frame(self) -> DataFrame:
        """Rows strictly before the cutoff."""
        return self._frame

    def until(self, cutoff: dt.date) -> TrainingView:
        """A narrower view (rows before an earlier cutoff); a later cutoff raises LeakageError."""
        if cutoff > self.cutoff:
            raise LeakageError(f"cannot widen a training view from {self.cutoff} to {cutoff}")
        return TrainingView(self._frame, cutoff)

    def between(self, start: dt.date, end: dt.date) -> DataFrame:
        """Rows in [start, end); ``end`` after the cutoff raises LeakageError."""
        if end > self.cutoff:
            raise LeakageError(f"rows up to {end} were requested from a view that ends at {self.cutoff}")
        return self._frame.where((F.col("ts") >= _ts(start)) & (F.col("ts") < _ts(end)))

    def check_window(self, window: EvalWindow) -> None:
        """Raise `LeakageError` when this view reaches past the start of ``window``."""
        if self.cutoff > window.start:
            raise LeakageError(f"a view ending {self.cutoff} cannot be used for the {window.name} window "
                               f"starting {window.start}")


def _require_view(view: Any, window: EvalWindow) -> TrainingView:
    if not isinstance(view, TrainingView):
        raise LeakageError(f"baselines fit on a TrainingView only, got {type(view).__name__}")
    view.check_window(window)
    return view


# ---------------------------------------------------------------- ranking helpers
def top_k_per_user(scored: DataFrame, top_k: int) -> DataFrame:
    """(user_id, item_id, score) -> top_k per user by score desc, item_id asc, as (user_id, rank, item_id, score)."""
    order = Window.partitionBy("user_id").orderBy(F.col("score").desc(), F.col("item_id").asc())
    ranked = scored.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= top_k)
    return ranked.select("user_id", F.col("rank").cast("int"), "item_id", F.col("score").cast("double"))


def popular_items(frame: DataFrame, n: int) -> DataFrame:
    """The n items with most distinct buyers in ``frame``: item_id, score, pop_rank."""
    counts = frame.groupBy("item_id").agg(F.countDistinct("user_id").cast("double").alias("score"))
    top = counts.orderBy(F.col("score").desc(), F.col("item_id").asc()).limit(n).collect()
    spark = frame.sparkSession
    item_type = frame.schema["item_id"].dataType
    schema = T.StructType([T.StructField("item_id", item_type), T.StructField("score", T.DoubleType()),
                           T.StructField("pop_rank", T.IntegerType())])
    return spark.createDataFrame([(r["item_id"], r["score"], i + 1) for i, r in enumerate(top)], schema)


def same_list_for_all(users: DataFrame, items: DataFrame, top_k: int) -> DataFrame:
    """Every user gets ``items`` (item_id, score, pop_rank) in pop_rank order."""
    return (users.select("user_id").distinct().crossJoin(F.broadcast(items.where(F.col("pop_rank") <= top_k)))
            .select("user_id", F.col("pop_rank").cast("int").alias("rank"), "item_id", "score"))


def fill_with(primary: DataFrame, filler: DataFrame, top_k: int) -> DataFrame:
    """Lists of ``primary`` completed to top_k with ``filler`` items the user does not already have."""
    extra = filler.join(primary.select("user_id", "item_id"), ["user_id", "item_id"], "left_anti")
    both = primary.withColumn("_src", F.lit(0)).unionByName(extra.withColumn("_src", F.lit(1)))
    order = Window.partitionBy("user_id").orderBy("_src", "rank", "item_id")
    ranked = both.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= top_k)
    return ranked.select("user_id", F.col("rank").cast("int"), "item_id", "score")


# ---------------------------------------------------------------- baselines
@dataclass
class BaselineContext:
    """What a baseline may use: the training view, the window it recommends for, the target users."""

    view: TrainingView
    window: EvalWindow
    users: DataFrame
    top_k: int
    config: EvaluationConfig

    def __post_init__(self) -> None:
        _require_view(self.view, self.window)


def global_popularity(bc: BaselineContext) -> DataFrame:
    """Baseline: the ``top_k`` items with most distinct buyers in the view, the same list for every target user."""
    return same_list_for_all(bc.users, popular_items(bc.view.frame(), bc.top_k), bc.top_k)


def _recent_items(bc: BaselineContext, n: int) -> DataFrame:
    since = bc.view.cutoff - dt.timedelta(weeks=bc.config.recent_weeks)
    return popular_items(bc.view.between(since, bc.view.cutoff), n)


def recent_popularity(bc: BaselineContext) -> DataFrame:
    """Baseline: the most bought items of the last ``evaluation.recent_weeks`` before the cutoff, the same list
    for all."""
    return same_list_for_all(bc.users, _recent_items(bc, bc.top_k), bc.top_k)


def seasonal_popularity(bc: BaselineContext) -> DataFrame:
    """Baseline: the most bought items of the same window one year (364 days) earlier, completed with recent popularity;
    the same list for all users."""
    year = dt.timedelta(days=364)
    start, end = bc.window.start - year, min(bc.window.end - year, bc.view.cutoff)
    last_year = popular_items(bc.view.between(start, end), bc.top_k)
    primary = same_list_for_all(bc.users, last_year, bc.top_k)
    filler = same_list_for_all(bc.users, _recent_items(bc, 2 * bc.top_k), 2 * bc.top_k)
    return fill_with(primary, filler, bc.top_k)


def repeat_buy(bc: BaselineContext) -> DataFrame:
    """Baseline: each user's own items by times bought (ties: most recent), completed to ``top_k`` with recent
    popularity."""
    bought = (bc.view.frame().join(bc.users.select("user_id").distinct(), "user_id")
              .groupBy("user_id", "item_id").agg(F.count("*").alias("n"), F.max("ts").alias("last_ts")))
    order = Window.partitionBy("user_id").orderBy(F.col("n").desc(), F.col("last_ts").desc(), F.col("item_id"))
    own = (bought.withColumn("rank", F.row_number().over(order)).where(F.col("rank") <= bc.top_k)
           .select("user_id", "rank", "item_id", F.col("n").cast("double").alias("score")))
    filler = same_list_for_all(bc.users, _recent_items(bc, 2 * bc.top_k), 2 * bc.top_k)
    return fill_with(own, filler, bc.top_k)


def _recent_distinct_items(frame: DataFrame, max_items: int) -> DataFrame:
    per_pair = frame.groupBy("user_id", "item_id").agg(F.max("ts").alias("last_ts"))
    order = Window.partitionBy("user_id").orderBy(F.col("last_ts").desc(), F.col("item_id"))
    return (per_pair.withColumn("_n", F.row_number().over(order)).where(F.col("_n") <= max_items)
            .select("user_id", "item_id"))


def item_knn(bc: BaselineContext) -> DataFrame:
    """Baseline: item-item cosine similarity over co-buyers (each user's ``knn_max_items_per_user`` most recent items,
    ``knn_neighbors`` neighbours per item); a user's score of an item is the summed similarity to the items they
    bought. Returns (user_id, rank, item_id, score), checkpointed."""
    history = _recent_distinct_items(bc.view.frame(), bc.config.knn_max_items_per_user).persist()
    try:
        buyers = history.groupBy("item_id").agg(F.count("*").cast("double").alias("n"))
        pairs = (history.alias("a").join(history.alias("b"), "user_id")
                 .where(F.col("a.item_id") != F.col("b.item_id"))
                 .groupBy(F.col("a.item_id").alias("item_a"), F.col("b.item_id").alias("item_b"))
                 .agg(F.count("*").cast("double").alias("co")))
        sims = (pairs.join(buyers.select(F.col("item_id").alias("item_a"), F.col("n").alias("n_a")), "item_a")
                .join(buyers.select(F.col("item_id").alias("item_b"), F.col("n").alias("n_b")), "item_b")
                .withColumn("sim", F.col("co") / F.sqrt(F.col("n_a") * F.col("n_b"))))
        order = Window.partitionBy("item_a").orderBy(F.col("sim").desc(), F.col("item_b"))
        neighbors = sims.withColumn("_n", F.row_number().over(order)).where(
            F.col("_n") <= bc.config.knn_neighbors).select("item_a", "item_b", "sim")
        mine = history.join(bc.users.select("user_id").distinct(), "user_id")
        scored = (mine.join(neighbors, mine["item_id"] == neighbors["item_a"])
                  .groupBy("user_id", F.col("item_b").alias("item_id")).agg(F.sum("sim").alias("score")))
        return top_k_per_user(scored, bc.top_k).localCheckpoint(eager=True)
    finally:
        history.unpersist()


# ---------------------------------------------------------------- ALS
@dataclass(frozen=True)
class ALSParams:
    """One point of the implicit-ALS grid: ``rank``, ``reg_param`` and confidence ``alpha``."""

    rank: int
    reg_param: float
    alpha: float

    def label(self) -> str:
        """``"rank=16,reg=0.1,alpha=10"``: how the grid point appears in logs and tuning rows."""
        return f"rank={self.rank},reg={self.reg_param:g},alpha={self.alpha:g}"


def als_grid(config: EvaluationConfig) -> list[ALSParams]:
    """Every combination of ``evaluation.als_ranks`` x ``als_reg_params`` x ``als_alphas``."""
    return [ALSParams(r, g, a) for r, g, a in itertools.product(config.als_ranks, config.als_reg_params,
                                                                 config.als_alphas)]


def _index(frame: DataFrame, column: str) -> DataFrame:
    distinct = frame.select(column).distinct()
    indexed = distinct.rdd.map(lambda row: row[0]).zipWithIndex()
    schema = T.StructType([T.StructField(column, frame.schema[column].dataType),
                           T.StructField(f"{column}_ix", T.LongType())])
    return frame.sparkSession.createDataFrame(indexed, schema).withColumn(
        f"{column}_ix", F.col(f"{column}_ix").cast("int"))


def als_recommend(view: TrainingView, users: DataFrame, top_k: int, params: ALSParams,
                  config: EvaluationConfig) -> DataFrame:
    """Fit implicit ALS on the view and return the top_k of every target user known to it."""
    from pyspark.ml.recommendation import ALS

    frame = view.frame()
    counts = frame.groupBy("user_id", "item_id").agg(F.log1p(F.count("*").cast("double")).alias("strength"))
    user_ix = _index(counts, "user_id").persist()
    item_ix = _index(counts, "item_id").persist()
    ratings = counts.join(user_ix, "user_id").join(item_ix, "item_id").select("user_id_ix", "item_id_ix", "strength")
    als = ALS(rank=params.rank, regParam=params.reg_param, alpha=params.alpha, maxIter=config.als_max_iter,
              implicitPrefs=True, userCol="user_id_ix", itemCol="item_id_ix", ratingCol="strength",
              coldStartStrategy="drop", seed=config.als_seed, nonnegative=False)
    model = als.fit(ratings)
    targets = users.select("user_id").distinct().join(user_ix, "user_id").select("user_id_ix")
    recs = model.recommendForUserSubset(targets, top_k)
    exploded = recs.select("user_id_ix", F.posexplode("recommendations").alias("pos", "rec")).select(
        "user_id_ix", (F.col("pos") + 1).cast("int").alias("rank"), F.col("rec.item_id_ix").alias("item_id_ix"),
        F.col("rec.rating").cast("double").alias("score"))
    result = (exploded.join(user_ix, "user_id_ix").join(item_ix, "item_id_ix")
              .select("user_id", "rank", "item_id", "score"))
    result = result.localCheckpoint(eager=True)
    user_ix.unpersist()
    item_ix.unpersist()
    return result


@dataclass
class ALSTuning:
    """Result of `tune_als`: the tuning window, each grid point with its score, the best point, and the metric and k it
    was scored with."""

    window: EvalWindow
    results: list[tuple[ALSParams, float]]
    best: ALSParams
    metric: str
    k: int


def tune_als(view: TrainingView, window: EvalWindow,
             score: Callable[[DataFrame, DataFrame, DataFrame], float], config: EvaluationConfig,
             top_k: int) -> ALSTuning:
    """Grid over rank x reg x alpha: fit on rows before ``window.start``, score on rows inside ``window``.

    ``window`` must end no later than the view's cutoff (it is read from the view), so the evaluated
    window can never be used for tuning. ``score(recs, truth, users) -> float`` (higher is better).
    """
    if not isinstance(view, TrainingView):
        raise LeakageError(f"ALS is tuned on a TrainingView only, got {type(view).__name__}")
    truth = view.between(window.start, window.end).select("user_id", "item_id").distinct().persist()
    fit_view = view.until(window.start)
    users = truth.select("user_id").distinct()
    results: list[tuple[ALSParams, float]] = []
    for params in als_grid(config):
        recs = als_recommend(fit_view, users, top_k, params, config)
        value = float(score(recs, truth, users))
        log.info("[evaluate] ALS %s on %s window: %s=%.5f", params.label(), window.name, config.tuning_metric, value)
        results.append((params, value))
    truth.unpersist()
    best = max(results, key=lambda pair: pair[1])[0]
    return ALSTuning(window, results, best, config.tuning_metric, top_k)


def als_baseline(bc: BaselineContext, params: ALSParams) -> DataFrame:
    """Baseline: implicit ALS with ``params`` fitted on the view; (user_id, rank, item_id, score) for target users known
    to the view (others get no list)."""
    return als_recommend(bc.view, bc.users, bc.top_k, params, bc.config)


SIMPLE_BASELINES: dict[str, Callable[[BaselineContext], DataFrame]] = {
    "global_popularity": global_popularity,
    "recent_popularity": recent_popularity,
    "seasonal_popularity": seasonal_popularity,
    "repeat_buy": repeat_buy,
    "item_knn": item_knn,
}
