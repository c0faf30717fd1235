"""Driver side of `seasonrec train`: data -> training (backend: Horovod or local) -> second stage -> artifacts,
Delta, MLflow."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.context import JobContext, JobError
from seasonrec.core import backends
from seasonrec.core.contract import COPURCHASE, COUNTRY_MIX, ITEM_SIGNALS, WEATHER
from seasonrec.features.item_activity import ItemActivity, item_activity
from seasonrec.features.item_neighbours import (
    ItemNeighbours,
    fit_content_neighbours,
    fit_copurchase,
    item_repeat_rate,
)
from seasonrec.features.item_weather import WeatherHistory, load_weather_history
from seasonrec.training.artifacts import (
    DEFAULT_SOURCE_LIMITS,
    WEATHER_ABLATION_ARRAY,
    TwoStageModel,
    load_scoring_model,
    mark_latest,
    save_scoring_model,
)
from seasonrec.training.data import TrainingData, evaluation_units, load_training_data, window_units
from seasonrec.training.encoding import bought_matrices
from seasonrec.training.metrics import ndcg_at_k, recall_at_k, repeat_buy_top_k, tail_recall, tail_share, top_k
from seasonrec.training.rerank import (
    COLD_START_SIGNALS,
    DISCOVERY_PROTECTED_HEAD,
    NO_WEATHER_NAMES,
    RANKER_GRID,
    RANKER_NAMES,
    Ranker,
    columns,
    discovery_boost,
    fit_ranker,
    with_cold_start,
    with_discovery,
    without_two_tower,
)
from seasonrec.training.trainer import train_fn

log = logging.getLogger("seasonrec")

ITEM_TABLE_KEYS = ["item_id_bucket", "category_index", "price_bucket", "token_ids", "season_lift", "log_q"]


@dataclass
class Units:
    """Evaluation units (user, week) with their encoded inputs and target item positions."""

    frame: pd.DataFrame
    targets: list[list[int]]

    def __len__(self) -> int:
        return len(self.targets)


def _units(data: TrainingData, **where: Any) -> Units:
    return _as_units(evaluation_units(data, **where))


def _as_units(frame: pd.DataFrame) -> Units:
    return Units(frame, [list(map(int, t)) for t in frame["targets"]] if len(frame) else [])


def ranker_units(ctx: JobContext, data: TrainingData, window: tuple[dt.date, dt.date] | None = None) -> Units:
    """A window as `seasonrec evaluate` poses it: per user, a list made at the window's start
    (features cut there), judged on everything the user bought in the window. ``window``: [start,
    end), by default the validation window [split.train_end, split.validation_end)."""
    from seasonrec.features.as_of import user_features_as_of
    from seasonrec.features.calendar import calendar_row

    split = ctx.config.split
    start, end = window or (split.train_end, split.validation_end)
    users = user_features_as_of(ctx.lake, ctx.config, start)
    calendar = calendar_row(ctx.lake.read(tables.CALENDAR), start)
    return _as_units(window_units(data, users, calendar, start, end))


def earlier_windows(train_end: dt.date, validation_end: dt.date, count: int) -> list[tuple[dt.date, dt.date]]:
    """``count`` back-to-back windows as long as the validation window, ending at ``train_end``, latest
    first: e.g. (2011-08-01, 2011-09-01, 2) -> [(2011-07-01, 2011-08-01), (2011-05-31, 2011-07-01)]."""
    length = validation_end - train_end
    return [(train_end - length * (i + 1), train_end - length * i) for i in range(count)]


@dataclass
class EarlierUnits:
    """Ranker examples of one window before ``split.train_end``, with the item co-purchase neighbours
    fitted on the baskets before its start (the model's own are fitted up to ``split.train_end``)."""

    units: Units
    copurchase: ItemNeighbours


def earlier_ranker_units(ctx: JobContext, data: TrainingData, count: int) -> list[EarlierUnits]:
    """`ranker_units` of the ``count`` `earlier_windows`, with their point-in-time co-purchase neighbours;
    windows starting before the first interaction are left out."""
    split, cfg = ctx.config.split, ctx.config.training
    windows = earlier_windows(split.train_end, split.validation_end, count)
    if not windows:  # the default: no Spark job at all
        return []
    silver = ctx.lake.read(tables.SILVER_INTERACTIONS)
    first = silver.agg(F.min("date")).first()[0]
    out = []
    for start, end in windows:
        if first is None or start <= first:
            break
        units = ranker_units(ctx, data, (start, end))
        if len(units):
            out.append(EarlierUnits(units, fit_copurchase(silver, data.item_ids, start, cfg.copurchase_neighbours)))
    return out


def checkpoint_dir(ctx: JobContext) -> str:
    """Where training checkpoints live (what ``--resume`` continues from): ``<paths.checkpoint_dir>/training``."""
    return os.path.join(ctx.config.paths.checkpoint_dir, "training")


@dataclass
class UnitPools:
    """Every unit's first-stage top list and ranker pool, scored at the unit's own week."""

    first: np.ndarray  # [n, k] first-stage top item positions
    candidates: np.ndarray  # [n, C] pool item positions
    first_scores: np.ndarray  # [n, C] their first-stage scores
    features: np.ndarray  # [n, C, F] ranker features
    bought_items: np.ndarray  # [n, M] purchase summary (item position + 1)
    history: np.ndarray  # [n, L] encoded recent history


def unit_pools(model: TwoStageModel, units: Units, activity: ItemActivity, k: int,
               weather: WeatherHistory | None = None, copurchase: ItemNeighbours | None = None) -> UnitPools:
    """Pools and features for `units`, one week at a time: each week's item signals (and weather,
    `WeatherHistory.at`, when ``weather`` is given) are read at that week's Monday
    (`ItemActivity.at`), exactly as `seasonrec score` reads them at the scored day. ``copurchase``:
    neighbours to use instead of the model's (as `seasonrec score` does with fresh ones)."""
    frame = units.frame.reset_index(drop=True)
    weeks = pd.to_datetime(frame["week"]).dt.date.to_numpy()
    parts: dict[str, list[np.ndarray]] = {name: [] for name in UnitPools.__dataclass_fields__}
    order: list[np.ndarray] = []
    groups = []
    for week in sorted(set(weeks)):
        rows = np.flatnonzero(weeks == week)
        block = frame.iloc[rows].reset_index(drop=True)
        context = {ITEM_SIGNALS: activity.at(week), COUNTRY_MIX: activity.country_mix(week),
                   **({WEATHER: weather.at(week)} if weather is not None else {}),
                   **({COPURCHASE: copurchase} if copurchase is not None else {})}
        inputs = model.encode(block, None)
        scores = model.user_matrix_from_inputs(inputs) @ model.item_matrix.T
        groups.append((rows, block, context, inputs, scores, model.candidate_pairs(block, context)))
    # One pool width for every week: wide enough for the user with the most distinct proposals.
    n_items = len(model.item_ids)
    width = max([model.rerank_candidates] + [
        int(np.bincount(np.unique(pairs[0] * n_items + pairs[1]) // n_items).max()) for *_, pairs in groups
        if pairs[0].size])
    for rows, block, context, inputs, scores, pairs in groups:
        candidates, first_scores = model.rerank_pool(block, scores, context, width=width, pairs=pairs)
        parts["first"].append(top_k(scores, k))
        parts["candidates"].append(candidates)
        parts["first_scores"].append(first_scores)
        parts["features"].append(model.rerank_features(inputs, block, candidates, first_scores, context))
        parts["bought_items"].append(bought_matrices(block, model.spec.bought_items_max)[0])
        parts["history"].append(inputs["history"])
        order.append(rows)
    inverse = np.argsort(np.concatenate(order), kind="stable")
    return UnitPools(**{name: np.concatenate(values)[inverse] for name, values in parts.items()})


def new_to_user(targets: list[list[int]], bought_items: np.ndarray) -> list[list[int]]:
    """The targets each user had not bought before (``bought_items`` holds item position + 1, 0 pads)."""
    out = []
    for row, bought in zip(targets, bought_items, strict=True):
        before = set(bought.tolist())
        out.append([t for t in row if t + 1 not in before])
    return out


def _ranked(pools: UnitPools, scores: np.ndarray) -> np.ndarray:
    return np.take_along_axis(pools.candidates, np.argsort(-scores, axis=1, kind="stable"), 1)


def evaluate(model: TwoStageModel, units: Units, is_tail: np.ndarray, k: int, activity: ItemActivity,
             use_reranker: bool = True, weather: WeatherHistory | None = None) -> dict[str, float]:
    """Full-catalog first stage, the ranker over the multi-source pool, and the repeat-buy heuristic on `units`."""
    if not len(units):
        return {}
    pools = unit_pools(model, units, activity, k, weather)
    first = pools.first
    discoveries = new_to_user(units.targets, pools.bought_items)
    out = {f"recall_at_{k}": recall_at_k(first, units.targets, k), "ndcg_at_10": ndcg_at_k(first, units.targets, 10),
           f"tail_share_at_{k}": tail_share(first, is_tail, k),
           f"discovery_recall_at_{k}": recall_at_k(first, discoveries, k)}
    if use_reranker and model.reranker is not None:
        final = _ranked(pools, model.final_scores(pools.features, pools.candidates, pools.history))
        out.update({f"reranked_recall_at_{k}": recall_at_k(final, units.targets, k),
                    "reranked_ndcg_at_10": ndcg_at_k(final, units.targets, 10),
                    f"reranked_tail_share_at_{k}": tail_share(final, is_tail, k)})
    out[f"final_recall_at_{k}"] = out.get(f"reranked_recall_at_{k}", out[f"recall_at_{k}"])
    out["final_ndcg_at_10"] = out.get("reranked_ndcg_at_10", out["ndcg_at_10"])
    # The user's purchase summary (most bought first) when the units carry it, else the recent history.
    heuristic = repeat_buy_top_k(pools.bought_items if "bought_items" in units.frame else pools.history,
                                 model.weights["log_q"], k)
    out.update({f"repeat_buy_recall_at_{k}": recall_at_k(heuristic, units.targets, k),
                "repeat_buy_ndcg_at_10": ndcg_at_k(heuristic, units.targets, 10)})
    return out


RANKER_FOLDS = 4


def train_second_stage(model: TwoStageModel, units: Units, k: int, seed: int, activity: ItemActivity,
                       is_tail: np.ndarray, weather: WeatherHistory | None = None,
                       weather_mode: str = "auto", earlier: Sequence[EarlierUnits] = (),
                       ) -> tuple[Ranker | None, dict[str, Any], Ranker | None]:
    """Fit the LightGBM ranker on validation pools, cross-fitted over users so every decision is
    made on users the deciding model never saw: the users fall in ``RANKER_FOLDS`` folds; for each
    fold a ranker is fitted on the others (early-stopped on the next fold) and scores it. Those
    out-of-fold scores choose the settings (``RANKER_GRID``, by NDCG@10), decide whether the ranker
    beats the first stage (recall@k), and calibrate the discovery knob; the kept ranker is refitted
    on every unit with the median early-stopped number of trees. ``reranker_pool_recall`` in the
    returned info is the share of the units' purchases that reached the pool (the ranker's ceiling);
    ``discovery`` the calibrated default of the long-tail knob (`calibrate_discovery`).

    ``earlier`` (`earlier_ranker_units`): windows before the validation window whose units may be
    added to every fit's training examples with the two-tower's in-sample score missing
    (`without_two_tower`); the search tries each setting with and without them (never scored on them).

    Weather (``weather``: the units' `WeatherHistory`; ``weather_mode``: ``training.weather_features``):
    the search runs twice, with every feature and without ``WEATHER_FEATURE_NAMES``; ``on``/``off``
    keep that ranker, ``auto`` the weather one when its cross-fitted NDCG@10 is above the other's (a tie keeps the
    simpler ranker: without weather data the weather columns are zeros and score the same).
    The other is refitted the same way (its own settings and trees; same cold start) and returned
    third, for the evaluation's weather ablation (None when no ranker is kept)."""
    if len(units) < 20:
        return None, {"reranker": "skipped: fewer than 20 validation units"}, None
    pools = unit_pools(model, units, activity, k, weather)
    labels = _labels(pools.candidates, units.targets)
    folds = user_folds(units.frame["user_id"].astype(str).to_numpy(), seed)

    extra_pools = [(unit_pools(model, e.units, activity, k, weather, e.copurchase), e.units.targets) for e in earlier]
    extra_sets = [(without_two_tower(p.features), _labels(p.candidates, targets)) for p, targets in extra_pools]
    variants = {with_weather: (columns(pools.features, names), names,
                               [(columns(x, names), y) for x, y in extra_sets])
                for with_weather, names in ((True, RANKER_NAMES), (False, NO_WEATHER_NAMES))}
    try:
        searched = {with_weather: _ranker_search(variant, labels, folds, seed, pools, units.targets)
                    for with_weather, variant in variants.items()}
    except ValueError as exc:
        return None, {"reranker": f"skipped: {exc}"}, None
    best_of = {with_weather: max(trials, key=lambda trial: trial["ndcg"]) for with_weather, trials in searched.items()}
    weather_ndcg, plain_ndcg = best_of[True]["ndcg"], best_of[False]["ndcg"]
    use_weather = weather_mode == "on" or (weather_mode == "auto" and weather_ndcg > plain_ndcg)
    best = best_of[use_weather]
    first_recall = recall_at_k(_ranked(pools, pools.first_scores), units.targets, k)
    second_recall = recall_at_k(_ranked(pools, best["scores"]), units.targets, k)
    keep = second_recall >= first_recall
    info = {"reranker_units": len(units), "reranker_pool_width": int(pools.candidates.shape[1]),
            "reranker_pool_recall": round(_pool_recall(labels, units.targets), 4),
            "reranker_heldout_first_stage_recall": first_recall, "reranker_heldout_recall": second_recall,
            "reranker_grid_ndcg": [{"params": t["params"], "earlier_windows": t["earlier"],
                                    "ndcg_at_10": round(t["ndcg"], 4), "trees": t["trees"]}
                                   for t in searched[use_weather]],
            "reranker_params": best["params"], "reranker_trees": best["trees"],
            "reranker_earlier_units": [len(e.units) for e in earlier],
            "reranker_earlier_pool_recall": [round(_pool_recall(y, t), 4) for (_, y), (_, t) in
                                             zip(extra_sets, extra_pools, strict=True)],
            "reranker_uses_earlier_windows": best["earlier"],
            "reranker": "kept" if keep else "dropped (no held-out gain)",
            "weather_features": weather_mode, "reranker_uses_weather": use_weather,
            "weather_heldout_ndcg": round(weather_ndcg, 4), "no_weather_heldout_ndcg": round(plain_ndcg, 4)}
    if not keep:
        return None, info, None
    cold_start, cold_recalls = choose_cold_start(pools, best["scores"], units.targets, k)
    info.update({"cold_start": cold_start, "cold_start_heldout_recall": cold_recalls})
    scores = best["scores"] if cold_start is None else with_cold_start(best["scores"], pools.features, cold_start)
    discovery, curve = calibrate_discovery(scores, pools.candidates, units.targets, pools.bought_items,
                                           model.weights["log_q"], is_tail, k,
                                           known=(pools.history > 0).any(axis=1), folds=folds,
                                           boost=discovery_boost(is_tail[pools.candidates], pools.features))
    info.update({"discovery": discovery, "discovery_curve": curve})
    final = _refit(variants[use_weather], best, labels, seed, cold_start)
    ablation = _refit(variants[not use_weather], best_of[not use_weather], labels, seed, cold_start)
    info["reranker_feature_gain"] = final.feature_importance()
    return final, info, ablation


# One ranker variant's training data: [n, c, F] features of the validation units, the feature names, and the
# earlier windows' (features, labels) it may add.
RankerVariant = tuple[np.ndarray, list[str], list[tuple[np.ndarray, np.ndarray]]]


def _ranker_search(variant: RankerVariant, labels: np.ndarray, folds: np.ndarray, seed: int, pools: UnitPools,
                   targets: list[list[int]]) -> list[dict[str, Any]]:
    """Every ``RANKER_GRID`` setting, with and without the earlier windows' units (when there are any),
    cross-fitted over the user ``folds``: one trial per combination with its params, ``earlier``, the
    out-of-fold ``scores``, the median early-stopped ``trees`` and the out-of-fold ``ndcg`` (NDCG@10).
    Raises ValueError when LightGBM cannot fit (`cross_fit`)."""
    features, names, extra = variant
    trials = []
    for params, uses_earlier in itertools.product(RANKER_GRID, (False, True) if extra else (False,)):
        scores, trees = cross_fit(features, labels, folds, seed, params, names, extra=extra if uses_earlier else ())
        trials.append({"params": params, "earlier": uses_earlier, "scores": scores, "trees": int(np.median(trees)),
                       "ndcg": ndcg_at_k(_ranked(pools, scores), targets, 10)})
    return trials


def _refit(variant: RankerVariant, trial: dict[str, Any], labels: np.ndarray, seed: int,
           cold_start: str | None) -> Ranker:
    """The ranker of ``trial``'s settings refitted on every unit of ``variant`` with its median tree count."""
    features, names, extra = variant
    ranker = fit_ranker(features, labels, seed, rounds=max(trial["trees"], 1), params=trial["params"],
                        feature_names=names, extra=extra if trial["earlier"] else ())
    ranker.cold_start = cold_start
    return ranker


MIN_COLD_START_UNITS = 20


def choose_cold_start(pools: UnitPools, scores: np.ndarray, targets: list[list[int]],
                      k: int) -> tuple[str | None, dict[str, float]]:
    """What ranks users without history: the ranker (None) or one of ``COLD_START_SIGNALS``, whichever
    has the best recall@k on the validation units without history (``scores``: the ranker's
    out-of-fold [n, C] scores of ``pools``; a signal must beat the ranker, not tie). Returns (choice,
    {"ranker" or signal: recall}); (None, {}) with fewer than ``MIN_COLD_START_UNITS`` such units."""
    new = np.flatnonzero(~(pools.history > 0).any(axis=1))
    if len(new) < MIN_COLD_START_UNITS:
        return None, {}
    new_targets = [targets[i] for i in new]

    def recall(ranking: np.ndarray) -> float:
        return round(recall_at_k(_ranked(pools, ranking)[new], new_targets, k), 4)

    recalls = {"ranker": recall(scores)}
    recalls.update({signal: recall(with_cold_start(scores, pools.features, signal)) for signal in COLD_START_SIGNALS})
    best = max(COLD_START_SIGNALS, key=lambda signal: recalls[signal])
    return (best if recalls[best] > recalls["ranker"] else None), recalls


def user_folds(users: np.ndarray, seed: int, n_folds: int = RANKER_FOLDS) -> np.ndarray:
    """int [n]: the cross-fitting fold of each unit's user (``users``: [n] ids, a user's units share
    a fold): the distinct users shuffled by ``seed`` and dealt round robin into ``n_folds``."""
    unique = np.random.default_rng(seed).permutation(np.unique(users))
    fold_of = {user: i % n_folds for i, user in enumerate(unique.tolist())}
    return np.array([fold_of[user] for user in users])


def _labels(candidates: np.ndarray, targets: list[list[int]]) -> np.ndarray:
    """float32 [n, C]: 1 where a pool's item is among its unit's targets."""
    return np.array([np.isin(row, t) for row, t in zip(candidates, targets, strict=True)], dtype=np.float32)


def _pool_recall(labels: np.ndarray, targets: list[list[int]]) -> float:
    """Mean share of a unit's distinct targets that reached its pool (units with targets)."""
    return float(np.mean([labels[i].sum() / len(set(t)) for i, t in enumerate(targets) if len(t)]))


def cross_fit(features: np.ndarray, labels: np.ndarray, folds: np.ndarray, seed: int,
              params: dict[str, Any], feature_names: list[str] | None = None,
              extra: Sequence[tuple[np.ndarray, np.ndarray]] = ()) -> tuple[np.ndarray, list[int]]:
    """Out-of-fold ranker scores [n, C] for [n, C, F] ``features`` / [n, C] ``labels``: fold f is
    scored by a ranker fitted on the folds other than f and f+1, early-stopped on fold f+1.
    ``folds``: int [n] fold of each unit (0..max); ``feature_names``: the columns' names when not
    ``FEATURE_NAMES``; ``extra``: (features, labels) of other units every fit also learns from
    (`fit_ranker`), never scored. Returns (scores, early-stopped trees per fold)."""
    n_folds = int(folds.max()) + 1
    scores = np.zeros(labels.shape, np.float32)
    trees = []
    for fold in range(n_folds):
        scored, stop = folds == fold, folds == (fold + 1) % n_folds
        fit = ~scored & ~stop
        ranker = fit_ranker(features[fit], labels[fit], seed, valid=(features[stop], labels[stop]), params=params,
                            feature_names=feature_names, extra=extra)
        scores[scored] = ranker.score(features[scored])
        trees.append(ranker.best_iteration)
    return scores, trees


DISCOVERY_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0)
DISCOVERY_RECALL_BUDGET = 0.05


def calibrate_discovery(scores: np.ndarray, candidates: np.ndarray, targets: list[list[int]],
                        bought_items: np.ndarray, log_q: np.ndarray, is_tail: np.ndarray,
                        k: int, known: np.ndarray | None = None, folds: np.ndarray | None = None,
                        head: int = DISCOVERY_PROTECTED_HEAD, *,
                        boost: np.ndarray) -> tuple[float, list[dict[str, Any]]]:
    """The default of `scoring.discovery`, chosen on held-out validation users (never on a test window).

    A value keeps the accuracy budget when recall@k and NDCG@10 stay within
    ``DISCOVERY_RECALL_BUDGET`` (5%) of no boost, recall@k at or above the repeat-buy heuristic's
    (or no boost's, when that is below it), and, with ``folds`` (int [n] user fold), the budget holds
    in every fold, not only on average: near the knob's cliff the folds disagree, and a value that
    passes only on average does not carry to another month. The default is the largest grid value
    that keeps the budget, it and every smaller one (`discovery_choice`): with the top ``head``
    protected (`with_discovery`) NDCG@10 cannot move, so the knob spends at most the budget's share
    of recall@k on tail items. The first rule stopped at the smallest value matching repeat-buy's
    tail share on these users, which falls short wherever the model's tail gap to re-buying is
    wider than in the validation month (the gap moves from month to month).
    ``scores``/``candidates``: [n, C] ranker scores of the pools; ``bought_items``: [n, M]
    purchase summaries (position + 1); ``log_q``: popularity, ``is_tail``: the long tail (what discovery
    boosts and what tail share/recall count), per item;
    ``known``: users with a history (the only ones discovery applies to, see `with_discovery`);
    ``boost``: float [n, C] what the knob lifts per candidate (`discovery_boost`, as scoring does).
    Returns (value, [{discovery, recall, ndcg, tail_share, tail_recall, within_budget}] per grid value).
    """
    heuristic = repeat_buy_top_k(bought_items, log_q, k)
    heuristic_recall = recall_at_k(heuristic, targets, k)
    groups = [np.arange(len(targets))] + ([np.flatnonzero(folds == f) for f in np.unique(folds)]
                                          if folds is not None else [])

    def accuracy(ranked: np.ndarray) -> list[tuple[float, float]]:
        """(recall@k, NDCG@10) on all users, then on each fold."""
        return [(recall_at_k(ranked[g], [targets[i] for i in g], k), ndcg_at_k(ranked[g], [targets[i] for i in g], 10))
                for g in groups]

    curve, base = [], None
    for value in DISCOVERY_GRID:
        boosted = with_discovery(scores, boost, value, known, head)
        ranked = np.take_along_axis(candidates, np.argsort(-boosted, axis=1, kind="stable"), 1)
        measured = accuracy(ranked)
        base = base or measured
        within = all(r >= (1 - DISCOVERY_RECALL_BUDGET) * r0 and n >= (1 - DISCOVERY_RECALL_BUDGET) * n0
                     for (r, n), (r0, n0) in zip(measured, base, strict=True))
        curve.append({"discovery": value, "recall": round(measured[0][0], 4), "ndcg": round(measured[0][1], 4),
                      "tail_share": round(tail_share(ranked, is_tail, k), 4),
                      "tail_recall": round(tail_recall(ranked, targets, is_tail, k), 4),
                      # Never below repeat-buy's recall, unless no boost already is (then never below that).
                      "within_budget": bool(within and measured[0][0] >= min(heuristic_recall, base[0][0]))})
    return discovery_choice(curve), curve


def discovery_choice(curve: list[dict[str, Any]]) -> float:
    """The default knob value from `calibrate_discovery`'s ``curve`` (grid order, first = no boost):
    the last value before the first one out of budget (0 when no boost is already out of it)."""
    chosen = 0.0
    for point in curve:
        if not point["within_budget"]:
            break
        chosen = point["discovery"]
    return chosen


def train(ctx: JobContext, *, resume: bool = False, use_context: bool | None = None,
          holdout: tuple[dt.date, dt.date] | None = None, fail_after_epoch: int | None = None) -> dict[str, Any]:
    """Train, export and register a model version; returns the job summary.

    The steps: the two-tower on the training rows (Horovod or local backend, early-stopped on the
    validation window), the item side (co-purchase and content neighbours, item activity, weather),
    the second stage on the validation window (`train_second_stage`), the test (and holdout) figures,
    then the artifact, the ``latest`` pointer, item_embeddings and the MLflow run.

    ``holdout``: a date window removed from the training rows and evaluated separately (e.g. a
    winter window to check that seasonality generalises). ``fail_after_epoch``: tests of --resume.
    """
    config = ctx.config
    cfg = config.training
    use_context = cfg.use_calendar_context if use_context is None else use_context
    started = time.perf_counter()
    with ctx.step("load training data"):
        data = load_training_data(ctx, use_context=use_context, holdout=holdout)
        validation = _units(data, split="validation")
        if not len(validation):
            raise JobError(f"table '{tables.TRAINING_EXAMPLES}' has no validation positives; early stopping needs them")
    model_version = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + ctx.run_id
    version_dir = os.path.join(config.paths.model_dir, model_version)
    params = {**cfg.model_dump(), "use_calendar_context": use_context}
    mlflow_run = start_mlflow_run(ctx, params, data.spec.to_dict(), model_version, data.table_versions)
    tower = _fit_two_tower(ctx, data, validation, params, model_version, version_dir, mlflow_run, resume,
                           fail_after_epoch)
    with ctx.step("candidate sources: co-purchase neighbours and weekly item activity"):
        item_arrays, activity, weather = _item_side(ctx, data)
    arrays = {**tower.weights, **item_arrays}
    meta = {"model_version": model_version, "feature_spec": data.spec.to_dict(), "params": params,
            "user_dense_dim": data.spec.user_dense_dim, "embedding_dim": int(tower.weights["item_matrix"].shape[1]),
            "rerank_candidates": cfg.rerank_candidates, "reranker_enabled": False,
            "source_limits": DEFAULT_SOURCE_LIMITS,
            "use_calendar_context": use_context, "table_versions": data.table_versions,
            "best_epoch": tower.state["best_epoch"], "history": tower.state["history"], "run_id": ctx.run_id,
            "holdout": [str(d) for d in holdout] if holdout else None}
    model = TwoStageModel(model_version, data.item_ids, tower.weights["item_matrix"], data.spec, arrays, meta,
                         ablate_context=not use_context)
    summary: dict[str, Any] = {"model_version": model_version, "model_dir": version_dir,
                               **tower.summary(cfg.recall_k), "train_rows": data.n_train_rows}
    if cfg.reranker:
        with ctx.step("second stage (re-ranker)"):
            earlier = earlier_ranker_units(ctx, data, cfg.ranker_earlier_windows)
            reranker, info, ablation = train_second_stage(model, ranker_units(ctx, data), cfg.recall_k, cfg.seed,
                                                          activity, data.is_tail, weather, cfg.weather_features,
                                                          earlier)
            summary.update(info)
            if reranker is not None:
                _attach_second_stage(model, arrays, meta, reranker, ablation, info["discovery"])
    with ctx.step("evaluate on test (and holdout) windows"):
        windows = [("test", _units(data, split="test"))]
        if holdout:
            windows.append(("holdout", _units(data, window=holdout)))
        for label, units in windows:
            summary[label] = {"units": len(units), **_window_metrics(model, units, data.is_tail, cfg.recall_k,
                                                                     activity, weather, use_context)}
        meta["metrics"] = {label: summary[label] for label, _ in windows}
    save_scoring_model(version_dir, meta, arrays)
    mark_latest(config.paths.model_dir, model_version)
    with ctx.step("item_embeddings -> Delta"):
        summary["item_embeddings_version"] = write_item_embeddings(ctx, model)
    summary["mlflow_run_id"] = finish_mlflow_run(mlflow_run, summary, version_dir)
    summary["seconds_total"] = round(time.perf_counter() - started, 1)
    return summary


@dataclass
class TowerFit:
    """The fitted two-tower: its exported ``weights`` (item matrix, user tower), the chief's training
    ``state`` (epochs, best epoch and validation recall, history) and every process's result."""

    weights: dict[str, np.ndarray]
    state: dict[str, Any]
    results: list[dict[str, Any]]
    seconds: float

    def summary(self, recall_k: int) -> dict[str, Any]:
        """The job summary's training figures (epochs, early stopping, speed, whether the ranks agree)."""
        chief, state = self.results[0], self.state
        return {"epochs_run": state["epoch"] - chief["initial_epoch"], "resumed_from_epoch": chief["initial_epoch"],
                "last_epoch": state["epoch"], "best_epoch": state["best_epoch"], "early_stopped": state["stopped"],
                f"val_recall_at_{recall_k}": state["best_recall"], "train_seconds": round(self.seconds, 1),
                "num_proc": len(self.results), "fit_seconds": round(chief["seconds"], 1),
                "examples_per_second_per_process": round(chief["examples"] / max(chief["seconds"], 1e-9), 1),
                "ranks_agree": len({r["digest"] for r in self.results}) == 1, "history": state["history"]}


def _fit_two_tower(ctx: JobContext, data: TrainingData, validation: Units, params: dict[str, Any],
                   model_version: str, version_dir: str, mlflow_run: dict[str, str] | None, resume: bool,
                   fail_after_epoch: int | None) -> TowerFit:
    """Fit the two-tower on ``data``'s training rows with the configured backend, early-stopped on the
    recall of the ``validation`` units; checkpoints under `checkpoint_dir` (kept with ``resume``, else
    cleared). Returns the `TowerFit` (the exported tower.npz is read and removed from ``version_dir``)."""
    cfg = ctx.config.training
    ckpt_dir = checkpoint_dir(ctx)
    if resume and not os.path.exists(os.path.join(ckpt_dir, "state.json")):
        log.warning("--resume: no checkpoint under %s, starting from epoch 0", ckpt_dir)
    if not resume:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    os.makedirs(ckpt_dir, exist_ok=True)
    spec_dict = {**data.spec.to_dict(), "user_dense_dim": data.spec.user_dense_dim}
    encoder = TwoStageModel(model_version, data.item_ids, np.zeros((len(data.item_ids), 1), np.float32), data.spec,
                            {"seen_user_buckets": data.seen_user_buckets},
                            ablate_context=not params["use_calendar_context"])
    val_inputs = encoder.encode(validation.frame, None)
    backend = backends.make_backend(cfg.backend, cfg.num_proc)
    steps = backend.steps_per_epoch(data.n_train_rows, cfg.batch_size)
    with ctx.step(f"{backend.name} training on {backend.size} process(es), {steps} steps/epoch"):
        train_started = time.perf_counter()
        results = backend.fit(
            ctx, data.train_rows, train_fn, params=params, spec=spec_dict, item_tables=data.item_tables,
            val_inputs=val_inputs, val_targets=validation.targets, steps_per_epoch=steps, checkpoint_dir=ckpt_dir,
            export_dir=version_dir, resume=resume, fail_after_epoch=fail_after_epoch, mlflow_run=mlflow_run)
        seconds = time.perf_counter() - train_started
    with np.load(os.path.join(version_dir, "tower.npz")) as tower:
        weights = {key: tower[key] for key in tower.files}
    os.remove(os.path.join(version_dir, "tower.npz"))
    return TowerFit(weights, results[0]["state"], results, seconds)


def _item_side(ctx: JobContext, data: TrainingData) -> tuple[dict[str, np.ndarray], ItemActivity,
                                                              WeatherHistory | None]:
    """What the candidate sources and the ranker know of items: (artifact arrays of the item tables,
    co-purchase and content neighbours, repeat rates, item ids and tail flags; the weekly item activity,
    read only at each unit's own date; the weather history, or None)."""
    config, cfg = ctx.config, ctx.config.training
    silver = ctx.lake.read(tables.SILVER_INTERACTIONS)
    copurchase = fit_copurchase(silver, data.item_ids, config.split.train_end, cfg.copurchase_neighbours)
    content = fit_content_neighbours(data.item_tables["token_ids"], data.item_tables["category_index"],
                                     cfg.copurchase_neighbours)
    repeat_rate = item_repeat_rate(silver, data.item_ids, config.split.train_end)
    activity, weather = sales_signals(ctx, data, silver)
    arrays = {**{key: data.item_tables[key] for key in ITEM_TABLE_KEYS}, **copurchase.to_arrays("copurchase"),
              **content.to_arrays("content"), "item_repeat_rate": repeat_rate,
              "seen_user_buckets": data.seen_user_buckets, "item_ids": data.item_ids.astype(str),
              "is_tail": data.is_tail}
    return arrays, activity, weather


def sales_signals(ctx: JobContext, data: TrainingData, silver: DataFrame | None = None
                  ) -> tuple[ItemActivity, WeatherHistory | None]:
    """The item sales signals and weather the ranker's features read, as training builds them.

    ``data``: `load_training_data`'s items; ``silver``: ``silver_interactions`` if already read.
    Returns (the weekly item activity up to the test end, the weather history or None without
    weather); both are read only at each unit's own date, so no later week reaches a feature.
    """
    config = ctx.config
    silver = ctx.lake.read(tables.SILVER_INTERACTIONS) if silver is None else silver
    activity = item_activity(silver, data.item_ids, config.split.test_end)
    return activity, load_weather_history(ctx.lake, config, data.item_ids, config.split.test_end)


def _attach_second_stage(model: TwoStageModel, arrays: dict[str, np.ndarray], meta: dict[str, Any], reranker: Ranker,
                         ablation: Ranker | None, discovery: float) -> None:
    """Put the kept ranker (and its without-weather twin) into the model, its artifact arrays and meta."""
    arrays.update(reranker.to_arrays())
    if ablation is not None:
        arrays[WEATHER_ABLATION_ARRAY] = ablation.to_arrays()["ranker_model"]
        meta["weather_ablation_features"] = ablation.feature_names
    meta.update({"discovery": discovery, "cold_start": reranker.cold_start, "reranker_enabled": True,
                 "reranker_features": reranker.feature_names})
    model.reranker = reranker
    model.discovery = discovery  # as a reloaded model has it: the run's own metrics rank like scoring


def _window_metrics(model: TwoStageModel, units: Units, is_tail: np.ndarray, k: int, activity: ItemActivity,
                    weather: WeatherHistory | None, use_context: bool) -> dict[str, Any]:
    """`evaluate`'s figures for ``units``, plus ``context_ablated_*`` (the model without calendar context)
    when the model reads the context."""
    metrics = evaluate(model, units, is_tail, k, activity, weather=weather)
    if use_context:
        ablated = evaluate(model.with_ablated_context(), units, is_tail, k, activity, weather=weather)
        metrics.update({f"context_ablated_{key}": value for key, value in ablated.items()
                        if not key.startswith("repeat_buy")})
    return metrics


def write_item_embeddings(ctx: JobContext, model: TwoStageModel) -> int:
    """Overwrite the ``item_embeddings`` table with the model's item vectors (item_index, item_id, embedding,
    model_version); returns the Delta version written."""
    frame = pd.DataFrame({
        "item_index": np.arange(len(model.item_ids), dtype=np.int32),
        "item_id": model.item_ids.astype(str),
        "embedding": [row.astype(np.float32).tolist() for row in model.item_matrix],
        "model_version": model.model_version,
    })
    df = ctx.spark.createDataFrame(frame, schema=tables.spec(tables.ITEM_EMBEDDINGS).ddl)
    return ctx.lake.write(df, tables.ITEM_EMBEDDINGS, mode="overwrite",
                          commit_info=ctx.commit_info(model_version=model.model_version))


def start_mlflow_run(ctx: JobContext, params: dict[str, Any], spec: dict[str, Any], model_version: str,
                     table_versions: dict[str, int | None]) -> dict[str, str]:
    """Open the training's MLflow run before training (params, data versions, tags) so rank 0 can log
    each epoch's metrics while training runs; returns {tracking_uri, run_id} for the workers."""
    import mlflow

    from seasonrec.tracking import tracking_uri, use_experiment

    use_experiment(ctx.config)
    with mlflow.start_run(run_name=f"train-{ctx.run_id}") as run:
        mlflow.log_params({f"training.{key}": value for key, value in params.items()})
        mlflow.log_params({"history_length": spec["history_length"], "model_version": model_version,
                           **{f"delta_version.{name}": version for name, version in table_versions.items()}})
        mlflow.set_tags({"seasonrec.run_id": ctx.run_id, "seasonrec.model_version": model_version,
                         "training_data_delta_version": str(table_versions.get(tables.TRAINING_EXAMPLES))})
        return {"tracking_uri": tracking_uri(ctx.config), "run_id": run.info.run_id}


def finish_mlflow_run(mlflow_run: dict[str, str], summary: dict[str, Any], version_dir: str) -> str:
    """Final metrics (test/holdout windows, time) and the model directory into the training's run; a
    resumed training also gets the epochs before the resume (logged live into the interrupted run)."""
    import mlflow

    with mlflow.start_run(run_id=mlflow_run["run_id"]) as run:
        for row in summary["history"]:
            if row["epoch"] <= summary["resumed_from_epoch"]:
                mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))
        for split in ("test", "holdout"):
            for key, value in summary.get(split, {}).items():
                mlflow.log_metric(f"{split}.{key}", float(value))
        mlflow.log_metric("train_seconds", summary["train_seconds"])
        mlflow.log_artifacts(version_dir, artifact_path="model")
        return run.info.run_id


def reload(ctx: JobContext, ablate_context: bool = False) -> TwoStageModel:
    """The latest trained model under ``paths.model_dir`` (`load_scoring_model`), optionally with the context
    ablated."""
    return load_scoring_model(ctx.config.paths.model_dir, ablate_context=ablate_context)

