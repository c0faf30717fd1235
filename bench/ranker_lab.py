"""Ranker lab: the trained model's candidate pools on earlier windows, the validation window and the
test window, cached once; then ranker variants fitted in seconds and judged on cross-fitted
validation users (the decision) with the test window printed for information only.

    .venv/bin/python bench/ranker_lab.py --workdir /tmp/or13 build     # after eval_online_retail.py --train
    .venv/bin/python bench/ranker_lab.py --workdir /tmp/or13 run
    .venv/bin/python bench/ranker_lab.py --workdir /tmp/or13 discovery   # the knob, with and without a protected head
    .venv/bin/python bench/ranker_lab.py --workdir /tmp/or13 season_labels && ... boosts   # what the knob lifts

Measured 2026-12-04 with ``discovery`` on the September run's pools (current features): a flat tail
boost of 1.0 applied only below each user's top 10 keeps NDCG@10 (validation 0.346, test 0.299 =
1.11x repeat-buy) and lifts test tail share 0.047 -> 0.130 and tail recall 0.037 -> 0.062 (repeat-buy
0.089 / 0.043) at Recall@20 0.216 -> 0.212; on every position the same boost costs NDCG@10 0.299 ->
0.292. The value reaching repeat-buy's tail figures on validation (0.25-0.5) falls short on test (tail
share 0.085 at 0.5), so training now keeps the largest value within the 5% recall budget in every
fold (`pipeline.calibrate_discovery`; 1.25 on these validation users: -2.5% to -3.3% per fold).

Measured 2026-12-05 (model of 211cef5, variant ``base`` unless named; val = out-of-fold August / June
users, test printed for information):

| cache | pool recall val / test | val NDCG@10 | val Recall@20 | test NDCG@10 | test Recall@20 |
|---|---|---|---|---|---|
| September, default pool (300; ``build``) | 0.586 / 0.488 | 0.3424 | 0.2730 | 0.3024 | 0.2117 |
| September, more co-purchase/content (a) | 0.577 / 0.483 | 0.3438 | 0.2715 | 0.3005 | 0.2120 |
| September, width 500 (b) | 0.660 / 0.566 | 0.3376 | 0.2706 | 0.2953 | 0.2067 |
| September, earlier2_tower_nan (seeds 7/11) | | 0.3522 / 0.3508 | 0.2731 / 0.2726 | 0.3051 / 0.3082 | 0.2152 / 0.2151 |
| September, ``base`` seed 11 | | 0.3443 | 0.2728 | 0.3013 | 0.2121 |
| July-August, default pool | 0.537 / 0.511 | 0.2927 | 0.2281 | 0.3352 | 0.2259 |
| July-August, ``earlier2_tower_nan`` | | 0.2817 | 0.2259 | 0.3400 | 0.2270 |

(a) ``build --limits '{"copurchase": 100, "content": 50}' --neighbours 50``; (b) the same with
``--width 500`` and copurchase 150. A wider pool reaches more of what users buy but the ranker ranks
it worse (early-stopped at 8 trees at width 500): the pool is not what holds Recall@20 back. Two
earlier monthly windows as extra ranker examples with only the two-tower's in-sample score blanked
help on August users and not on June's, so training tries both and keeps what its own validation
users prefer (``training.ranker_earlier_windows``).

Measured 2026-12-05 with ``season_labels`` then ``boosts`` (base ranker; the knob's boost = 1 per tail
item + weight x the item's log lift in the weeks ahead clipped to [0, 2], `rerank.discovery_boost`;
each weight at the knob value training's rule keeps on the validation users, `pipeline.
calibrate_discovery`; val = out-of-fold June / August users, the decision; test for information):

| run, weight | knob | val Recall@20 | val tail share | tail recall | seasonal recall | test tail share | seasonal |
|---|---|---|---|---|---|---|---|
| July-August, 0 (tail flag) | 1.25 | 0.2219 | 0.152 | 0.070 | 0.097 | 0.162 | 0.088 |
| July-August, 0.25 | 1.25 | 0.2208 | 0.160 | 0.073 | 0.120 | 0.192 | 0.111 |
| July-August, 0.5 | 1.0 | 0.2217 | 0.135 | 0.066 | 0.136 | 0.180 | 0.113 |
| July-August, 1 | 0.6 | 0.2219 | 0.097 | 0.053 | 0.134 | 0.139 | 0.104 |
| September, 0 (tail flag) | 1.25 | 0.2642 | 0.194 | 0.122 | 0.151 | 0.164 | 0.022 |
| September, 0.25 | 1.25 | 0.2626 | 0.221 | 0.134 | 0.168 | 0.188 | 0.027 |
| September, 0.5 | 1.0 | 0.2643 | 0.203 | 0.126 | 0.177 | 0.173 | 0.022 |
| September, 1 | 0.7 | 0.2644 | 0.185 | 0.111 | 0.179 | 0.154 | 0.020 |

Recent popularity (seasonal popularity's list without last year's data) has seasonal recall@20
0.074 / 0.150 on the validation users and 0.152 / 0 on the test windows. 0.25 raises every discovery
figure on both validation windows (`rerank.DISCOVERY_LIFT_WEIGHT`).

Measured 2026-12-05 (session 14) in scratch scripts over these caches, not kept: three more signals
for Recall@20, none of which moves it beyond the spread between seeds (base, seeds 7 / 11: September
val 0.2730 / 0.2728, test 0.2117 / 0.2121; July-August val 0.2281 / 0.2281, test 0.2259 / 0.2305):

| variant | Sep val Recall@20 | Sep test | J-A val | J-A test |
|---|---|---|---|---|
| (a) groups weighted by 1 / sqrt(targets), seed 7 | 0.2677 | 0.2110 | 0.2263 | 0.2287 |
| (a) groups weighted by 1 / targets, seed 7 | 0.2679 | 0.2074 | 0.2248 | 0.2284 |
| (b) "bought later", seeds 7 / 11 | 0.2708 / 0.2701 | 0.2125 / 0.2119 | 0.2276 / 0.2310 | 0.2294 / 0.2274 |
| (c) EASE, lambda 200, seeds 7 / 11 | 0.2720 / 0.2686 | 0.2138 / 0.2124 | 0.2316 / 0.2327 | 0.2308 / 0.2316 |
| (c) EASE, lambda 800, seeds 7 / 11 | 0.2715 / 0.2711 | 0.2137 / 0.2142 | 0.2327 / 0.2327 | 0.2318 / 0.2298 |

(a) lambdarank's examples weighted per user (Recall@20 averages hits / |targets|, NDCG does not);
(b) P(a user first buys j within 90 days after first buying i), its sum / max / log over the user's
items, from silver before the window; (c) EASE (Steck 2019) on the binary user x item matrix before
the window: the candidate's score and log rank among all items.

EASE helps June's users by ~2% and costs August's up to 1.6%; the others are noise. Within these
pools (oracle Recall@20 0.54 / 0.50 on the validation users) the ranker stays at 1.07-1.12x
repeat-buy's Recall@20 on the test windows, short of 1.15x, whatever it reads.

Measured 2026-12-05 (session 15, scratch script over these caches, not kept): a learned cold-start
ranker (LightGBM lambdarank over the item and country columns for users without history) instead of
the fixed ``log_first_orders`` signal. New users' pools reach little of what they buy (pool Recall@20
0.24 / 0.26 on June / August users, 0.22 / 0.24 on the test windows, against 0.55-0.60 on the earlier
windows, whose pools read the two-tower's in-sample scores), so earlier windows are no training data
for it: trained on them it loses on both validation windows (June 0.058-0.061 vs 0.0732 for
``log_first_orders``; August 0.049-0.061 vs 0.0732). Cross-fitted on the validation users alone (5
folds, 169-242 users; 3-31 leaves, seeds 7 / 11) it gains on June (0.075-0.079 out of fold) and not
on August (0.063-0.076), and on the test windows it lands anywhere between 0.055 and 0.071 (fixed
signal 0.0655 July-August, 0.0704 September; recent popularity 0.065 / 0.060). Not kept: the fixed
signal stays (new users at 1.00x / 1.19x the best popularity list in `seasonrec evaluate`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from seasonrec.training.rerank import TWO_TOWER_FEATURES  # noqa: E402


def context_for(workdir: str, split_dates: str):
    from eval_online_retail import workdir_overrides

    from seasonrec.config import load_config
    from seasonrec.context import JobContext

    overrides = workdir_overrides(workdir, split_dates)
    return JobContext.create(load_config(str(REPO / "conf/local.yaml"), overrides), "lab")


def build(args: argparse.Namespace) -> None:
    import pandas as pd
    from pyspark.sql import functions as F

    from seasonrec import tables
    from seasonrec.core.contract import COPURCHASE, ITEM_SIGNALS
    from seasonrec.features.as_of import user_features_as_of
    from seasonrec.features.calendar import calendar_row
    from seasonrec.features.item_activity import basket_key, item_activity
    from seasonrec.features.item_neighbours import fit_copurchase
    from seasonrec.training.data import load_training_data, window_units
    from seasonrec.training.encoding import bought_matrices
    from seasonrec.training.pipeline import _labels, _pool_recall, reload

    ctx = context_for(args.workdir, args.split_dates)
    split = ctx.config.split
    model = reload(ctx)
    if args.limits:  # candidate pool variants: per-source proposals other than the trained model's
        model.meta["source_limits"] = {**model.source_limits, **json.loads(args.limits)}
    neighbours = args.neighbours or ctx.config.training.copurchase_neighbours
    data = load_training_data(ctx)
    silver = ctx.lake.read(tables.SILVER_INTERACTIONS)
    activity = item_activity(silver, data.item_ids, split.test_end)
    calendar = ctx.lake.read(tables.CALENDAR)
    starts = {"test": (split.validation_end, split.test_end), "val": (split.train_end, split.validation_end)}
    for back in range(1, args.earlier + 1):
        end = split.train_end - dt.timedelta(days=30 * (back - 1))
        start = (end.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
        starts[f"earlier{back}"] = (start, end.replace(day=1))
    out = {}
    for name, (start, end) in starts.items():
        users = user_features_as_of(ctx.lake, ctx.config, start)
        frame = window_units(data, users, calendar_row(calendar, start), start, end).reset_index(drop=True)
        context = {ITEM_SIGNALS: activity.at(start),
                   COPURCHASE: fit_copurchase(silver, data.item_ids, start, neighbours)}
        inputs = model.encode(frame, None)
        scores = model.user_matrix_from_inputs(inputs) @ model.item_matrix.T
        pairs = model.candidate_pairs(frame, context)
        candidates, first = model.rerank_pool(frame, scores, context, width=args.width, pairs=pairs)
        features = model.rerank_features(inputs, frame, candidates, first, context)
        targets = [list(map(int, t)) for t in frame["targets"]]
        labels = _labels(candidates, targets)
        recent = (silver.where((F.col("date") < F.lit(start)) & (F.col("date") >= F.lit(start - dt.timedelta(weeks=8))))
                  .select("country", "item_id", basket_key().alias("basket")).groupBy("country", "item_id")
                  .agg(F.countDistinct("basket").alias("n")).toPandas())
        countries = sorted(set(recent["country"].dropna().astype(str)))
        position = {str(item): i for i, item in enumerate(data.item_ids)}
        by_country = np.zeros((len(countries) + 1, len(data.item_ids)), np.float32)  # last row: unknown country
        for row in recent.itertuples():
            if row.country is not None and str(row.item_id) in position:
                by_country[countries.index(str(row.country)), position[str(row.item_id)]] += row.n
        country_row = np.array([countries.index(c) if c in countries else len(countries)
                                for c in frame["country"].astype(str)])
        out[name] = dict(features=features, by_country=by_country, country_row=country_row,
                         candidates=candidates, first=first, labels=labels,
                         bought=bought_matrices(frame, model.spec.bought_items_max)[0], history=inputs["history"],
                         users=frame["user_id"].astype(str).to_numpy(), country=frame["country"].astype(str).to_numpy(),
                         targets=np.array(json.dumps(targets)))
        print(name, start, end, len(frame), features.shape, "pool recall", round(_pool_recall(labels, targets), 4),
              flush=True)
    os.makedirs(args.cache, exist_ok=True)
    for name, arrays in out.items():
        np.savez(os.path.join(args.cache, f"{name}.npz"), **arrays)
    np.savez(os.path.join(args.cache, "items.npz"), is_tail=data.is_tail, log_q=model.weights["log_q"],
             item_ids=data.item_ids.astype(str))
    pd.Series({k: str(v) for k, v in starts.items()}).to_json(os.path.join(args.cache, "windows.json"))


TOWER = TWO_TOWER_FEATURES
FITTED = TOWER + ("item_repeat_rate", "seasonal_fit", "seasonal_fit_rebuy", "log_popularity")


def load(cache: str, name: str) -> dict:
    with np.load(os.path.join(cache, f"{name}.npz"), allow_pickle=True) as z:
        d = {k: z[k] for k in z.files}
    d["targets"] = json.loads(str(d["targets"]))
    return d


def ranked(window: dict, scores: np.ndarray) -> np.ndarray:
    return np.take_along_axis(window["candidates"], np.argsort(-scores, axis=1, kind="stable"), 1)


def measure(window: dict, scores: np.ndarray, items: dict, k: int = 20) -> dict:
    from seasonrec.training.metrics import ndcg_at_k, recall_at_k, tail_recall, tail_share

    top = ranked(window, scores)
    t = window["targets"]
    new = ~(window["history"] > 0).any(axis=1)
    return {"ndcg10": round(ndcg_at_k(top, t, 10), 4), "recall20": round(recall_at_k(top, t, k), 4),
            "tail_share": round(tail_share(top, items["is_tail"], k), 4),
            "tail_recall": round(tail_recall(top, t, items["is_tail"], k), 4),
            "new_recall": round(recall_at_k(top[new], [t[i] for i in np.flatnonzero(new)], k), 4)}


def fit(parts: list[tuple[np.ndarray, np.ndarray]], params: dict, rounds: int, seed: int,
        valid: tuple[np.ndarray, np.ndarray] | None = None):
    import lightgbm

    from seasonrec.training.rerank import EARLY_STOPPING_ROUNDS, LGB_PARAMS, ranking_rows

    xs, ys, gs = zip(*(ranking_rows(x, y) for x, y in parts), strict=True)
    train = lightgbm.Dataset(np.concatenate(xs), np.concatenate(ys), group=[g for gg in gs for g in gg])
    kw = {}
    if valid is not None:
        vx, vy, vg = ranking_rows(*valid)
        kw = {"valid_sets": [lightgbm.Dataset(vx, vy, group=vg, reference=train)],
              "callbacks": [lightgbm.early_stopping(EARLY_STOPPING_ROUNDS, verbose=False)]}
    booster = lightgbm.train({**LGB_PARAMS, **params, "seed": seed, "deterministic": True}, train,
                             num_boost_round=rounds, **kw)
    return booster


def predict(booster, x3: np.ndarray) -> np.ndarray:
    n, c, f = x3.shape
    return booster.predict(x3.reshape(-1, f), num_threads=2).reshape(n, c)


def variant_features(window: dict, variant: dict, in_sample: bool) -> np.ndarray:
    from seasonrec.training.rerank import COLD_START_ONLY, FEATURE_NAMES

    x = window["features"].copy()
    # The pipeline's ranker never reads the cold-start-only columns: blank them as it leaves them out.
    drop = [FEATURE_NAMES.index(n) for n in (*COLD_START_ONLY, *variant.get("drop", ()))]
    if variant.get("no_tower") or (in_sample and variant.get("tower_nan_in_sample")):
        drop += [FEATURE_NAMES.index(n) for n in TOWER]
    if in_sample and variant.get("fitted_nan_in_sample"):
        drop += [FEATURE_NAMES.index(n) for n in FITTED]
    x[:, :, drop] = np.nan
    extra = variant.get("extra")
    if extra is not None:
        x = np.concatenate([x, extra(window)], axis=2)
    return x


def cross_fitted(cache: str, variant: dict, seed: int = 7, folds: int = 4, as_ranks: bool = True) -> tuple:
    """(val window, test window, out-of-fold validation scores, test scores, trees per fit) of the
    variant's ranker: ``folds`` folds of validation users (each scored by a ranker fitted on the others,
    early-stopped on the next fold), the test by one fitted on every validation user with the median
    tree count. ``as_ranks``: scores as per-row ranks (so seeds of a "bag" average on one scale), else
    the ranker's raw scores."""
    from seasonrec.training.pipeline import user_folds

    val = load(cache, "val")
    test = load(cache, "test")
    earlier = [load(cache, f"earlier{i}") for i in range(1, variant.get("earlier", 0) + 1)]
    params = variant.get("params", {})
    vx = variant_features(val, variant, False)
    extra = [(variant_features(w, variant, True), w["labels"]) for w in earlier]
    fold = user_folds(val["users"], seed, folds)
    oof = np.zeros(val["labels"].shape, np.float32)
    tx = variant_features(test, variant, False)
    test_scores = np.zeros(test["labels"].shape, np.float32)
    rounds = variant.get("rounds", 300)
    trees = []
    scale = rank_scores if as_ranks else (lambda scores: scores)
    # "bag": several seeds (LightGBM's bagging and feature fraction differ), scores averaged by rank.
    for bag_seed in range(seed, seed + variant.get("bag", 1)):
        for f in range(folds):
            scored, stop = fold == f, fold == (f + 1) % folds
            keep = ~scored & ~stop
            b = fit([(vx[keep], val["labels"][keep]), *extra], params, rounds, bag_seed,
                    valid=(vx[stop], val["labels"][stop]))
            oof[scored] += scale(predict(b, vx[scored]))
            trees.append(b.best_iteration or b.current_iteration())
        final = fit([(vx, val["labels"]), *extra], params, int(np.median(trees)), bag_seed)
        test_scores += scale(predict(final, tx))
    return val, test, oof, test_scores, trees


