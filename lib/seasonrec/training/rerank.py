"""Second stage: a LightGBM ``lambdarank`` ranker over the multi-source candidate pool (numpy in, numpy out).

The pool (see `seasonrec.training.candidates`) holds the two-tower's best items plus every other
source's proposals. Features of (user, candidate item) at the request date, ``FEATURE_NAMES``:

- first stage: score, gap to the user's best candidate, rank in the pool by first-stage score;
- re-buy (exact purchase summary cut at the date): log times bought, bought before, share of the
  user's purchases, recency in the recent history (0.8 ** position), log days since last bought, and
  how due a re-buy is (days since last bought / the user's mean days between buying it), and how
  habitually the item is bought again by anyone (log occasions per buyer);
- season: the item's seasonal fit for the target week (the model's week kernel . the item's 52-week
  lift) and that fit for re-buys; last year's sales in the weeks ahead and last year's ramp into them;
  the popularity expected in the weeks ahead, in units and relative to the item's usual level (last
  year's weeks ahead where the data covers them, else the recent weeks: see
  `seasonrec.features.item_activity`). ``log_season_ahead`` sits before ``log_recent`` on purpose: in
  a first year the two rank items alike, and LightGBM breaks equal split gains by the lower feature
  index, so the ranker's popularity splits read "the weeks ahead" and carry over to a season it has
  not seen in training (every first holiday season);
- item now: log popularity at training time, log baskets in the last 4 weeks, trend (last 4 weeks vs
  the 4 before), log first baskets of new customers holding it in the last 8 weeks;
- discovery: co-purchase and content (description/category) similarity to the user's recent items,
  and co-purchase affinity to everything the user bought (SAR-style, weighted by times bought);
- user: log purchase occasions, log distinct items bought, log tenure (days since the oldest last
  purchase in the summary), log mean days between purchase occasions, share of the user's purchase
  occasions that were re-buys, no history at all (new user).
- country (for the cold-start lists only, ``COLD_START_ONLY``: the ranker never reads it): the
  item's lift in the user's country's baskets of the last 8 weeks (`seasonrec.features.item_activity.
  CountryMix`; 0 for an unknown country). As ranker features, per-country popularity and lift lowered
  August's NDCG@10 (0.3446 -> 0.3412, bench/ranker_lab.py); for new users they add what the date cannot;
- weather (appended, `WEATHER_FEATURE_NAMES`; `seasonrec.features.item_weather`, point in time): the
  trailing 7-day temperature anomaly of the user's country's weather region on the last completed
  day, its cold/warm spell flags, whether it is known (0 and zeros for countries without weather),
  the item's weather sensitivity (relative change of its share of baskets per degC, from weeks
  before the date, shrunk for items with few sales) and sensitivity x anomaly (> 0: the weather
  favours the item now). ``training.weather_features`` decides whether the kept ranker reads them.
All are defined for a user without history (zeros and the new-user flag), so cold start goes
through the same ranker. The ranker is fitted on validation-window pools (label: bought in the
unit's week), grouped by (user, week), and kept only when it beats the first stage on held-out users.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seasonrec.core.topk import top_k_columns

FEATURE_NAMES = ["score", "score_gap", "score_rank", "log_times_bought", "bought_before", "bought_share",
                 "recency_weight", "log_days_since_bought", "rebuy_due", "item_repeat_rate", "seasonal_fit",
                 "seasonal_fit_rebuy",
                 "log_last_year_ahead", "last_year_ratio", "log_season_ahead", "log_lift_ahead", "log_popularity",
                 "log_recent", "trend",
                 "log_first_orders", "copurchase", "copurchase_affinity", "content", "user_log_occasions",
                 "user_log_items",
                 "user_log_tenure_days", "user_log_cycle_days", "user_rebuy_share", "user_is_new", "country_lift"]
# Computed for the cold-start signals (`COLD_START_SIGNALS`), never given to the ranker (see above).
COLD_START_ONLY = ("country_lift",)
WEATHER_FEATURE_NAMES = ["weather_anomaly_7d", "weather_cold_spell", "weather_warm_spell", "weather_known",
                         "item_weather_sensitivity", "weather_sensitivity_x_anomaly"]
# Appended last (after any feature added to the list above), built by `weather_features`.
FEATURE_NAMES = [*FEATURE_NAMES, *WEATHER_FEATURE_NAMES]
LGB_PARAMS = {"objective": "lambdarank", "metric": "ndcg", "eval_at": [10, 20], "learning_rate": 0.05,
              "num_leaves": 31, "min_data_in_leaf": 50, "feature_fraction": 0.9, "bagging_fraction": 0.8,
              "bagging_freq": 1, "lambdarank_truncation_level": 30, "verbose": -1, "num_threads": 2}
# Candidate settings, chosen per training run by cross-fitted NDCG on the validation users: the
# default and a strongly regularised one (the validation window holds only ~1k users on Online Retail).
RANKER_GRID = ({}, {"num_leaves": 7, "min_data_in_leaf": 200, "lambda_l2": 10.0})
# What users without history may be ranked by instead of the ranker, each an item signal among the
# features: what new customers put in their first basket lately, the popularity expected in the weeks
# ahead, popularity at training time. `train_second_stage` keeps one only when it beats the ranker's
# out-of-fold recall on the validation window's new users (the ranker learns mostly from returning
# users, whose lists lean on re-buys).
# Each is a weighted sum of feature columns. "first_orders_in_country" conditions the first baskets
# on the user's country: + 0.25 x the country lift (0.25, 0.5 and 1 gave 0.0763, 0.0760, 0.0757
# recall@20 on Online Retail's August new users vs 0.0733 for first baskets alone, bench/ranker_lab.py
# pools; the weight is fixed here, the choice among the signals is made per training run).
COLD_START_SIGNALS: dict[str, dict[str, float]] = {
    "log_first_orders": {"log_first_orders": 1.0},
    "log_season_ahead": {"log_season_ahead": 1.0},
    "log_popularity": {"log_popularity": 1.0},
    "first_orders_in_country": {"log_first_orders": 1.0, "country_lift": 0.25},
}
# The ranker's score only breaks ties of the cold-start signal (log counts differ by >= ~0.005 below
# 200 baskets; ranker scores are a few units).
COLD_START_TIE_BREAK = 1e-4
MAX_ROUNDS = 300
EARLY_STOPPING_ROUNDS = 30


@dataclass(frozen=True)
class PoolInputs:
    """What the features need about a block of users besides the candidates."""

    history: np.ndarray  # int [n, L] item position + 1, most recent first
    bought: tuple[np.ndarray, np.ndarray, np.ndarray]  # items + 1, times bought, days since, each [n, M]
    week_kernel: np.ndarray  # [n, 52] (zeros when the context is ablated)
    copurchase: np.ndarray | None  # [n, n_items] or None
    copurchase_affinity: np.ndarray | None  # [n, n_items] over the whole purchase summary, or None
    content: np.ndarray | None  # [n, n_items] or None
    item_signals: dict[str, np.ndarray]  # ItemActivity.at(date)
    weather: np.ndarray | None = None  # [n, 4] item_weather.USER_WEATHER_COLUMNS per user, or None (unknown)
    weather_sensitivity: np.ndarray | None = None  # [n_items] item_weather sensitivity, or None (zeros)
    country_lift: np.ndarray | None = None  # [n, n_items] CountryMix.user_lift, or None (zeros)


def candidate_features(inputs: PoolInputs, candidates: np.ndarray, scores: np.ndarray, season_lift: np.ndarray,
                       log_q: np.ndarray, repeat_rate: np.ndarray | None = None) -> np.ndarray:
    """[n, c, len(FEATURE_NAMES)] float32 for int [n, c] candidate positions and their [n, c] first-stage scores."""
    bought_items, bought_counts, bought_days = inputs.bought
    n, c = candidates.shape
    match = candidates[:, :, None] == (bought_items.astype(np.int64) - 1)[:, None, :]  # [n, c, M]
    times = np.einsum("ncm,nm->nc", match, bought_counts.astype(np.float32))
    raw_days = np.einsum("ncm,nm->nc", match, np.clip(bought_days.astype(np.float32), 0, None))
    days = np.log1p(raw_days)
    was_bought = (times > 0).astype(np.float32)
    occasions = bought_counts.sum(axis=1, keepdims=True).astype(np.float32)
    share = times / np.maximum(occasions, 1.0)
    history = inputs.history
    in_history = candidates[:, :, None] == (history.astype(np.int64) - 1)[:, None, :]  # [n, c, L]
    first_pos = np.where(in_history.any(axis=2), in_history.argmax(axis=2), -1)
    recency_weight = np.where(first_pos >= 0, 0.8 ** np.maximum(first_pos, 0), 0.0).astype(np.float32)
    kernel = inputs.week_kernel / np.maximum(inputs.week_kernel.sum(axis=1, keepdims=True), 1e-6)
    fit = np.einsum("nw,ncw->nc", kernel, season_lift[candidates]).astype(np.float32)
    by_score = np.argsort(np.argsort(-scores, axis=1, kind="stable"), axis=1).astype(np.float32) / max(c, 1)
    signals = inputs.item_signals

    def gathered(scores: np.ndarray | None) -> np.ndarray:
        return (np.take_along_axis(scores, candidates, axis=1) if scores is not None
                else np.zeros((n, c), np.float32)).astype(np.float32)

    n_items_bought = (bought_items > 0).sum(axis=1, keepdims=True).astype(np.float32)
    tenure = np.where(bought_items > 0, bought_days, 0).max(axis=1, initial=0, keepdims=True).astype(np.float32)
    is_new = ((history > 0).sum(axis=1, keepdims=True) == 0).astype(np.float32)
    cycle = tenure / np.maximum(occasions - 1.0, 1.0)  # mean days between the user's purchase occasions
    rebuy_share = (occasions - n_items_bought) / np.maximum(occasions, 1.0)
    repeat_rate = np.zeros(season_lift.shape[0], np.float32) if repeat_rate is None else repeat_rate
    # An item bought k times over the user's tenure comes back about every tenure / k days.
    due = np.where(times > 0, raw_days * times / np.maximum(tenure, 1.0), 0.0).astype(np.float32)

    def user(column: np.ndarray) -> np.ndarray:
        return np.broadcast_to(column, (n, c))

    base = np.stack([
        scores.astype(np.float32),
        (scores - scores.max(axis=1, keepdims=True)).astype(np.float32),
        by_score,
        np.log1p(times),
        was_bought,
        share,
        recency_weight,
        days,
        due,
        repeat_rate[candidates].astype(np.float32),
        fit,
        fit * was_bought,
        signals["log_last_year_ahead"][candidates],
        signals["last_year_ratio"][candidates],
        signals["log_season_ahead"][candidates],
        signals["log_lift_ahead"][candidates],
        log_q[candidates].astype(np.float32),
        signals["log_recent"][candidates],
        signals["trend"][candidates],
        signals["log_first_orders"][candidates],
        gathered(inputs.copurchase),
        gathered(inputs.copurchase_affinity),
        gathered(inputs.content),
        user(np.log1p(occasions)),
        user(np.log1p(n_items_bought)),
        user(np.log1p(np.clip(tenure, 0, None))),
        user(np.log1p(np.clip(cycle, 0, None))),
        user(rebuy_share),
        user(is_new),
        gathered(inputs.country_lift),
    ], axis=2).astype(np.float32)
    return np.concatenate([base, weather_features(inputs, candidates)], axis=2)


def weather_features(inputs: PoolInputs, candidates: np.ndarray) -> np.ndarray:
    """[n, c, len(WEATHER_FEATURE_NAMES)] float32: the user's weather (``inputs.weather``, zeros when
    None), the candidates' sensitivity (``inputs.weather_sensitivity``, zeros when None) and their
    product with the anomaly."""
    n, c = candidates.shape
    weather = np.zeros((n, 4), np.float32) if inputs.weather is None else inputs.weather.astype(np.float32)
    sensitivity = (np.zeros((n, c), np.float32) if inputs.weather_sensitivity is None
                   else inputs.weather_sensitivity[candidates].astype(np.float32))
    user = np.broadcast_to(weather[:, None, :], (n, c, weather.shape[1]))
    # sensitivity < 0 = sells more when colder: with a negative anomaly the product is > 0 (favoured now).
    interaction = sensitivity * user[:, :, 0]
    return np.concatenate([user, sensitivity[:, :, None], interaction[:, :, None]], axis=2).astype(np.float32)


# The knob never reorders a user's best DISCOVERY_PROTECTED_HEAD items (NDCG@10's cutoff): on Online
# Retail's August validation users (out-of-fold ranker scores, `bench/ranker_lab.py discovery`) the
# boost on every position bought repeat-buy's tail share with NDCG@10; below a protected top 10 it
# costs only a little Recall@20 (slots 11-20), and NDCG@10 cannot move.
DISCOVERY_PROTECTED_HEAD = 10
# What an item's rise in the weeks ahead adds to the knob's boost: this weight x its log lift ahead
# (``log_lift_ahead``, clipped to [0, DISCOVERY_LIFT_CAP]), on top of 1 for a long-tail item. Seasonal
# items are mostly new to their buyers and sit below the re-buys that fill a user's top 10; the
# lift ahead (last year's weeks ahead where the data reaches, else recent weeks) is what marks them
# at the request date. Chosen on validation users (`bench/ranker_lab.py boosts`: out-of-fold ranker
# scores of Online Retail's June and August users, each weight at the knob value the calibration
# rule keeps): of 0.25, 0.5 and 1, 0.25 is the one that raises every discovery figure over the
# tail flag alone on both (tail share@20 0.152 -> 0.160 / 0.194 -> 0.221, tail recall@20 0.070 -> 0.073 /
# 0.122 -> 0.134, seasonal recall@20 0.097 -> 0.120 / 0.151 -> 0.168; Recall@20 -0.5% / -0.6%);
# at 0.5 the rule keeps a smaller knob value and June's tail share falls to 0.135.
DISCOVERY_LIFT_WEIGHT = 0.25
DISCOVERY_LIFT_CAP = 2.0


def discovery_boost(is_tail: np.ndarray, features: np.ndarray, feature_names: list[str] | None = None,
                    weight: float = DISCOVERY_LIFT_WEIGHT) -> np.ndarray:
    """float32 [n, c]: what the discovery knob lifts per candidate (`with_discovery`'s ``boost``): 1 for
    a long-tail item, plus ``weight`` (``DISCOVERY_LIFT_WEIGHT``) x its log lift in the weeks ahead
    clipped to [0, ``DISCOVERY_LIFT_CAP``] (0 for an item expected at or below its usual level).
    ``is_tail``: bool [n, c] of the candidates; ``features``: their [n, c, F] features laid out as
    ``feature_names`` (default ``FEATURE_NAMES``); ``weight`` 0 gives the tail flag alone.

    Example: ``discovery_boost(model.is_tail[candidates], features)`` is 1.17 for a tail item
    expected at double its usual level (0.25 x log 2) and 0.17 for a popular one.
    """
    lift = features[:, :, (feature_names or FEATURE_NAMES).index("log_lift_ahead")]
    rising = np.clip(lift, 0.0, DISCOVERY_LIFT_CAP) * np.float32(weight)
    return (np.asarray(is_tail, np.float32) + rising).astype(np.float32)


def with_discovery(scores: np.ndarray, boost: np.ndarray, discovery: float,
                   known: np.ndarray | None = None, head: int = DISCOVERY_PROTECTED_HEAD) -> np.ndarray:
    """The discovery knob: scores + discovery x (each user's score spread) x boost, all [n, c],
    below each user's ``head`` best items by ``scores``, which keep their order on top.

    ``boost`` is `discovery_boost` in the pipeline: the flat long-tail part described next plus
    items rising in the weeks ahead (see ``DISCOVERY_LIFT_WEIGHT``); a 0/1 tail flag is the tail part alone.
    The tail part is the same for every long-tail item (popularity tier "tail") and zero for the others,
    the head/tail re-weighting of popularity-bias re-ranking (Abdollahpouri et al., 2019): it moves
    up the tail items the ranker already rates close to the user's list, mostly tail re-buys and
    close neighbours. A boost growing with rarity (self-information, tried first) spends its lift
    on the rarest items, which are seldom bought: on Online Retail's August validation users
    (out-of-fold ranker scores), reaching repeat-buy's tail share and tail recall cost 5.6% NDCG@10
    with it and 0.9% with the flat boost (on every position; see ``DISCOVERY_PROTECTED_HEAD``).
    Scaling by the spread of the user's own pool keeps the knob's meaning the same for every user.
    ``known`` (bool [n]) limits it to users with a purchase history: discovery means "less-known items
    that fit what you buy"; for a user without history there is nothing for them to fit, and boosting
    rare items only replaces the cold-start list's best guesses with worse ones.
    ``head`` = 0 boosts every position.

    Example: ``with_discovery(scores, model.is_tail[candidates], 1.0, known)`` keeps each user's top
    10 and lifts the tail items below it by one standard deviation of the user's scores.
    """
    scores = np.asarray(scores, np.float32)
    spread = np.std(scores, axis=1, keepdims=True)
    if known is not None:
        spread = spread * np.asarray(known, np.float32).reshape(-1, 1)
    boosted = scores + np.float32(discovery) * spread * np.asarray(boost, np.float32)
    head = min(head, scores.shape[1])
    if head and discovery:
        # Each row's head moves, in its own order, just above the best boosted item below it (a
        # row-local shift: a user's scores do not depend on the other users of the block).
        top, top_scores = top_k_columns(scores, head)
        below = np.ones(scores.shape, bool)
        np.put_along_axis(below, top, False, 1)
        best_below = np.where(below, boosted, -np.inf).max(axis=1, initial=-np.inf)
        gap = best_below - top_scores[:, -1]
        lift = np.where(gap >= 0, gap + 1e-3 * spread[:, 0] + 1e-6, 0).astype(np.float32)
        np.put_along_axis(boosted, top, top_scores + lift[:, None], 1)
    return boosted.astype(np.float32)


@dataclass
class Ranker:
    """A fitted LightGBM ranker, kept as its model text (portable, and small in the .npz artifact)."""

    model_text: str
    feature_names: list[str]
    best_iteration: int = 0
    cold_start: str | None = None  # a COLD_START_SIGNALS name ranking users without history, or None
    _booster: Any = field(default=None, repr=False, compare=False)

    def _model(self) -> Any:
        if self._booster is None:
            import lightgbm

            self._booster = lightgbm.Booster(model_str=self.model_text)
        return self._booster

    def score(self, features: np.ndarray) -> np.ndarray:
        """[n, c] ranking scores (higher is better) for [n, c, F] features laid out as ``FEATURE_NAMES``
        (a ranker fitted on an earlier feature list picks its own columns by name)."""
        n, c, width = features.shape
        if n * c == 0:
            return np.zeros((n, c), np.float32)
        full, full_names = features, (FEATURE_NAMES if width == len(FEATURE_NAMES) else self.feature_names)
        if self.feature_names != FEATURE_NAMES and width == len(FEATURE_NAMES):
            missing = sorted(set(self.feature_names) - set(FEATURE_NAMES))
            if missing:
                raise ValueError(f"ranker features {missing} are no longer computed: retrain the model")
            features = columns(features, self.feature_names)
            width = len(self.feature_names)
        # One thread: the Spark UDF already runs one Python worker per core.
        flat = self._model().predict(features.reshape(-1, width), num_threads=1)
        scores = np.asarray(flat, np.float32).reshape(n, c)
        # The cold-start signals read the full layout: some of their columns are no ranker feature.
        return scores if self.cold_start is None else with_cold_start(scores, full, self.cold_start, full_names)

    def feature_importance(self) -> dict[str, float]:
        """Share of the total split gain of each feature, by feature name (rounded to 4 digits)."""
        gains = self._model().feature_importance(importance_type="gain")
        total = max(float(np.sum(gains)), 1e-12)
        return {name: round(float(g) / total, 4) for name, g in zip(self.feature_names, gains, strict=True)}

    def __getstate__(self) -> dict[str, Any]:
        return {"model_text": self.model_text, "feature_names": self.feature_names,
                "best_iteration": self.best_iteration, "cold_start": self.cold_start, "_booster": None}

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The LightGBM model text as a uint8 array under ``ranker_model``, for the ``.npz`` artifact."""
        return {"ranker_model": np.frombuffer(self.model_text.encode("utf-8"), dtype=np.uint8)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], feature_names: list[str],
                    cold_start: str | None = None) -> Ranker:
        """The ranker `to_arrays` stored, with its ``feature_names`` and ``cold_start`` setting (from meta.json)."""
        return cls(bytes(np.asarray(arrays["ranker_model"], dtype=np.uint8)).decode("utf-8"), list(feature_names),
                   cold_start=cold_start)


def with_cold_start(scores: np.ndarray, features: np.ndarray, signal: str,
                    feature_names: list[str] | None = None) -> np.ndarray:
    """[n, c] scores where the rows of users without history rank by ``signal`` (a name of
    ``COLD_START_SIGNALS``: a weighted sum of feature columns) with ``scores`` as tie-break; other
    rows unchanged. ``features``: the [n, c, F] features laid out as ``feature_names`` (default
    ``FEATURE_NAMES``)."""
    names = feature_names or FEATURE_NAMES
    new = features[:, 0, names.index("user_is_new")] > 0.5 if features.shape[1] else np.zeros(len(scores), bool)
    if not new.any():
        return scores
    rows = features[new]
    value = sum(np.float32(weight) * rows[:, :, names.index(name)]
                for name, weight in COLD_START_SIGNALS[signal].items())
    out = np.array(scores, np.float32, copy=True)
    out[new] = value + np.float32(COLD_START_TIE_BREAK) * scores[new]
    return out


def ranking_rows(features: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(rows [m, F], labels [m], group sizes) of the [n, c, F] ``features`` / [n, c] ``labels`` units
    that have at least one positive (lambdarank learns nothing from the others), one group per unit."""
    useful = labels.sum(axis=1) > 0
    x, y = features[useful], labels[useful]
    return x.reshape(-1, x.shape[-1]), y.reshape(-1), [x.shape[1]] * int(useful.sum())


def fit_ranker(features: np.ndarray, labels: np.ndarray, seed: int,
               valid: tuple[np.ndarray, np.ndarray] | None = None, rounds: int | None = None,
               params: dict[str, Any] | None = None, feature_names: list[str] | None = None,
               extra: Sequence[tuple[np.ndarray, np.ndarray]] = ()) -> Ranker:
    """LightGBM lambdarank on [n_units, c, F] features and [n_units, c] 0/1 labels, one group per unit.

    With ``valid`` (features, labels of other units) it stops early on their NDCG; ``rounds``
    fixes the number of trees instead (e.g. the early-stopped count, when refitting on everything).
    ``params`` override ``LGB_PARAMS`` (e.g. one entry of ``RANKER_GRID``). ``feature_names``: the
    names of the features' columns when they are a subset of ``FEATURE_NAMES`` (e.g. `without_weather`).
    ``extra``: more (features, labels) units to learn from, of any pool width (e.g. `without_two_tower`
    units of earlier windows).
    """
    import lightgbm

    parts = [ranking_rows(x, y) for x, y in ((features, labels), *extra)]
    x = np.concatenate([part[0] for part in parts])
    y = np.concatenate([part[1] for part in parts])
    group = [size for part in parts for size in part[2]]
    if not group:
        raise ValueError("no unit has a bought item in its candidate pool; nothing to learn a ranking from")
    params = {**LGB_PARAMS, **(params or {}), "seed": seed, "deterministic": True}
    names = list(feature_names or FEATURE_NAMES)
    train = lightgbm.Dataset(x, y, group=group, feature_name=names, free_raw_data=True)
    callbacks = []
    valid_sets = []
    if valid is not None:
        vx, vy, vgroup = ranking_rows(*valid)
        if vgroup:
            valid_sets = [lightgbm.Dataset(vx, vy, group=vgroup, reference=train)]
            callbacks = [lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, first_metric_only=False, verbose=False)]
    booster = lightgbm.train(params, train, num_boost_round=rounds or MAX_ROUNDS, valid_sets=valid_sets,
                             callbacks=callbacks)
    best = int(booster.best_iteration or booster.current_iteration())
    return Ranker(booster.model_to_string(num_iteration=best), names, best)


RANKER_NAMES = [name for name in FEATURE_NAMES if name not in COLD_START_ONLY]  # what the ranker reads
NO_WEATHER_NAMES = [name for name in RANKER_NAMES if name not in WEATHER_FEATURE_NAMES]
# The first stage's score and its derived columns: in-sample (the two-tower trained on it) before split.train_end.
TWO_TOWER_FEATURES = ("score", "score_gap", "score_rank")


def without_two_tower(features: np.ndarray) -> np.ndarray:
    """A copy of [n, c, F] features (laid out as ``FEATURE_NAMES``) with ``TWO_TOWER_FEATURES`` missing (NaN).

    For ranker examples from windows the two-tower was trained on: there its scores are in-sample
    (their pools hold ~75% of what the users bought, against ~55% on the validation window), so the
    ranker learns from those units only what the other features say and routes the missing score
    like LightGBM does any missing value."""
    out = np.array(features, np.float32, copy=True)
    out[:, :, [FEATURE_NAMES.index(name) for name in TWO_TOWER_FEATURES]] = np.nan
    return out


def columns(features: np.ndarray, names: list[str]) -> np.ndarray:
    """The columns ``names`` of [n, c, F] features laid out as ``FEATURE_NAMES``: [n, c, len(names)]."""
    return features[:, :, [FEATURE_NAMES.index(name) for name in names]]
