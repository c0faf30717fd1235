"""Season-aware two-tower training with real Horovod (2 Gloo processes), Petastorm, Delta and MLflow.

Two training runs on the shared feature lake (conf/test.yaml synthetic data):
- `main`: logQ correction on (default strength), a winter window held out of training; the run
  is killed after epoch 2 and finished with --resume.
- `no_logq`: the same without the popularity correction (logq_strength=0).
"""

from __future__ import annotations

import datetime as dt
import os

import numpy as np
import pytest

from seasonrec import tables, tracking
from seasonrec.training import pipeline
from seasonrec.training.artifacts import load_scoring_model

WINTER = (dt.date(2010, 11, 15), dt.date(2011, 1, 15))
EPOCHS = 6
K = 20


@pytest.fixture(scope="module")
def main_run(train_context):
    # A pool narrower than the catalogue (120 items): users' proposals then widen it differently per
    # week, which training must line up (a regression: the weekly pools did not concatenate).
    ctx = train_context("main", f"training.epochs={EPOCHS}", "training.early_stopping_patience=10",
                        "training.rerank_candidates=40", "training.ranker_earlier_windows=2")
    with pytest.raises(Exception, match="non-zero"):  # a killed rank fails the whole Horovod job
        pipeline.train(ctx, holdout=WINTER, fail_after_epoch=2)
    summary = pipeline.train(ctx, resume=True, holdout=WINTER)
    return ctx, summary


@pytest.fixture(scope="module")
def no_logq_run(train_context):
    ctx = train_context("nologq", f"training.epochs={EPOCHS}", "training.early_stopping_patience=10",
                        "training.logq_strength=0", "training.reranker=false")
    return ctx, pipeline.train(ctx, holdout=WINTER)


def test_two_process_run_trains_and_artifacts_reload(main_run):
    ctx, summary = main_run
    assert summary["num_proc"] == 2 and summary["ranks_agree"]
    losses = [row["loss"] for row in summary["history"]]
    assert len(losses) == EPOCHS and losses[-1] < losses[0]
    ckpt = pipeline.checkpoint_dir(ctx)
    assert os.path.exists(os.path.join(ckpt, "state.json"))
    assert any(name.startswith("events.out") for _, _, files in os.walk(os.path.join(ckpt, "tensorboard"))
               for name in files)

    model = load_scoring_model(ctx.config.paths.model_dir)
    assert model.model_version == summary["model_version"]
    users = ctx.lake.read(tables.USER_FEATURES).limit(50).toPandas()
    calendar = ctx.lake.read(tables.CALENDAR).where("date = '2010-12-10'").toPandas().iloc[0].to_dict()
    vectors = model.user_matrix(users, calendar)
    assert vectors.shape == (len(users), model.item_matrix.shape[1]) and np.isfinite(vectors).all()
    again = load_scoring_model(summary["model_dir"]).user_matrix(users, calendar)
    np.testing.assert_array_equal(vectors, again)

    # The numpy scorer is the Keras model: same scores from the exported Keras weights.
    from seasonrec.training.model import load_keras_model

    keras_model = load_keras_model(summary["model_dir"])
    inputs = model.encode(users, calendar)
    keras_scores = keras_model({key: value for key, value in inputs.items()}).numpy()
    np.testing.assert_allclose(vectors @ model.item_matrix.T, keras_scores, rtol=1e-4, atol=1e-4)

    # Unseen users still get a vector (OOV bucket + features + history); second stage keeps shapes.
    stranger = users.head(3).assign(user_id=["never-seen-1", "never-seen-2", "never-seen-3"])
    assert not model.known_user_mask(stranger).any()
    stranger_vectors = model.user_matrix(stranger, calendar)
    assert np.isfinite(stranger_vectors).all() and not np.allclose(stranger_vectors, 0)
    scores = vectors @ model.item_matrix.T
    top = np.argsort(-scores, axis=1)[:, :30]
    reranked = model.rerank(users, top, np.take_along_axis(scores, top, 1), calendar)
    assert reranked.shape == top.shape and np.isfinite(reranked).all()

    embeddings = ctx.lake.read(tables.ITEM_EMBEDDINGS).toPandas()
    assert len(embeddings) == len(model.item_ids)
    assert set(embeddings["model_version"]) == {model.model_version}
    row = embeddings.sort_values("item_index").iloc[0]
    np.testing.assert_allclose(np.asarray(row["embedding"]), model.item_matrix[0], rtol=1e-6)


def test_resume_continues_from_the_checkpoint_epoch(main_run):
    _, summary = main_run
    assert summary["resumed_from_epoch"] == 2
    assert summary["epochs_run"] == EPOCHS - 2
    assert [row["epoch"] for row in summary["history"]] == list(range(1, EPOCHS + 1))


def test_seasonality_is_learned_on_a_held_out_winter_window(main_run):
    _, summary = main_run
    holdout = summary["holdout"]
    print("winter holdout", {k: round(v, 4) for k, v in holdout.items()})
    assert holdout["units"] > 100
    # The calendar context matters for what users had not bought before (in-season items); re-buys
    # are carried by the history. Measured on conf/test.yaml data (logq 0.3, 6 epochs): discovery
    # recall 0.44 with context vs 0.34 ablated; overall recall 0.67-0.69 vs 0.65-0.66 (runs vary).
    assert holdout[f"discovery_recall_at_{K}"] >= holdout[f"context_ablated_discovery_recall_at_{K}"] + 0.05
    assert holdout[f"recall_at_{K}"] >= holdout[f"context_ablated_recall_at_{K}"]


def test_logq_correction_raises_tail_share_at_small_recall_cost(main_run, no_logq_run):
    on, off = main_run[1]["test"], no_logq_run[1]["test"]
    print("logq on", {k: round(v, 4) for k, v in on.items()}, "logq off", {k: round(v, 4) for k, v in off.items()})
    assert on[f"tail_share_at_{K}"] >= off[f"tail_share_at_{K}"] + 0.02
    assert on[f"recall_at_{K}"] >= off[f"recall_at_{K}"] - 0.05


def test_final_ranking_does_not_lose_to_repeat_buy(main_run):
    """First stage, or the second stage when it won on held-out validation users."""
    _, summary = main_run
    assert summary["reranker"] in ("kept", "dropped (no held-out gain)")
    # Two earlier windows offered to the ranker (ranker_earlier_windows=2), each setting tried with and without them.
    assert len(summary["reranker_earlier_units"]) == 2 and min(summary["reranker_earlier_units"]) > 0
    assert {trial["earlier_windows"] for trial in summary["reranker_grid_ndcg"]} == {False, True}
    for window in ("test", "holdout"):
        metrics = summary[window]
        print(window, "final", metrics[f"final_recall_at_{K}"], "repeat-buy", metrics[f"repeat_buy_recall_at_{K}"])
        assert metrics[f"final_recall_at_{K}"] >= metrics[f"repeat_buy_recall_at_{K}"] - 0.01


def test_mlflow_has_params_epoch_metrics_model_and_data_version(main_run):
    ctx, summary = main_run
    client = tracking.client(ctx.config)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.params["training.logq_strength"] == str(ctx.config.training.logq_strength)
    assert run.data.tags["training_data_delta_version"] == str(ctx.lake.version(tables.TRAINING_EXAMPLES))
    history = client.get_metric_history(run.info.run_id, f"val_recall_at_{K}")
    assert len(history) == EPOCHS
    artifacts = [a.path for a in client.list_artifacts(run.info.run_id, "model")]
    assert "model/scoring.npz" in artifacts and "model/meta.json" in artifacts
