"""Full-catalog scoring on Spark: a `mapInPandas` UDF that scores every user against every item.

How it runs
- The driver resolves the model (a model dir, loaded with `seasonrec.training.artifacts`, or any
  in-memory `Recommender`), the calendar context of the date and the filters, and broadcasts the
  item side once: the [d, n] item matrix restricted to eligible (sellable, embedded) items, their
  model positions, item ids and category codes.
- Users are repartitioned into `scoring.partitions` (default 2 x `defaultParallelism`, so it adapts
  to the cluster) and streamed to Python workers as Arrow batches. Each worker loads the model once
  (module-level cache keyed by model dir and version, reused across tasks and batches), then takes
  `scoring.user_block_size` users at a time: user tower -> one GEMM [block, n_items] -> exact top-C
  -> the model's second stage on those C candidates -> category cap -> top K. Memory per task is
  bounded by the block size; the users x items matrix never exists.
- Already-bought items (option) arrive as a per-user list of item columns joined in by Spark and
  are masked before the top-K, so the result stays exact.
- Worker counters (users, unseen users, users without a vector, blocks, model loads, peak RSS)
  come back through an accumulator; `ScoringRun.summary()` reads them after the action.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import resource
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.accumulators import AccumulatorParam
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from seasonrec import tables
from seasonrec.config import ScoringConfig
from seasonrec.context import JobContext, JobError
from seasonrec.core.contract import COPURCHASE, COUNTRY_MIX, ITEM_SIGNALS, WEATHER, has_reranker
from seasonrec.core.topk import score_block
from seasonrec.features.as_of import user_features_as_of
from seasonrec.features.calendar import WEEKS, calendar_row
from seasonrec.features.item_activity import item_activity
from seasonrec.features.item_neighbours import fit_copurchase
from seasonrec.features.item_weather import load_weather_history
from seasonrec.scoring.models import load_model

log = logging.getLogger("seasonrec")

EXCLUDE_COLUMN = "_exclude_columns"
_MAX_CACHED_MODELS = 2

# Why an item is on a list (`explain`, the ``reason`` column of `seasonrec score` and of a served answer),
# first that applies: the user bought it before (the re-buy source's purchase summary); it is a
# co-purchase neighbour of one of the user's recent items (the co-purchase source; the most recent such
# item is named by its title); it sells at least 1.5x its average week in the context's week of year
# (the model's season lift); else it is one of what sells now for everyone.
REASON_REBUY = "re-buy"
REASON_SIMILAR = "similar to"  # + " <title of the recent item>"
REASON_IN_SEASON = "in season"
REASON_POPULAR = "popular now"
SEASON_LIFT_IN_SEASON = 0.5


_SCORING_DEFAULTS = ScoringConfig()


@dataclass(frozen=True)
class ScoringOptions:
    """How a scoring run ranks and filters: list length, user block size, second stage and its candidate count, category
    cap, output partitions, bought/sellable filters, the long-tail ``discovery`` boost, fresh co-purchase neighbours,
    worker statistics and per-item reasons (``explain``). Usually built with `from_config`; the defaults
    are the ``scoring`` section's."""

    top_k: int = _SCORING_DEFAULTS.top_k
    user_block_size: int = _SCORING_DEFAULTS.user_block_size
    rerank: bool = _SCORING_DEFAULTS.rerank
    rerank_candidates: int | None = _SCORING_DEFAULTS.rerank_candidates  # None: the model's own, else 200
    max_per_category: int | None = _SCORING_DEFAULTS.max_per_category
    partitions: int | None = _SCORING_DEFAULTS.partitions
    exclude_bought: bool = _SCORING_DEFAULTS.exclude_bought
    sellable_weeks: int = _SCORING_DEFAULTS.sellable_weeks
    discovery: float | None = _SCORING_DEFAULTS.discovery  # None: the model's calibrated default
    fresh_copurchase: bool = _SCORING_DEFAULTS.fresh_copurchase  # refit co-purchase neighbours before the date
    record_worker_stats: bool = True
    explain: bool = False  # add a ``reason`` per recommended item (`explain`); scoring and serving set it

    @classmethod
    def from_config(cls, config: Any, top_k: int | None = None) -> ScoringOptions:
        """The options of the config's ``scoring`` section; ``top_k`` overrides ``scoring.top_k`` when given.
        ``record_worker_stats`` and ``explain`` keep their defaults (callers replace them)."""
        scoring = config.scoring
        return cls(top_k=top_k or scoring.top_k, user_block_size=scoring.user_block_size, rerank=scoring.rerank,
                   rerank_candidates=scoring.rerank_candidates,
                   max_per_category=scoring.max_per_category, partitions=scoring.partitions,
                   exclude_bought=scoring.exclude_bought, sellable_weeks=scoring.sellable_weeks,
                   discovery=scoring.discovery, fresh_copurchase=scoring.fresh_copurchase)