def run_variant(cache: str, variant: dict, seed: int = 7, folds: int = 4) -> dict:
    """The variant's cross-fitted validation metrics, its test metrics and the median tree count."""
    items = dict(np.load(os.path.join(cache, "items.npz")))
    val, test, oof, test_scores, trees = cross_fitted(cache, variant, seed, folds)
    return {"val": measure(val, oof, items), "test": measure(test, test_scores, items),
            "trees": int(np.median(trees))}


def rank_scores(scores: np.ndarray) -> np.ndarray:
    """Each row's scores as ranks (higher is better), so seeds average on one scale."""
    return np.argsort(np.argsort(scores, axis=1, kind="stable"), axis=1).astype(np.float32)


def repeat_buy(cache: str) -> dict:
    from seasonrec.training.metrics import repeat_buy_top_k

    items = dict(np.load(os.path.join(cache, "items.npz")))
    out = {}
    for name in ("val", "test"):
        w = load(cache, name)
        top = repeat_buy_top_k(w["bought"], items["log_q"], 20)
        fake = dict(w, candidates=top)
        out[name] = measure(fake, -np.arange(top.shape[1])[None, :].repeat(len(top), 0).astype(float), items)
    return out


def country_features(window: dict) -> np.ndarray:
    """log1p(baskets of the item in the user's country, 8 weeks before the window) and the item's
    share there relative to its share everywhere (shrunk: 20 pseudo-baskets at the global share)."""
    counts = window["by_country"]
    total = counts.sum(axis=0)
    share = (total + 0.1) / (total.sum() + 0.1 * counts.shape[1])
    rows = counts[window["country_row"]]  # [n, n_items]
    local = (rows + 20.0 * share[None, :]) / (rows.sum(axis=1, keepdims=True) + 20.0)
    lift = np.log(local / share[None, :])
    c = window["candidates"]
    gathered = [np.log1p(np.take_along_axis(rows, c, 1)), np.take_along_axis(lift, c, 1)]
    return np.stack(gathered, axis=2).astype(np.float32)


