"""Driver side of `seasonrec train`: data -> Horovod training -> second stage -> artifacts, Delta, MLflow."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seasonrec import tables
from seasonrec.context import JobContext, JobError
from seasonrec.training import distributed as dist
from seasonrec.training.artifacts import (
    ScoringModel,
    load_scoring_model,
    mark_latest,
    save_scoring_model,
)
from seasonrec.training.data import TrainingData, evaluation_units, load_training_data
from seasonrec.training.encoding import bought_matrices
from seasonrec.training.metrics import ndcg_at_k, recall_at_k, repeat_buy_top_k, tail_share, top_k
from seasonrec.training.rerank import FEATURE_NAMES, Reranker, fit_reranker
from seasonrec.training.trainer import horovod_train_fn

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
    frame = evaluation_units(data, **where)
    return Units(frame, [list(map(int, t)) for t in frame["targets"]] if len(frame) else [])


def checkpoint_dir(ctx: JobContext) -> str:
    return os.path.join(ctx.config.paths.checkpoint_dir, "training")


def evaluate(model: ScoringModel, units: Units, is_tail: np.ndarray, k: int, use_reranker: bool = True,
             reranker: Reranker | None = None) -> dict[str, float]:
    """Full-catalog first stage, optional second stage, and the repeat-buy heuristic on `units`."""
    if not len(units):
        return {}
    inputs = model.encode(units.frame, None)
    scores = model.user_matrix_from_inputs(inputs) @ model.item_matrix.T
    first = top_k(scores, k)
    out = {f"recall_at_{k}": recall_at_k(first, units.targets, k), "ndcg_at_10": ndcg_at_k(first, units.targets, 10),
           f"tail_share_at_{k}": tail_share(first, is_tail, k)}
    reranker = reranker or model.reranker
    if use_reranker and reranker is not None:
        candidates, cand_scores = model.rerank_pool(units.frame, scores)
        new = model.rerank_from_inputs(inputs, units.frame, candidates, cand_scores, reranker)
        final = np.take_along_axis(candidates, np.argsort(-new, axis=1, kind="stable"), 1)
        out.update({f"reranked_recall_at_{k}": recall_at_k(final, units.targets, k),
                    "reranked_ndcg_at_10": ndcg_at_k(final, units.targets, 10),
                    f"reranked_tail_share_at_{k}": tail_share(final, is_tail, k)})
    out[f"final_recall_at_{k}"] = out.get(f"reranked_recall_at_{k}", out[f"recall_at_{k}"])
    out["final_ndcg_at_10"] = out.get("reranked_ndcg_at_10", out["ndcg_at_10"])
    # The user's purchase summary (most bought first) when the units carry it, else the recent history.
    bought_items, _, _ = bought_matrices(units.frame, model.spec.bought_items_max)
    heuristic = repeat_buy_top_k(bought_items if "bought_items" in units.frame else inputs["history"],
                                 model.weights["log_q"], k)
    out.update({f"repeat_buy_recall_at_{k}": recall_at_k(heuristic, units.targets, k),
                "repeat_buy_ndcg_at_10": ndcg_at_k(heuristic, units.targets, 10)})
    return out


def train_second_stage(model: ScoringModel, units: Units, k: int, seed: int) -> tuple[Reranker | None, dict[str, Any]]:
    """Fit the re-ranker on half of the validation users; keep it only if it wins on the other half."""
    if len(units) < 20:
        return None, {"reranker": "skipped: fewer than 20 validation units"}
    inputs = model.encode(units.frame, None)
    scores = model.user_matrix_from_inputs(inputs) @ model.item_matrix.T
    candidates, cand_scores = model.rerank_pool(units.frame, scores)
    features = model.rerank_features(inputs, units.frame, candidates, cand_scores)
    labels = np.array([np.isin(row, t) for row, t in zip(candidates, units.targets, strict=True)], dtype=np.float32)
    users = units.frame["user_id"].astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    unique = np.unique(users)
    fit_users = set(rng.choice(unique, size=len(unique) // 2, replace=False).tolist())
    fit_mask = np.array([u in fit_users for u in users])
    held = ~fit_mask

    def recall(selector: np.ndarray, ranking_scores: np.ndarray) -> float:
        order = np.argsort(-ranking_scores[selector], axis=1, kind="stable")
        ranked = np.take_along_axis(candidates[selector], order, 1)
        return recall_at_k(ranked, [units.targets[i] for i in np.flatnonzero(selector)], k)

    trial = fit_reranker(features[fit_mask], labels[fit_mask])
    first_recall = recall(held, cand_scores)
    second_recall = recall(held, trial.score(features))
    keep = second_recall >= first_recall
    info = {"reranker_heldout_first_stage_recall": first_recall, "reranker_heldout_recall": second_recall,
            "reranker": "kept" if keep else "dropped (no held-out gain)"}
    return (fit_reranker(features, labels) if keep else None), info


def train(ctx: JobContext, *, resume: bool = False, use_context: bool | None = None,
          holdout: tuple[dt.date, dt.date] | None = None, fail_after_epoch: int | None = None) -> dict[str, Any]:
    """Train, export and register a model version; returns the job summary.

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
    ckpt_dir = checkpoint_dir(ctx)
    if resume and not os.path.exists(os.path.join(ckpt_dir, "state.json")):
        log.warning("--resume: no checkpoint under %s, starting from epoch 0", ckpt_dir)
    if not resume:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    os.makedirs(ckpt_dir, exist_ok=True)

    params = {**cfg.model_dump(), "use_calendar_context": use_context}
    spec_dict = {**data.spec.to_dict(), "user_dense_dim": data.spec.user_dense_dim}
    partial = ScoringModel(model_version, data.item_ids, np.zeros((len(data.item_ids), 1), np.float32), data.spec,
                           {"seen_user_buckets": data.seen_user_buckets}, ablate_context=not use_context)
    val_inputs = partial.encode(validation.frame, None)
    steps = dist.steps_per_epoch(data.n_train_rows, cfg.batch_size, cfg.num_proc)
    with ctx.step(f"horovod training on {cfg.num_proc} processes, {steps} steps/epoch"):
        train_started = time.perf_counter()
        with dist.petastorm_converter(ctx, data.train_rows, min_files=max(4, 2 * cfg.num_proc)) as converter:
            results = dist.run_horovod(
                ctx.spark, horovod_train_fn, cfg.num_proc, converter=converter, params=params, spec=spec_dict,
                item_tables=data.item_tables, val_inputs=val_inputs, val_targets=validation.targets,
                steps_per_epoch=steps, checkpoint_dir=ckpt_dir, export_dir=version_dir, resume=resume,
                fail_after_epoch=fail_after_epoch)
        train_seconds = time.perf_counter() - train_started
    chief = results[0]
    state = chief["state"]
    with np.load(os.path.join(version_dir, "tower.npz")) as tower:
        weights = {key: tower[key] for key in tower.files}
    os.remove(os.path.join(version_dir, "tower.npz"))
    arrays = {**weights, **{key: data.item_tables[key] for key in ITEM_TABLE_KEYS},
              "seen_user_buckets": data.seen_user_buckets, "item_ids": data.item_ids.astype(str),
              "is_tail": data.is_tail}
    meta = {"model_version": model_version, "feature_spec": data.spec.to_dict(), "params": params,
            "user_dense_dim": data.spec.user_dense_dim, "embedding_dim": int(weights["item_matrix"].shape[1]),
            "rerank_candidates": cfg.rerank_candidates, "reranker_enabled": False,
            "use_calendar_context": use_context, "table_versions": data.table_versions,
            "best_epoch": state["best_epoch"], "history": state["history"], "run_id": ctx.run_id,
            "holdout": [str(d) for d in holdout] if holdout else None}
    model = ScoringModel(model_version, data.item_ids, weights["item_matrix"], data.spec, arrays, meta,
                         ablate_context=not use_context)

    summary: dict[str, Any] = {"model_version": model_version, "model_dir": version_dir,
                               "epochs_run": state["epoch"] - chief["initial_epoch"],
                               "resumed_from_epoch": chief["initial_epoch"], "last_epoch": state["epoch"],
                               "best_epoch": state["best_epoch"], "early_stopped": state["stopped"],
                               f"val_recall_at_{cfg.recall_k}": state["best_recall"],
                               "train_seconds": round(train_seconds, 1), "num_proc": len(results),
                               "fit_seconds": round(chief["seconds"], 1),
                               "examples_per_second_per_process": round(chief["examples"] / max(chief["seconds"], 1e-9),
                                                                        1),
                               "ranks_agree": len({r["digest"] for r in results}) == 1,
                               "train_rows": data.n_train_rows, "history": state["history"]}
    if cfg.reranker:
        with ctx.step("second stage (re-ranker)"):
            reranker, info = train_second_stage(model, validation, cfg.recall_k, cfg.seed)
            summary.update(info)
            if reranker is not None:
                arrays.update(reranker.to_arrays())
                meta["reranker_enabled"] = True
                meta["reranker_features"] = FEATURE_NAMES
                model.reranker = reranker
    with ctx.step("evaluate on test (and holdout) windows"):
        k = cfg.recall_k
        test = _units(data, split="test")
        for label, units in (("test", test), *((("holdout", _units(data, window=holdout)),) if holdout else ())):
            metrics = evaluate(model, units, data.is_tail, k)
            if use_context:
                ablated = evaluate(model.with_ablated_context(), units, data.is_tail, k)
                metrics.update({f"context_ablated_{key}": value for key, value in ablated.items()
                                if not key.startswith("repeat_buy")})
            summary[label] = {"units": len(units), **metrics}
        meta["metrics"] = {key: summary[key] for key in ("test", "holdout") if key in summary}
    save_scoring_model(version_dir, meta, arrays)
    mark_latest(config.paths.model_dir, model_version)
    with ctx.step("item_embeddings -> Delta"):
        summary["item_embeddings_version"] = write_item_embeddings(ctx, model)
    summary["mlflow_run_id"] = log_to_mlflow(ctx, params, data.spec.to_dict(), summary, version_dir,
                                             data.table_versions)
    summary["seconds_total"] = round(time.perf_counter() - started, 1)
    return summary