@dataclass(frozen=True)
class ItemSide:
    """What every worker needs about the items, broadcast once per run."""

    item_matrix_t: np.ndarray  # [d, n_eligible] float32, C-contiguous
    positions: np.ndarray  # [n_eligible] row of each eligible item in the model's item_matrix
    item_ids: np.ndarray  # [n_eligible] item_id of each eligible item
    categories: np.ndarray | None  # [n_eligible] int32 category code, -1 unknown
    column_of: np.ndarray  # [n_model_items] column of each model item position, -1 when not eligible
    titles: np.ndarray | None = None  # [n_model_items] title per model item position (for reasons), or None


@dataclass(frozen=True)
class ModelHandle:
    """How a worker gets the model: from a shared model dir, or from a broadcast of the object."""

    model_version: str
    model_dir: str | None = None
    broadcast: Any = None
    token: str = ""  # unique per broadcast (worker-side Broadcast objects carry no id)

    @property
    def cache_key(self) -> tuple[str, str]:
        """``(source, model_version)``: the model dir (or ``broadcast:<token>``) and version a worker caches the loaded
        model under."""
        source = self.model_dir if self.model_dir is not None else f"broadcast:{self.token}"
        return source, self.model_version


class _StatsParam(AccumulatorParam):
    """Dict accumulator: counters add up, keys starting with `max_` keep the maximum."""

    def zero(self, value: dict[str, float]) -> dict[str, float]:
        return {}

    def addInPlace(self, total: dict[str, float], more: dict[str, float]) -> dict[str, float]:  # noqa: N802
        for key, value in more.items():
            if key.startswith("max_"):
                total[key] = max(total.get(key, value), value)
            else:
                total[key] = total.get(key, 0) + value
        return total


# ---------------------------------------------------------------- worker side
_WORKER_MODELS: dict[tuple[str, str], tuple[Any, bool]] = {}
_WORKER_LOADS = {"count": 0}


def worker_model(handle: ModelHandle, ablate_context: bool = False) -> Any:
    """The model for `handle`, loaded at most once per Python worker process (then reused by every
    task and batch); `ablate_context` is applied on top of the model's own setting."""
    cached = _WORKER_MODELS.get(handle.cache_key)
    if cached is not None:
        model, ablated_when_loaded = cached
        if hasattr(model, "ablate_context"):
            model.ablate_context = ablated_when_loaded or ablate_context
        return model
    if handle.model_dir is not None:
        model = load_model(handle.model_dir)
        if str(model.model_version) != handle.model_version:
            raise RuntimeError(f"model under {handle.model_dir} changed during scoring: version "
                               f"{model.model_version}, expected {handle.model_version}")
    else:
        model = handle.broadcast.value
    while len(_WORKER_MODELS) >= _MAX_CACHED_MODELS:
        _WORKER_MODELS.pop(next(iter(_WORKER_MODELS)))
    _WORKER_MODELS[handle.cache_key] = (model, bool(getattr(model, "ablate_context", False)))
    _WORKER_LOADS["count"] += 1
    return worker_model(handle, ablate_context)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _exclusions(column: pd.Series | None) -> tuple[np.ndarray, np.ndarray] | None:
    if column is None:
        return None
    lengths = np.fromiter((0 if v is None else len(v) for v in column), np.int64, len(column))
    if not lengths.sum():
        return None
    rows = np.repeat(np.arange(len(column)), lengths)
    cols = np.concatenate([np.asarray(v, np.int64) for v in column if v is not None and len(v)])
    return rows, cols