VARIANTS = {
    "base": {},
    "no_tower": {"no_tower": True},
    "earlier2": {"earlier": 2},
    "earlier2_tower_nan": {"earlier": 2, "tower_nan_in_sample": True},
    "earlier2_fitted_nan": {"earlier": 2, "fitted_nan_in_sample": True},
    "country": {"extra": country_features},
    "country_earlier2": {"extra": country_features, "earlier": 2},
    "regularised": {"params": {"num_leaves": 7, "min_data_in_leaf": 200, "lambda_l2": 10.0}},
    "xendcg": {"params": {"objective": "rank_xendcg"}},
    "xendcg_reg": {"params": {"objective": "rank_xendcg", "num_leaves": 7, "min_data_in_leaf": 200,
                              "lambda_l2": 10.0}},
    "bag5": {"bag": 5},
    "slow": {"params": {"learning_rate": 0.02}, "rounds": 800},
    "trunc20": {"params": {"lambdarank_truncation_level": 20}},
    "binary": {"params": {"objective": "binary", "metric": "auc"}},
    "binary_ndcg": {"params": {"objective": "binary"}},
    "binary_reg": {"params": {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 200, "lambda_l2": 10.0}},
    "binary_bag5": {"params": {"objective": "binary"}, "bag": 5},
}


