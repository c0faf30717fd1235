"""Trained-model artifacts and the scoring contract used by the Spark scoring UDF.

Contract (what `seasonrec.scoring` codes against)::

    from seasonrec.training.artifacts import load_scoring_model

    model = load_scoring_model(config.paths.model_dir)          # follows <model_dir>/LATEST; or a version dir
    model = load_scoring_model(path, ablate_context=True)       # same model, calendar context zeroed
    model.model_version      # str, also in the item_embeddings table
    model.item_ids           # np.ndarray[str]  (n_items,), aligned with item_matrix rows (= item_index order)
    model.item_matrix        # np.ndarray float32 (n_items, d)
    u = model.user_matrix(users, context)                       # float32 (n_users, d)
    scores = u @ model.item_matrix.T                             # first-stage scores, higher is better
    top = np.argsort(-scores, axis=1)[:, :model.rerank_candidates]
    new = model.rerank(users, top, np.take_along_axis(scores, top, 1), context)   # (n_users, c)
    pairs = model.candidate_pairs(users, context)   # (rows, positions) from the other candidate sources

- ``users``: a pandas DataFrame with the ``gold_user_features`` columns (user_id, country,
  recency_days, frequency, monetary, category_affinity, season_affinity, last_items, ...). Users
  unseen in training get a vector from the OOV id bucket plus their features and history.
- ``context``: one row of the ``calendar`` table as a dict (the date being recommended for):
  woy_sin, woy_cos, season_north, season_south, is_holiday, days_to_next_event,
  days_since_last_event. The hemisphere's season is chosen per user from ``country``.
- ``rerank`` is the second stage (a LightGBM lambdarank ranker, `seasonrec.training.rerank`); it
  returns the input scores unchanged when the model has none (``model.has_reranker``). The pool it
  ranks is the two-tower's best items plus ``candidate_pairs`` (re-buys, co-purchase neighbours,
  trending, last year's weeks ahead, popular now: `seasonrec.training.candidates`).
- ``context[ITEM_SIGNALS]`` (optional): the item signals at the request date
  (`seasonrec.features.item_activity`); the scoring job and evaluation always set it.
- ``context[WEATHER]`` (optional): the weather of the request date (`seasonrec.features.item_weather.
  WeatherAt`); a user row's optional ``anomaly_7d_c`` replaces its country's. Without it the ranker's
  weather features are zeros. ``model.weather_ablation()``: the same model with the ranker fitted
  the other way (with / without weather features), for the evaluation's ablation.
- ``context[COPURCHASE]`` (optional): co-purchase neighbours refitted on the baskets before the
  request date (``scoring.fresh_copurchase``); else the model's own, fitted before its training cut.
- ``model.known_user_mask(users)``: bool [n_users], False = unseen at training time.
- ``model.ablate_context`` may be set after loading (or use ``with_ablated_context()``).
- Loading reads one ``.npz`` and one JSON file and imports neither TensorFlow nor Spark: load it
  once per Python worker (e.g. a module-level cache keyed by path); nothing needs broadcasting.

Layout of one model version directory (written by rank 0 at the end of training)::

    <model_dir>/LATEST                  -> "<model_version>"
    <model_dir>/<model_version>/meta.json     hyper-parameters, feature spec, metrics, data versions
    <model_dir>/<model_version>/scoring.npz   numpy weights of the user tower, item matrix, re-ranker
    <model_dir>/<model_version>/keras/        the full Keras model (weights, for MLflow/reloading)
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from seasonrec.core.contract import COPURCHASE, COUNTRY_MIX, ITEM_SIGNALS, USER_ANOMALY, WEATHER
from seasonrec.core.topk import top_candidates
from seasonrec.features.item_activity import ACTIVITY_FEATURES
from seasonrec.features.item_neighbours import RECENCY_DECAY, ItemNeighbours
from seasonrec.training.candidates import CandidateRequest, TopLists, all_pairs
from seasonrec.training.encoding import (
    FeatureSpec,
    bought_matrices,
    calendar_columns,
    encode_users,
    user_bucket,
)
from seasonrec.training.rerank import (
    FEATURE_NAMES,
    WEATHER_FEATURE_NAMES,
    PoolInputs,
    Ranker,
    candidate_features,
    discovery_boost,
    with_discovery,
)

LATEST_FILE = "LATEST"
# scoring.npz entry of the weather-ablation ranker's model text (see `TwoStageModel.weather_ablation`).
WEATHER_ABLATION_ARRAY = "ranker_model_weather_ablation"
META_FILE = "meta.json"
WEIGHTS_FILE = "scoring.npz"


# Proposals per user from each candidate source (`seasonrec.training.candidates.SOURCES`).
DEFAULT_SOURCE_LIMITS = {"rebuy": 50, "copurchase": 40, "content": 20, "trending": 30, "last_year": 30,
                         "first_orders": 30, "popular_now": 30}


# Item signals whose global top lists a model keeps (one per scored date is what jobs and servers use).
_TOP_LISTS_KEPT = 4


@dataclass
class EncodedUsers:
    """A block of user rows encoded once for one request context (`TwoStageModel.prepare`): the user
    tower, the candidate sources and the ranker all read these instead of encoding the frame again.

    ``frame``: the gold_user_features rows; ``context``: the calendar row + item side it was encoded
    for; ``inputs``: `encode`'s arrays; ``pool``: `pool_inputs`, filled on first use.
    """

    frame: pd.DataFrame
    context: dict[str, Any] | None
    inputs: dict[str, np.ndarray]
    pool: PoolInputs | None = None


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


@dataclass
class TwoStageModel:
    """A trained model version, scored with numpy (mirror of ``TwoTowerModel.user_full``)."""

    model_version: str
    item_ids: np.ndarray
    item_matrix: np.ndarray
    spec: FeatureSpec
    weights: dict[str, np.ndarray]
    meta: dict[str, Any] = field(default_factory=dict)
    reranker: Ranker | None = None
    ablate_context: bool = False
    discovery: float = 0.0  # + discovery x score spread x is_tail on final scores; see calibrated_discovery

    @property
    def reranker_enabled(self) -> bool:
        """True when the model carries a second-stage ranker."""
        return self.reranker is not None

    @property
    def has_reranker(self) -> bool:
        """True when the model carries a second-stage ranker (the `Recommender` contract's flag)."""
        return self.reranker is not None

    def known_user_mask(self, users: pd.DataFrame | EncodedUsers) -> np.ndarray:
        """False for users unseen at training time (scored from the OOV bucket + features + history)."""
        frame = users.frame if isinstance(users, EncodedUsers) else users
        buckets = user_bucket(frame["user_id"].tolist(), self.spec.user_buckets)
        return self.weights["seen_user_buckets"][buckets].astype(bool)

    @property
    def rerank_candidates(self) -> int:
        """First-stage candidates per user the ranker was trained on (``meta.json``; 200 when absent)."""
        return int(self.meta.get("rerank_candidates", 200))

    @property
    def embedding_dim(self) -> int:
        """Width ``d`` of the item (and user) vectors: ``item_matrix.shape[1]``."""
        return int(self.item_matrix.shape[1])

    def encode(self, users: pd.DataFrame, context: dict[str, Any] | None) -> dict[str, np.ndarray]:
        """gold_user_features rows + a calendar row -> model inputs (context=None: rows carry context columns)."""
        calendar = None if context is None else calendar_columns(users, context, self.spec)
        return encode_users(users, self.spec, self.weights["seen_user_buckets"], ablate_context=self.ablate_context,
                            calendar=calendar)

    def prepare(self, users: pd.DataFrame | EncodedUsers, context: dict[str, Any] | None) -> EncodedUsers:
        """``users`` encoded for ``context`` (returned as is when it already is, for that same context).
        Every method that takes user rows also takes what this returns, so scoring a block encodes
        it once (`seasonrec.scoring.engine.recommend_block`)."""
        if isinstance(users, EncodedUsers):
            if users.context is context:
                return users
            users = users.frame
        return EncodedUsers(users, context, self.encode(users, context))

    def user_matrix(self, users: pd.DataFrame | EncodedUsers, context: dict[str, Any] | None) -> np.ndarray:
        """[n_users, d] float32 user vectors for gold_user_features rows (or an `EncodedUsers` block) at ``context`` (a
        calendar row; None: the rows carry the context columns)."""
        return self.user_matrix_from_inputs(self.prepare(users, context).inputs)

    @cached_property
    def _padded_item_core(self) -> np.ndarray:
        """item_core with a zero row 0 for history padding: built once, not per block (at 50k items a
        copy of the whole matrix per request)."""
        core = self.weights["item_core"]
        return np.vstack([np.zeros((1, core.shape[1]), np.float32), core])

    def user_matrix_from_inputs(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The user tower in numpy on `encode`'s arrays: [n, d] float32, the L2-normalised user core followed by
        ``season_scale`` x the [n, 52] `week_kernel` (mirrors ``TwoTowerModel.user_full``)."""
        w = self.weights
        history = inputs["history"]
        vectors = self._padded_item_core[history]  # [n, L, d]
        mask = (history > 0).astype(np.float32)
        mean_pool = (vectors * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1.0)
        decay = (RECENCY_DECAY ** np.arange(history.shape[1], dtype=np.float32))[None, :] * mask
        recent_pool = (vectors * decay[..., None]).sum(1) / np.maximum(decay.sum(1, keepdims=True), 1e-6)
        context = inputs["context"].astype(np.float32)
        x = np.concatenate([w["user_embedding"][inputs["user_bucket"]], mean_pool, recent_pool,
                            inputs["user_dense"].astype(np.float32), context], axis=1)
        hidden = np.maximum(x @ w["user_w1"] + w["user_b1"], 0.0)
        user_core = _l2_normalize(hidden @ w["user_w2"] + w["user_b2"])
        kernel = self.week_kernel(context)
        return np.concatenate([user_core, w["season_scale"] * kernel], axis=1).astype(np.float32)

    def week_kernel(self, context: np.ndarray) -> np.ndarray:
        """[n, 52] float32 softmax over weeks of the year from the context's week sin/cos (``context``: [n, CONTEXT_DIM]
        inputs), scaled by their norm: all zeros when the context is ablated."""
        sin_cos = context[:, :2]
        strength = np.linalg.norm(sin_cos, axis=1, keepdims=True)
        return (_softmax(sin_cos @ self.weights["week_w"] + self.weights["week_b"]) * strength).astype(np.float32)

    def scores(self, users: pd.DataFrame, context: dict[str, Any] | None) -> np.ndarray:
        """[n_users, n_items] first-stage scores: `user_matrix` @ ``item_matrix.T``."""
        return self.user_matrix(users, context) @ self.item_matrix.T

    def rerank(self, users: pd.DataFrame | EncodedUsers, candidate_positions: np.ndarray,
               candidate_scores: np.ndarray, context: dict[str, Any] | None) -> np.ndarray:
        """Second-stage scores [n_users, c] for the candidates (input scores when disabled)."""
        if self.reranker is None:
            return np.asarray(candidate_scores)
        block = self.prepare(users, context)
        return self.rerank_from_inputs(block.inputs, block.frame, candidate_positions, candidate_scores, context,
                                       pool=self.block_pool(block))

    def rerank_from_inputs(self, inputs: dict[str, np.ndarray], users: pd.DataFrame, candidate_positions: np.ndarray,
                           candidate_scores: np.ndarray, context: dict[str, Any] | None,
                           reranker: Ranker | None = None, pool: PoolInputs | None = None) -> np.ndarray:
        """Final scores [n, c] of the candidates from encoded users (``pool``: their `pool_inputs`,
        computed here when not given)."""
        reranker = reranker or self.reranker
        if reranker is None:
            return np.asarray(candidate_scores)
        features = self.rerank_features(inputs, users, candidate_positions, candidate_scores, context, pool)
        return self.final_scores(features, candidate_positions, inputs["history"], reranker)

    def final_scores(self, features: np.ndarray, candidate_positions: np.ndarray, history: np.ndarray,
                     reranker: Ranker | None = None) -> np.ndarray:
        """What lists are sorted by: the ranker's scores of the candidates' ``features`` [n, c, F], plus the
        discovery knob's boost (`rerank.with_discovery`) for users with a ``history`` (item_index + 1, 0 pads);
        float32 [n, c]. Scoring, serving and training's own metrics all rank with it."""
        final = (reranker or self.reranker).score(features)
        if self.discovery:
            boost = discovery_boost(self.is_tail[np.asarray(candidate_positions)], features)
            final = with_discovery(final, boost, self.discovery, known=(history > 0).any(axis=1))
        return final.astype(np.float32)

    @property
    def calibrated_discovery(self) -> float:
        """The long-tail knob's default chosen on validation users at training time (0 without one)."""
        return float(self.meta.get("discovery", 0.0))

    @cached_property
    def is_tail(self) -> np.ndarray:
        """bool [n_items]: the item is in the long tail (gold popularity tier "tail" at training time),
        what `discovery` boosts (with the items rising in the weeks ahead, `rerank.discovery_boost`)."""
        return np.asarray(self.weights["is_tail"], bool)

    @cached_property
    def copurchase(self) -> ItemNeighbours | None:
        """The co-purchase neighbours fitted before the training cut (``copurchase_*`` arrays), or None."""
        return ItemNeighbours.from_arrays(self.weights, "copurchase")

    @cached_property
    def content(self) -> ItemNeighbours | None:
        """The content (description/category) neighbours (``content_*`` arrays), or None."""
        return ItemNeighbours.from_arrays(self.weights, "content")

    @property
    def source_limits(self) -> dict[str, int]:
        """Proposals per user of each candidate source, by source name (``meta.json``, else the defaults)."""
        return dict(self.meta.get("source_limits", DEFAULT_SOURCE_LIMITS))

    def item_signals(self, context: dict[str, Any] | None) -> dict[str, np.ndarray]:
        """The context's item signals; all zeros (one shared object) when it has none."""
        signals = (context or {}).get(ITEM_SIGNALS)
        return self._no_item_signals if signals is None else signals

    @cached_property
    def _no_item_signals(self) -> dict[str, np.ndarray]:
        zeros = np.zeros(len(self.item_ids), np.float32)
        return {name: zeros for name in ("recent", *ACTIVITY_FEATURES)}

    def pool_inputs(self, inputs: dict[str, np.ndarray], users: pd.DataFrame,
                    context: dict[str, Any] | None) -> PoolInputs:
        """What the ranker's features need about a block besides the candidates (`PoolInputs`): history, purchase
        summary, week kernel, co-purchase scores (``context[COPURCHASE]``, else the model's own), content scores, the
        item signals and, with ``context[WEATHER]``, the users' weather and the items' sensitivity. ``inputs``:
        `encode`'s arrays for ``users``."""
        history = inputs["history"]
        copurchase, content = (context or {}).get(COPURCHASE) or self.copurchase, self.content
        bought = bought_matrices(users, self.spec.bought_items_max)
        weather = (context or {}).get(WEATHER)
        user_weather = weather_sensitivity = None
        if weather is not None:
            countries = users["country"].tolist() if "country" in users else [None] * len(users)
            anomalies = users[USER_ANOMALY].tolist() if USER_ANOMALY in users else None
            user_weather, weather_sensitivity = weather.user_weather(countries, anomalies), weather.sensitivity
        mix = (context or {}).get(COUNTRY_MIX)
        country_lift = None
        if mix is not None:
            country_lift = mix.user_lift(users["country"].tolist() if "country" in users else [None] * len(users))
        return PoolInputs(history=history, bought=bought, week_kernel=self.week_kernel(inputs["context"]),
                          copurchase=None if copurchase is None else copurchase.user_scores(history),
                          copurchase_affinity=None if copurchase is None else copurchase.affinity_scores(*bought[:2]),
                          content=None if content is None else content.user_scores(history),
                          item_signals=self.item_signals(context), weather=user_weather,
                          weather_sensitivity=weather_sensitivity, country_lift=country_lift)

    def block_pool(self, block: EncodedUsers) -> PoolInputs:
        """`pool_inputs` of an encoded block, computed on first use and kept with it (the candidate
        sources and the ranker both read it)."""
        if block.pool is None:
            block.pool = self.pool_inputs(block.inputs, block.frame, block.context)
        return block.pool

    def rerank_features(self, inputs: dict[str, np.ndarray], users: pd.DataFrame, candidate_positions: np.ndarray,
                        candidate_scores: np.ndarray, context: dict[str, Any] | None,
                        pool: PoolInputs | None = None) -> np.ndarray:
        """[n, c, F] ranker features (``pool``: the users' `pool_inputs`, computed here when not given)."""
        pool = self.pool_inputs(inputs, users, context) if pool is None else pool
        return candidate_features(pool, np.asarray(candidate_positions),
                                  np.asarray(candidate_scores), self.weights["season_lift"], self.weights["log_q"],
                                  self.weights.get("item_repeat_rate"))

    def candidate_pairs(self, users: pd.DataFrame | EncodedUsers,
                        context: dict[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
        """(user row, item position) proposed by every candidate source besides the two-tower GEMM."""
        pool = self.block_pool(self.prepare(users, context))
        request = CandidateRequest(history=pool.history, bought_items=pool.bought[0], item_signals=pool.item_signals,
                                   copurchase=pool.copurchase, content=pool.content,
                                   top_lists=self.top_lists(pool.item_signals))
        rows, positions = all_pairs(request, self.source_limits)
        known = positions < len(self.item_ids)
        return rows[known], positions[known]

    @cached_property
    def _top_lists(self) -> OrderedDict[int, tuple[dict[str, np.ndarray], TopLists]]:
        return OrderedDict()

    def top_lists(self, item_signals: dict[str, np.ndarray]) -> TopLists:
        """The global candidate sources' top lists for ``item_signals`` (the same for every user at a
        date: computed once, not per request). Keyed by the signals object (one per scored date in jobs
        and servers); the entry keeps that object, so an id reused after it is freed never matches.
        Holds the last `_TOP_LISTS_KEPT` signals."""
        kept = self._top_lists
        entry = kept.get(id(item_signals))
        if entry is None or entry[0] is not item_signals:
            entry = (item_signals, {})
            kept[id(item_signals)] = entry
            while len(kept) > _TOP_LISTS_KEPT:
                kept.popitem(last=False)
        kept.move_to_end(id(item_signals))
        return entry[1]

    def rerank_pool(self, users: pd.DataFrame, scores: np.ndarray, context: dict[str, Any] | None,
                    width: int | None = None,
                    pairs: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(candidate positions, first-stage scores) [n, C] over all items: every source's proposals
        (``pairs``, default `candidate_pairs`) plus the two-tower's best; C = ``width`` (default
        `rerank_candidates`), or more when a user has more distinct proposals (see `top_candidates`)."""
        pairs = self.candidate_pairs(users, context) if pairs is None else pairs
        return top_candidates(np.array(scores, dtype=np.float32), width or self.rerank_candidates, pairs)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (e.g. a Spark broadcast) without what `cached_property` derived from the weights."""
        derived = {name for name, value in vars(type(self)).items() if isinstance(value, cached_property)}
        return {key: value for key, value in self.__dict__.items() if key not in derived}

    def with_ablated_context(self, ablate: bool = True) -> TwoStageModel:
        """The same model with ``ablate_context`` set to ``ablate`` (weights shared, not copied)."""
        return TwoStageModel(self.model_version, self.item_ids, self.item_matrix, self.spec, self.weights,
                            self.meta, self.reranker, ablate, self.discovery)

    @property
    def uses_weather(self) -> bool:
        """The kept ranker reads the weather features (``training.weather_features``)."""
        return bool(self.reranker is not None and set(WEATHER_FEATURE_NAMES) & set(self.reranker.feature_names))

    def weather_ablation(self) -> TwoStageModel | None:
        """The same model with the ranker training fitted the other way (without the weather features
        when the kept one reads them, else with them), same cold start and discovery; None when
        training kept no such ranker. The evaluation scores it through the same path as the model."""
        if self.reranker is None or WEATHER_ABLATION_ARRAY not in self.weights:
            return None
        names = self.meta.get("weather_ablation_features") or FEATURE_NAMES
        ranker = Ranker.from_arrays({"ranker_model": self.weights[WEATHER_ABLATION_ARRAY]}, names,
                                    self.reranker.cold_start)
        return TwoStageModel(self.model_version, self.item_ids, self.item_matrix, self.spec, self.weights,
                            self.meta, ranker, self.ablate_context, self.discovery)


def resolve_version_dir(model_dir: str) -> str:
    """A version directory, or the model root whose LATEST file names one."""
    if os.path.exists(os.path.join(model_dir, META_FILE)):
        return model_dir
    latest = os.path.join(model_dir, LATEST_FILE)
    if not os.path.exists(latest):
        raise FileNotFoundError(f"no trained model under {model_dir}: run `seasonrec train` first")
    with open(latest, encoding="utf-8") as handle:
        return os.path.join(model_dir, handle.read().strip())


def load_scoring_model(model_dir: str, ablate_context: bool = False) -> TwoStageModel:
    """Load a trained model for scoring from a version directory or a model root (following its ``LATEST``): meta.json
    and scoring.npz only, no TensorFlow or Spark. ``ablate_context`` zeroes the calendar context (also forced when
    the model was trained without it). The ranker is loaded when training kept one."""
    version_dir = resolve_version_dir(model_dir)
    with open(os.path.join(version_dir, META_FILE), encoding="utf-8") as handle:
        meta = json.load(handle)
    with np.load(os.path.join(version_dir, WEIGHTS_FILE), allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    reranker = (Ranker.from_arrays(arrays, meta.get("reranker_features", FEATURE_NAMES), meta.get("cold_start"))
                if meta.get("reranker_enabled") and "ranker_model" in arrays else None)
    return TwoStageModel(
        model_version=meta["model_version"], item_ids=arrays["item_ids"].astype(str),
        item_matrix=arrays["item_matrix"].astype(np.float32), spec=FeatureSpec.from_dict(meta["feature_spec"]),
        weights=arrays, meta=meta, reranker=reranker,
        ablate_context=ablate_context or not meta.get("use_calendar_context", True),
        discovery=float(meta.get("discovery", 0.0)))


def save_scoring_model(version_dir: str, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write meta.json + scoring.npz atomically (temp names, then rename)."""
    os.makedirs(version_dir, exist_ok=True)
    tmp_npz = os.path.join(version_dir, "scoring.tmp.npz")
    np.savez(tmp_npz, **arrays)
    os.replace(tmp_npz, os.path.join(version_dir, WEIGHTS_FILE))
    tmp_meta = os.path.join(version_dir, META_FILE + ".tmp")
    with open(tmp_meta, "w", encoding="utf-8") as handle:
        json.dump(meta, handle, indent=2, default=str)
    os.replace(tmp_meta, os.path.join(version_dir, META_FILE))


def mark_latest(model_dir: str, model_version: str) -> None:
    """Point ``<model_dir>/LATEST`` at ``model_version`` (atomic rename, so readers never see a partial file)."""
    tmp = os.path.join(model_dir, LATEST_FILE + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(model_version)
    os.replace(tmp, os.path.join(model_dir, LATEST_FILE))
