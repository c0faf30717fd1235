"""The test window never reaches fitting/tuning, baselines rank as specified, and the job writes its outputs.

A tiny hand-made silver_interactions: July (train), August (validation), September (test). The item
LEAK is bought by everyone, many times, only in September: if any September row reached a baseline's
fit or the ALS grid, LEAK would top popularity, repeat-buy, kNN and ALS lists.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os

import pytest

from seasonrec.evaluation import baselines as B
from support import as_table

SPLIT = ("split.train_end=2011-08-01", "split.validation_end=2011-09-01", "split.test_end=2011-10-01")
SCHEMA = "user_id string, item_id string, ts timestamp, date date, week_start date, quantity double, invoice string"


def _rows() -> list[tuple]:
    rows = []

    def buy(user: str, item: str, day: dt.date, n: int = 1) -> None:
        for i in range(n):
            ts = dt.datetime(day.year, day.month, day.day, 10, i)
            rows.append((user, item, ts, day, day - dt.timedelta(days=day.weekday()), 1.0, f"{user}-{day}"))

    july, aug, sep = dt.date(2011, 7, 5), dt.date(2011, 8, 10), dt.date(2011, 9, 12)
    buy("u1", "A", july, 3)
    buy("u1", "B", july)
    buy("u2", "A", july)
    buy("u2", "C", july, 2)
    buy("u3", "B", july)
    buy("u3", "C", july)
    buy("u4", "A", july)
    buy("u1", "D", aug)
    buy("u2", "B", aug)
    buy("u3", "D", aug, 2)
    buy("u5", "D", aug)  # first purchase in August: returning by September
    for user in ("u1", "u2", "u3", "u4", "u5", "u6"):  # u6 is new in September
        buy(user, "LEAK", sep, 5)
    buy("u1", "C", sep)
    buy("u3", "A", sep)
    return rows


@pytest.fixture(scope="module")
def lake_ctx(spark, tmp_path_factory):
    from seasonrec.context import JobContext
    from support import make_config

    root = tmp_path_factory.mktemp("eval_lake")
    config = make_config(root, *SPLIT, "evaluation.k_list=[2,3]", "evaluation.als_ranks=[2,3]",
                         "evaluation.als_max_iter=3", "evaluation.recent_weeks=5")
    ctx = JobContext.create(config, "evaluate", spark)
    ctx.lake.write(as_table(spark.createDataFrame(_rows(), SCHEMA), "silver_interactions"), "silver_interactions")
    return ctx


def _bc(ctx, split: str = "test", top_k: int = 3) -> B.BaselineContext:
    interactions = ctx.lake.read("silver_interactions")
    window = B.EvalWindow.from_split(ctx.config.split, split)
    view = B.TrainingView.for_window(interactions, window)
    users = interactions.select("user_id").distinct()
    return B.BaselineContext(view, window, users, top_k, ctx.config.evaluation)


def _lists(df) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in df.orderBy("user_id", "rank").collect():
        out.setdefault(row["user_id"], []).append(row["item_id"])
    return out


def test_training_view_refuses_rows_at_or_after_the_window(lake_ctx):
    interactions = lake_ctx.lake.read("silver_interactions")
    test = B.EvalWindow.from_split(lake_ctx.config.split, "test")
    view = B.TrainingView.for_window(interactions, test)
    assert view.frame().where("item_id = 'LEAK'").count() == 0
    assert view.frame().agg({"ts": "max"}).first()[0] < dt.datetime(2011, 9, 1)
    with pytest.raises(B.LeakageError):
        B.TrainingView(interactions, dt.date(2011, 9, 2), test)
    with pytest.raises(B.LeakageError):
        view.between(dt.date(2011, 8, 1), dt.date(2011, 10, 1))
    with pytest.raises(B.LeakageError):
        view.until(dt.date(2011, 9, 15))
    with pytest.raises(B.LeakageError):
        B.BaselineContext(interactions, test, interactions.select("user_id"), 3, lake_ctx.config.evaluation)
    with pytest.raises(B.LeakageError):  # a view cut for the test window used on the validation window
        B.BaselineContext(view, B.EvalWindow.from_split(lake_ctx.config.split, "validation"),
                          interactions.select("user_id"), 3, lake_ctx.config.evaluation)


def test_simple_baselines_rank_as_specified(lake_ctx):
    bc = _bc(lake_ctx)
    # distinct buyers before Sep: A 3 (u1,u2,u4), B 3 (u1,u2,u3), C 2, D 3 (u1,u3,u5) -> A, B, D (ties by id)
    assert _lists(B.global_popularity(bc))["u6"] == ["A", "B", "D"]
    # last 5 weeks before Sep 1 (from Jul 28): D 3 buyers, B 1
    assert _lists(B.recent_popularity(bc))["u1"] == ["D", "B"]
    # one year earlier there is no data: seasonal popularity falls back to recent popularity
    assert _lists(B.seasonal_popularity(bc))["u1"] == ["D", "B"]
    # u1 bought A x3, then D (Aug), B (Jul) once each -> A, D, B; u6 (new) gets recent popularity
    repeat = _lists(B.repeat_buy(bc))
    assert repeat["u1"] == ["A", "D", "B"]
    assert repeat["u2"] == ["C", "B", "A"]  # C x2; B (Aug) more recent than A (Jul)
    assert repeat["u6"] == ["D", "B"]
    knn = _lists(B.item_knn(bc))
    assert "u6" not in knn and all("LEAK" not in items for items in knn.values())
    assert knn["u4"][0] in {"B", "C", "D"}  # neighbours of A


def test_no_test_window_row_reaches_fitting_or_tuning(lake_ctx, monkeypatch):
    """Run the whole job on --split test and watch every fit: LEAK (September only) never appears."""
    from pyspark.ml.recommendation import ALS

    from seasonrec.evaluation import jobs

    fitted_item_counts: list[int] = []
    tuned_windows: list[B.EvalWindow] = []
    views_seen: list[dt.date] = []
    original_fit, original_tune, original_als = ALS.fit, B.tune_als, B.als_recommend

    def spy_fit(self, dataset, params=None):
        fitted_item_counts.append(dataset.select("item_id_ix").distinct().count())
        return original_fit(self, dataset, params)

    def spy_tune(view, window, *args, **kwargs):
        tuned_windows.append(window)
        return original_tune(view, window, *args, **kwargs)

    def spy_als(view, *args, **kwargs):
        views_seen.append(view.cutoff)
        assert view.frame().where("ts >= '2011-09-01'").count() == 0
        return original_als(view, *args, **kwargs)

    monkeypatch.setattr(ALS, "fit", spy_fit)
    monkeypatch.setattr(B, "tune_als", spy_tune)
    monkeypatch.setattr(B, "als_recommend", spy_als)
    args = argparse.Namespace(split="test", methods=None, model_dir=None, no_mlflow=False)
    summary = jobs.run(lake_ctx, args)
    # grid of 2 tuned on August (fit on July: A, B, C), then refit on July+August (A, B, C, D)
    assert [(w.start, w.end) for w in tuned_windows] == [(dt.date(2011, 8, 1), dt.date(2011, 9, 1))]
    assert fitted_item_counts == [3, 3, 4]
    assert views_seen == [dt.date(2011, 8, 1), dt.date(2011, 8, 1), dt.date(2011, 9, 1)]
    assert summary["skipped"]["model"].startswith("no model artifact")
    assert "baselines only" in summary["note"]

    runs = lake_ctx.lake.read("evaluation_runs")
    assert runs.select("run_id").distinct().count() == 1
    methods = {r["method"] for r in runs.select("method").distinct().collect()}
    assert methods == {"global_popularity", "recent_popularity", "seasonal_popularity", "repeat_buy", "item_knn",
                       "als"}
    versions = json.loads(runs.first()["table_versions"])
    assert versions["silver_interactions"] == 0 and versions["_split"] == "test"
    # truth in September: u1 {LEAK, C}, u2..u6 {LEAK}, u3 also A; LEAK is never recommended -> recall@3 of
    # global popularity (A, B, D): u3 hits A (1/2), u1 none -> (0 + 0 + 1/2 + 0 + 0 + 0) / 6
    value = runs.where("method = 'global_popularity' and metric = 'recall' and k = 3 and segment = 'all'")
    assert value.first()["value"] == pytest.approx(0.5 / 6)
    new_users = runs.where("method = 'global_popularity' and metric = 'n_users' and segment = 'user_type=new'")
    assert new_users.first()["value"] == 1  # u6
    report = summary["report"]
    assert os.path.isfile(report)
    with open(report, encoding="utf-8") as handle:
        text = handle.read()
    assert "| als |" in text and "model not evaluated" in text
    for png in ("metrics_by_method.png", "recall_by_popularity_decile.png"):
        assert os.path.getsize(os.path.join(os.path.dirname(report), png)) > 1000
    assert summary["mlflow_run_id"]
    assert os.path.isdir(lake_ctx.config.paths.mlflow_dir)


def test_job_on_the_synthetic_feature_lake(feature_lake, spark):
    """The real ingest + features output: truth, segments, gold item tiers and planted seasonality."""
    from seasonrec.context import JobContext
    from seasonrec.evaluation import jobs

    ctx = JobContext.create(feature_lake.config, "evaluate", spark)
    args = argparse.Namespace(split="test", methods="global_popularity,seasonal_popularity,repeat_buy",
                              model_dir=None, no_mlflow=True)
    summary = jobs.run(ctx, args)
    assert summary["n_truth_pairs"] > 0 and summary["catalog_size"] > 0
    assert summary["seasonal_items_from"].startswith(("synthetic_truth", "gold_item_features", "profile"))
    runs = ctx.lake.read("evaluation_runs").where(f"run_id = '{ctx.run_id}'")
    recall = {r["method"]: r["value"] for r in
              runs.where("metric = 'recall' and segment = 'all' and k = 20").collect()}
    assert set(recall) == {"global_popularity", "seasonal_popularity", "repeat_buy"}
    assert all(0 <= v <= 1 for v in recall.values())
    segments = {r["segment"] for r in runs.where("metric = 'recall'").select("segment").distinct().collect()}
    assert {"all", "user_type=returning", "activity=low", "activity=high"} <= segments
    tiers = runs.where("method = 'global_popularity' and metric = 'tail_share' and k = 20").first()["value"]
    assert tiers == 0.0  # the 20 most bought items are never tail items