def cold(args: argparse.Namespace) -> None:
    """New-user recall@20 of single cold-start signals and of two-signal blends (sum of weighted log
    counts), on the validation window (the decision) and the test window (information)."""
    from seasonrec.training.metrics import recall_at_k
    from seasonrec.training.rerank import FEATURE_NAMES

    signals = ("log_first_orders", "log_season_ahead", "log_popularity", "log_recent", "trend")
    for name in ("val", "test"):
        w = load(args.cache, name)
        new = np.flatnonzero(~(w["history"] > 0).any(axis=1))
        targets = [w["targets"][i] for i in new]
        x = w["features"][new]
        column = {s: x[:, :, FEATURE_NAMES.index(s)] for s in signals}
        results = {}
        for a in signals:
            for b in signals:
                for weight in ((1.0,) if a == b else (0.75, 0.5, 0.25)):
                    if a > b and weight != 1.0:
                        continue
                    score = weight * column[a] + (1 - weight) * column[b]
                    top = np.take_along_axis(w["candidates"][new], np.argsort(-score, axis=1, kind="stable"), 1)
                    results[f"{a}*{weight}+{b}"] = round(recall_at_k(top, targets, 20), 4)
        best = sorted(results.items(), key=lambda kv: -kv[1])[:12]
        print(name, len(new), "users", json.dumps(dict(best)), flush=True)