def write_item_embeddings(ctx: JobContext, model: ScoringModel) -> int:
    frame = pd.DataFrame({
        "item_index": np.arange(len(model.item_ids), dtype=np.int32),
        "item_id": model.item_ids.astype(str),
        "embedding": [row.astype(np.float32).tolist() for row in model.item_matrix],
        "model_version": model.model_version,
    })
    schema = "item_index int, item_id string, embedding array<float>, model_version string"
    df = ctx.spark.createDataFrame(frame, schema=schema)
    return ctx.lake.write(df, tables.ITEM_EMBEDDINGS, mode="overwrite",
                          commit_info=ctx.commit_info(model_version=model.model_version))


def log_to_mlflow(ctx: JobContext, params: dict[str, Any], spec: dict[str, Any], summary: dict[str, Any],
                  version_dir: str, table_versions: dict[str, int | None]) -> str | None:
    """Params, per-epoch metrics, final metrics, the model directory and the data's Delta versions."""
    import mlflow

    cfg = ctx.config.training
    uri = cfg.mlflow_tracking_uri
    if not uri:
        # Default: a local file store under the lake (MLflow 3 keeps it behind an opt-in flag).
        uri = "file://" + os.path.abspath(ctx.config.paths.mlflow_dir)
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(cfg.mlflow_experiment)
    with mlflow.start_run(run_name=f"train-{ctx.run_id}") as run:
        mlflow.log_params({f"training.{key}": value for key, value in params.items()})
        mlflow.log_params({"history_length": spec["history_length"], "model_version": summary["model_version"],
                           **{f"delta_version.{name}": version for name, version in table_versions.items()}})
        mlflow.set_tags({"seasonrec.run_id": ctx.run_id,
                         "training_data_delta_version": str(table_versions.get(tables.TRAINING_EXAMPLES))})
        for row in summary["history"]:
            mlflow.log_metrics({key: value for key, value in row.items() if key != "epoch"}, step=int(row["epoch"]))
        for split in ("test", "holdout"):
            for key, value in summary.get(split, {}).items():
                mlflow.log_metric(f"{split}.{key}", float(value))
        mlflow.log_metric("train_seconds", summary["train_seconds"])
        mlflow.log_artifacts(version_dir, artifact_path="model")
        return run.info.run_id


def reload(ctx: JobContext, ablate_context: bool = False) -> ScoringModel:
    return load_scoring_model(ctx.config.paths.model_dir, ablate_context=ablate_context)