def _eligible_pairs(pairs: tuple[np.ndarray, np.ndarray], items: ItemSide) -> tuple[np.ndarray, np.ndarray]:
    """(user row, model item position) pairs -> (user row, scored column), dropping ineligible items."""
    rows, positions = pairs
    columns = items.column_of[positions]
    keep = columns >= 0
    return rows[keep], columns[keep]


def use_options(model: Any, options: ScoringOptions) -> None:
    """Apply the request options the model itself reads (the discovery knob)."""
    if hasattr(model, "discovery"):  # None: the value the model calibrated on validation users
        model.discovery = (options.discovery if options.discovery is not None
                           else getattr(model, "calibrated_discovery", 0.0))


def prepared_users(model: Any, block: pd.DataFrame, context: dict[str, Any]) -> Any:
    """The block as the model's methods take it: encoded once for ``context`` when the model can
    (``model.prepare``, e.g. `TwoStageModel`), so the user tower, the candidate sources and the
    ranker do not each encode it again; else the frame itself."""
    prepare = getattr(model, "prepare", None)
    return prepare(block, context) if callable(prepare) else block


def recommend_block(model: Any, block: pd.DataFrame, context: dict[str, Any], items: ItemSide,
                    options: ScoringOptions, user_key: str = "user_id",
                    counters: dict[str, float] | None = None) -> pd.DataFrame:
    """Top-K of one block of users, in memory: the whole scoring path the Spark UDF runs per block
    (user tower, GEMM over the eligible items, every candidate source's proposals, the ranker,
    exclusions and the category cap), so a caller without Spark (a notebook, a server) gets exactly
    the lists `seasonrec score` writes.

    ``block``: user rows (gold_user_features columns; an optional ``EXCLUDE_COLUMN`` of scored
    columns to leave out); ``context``: calendar row + item side (`item_side_at`); ``items``:
    `build_item_side(model, ...)[0]`. Returns DataFrame[<user_key>, rank, item_id, score];
    ``counters`` (optional) get users / unseen_users / users_without_vector / rows added.
    """
    counters = counters if counters is not None else {}
    block = block.reset_index(drop=True)
    exclude_column = block.pop(EXCLUDE_COLUMN) if EXCLUDE_COLUMN in block.columns else None
    rerank_on = options.rerank and has_reranker(model)
    users = prepared_users(model, block, context)
    vectors = np.asarray(model.user_matrix(users, context), dtype=np.float32)
    counters["users_without_vector"] = counters.get("users_without_vector", 0) + int(
        (~np.isfinite(vectors).all(axis=1)).sum())
    known_mask = getattr(model, "known_user_mask", None)
    if known_mask is not None:
        counters["unseen_users"] = counters.get("unseen_users", 0) + int((~np.asarray(known_mask(users), bool)).sum())

    def rerank(cols: np.ndarray, values: np.ndarray) -> np.ndarray:
        return model.rerank(users, items.positions[cols], values, context)

    # Every candidate source's proposals reach the ranker next to the GEMM's best (a strong re-buy or
    # a trending tail item may score low in the first stage).
    source_pairs = getattr(model, "candidate_pairs", None) if rerank_on else None
    include = _eligible_pairs(source_pairs(users, context), items) if source_pairs else None
    top = score_block(vectors, items.item_matrix_t, options.top_k,
                      candidates=rerank_candidates(options, model) if rerank_on else options.top_k,
                      exclude=_exclusions(exclude_column), rerank=rerank if rerank_on else None, include=include,
                      categories=items.categories, max_per_category=options.max_per_category)
    counters["users"] = counters.get("users", 0) + len(block)
    counters["rows"] = counters.get("rows", 0) + len(top.ranks)
    frame = pd.DataFrame({
        user_key: block[user_key].to_numpy()[top.user_rows],
        "rank": top.ranks,
        "item_id": items.item_ids[top.columns],
        "score": top.scores.astype(np.float64),
    })
    if options.explain:
        frame["reason"] = explain(model, block, np.asarray(top.user_rows), items.positions[top.columns], context,
                                  items.titles)
    return frame