def discovery(args: argparse.Namespace) -> None:
    """The discovery knob (flat tail boost, `rerank.with_discovery`) at several values, on every
    position vs only below the top 10 (a protected head: NDCG@10 cannot move), for the base ranker's
    out-of-fold validation scores and its test scores."""
    from seasonrec.training.rerank import DISCOVERY_PROTECTED_HEAD, with_discovery

    items = dict(np.load(os.path.join(args.cache, "items.npz")))
    # Raw scores: the knob adds a multiple of each user's score spread.
    val, test, oof, test_scores, _ = cross_fitted(args.cache, VARIANTS["base"], as_ranks=False)
    baseline = repeat_buy(args.cache)
    for name, window, scores in (("val", val, oof), ("test", test, test_scores)):
        tail = items["is_tail"][window["candidates"]]
        known = (window["history"] > 0).any(axis=1)
        print(name, "repeat_buy", json.dumps(baseline[name]), flush=True)
        for value in (0.0, 0.4, 1.0, 2.0, 4.0):
            print(name, value, json.dumps({
                "every_position": measure(window, with_discovery(scores, tail, value, known, head=0), items),
                f"below_top_{DISCOVERY_PROTECTED_HEAD}": measure(window, with_discovery(scores, tail, value, known),
                                                                 items)}),
                flush=True)


