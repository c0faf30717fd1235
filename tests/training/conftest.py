"""Training fixtures: a lake holding the gold feature tables (the shared `feature_lake` when present)."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seasonrec import tables

REPO = Path(__file__).resolve().parents[2]

START, END = dt.date(2009, 12, 1), dt.date(2011, 10, 1)
TRAIN_END, VALIDATION_END = dt.date(2011, 8, 1), dt.date(2011, 9, 1)
CATEGORIES = [("xmas", 50), ("swim", 27), ("mugs", None), ("bags", None), ("candles", None), ("cards", None)]


def _season(month: int) -> int:
    return {12: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1, 6: 2, 7: 2, 8: 2}.get(month, 3)


def _curve(peak: int | None, week: int) -> float:
    if peak is None:
        return 1.0
    distance = min(abs(week - peak), 52 - abs(week - peak))
    return 0.08 + 4.0 * math.exp(-0.5 * (distance / 3.0) ** 2)


def make_gold_frames(n_users: int = 300, n_items: int = 120, n_events: int = 15000, seed: int = 7):
    """Gold tables as pandas frames, following DEVELOPERS.md, with planted seasons and repeat buying."""
    rng = np.random.default_rng(seed)
    item_cat = np.arange(n_items) % len(CATEGORIES)
    zipf = 1.0 / (1 + rng.permutation(n_items)) ** 1.1
    users = [f"u{i:04d}" for i in range(n_users)]
    favourites = rng.integers(0, n_items, size=(n_users, 3))
    days = (END - START).days
    dates = sorted(START + dt.timedelta(days=int(d)) for d in rng.integers(0, days, n_events))
    rows = []
    for date in dates:
        u = int(rng.integers(0, n_users))
        week = min(date.isocalendar()[1], 52)
        if rng.random() < 0.35:
            item = int(favourites[u, rng.integers(0, 3)])
        else:
            weights = np.array([zipf[i] * _curve(CATEGORIES[item_cat[i]][1], week) for i in range(n_items)])
            item = int(rng.choice(n_items, p=weights / weights.sum()))
        rows.append((users[u], item, date))
    events = pd.DataFrame(rows, columns=["user_id", "item_index", "date"])
    events["ts"] = pd.to_datetime(events["date"]) + pd.to_timedelta(np.arange(len(events)) % 86400, unit="s")
    events["split"] = np.where(events["date"] < TRAIN_END, "train",
                               np.where(events["date"] < VALIDATION_END, "validation", "test"))
    histories, last = [], {}
    for user, item in zip(events["user_id"], events["item_index"], strict=True):
        past = last.get(user, [])
        histories.append(list(past))
        last[user] = ([item] + past)[:20]
    events["history"] = histories
    week = events["date"].map(lambda d: min(d.isocalendar()[1], 52))
    events["woy_sin"] = np.sin(2 * np.pi * week / 52)
    events["woy_cos"] = np.cos(2 * np.pi * week / 52)
    events["season"] = events["date"].map(lambda d: _season(d.month))
    events["is_holiday"] = events["date"].map(lambda d: (d.month, d.day) in {(12, 25), (12, 26), (1, 1)})
    xmas = events["date"].map(lambda d: dt.date(d.year if d <= dt.date(d.year, 12, 25) else d.year + 1, 12, 25))
    events["days_to_next_event"] = (xmas - events["date"]).map(lambda x: x.days)
    events["days_since_last_event"] = 365 - events["days_to_next_event"]
    events["label"] = 1
    train = events[events["split"] == "train"]
    counts = np.bincount(train["item_index"], minlength=n_items)
    order = np.argsort(-counts)
    cum = np.cumsum(counts[order]) / counts.sum()
    tier = np.empty(n_items, dtype=object)
    tier[order] = np.where(cum <= 0.5, "head", np.where(cum <= 0.8, "torso", "tail"))
    weekly = np.zeros((n_items, 52))
    for item, w in zip(train["item_index"], week[events["split"] == "train"], strict=True):
        weekly[item, w - 1] += 1
    items = pd.DataFrame({
        "item_id": [f"SKU{i:04d}" for i in range(n_items)], "item_index": np.arange(n_items),
        "category": [CATEGORIES[c][0] for c in item_cat], "category_index": item_cat,
        "price_mean": 1.0 + item_cat, "price_bucket": item_cat % 3,
        "tokens": [[CATEGORIES[c][0], f"w{i % 7}"] for i, c in enumerate(item_cat)],
        "token_ids": [[int(c), 10 + i % 7] for i, c in enumerate(item_cat)],
        "popularity_tier": tier, "n_purchases": counts,
        "seasonality": [list(r / max(r.sum(), 1)) for r in weekly],
        "peak_week": weekly.argmax(axis=1) + 1, "seasonality_strength": weekly.max(axis=1) / (weekly.mean(axis=1) + 1)})
    per_user = train.groupby("user_id")
    user_rows = []
    for index, user in enumerate(users):
        own = per_user.get_group(user) if user in per_user.groups else train.iloc[:0]
        cats = np.bincount(item_cat[own["item_index"]], minlength=len(CATEGORIES)).astype(float)
        seasons = np.bincount(own["season"], minlength=4).astype(float)
        user_rows.append({
            "user_id": user, "user_index": index, "country": "GB",
            "recency_days": float((TRAIN_END - own["date"].max()).days) if len(own) else 365.0,
            "frequency": float(len(own)), "monetary": float(len(own) * 3.0),
            "category_affinity": list(cats / max(cats.sum(), 1)), "season_affinity": list(seasons / max(seasons.sum(), 1)),
            "last_items": last.get(user, []), "as_of": TRAIN_END})
    examples = events.assign(user_index=events["user_id"].str[1:].astype(int))
    return examples, items, pd.DataFrame(user_rows)


def write_gold(ctx, examples: pd.DataFrame, items: pd.DataFrame, users: pd.DataFrame) -> None:
    spark = ctx.spark
    ex = spark.createDataFrame(examples, schema=(
        "user_id string, item_index int, date date, ts timestamp, split string, history array<int>, "
        "woy_sin double, woy_cos double, season int, is_holiday boolean, days_to_next_event int, "
        "days_since_last_event int, label int, user_index int"))
    ctx.lake.write(ex, tables.TRAINING_EXAMPLES, partition_by=["split"])
    ctx.lake.write(spark.createDataFrame(items, schema=(
        "item_id string, item_index int, category string, category_index int, price_mean double, price_bucket int, "
        "tokens array<string>, token_ids array<int>, popularity_tier string, n_purchases long, "
        "seasonality array<double>, peak_week long, seasonality_strength double")), tables.ITEM_FEATURES)
    ctx.lake.write(spark.createDataFrame(users, schema=(
        "user_id string, user_index int, country string, recency_days double, frequency double, monetary double, "
        "category_affinity array<double>, season_affinity array<double>, last_items array<int>, as_of date")),
        tables.USER_FEATURES)


@pytest.fixture(scope="session")
def gold_lake_root(spark, tmp_path_factory, request) -> str:
    """Lake root holding the gold tables: the features job's `feature_lake` when available, else built here."""
    try:
        feature_lake = request.getfixturevalue("feature_lake")
    except pytest.FixtureLookupError:
        feature_lake = None
    if feature_lake is not None:
        return feature_lake.lake.root
    root = tmp_path_factory.mktemp("gold") / "lake"
    ctx = training_context(spark, root, tmp_path_factory.mktemp("gold_paths"))
    write_gold(ctx, *make_gold_frames())
    return str(root)


def training_context(spark, lake_root, work_dir, *overrides: str):
    """A `train` JobContext on `lake_root` with checkpoints/models/MLflow/cache under `work_dir`."""
    from seasonrec.config import load_config
    from seasonrec.context import JobContext
    from seasonrec.lake import Lake

    paths = [f"paths.{key}={work_dir}/{key}" for key in
             ("checkpoint_dir", "model_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")]
    config = load_config(REPO / "conf" / "test.yaml", [f"paths.lake_root={lake_root}", *paths, *overrides])
    return JobContext(config=config, spark=spark, lake=Lake(spark, str(lake_root)), job="train")


@pytest.fixture()
def train_context(spark, gold_lake_root, tmp_path):
    def make(*overrides: str):
        return training_context(spark, gold_lake_root, tmp_path, *overrides)

    return make