def _ragged(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column of int lists -> (row of each value, value), values in row order then list order."""
    lengths = np.fromiter((0 if v is None else len(v) for v in column), np.int64, len(column))
    if not lengths.sum():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    values = np.concatenate([np.asarray(v, np.int64) for v in column if v is not None and len(v)])
    return np.repeat(np.arange(len(column)), lengths), values


def explain(model: Any, block: pd.DataFrame, user_rows: np.ndarray, positions: np.ndarray,
            context: dict[str, Any] | None, titles: np.ndarray | None = None) -> np.ndarray:
    """The reason (``REASON_*``) each recommended item is on its user's list, vectorized over a block.

    ``block``: the users' rows (``bought_items`` and ``last_items`` as model item positions, as in
    gold_user_features; a missing column means no such reason); ``user_rows``/``positions``: each
    recommended (block row, model item position). Re-buy: the position is in the user's purchase
    summary. Similar to: it is a co-purchase neighbour (``context[COPURCHASE]``, else the model's) of
    a recent item; the most recent such item is named by ``titles`` (its item_id without a title).
    In season: the model's ``season_lift`` of the context's week is at least 0.5. Else popular now.
    Returns an object array of strings, one per recommended item."""
    user_rows = np.asarray(user_rows, np.int64)
    positions = np.asarray(positions, np.int64)
    item_ids = np.asarray(model.item_ids)
    n_items = len(item_ids)
    keys = user_rows * n_items + positions
    reasons = np.full(len(positions), REASON_POPULAR, dtype=object)
    weights = getattr(model, "weights", None)
    if isinstance(weights, dict) and "season_lift" in weights:
        week = min(max(int((context or {}).get("week_of_year") or 1), 1), WEEKS) - 1
        lift = np.asarray(weights["season_lift"])[:, week]
        reasons[lift[positions] >= SEASON_LIFT_IN_SEASON] = REASON_IN_SEASON
    neighbours = (context or {}).get(COPURCHASE) or getattr(model, "copurchase", None)
    if neighbours is not None and "last_items" in block.columns and len(keys):
        rows, recent = _ragged(block["last_items"])  # per user: most recent first
        valid = (recent >= 0) & (recent < neighbours.items.shape[0])
        rows, recent = rows[valid], recent[valid]
        near = np.asarray(neighbours.items)[recent]  # [m, N] neighbour positions, -1 = none
        found = near >= 0
        pair_keys = (rows[:, None] * n_items + near)[found]
        sources = np.broadcast_to(recent[:, None], near.shape)[found]
        listed = np.unique(keys)  # keep only the recommended pairs (order kept) before the sort below
        hit = listed[np.minimum(np.searchsorted(listed, pair_keys), listed.size - 1)] == pair_keys
        pair_keys, sources = pair_keys[hit], sources[hit]
        if pair_keys.size:
            unique, first = np.unique(pair_keys, return_index=True)  # first: the most recent recent item
            at = np.minimum(np.searchsorted(unique, keys), unique.size - 1)
            similar = unique[at] == keys
            named = sources[first[at[similar]]]
            names = titles[named] if titles is not None else item_ids[named]
            reasons[similar] = [f"{REASON_SIMILAR} {name if isinstance(name, str) and name else item_ids[p]}"
                                for name, p in zip(names.tolist(), named.tolist(), strict=True)]
    if "bought_items" in block.columns and len(keys):
        rows, bought = _ragged(block["bought_items"])
        reasons[np.isin(keys, rows * n_items + bought)] = REASON_REBUY
    return reasons


def recommend_users(model: Any, users: pd.DataFrame, context: dict[str, Any], items: ItemSide,
                    options: ScoringOptions, user_key: str = "user_id") -> pd.DataFrame:
    """`recommend_block` over ``users`` in blocks of ``options.user_block_size``, as the Spark UDF
    cuts its batches (a block's candidate pool is as wide as its widest user's proposals, so block
    boundaries are part of the result). Applies ``options`` to the model first (`use_options`)."""
    use_options(model, options)
    blocks = [recommend_block(model, users.iloc[start:start + options.user_block_size], context, items, options,
                              user_key) for start in range(0, len(users), options.user_block_size)]
    return pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(
        columns=[user_key, "rank", "item_id", "score", *(["reason"] if options.explain else [])])


def _score_partitions(handle: ModelHandle, items_bc: Any, context: dict[str, Any], options: ScoringOptions,
                      ablate_context: bool, stats: Any, user_key: str):
    """The function given to `mapInPandas` (closes over small, picklable values only)."""

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        counters: dict[str, float] = {"users": 0, "unseen_users": 0, "users_without_vector": 0, "blocks": 0,
                                      "rows": 0, "tasks": 1}
        loads_before = _WORKER_LOADS["count"]
        model = None
        for pdf in batches:
            if model is None:
                model = worker_model(handle, ablate_context)
                use_options(model, options)
            for start in range(0, len(pdf), options.user_block_size):
                block = pdf.iloc[start:start + options.user_block_size]
                counters["blocks"] += 1
                yield recommend_block(model, block, context, items_bc.value, options, user_key, counters)
        if options.record_worker_stats:
            counters["model_loads"] = _WORKER_LOADS["count"] - loads_before
            counters["max_worker_rss_mb"] = _peak_rss_mb()
            stats.add(counters)

    return score


def rerank_candidates(options: ScoringOptions, model: Any) -> int:
    """First-stage candidates per user for the second stage: ``options.rerank_candidates``, else the model's
    ``rerank_candidates`` (200 when it has none), and never fewer than ``options.top_k``."""
    return max(options.rerank_candidates or int(getattr(model, "rerank_candidates", 200)), options.top_k)


# ---------------------------------------------------------------- driver side
@dataclass
class ScoringRun:
    """A lazy recommendations DataFrame plus what is known about the run (complete after an action)."""

    recommendations: DataFrame
    model_version: str
    context_date: dt.date | None
    facts: dict[str, Any]
    stats: Any = field(repr=False, default=None)

    def worker_stats(self) -> dict[str, float]:
        """The workers' accumulated counters (empty before an action ran or without statistics)."""
        values = dict(self.stats.value) if self.stats is not None else {}
        return values

    def summary(self) -> dict[str, Any]:
        """The run's ``facts`` plus the worker counters under ``workers``."""
        return {**self.facts, "workers": self.worker_stats()}


def _spark_type_of(values: np.ndarray) -> T.DataType:
    if np.issubdtype(values.dtype, np.integer):
        return T.LongType()
    if np.issubdtype(values.dtype, np.floating):
        return T.DoubleType()
    return T.StringType()


def output_schema(user_id_type: T.DataType, item_ids: np.ndarray, explain: bool = False) -> T.StructType:
    """The UDF's rows: user_id, rank, item_id, score (+ reason with ``explain``); the kernel never
    leaves rank, item_id, score or reason empty, so they are declared NOT NULL."""
    fields = [
        T.StructField("user_id", user_id_type),
        T.StructField("rank", T.IntegerType(), nullable=False),
        T.StructField("item_id", _spark_type_of(item_ids), nullable=False),
        T.StructField("score", T.DoubleType(), nullable=False),
    ]
    if explain:
        fields.append(T.StructField("reason", T.StringType(), nullable=False))
    return T.StructType(fields)


def resolve_model(model_dir_or_model: Any) -> tuple[Any, str | None]:
    """(model, model_dir or None) from a path or a `Recommender` object."""
    if isinstance(model_dir_or_model, str | os.PathLike):
        model_dir = os.fspath(model_dir_or_model)
        try:  # pin the version LATEST names now, so every worker loads the same one
            from seasonrec.training.artifacts import resolve_version_dir

            model_dir = resolve_version_dir(model_dir)
        except FileNotFoundError as exc:
            raise JobError(str(exc)) from None
        return load_model(model_dir), model_dir
    return model_dir_or_model, None


def build_item_side(model: Any, sellable_item_ids: set[Any] | None = None,
                    item_categories: dict[Any, Any] | None = None,
                    item_titles: dict[Any, Any] | None = None) -> tuple[ItemSide, dict[str, Any]]:
    """Eligible items (embedded and, when given, sellable) and facts about the catalog for the report;
    ``item_titles`` ({item_id: title}) name the recent item of a "similar to" reason (`explain`)."""
    item_ids = np.asarray(model.item_ids)
    item_matrix = np.asarray(model.item_matrix, dtype=np.float32)
    if item_matrix.ndim != 2 or item_matrix.shape[0] != len(item_ids):
        raise JobError(f"model item_matrix has shape {item_matrix.shape}, expected [{len(item_ids)}, d]")
    finite = np.isfinite(item_matrix).all(axis=1)
    eligible = finite.copy()
    if sellable_item_ids is not None:
        eligible &= np.fromiter((i in sellable_item_ids for i in item_ids.tolist()), bool, len(item_ids))
    positions = np.flatnonzero(eligible).astype(np.int64)
    categories = None
    if item_categories:
        codes: dict[Any, int] = {}
        categories = np.array([codes.setdefault(item_categories[i], len(codes)) if i in item_categories else -1
                               for i in item_ids[positions].tolist()], np.int32)
        if (categories < 0).any():  # unknown category: each item is its own category (never capped together)
            unknown = np.flatnonzero(categories < 0)
            categories[unknown] = len(codes) + np.arange(unknown.size)
    column_of = np.full(len(item_ids), -1, np.int64)
    column_of[positions] = np.arange(positions.size)
    titles = (np.asarray([item_titles.get(i) for i in item_ids.tolist()], dtype=object)
              if item_titles is not None else None)
    side = ItemSide(np.ascontiguousarray(item_matrix[positions].T), positions, item_ids[positions], categories,
                    column_of, titles)
    facts = {"items_in_model": int(len(item_ids)), "items_without_finite_embedding": int((~finite).sum()),
             "items_scored": int(positions.size)}
    if sellable_item_ids is not None:
        facts["items_sellable"] = len(sellable_item_ids)
        facts["items_not_sellable"] = int((finite & ~eligible).sum())
    return side, facts


def build_recommendations(spark: SparkSession, model_dir_or_model: Any, users_df: DataFrame,
                          context: dict[str, Any], options: ScoringOptions, *,
                          sellable_item_ids: set[Any] | None = None, bought_df: DataFrame | None = None,
                          item_categories: dict[Any, Any] | None = None, catalog_item_ids: list[Any] | None = None,
                          ablate_context: bool = False, user_key: str = "user_id",
                          context_date: dt.date | None = None,
                          item_titles: dict[Any, Any] | None = None) -> ScoringRun:
    """The scoring plan for `users_df` (lazy): DataFrame[user_id, rank, item_id, score] (+ reason with
    ``options.explain``) + its report.

    `bought_df` (user_id, item_id) masks already-bought items; `catalog_item_ids` (the item table)
    is compared with the model's items to report items without an embedding; `item_titles` name the
    items of "similar to" reasons.
    """
    sc = spark.sparkContext
    model, model_dir = resolve_model(model_dir_or_model)
    model_version = str(model.model_version)
    item_side, facts = build_item_side(model, sellable_item_ids, item_categories,
                                       item_titles if options.explain else None)
    if catalog_item_ids is not None:
        embedded = set(np.asarray(model.item_ids).tolist())
        missing = sorted((i for i in set(catalog_item_ids) if i not in embedded), key=str)
        facts["items_without_embedding"] = len(missing)
        facts["items_without_embedding_sample"] = missing[:10]
        if missing:
            log.warning("[score] %d catalog items have no embedding and cannot be recommended, e.g. %s",
                        len(missing), missing[:5])
    if item_side.positions.size == 0:
        raise JobError("no item is eligible for scoring (none embedded and sellable); "
                       "check the model or set scoring.sellable_weeks=0")
    if model_dir is not None:
        handle = ModelHandle(model_version, model_dir=os.path.abspath(model_dir) if "://" not in model_dir
                             else model_dir)
    else:
        handle = ModelHandle(model_version, broadcast=sc.broadcast(model), token=uuid.uuid4().hex)
    items_bc = sc.broadcast(item_side)
    partitions = options.partitions or 2 * sc.defaultParallelism

    users = users_df
    if user_key not in users.columns:
        raise JobError(f"users to score need a '{user_key}' column; got {users.columns}")
    if bought_df is not None:
        columns = spark.createDataFrame(pd.DataFrame({"item_id": item_side.item_ids,
                                                      "_column": np.arange(item_side.item_ids.size)}))
        excluded = (bought_df.select(F.col("user_id").alias(user_key), "item_id").distinct()
                    .join(F.broadcast(columns), "item_id")
                    .groupBy(user_key).agg(F.collect_list("_column").alias(EXCLUDE_COLUMN)))
        users = users.join(excluded, user_key, "left")
    users = users.repartition(partitions)
    stats = sc.accumulator({}, _StatsParam())
    schema = output_schema(users_df.schema[user_key].dataType, item_side.item_ids, options.explain)
    recommendations = users.mapInPandas(
        _score_partitions(handle, items_bc, context, options, ablate_context, stats, user_key), schema)
    facts.update({"model_version": model_version, "model_source": model_dir or type(model).__name__,
                  "context_date": context_date, "ablate_context": ablate_context, "top_k": options.top_k,
                  "reranked": bool(options.rerank and has_reranker(model)),
                  "rerank_candidates": rerank_candidates(options, model), "max_per_category": options.max_per_category,
                  "discovery": (options.discovery if options.discovery is not None
                                else getattr(model, "calibrated_discovery", None)),
                  "exclude_bought": bought_df is not None, "partitions": partitions,
                  "user_block_size": options.user_block_size})
    return ScoringRun(recommendations, model_version, context_date, facts, stats)


# ---------------------------------------------------------------- lake inputs
def as_date(value: str | dt.date | dt.datetime) -> dt.date:
    """A ``date`` from a date, a datetime (its date) or an ISO ``YYYY-MM-DD`` string; anything else raises JobError."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise JobError(f"date '{value}' is not a date; use YYYY-MM-DD") from None


def _require(ctx: JobContext, name: str, why: str) -> DataFrame:
    if not ctx.lake.exists(name):
        raise JobError(f"table '{name}' does not exist {ctx.lake.where} ({why}); run `seasonrec features` first")
    return ctx.lake.read(name)


def context_for_date(ctx: JobContext, context_date: str | dt.date) -> dict[str, Any]:
    """The calendar row of `context_date` as a dict (the model's season/holiday context)."""
    calendar = _require(ctx, tables.CALENDAR, "the scoring context comes from the calendar")
    return calendar_row(calendar, as_date(context_date))


_ITEM_SIDE_CACHE: dict[tuple[Any, ...], dict[str, Any]] = {}


def item_side_at(ctx: JobContext, model: Any, day: dt.date, fresh_copurchase: bool) -> dict[str, Any]:
    """The ranker's request context about items at `day`: {ITEM_SIGNALS: sales signals of whole weeks
    before it (guests included), COUNTRY_MIX: the countries' item mix over those weeks} plus, with
    ``fresh_copurchase`` and a model that has co-purchase neighbours, {COPURCHASE: neighbours refitted
    on every basket before it}, plus, when the lake has `context_daily`, {WEATHER: the weather of
    `day` as known before it and the items' weather sensitivity (`seasonrec.features.item_weather`)}.
    Cached per lake, silver_interactions and context_daily version, day and model, so an evaluation
    that scores one date several times (the discovery sweep, the weather ablation) computes it once."""
    interactions = _require(ctx, tables.SILVER_INTERACTIONS, "the ranker's item signals come from sales")
    item_ids = np.asarray(model.item_ids)
    neighbours = getattr(model, "copurchase", None) if fresh_copurchase else None
    weather_version = ctx.lake.version(tables.CONTEXT_DAILY) if ctx.lake.exists(tables.CONTEXT_DAILY) else None
    key = (ctx.lake.where, ctx.lake.version(tables.SILVER_INTERACTIONS), weather_version, day,
           getattr(model, "model_version", None), len(item_ids), neighbours is not None)
    if key not in _ITEM_SIDE_CACHE:
        activity = item_activity(interactions, item_ids, day)
        side: dict[str, Any] = {ITEM_SIGNALS: activity.at(day), COUNTRY_MIX: activity.country_mix(day)}
        if neighbours is not None:
            side[COPURCHASE] = fit_copurchase(interactions, item_ids, day, neighbours.items.shape[1])
        weather = load_weather_history(ctx.lake, ctx.config, item_ids, day) if weather_version is not None else None
        if weather is not None:
            side[WEATHER] = weather.at(day)
        _ITEM_SIDE_CACHE.clear()  # one date at a time is what jobs do; keep memory flat
        _ITEM_SIDE_CACHE[key] = side
    return dict(_ITEM_SIDE_CACHE[key])


def sellable_items(ctx: JobContext, context_date: dt.date, weeks: int) -> set[Any]:
    """Items with a sale in the `weeks` weeks strictly before `context_date`."""
    interactions = _require(ctx, tables.SILVER_INTERACTIONS, "the sellable filter needs sales; "
                            "scoring.sellable_weeks=0 disables it")
    since = context_date - dt.timedelta(weeks=weeks)
    rows = (interactions.where((F.col("date") >= F.lit(since)) & (F.col("date") < F.lit(context_date)))
            .select("item_id").distinct().collect())
    items = {row["item_id"] for row in rows}
    if not items:
        raise JobError(f"no item sold between {since} and {context_date} (scoring.sellable_weeks={weeks}); "
                       "pick a date covered by silver_interactions or set scoring.sellable_weeks=0")
    return items


def scoring_run(ctx: JobContext, model_dir_or_model: Any, users_df: DataFrame | None = None,
                context_date: str | dt.date | None = None, top_k: int | None = None,
                ablate_context: bool = False, options: ScoringOptions | None = None) -> ScoringRun:
    """`recommend` with its report: filters and context from the lake and `ctx.config.scoring`."""
    if context_date is None:
        raise JobError("a context date is needed to score (the season comes from it)")
    day = as_date(context_date)
    options = options or ScoringOptions.from_config(ctx.config, top_k)
    if top_k is not None and options.top_k != top_k:
        options = ScoringOptions(**{**options.__dict__, "top_k": top_k})
    context = context_for_date(ctx, day)
    model, model_dir = resolve_model(model_dir_or_model)
    if has_reranker(model):
        context.update(item_side_at(ctx, model, day, options.fresh_copurchase))
    model_dir_or_model = model_dir if model_dir is not None else model
    if users_df is None:
        users_df = user_features_as_of(ctx.lake, ctx.config, day)
    sellable = sellable_items(ctx, day, options.sellable_weeks) if options.sellable_weeks > 0 else None
    bought = None
    if options.exclude_bought:
        interactions = _require(ctx, tables.SILVER_INTERACTIONS, "exclude_bought needs purchases")
        bought = interactions.where(F.col("date") < F.lit(day)).select("user_id", "item_id")
    categories = catalog = None
    if ctx.lake.exists(tables.ITEM_FEATURES):
        item_rows = ctx.lake.read(tables.ITEM_FEATURES).select("item_id", "category").collect()
        catalog = [row["item_id"] for row in item_rows]
        if options.max_per_category is not None:
            categories = {row["item_id"]: row["category"] for row in item_rows}
    elif options.max_per_category is not None:
        raise JobError(f"scoring.max_per_category needs item categories from '{tables.ITEM_FEATURES}'")
    titles = None
    if options.explain and ctx.lake.exists(tables.SILVER_ITEMS):
        titles = {row["item_id"]: row["title"] for row in
                  ctx.lake.read(tables.SILVER_ITEMS).select("item_id", "title").collect()}
    return build_recommendations(ctx.spark, model_dir_or_model, users_df, context, options,
                                 sellable_item_ids=sellable, bought_df=bought, item_categories=categories,
                                 catalog_item_ids=catalog, ablate_context=ablate_context, context_date=day,
                                 item_titles=titles)


def recommend(ctx: JobContext, model_dir_or_model: Any, users_df: DataFrame | None, context_date: str | dt.date,
              top_k: int | None = None, ablate_context: bool = False) -> DataFrame:
    """Top-K recommendations without writing them: DataFrame[user_id, rank, item_id, score] (lazy)."""
    return scoring_run(ctx, model_dir_or_model, users_df, context_date, top_k, ablate_context).recommendations