def season_labels(args: argparse.Namespace) -> None:
    """The validation and test windows' seasonal items (labelled as `seasonrec evaluate` does: items
    peaking in the window's weeks on silver up to the window's end) and each window's recent-popularity
    list (distinct buyers, ``evaluation.recent_weeks`` before its start: seasonal popularity's list when
    last year has no data), cached as ``seasonal.npz`` for the ``boosts`` step."""
    from pyspark.sql import functions as F

    from seasonrec import tables
    from seasonrec.evaluation.baselines import EvalWindow, popular_items
    from seasonrec.evaluation.inputs import _seasonal_items

    ctx = context_for(args.workdir, args.split_dates)
    items = dict(np.load(os.path.join(args.cache, "items.npz")))
    position = {item: i for i, item in enumerate(items["item_ids"].tolist())}
    silver = ctx.lake.read(tables.SILVER_INTERACTIONS)
    versions = {tables.SILVER_INTERACTIONS: ctx.lake.version(tables.SILVER_INTERACTIONS)}
    split, out = ctx.config.split, {}
    for name, (start, end) in {"val": (split.train_end, split.validation_end),
                               "test": (split.validation_end, split.test_end)}.items():
        chosen, _ = _seasonal_items(ctx, None, EvalWindow(name, start, end), versions)
        flags = np.zeros(len(position), bool)
        for row in chosen.collect():
            if str(row["item_id"]) in position:
                flags[position[str(row["item_id"])]] = True
        since = start - dt.timedelta(weeks=ctx.config.evaluation.recent_weeks)
        recent = silver.where((F.col("ts") >= F.lit(str(since)).cast("timestamp"))
                              & (F.col("ts") < F.lit(str(start)).cast("timestamp")))
        top = [position.get(str(r["item_id"]), -1) for r in popular_items(recent, 40).collect()]
        out[f"{name}_seasonal"], out[f"{name}_recent"] = flags, np.array([i for i in top if i >= 0][:20])
        print(name, "seasonal items", int(flags.sum()), flush=True)
    np.savez(os.path.join(args.cache, "seasonal.npz"), **out)


def boosts(args: argparse.Namespace) -> None:
    """The discovery knob with `rerank.discovery_boost` at several lift weights (0 = the tail flag
    alone): the value training's rule keeps on the validation users' out-of-fold scores
    (`pipeline.calibrate_discovery`), then recall@20, NDCG@10, tail share/recall and seasonal recall@20
    at that value on validation (the decision) and test (information). Needs ``season_labels`` first."""
    from seasonrec.training.metrics import ndcg_at_k, recall_at_k, tail_recall, tail_share
    from seasonrec.training.pipeline import calibrate_discovery, user_folds
    from seasonrec.training.rerank import discovery_boost, with_discovery

    items = dict(np.load(os.path.join(args.cache, "items.npz")))
    labels = dict(np.load(os.path.join(args.cache, "seasonal.npz")))
    val, test, oof, test_scores, _ = cross_fitted(args.cache, VARIANTS["base"], as_ranks=False)
    windows = (("val", val, oof), ("test", test, test_scores))
    for name, window, _ in windows:
        recent = np.repeat(labels[f"{name}_recent"][None, :], len(window["targets"]), 0)
        print(name, "recent_popularity seasonal recall@20",
              round(tail_recall(recent, window["targets"], labels[f"{name}_seasonal"], 20), 4), flush=True)
    for weight in (0.0, 0.25, 0.5, 1.0):
        def boost(window: dict, weight: float = weight) -> np.ndarray:
            return discovery_boost(items["is_tail"][window["candidates"]], window["features"], weight=weight)

        value, _ = calibrate_discovery(oof, val["candidates"], val["targets"], val["bought"], items["log_q"],
                                       items["is_tail"], 20, known=(val["history"] > 0).any(axis=1),
                                       folds=user_folds(val["users"], seed=7, n_folds=4), boost=boost(val))
        row = {}
        for name, window, scores in windows:
            top = ranked(window, with_discovery(scores, boost(window), value, (window["history"] > 0).any(axis=1)))
            t = window["targets"]
            row[name] = {"recall20": round(recall_at_k(top, t, 20), 4), "ndcg10": round(ndcg_at_k(top, t, 10), 4),
                         "tail_share": round(tail_share(top, items["is_tail"], 20), 4),
                         "tail_recall": round(tail_recall(top, t, items["is_tail"], 20), 4),
                         "seasonal": round(tail_recall(top, t, labels[f"{name}_seasonal"], 20), 4)}
        print(f"weight {weight} knob kept {value}", json.dumps(row), flush=True)


def run(args: argparse.Namespace) -> None:
    print("repeat_buy", json.dumps(repeat_buy(args.cache)), flush=True)
    for name in (args.variants.split(",") if args.variants else VARIANTS):
        print(name, json.dumps(run_variant(args.cache, VARIANTS[name], seed=args.seed)), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", default="/tmp/or13")
    parser.add_argument("--split-dates", default="2011-08-01,2011-09-01,2011-10-01")
    parser.add_argument("--cache", default=None)
    parser.add_argument("--earlier", type=int, default=2)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--variants", default=None)
    parser.add_argument("--seed", type=int, default=7, help="run: LightGBM seed and the users' fold assignment")
    parser.add_argument("--limits", default=None, help='build: JSON of per-source limits, e.g. {"copurchase": 100}')
    parser.add_argument("--neighbours", type=int, default=None, help="build: co-purchase neighbours per item")
    parser.add_argument("step", choices=["build", "run", "cold", "discovery", "season_labels", "boosts"])
    args = parser.parse_args()
    args.cache = args.cache or os.path.join(args.workdir, "ranker_lab")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    {"build": build, "run": run, "cold": cold, "discovery": discovery, "season_labels": season_labels,
     "boosts": boosts}[args.step](args)


if __name__ == "__main__":
    main()
