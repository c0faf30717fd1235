"""Log the trained recommender as an MLflow pyfunc model, register it, and promote it when it passes
its quality gate.

`register_recommender` (the ``seasonrec register`` job, run by the pipeline right after ``train``):
1. builds the serving snapshot at the scoring date (`seasonrec.serving.snapshot`);
2. logs ``RecommenderModel`` with the model version directory, the snapshot and serving.json as
   artifacts, the ``seasonrec`` package as code, a signature and an input example, in a run of the
   configured experiment (tagged with the training run and the model version);
3. registers it as ``serving.model_name`` and sets the ``serving.champion_alias`` alias when the
   model's recall@k on its training run's test window is at least ``serving.gate_min_ratio`` x the
   repeat-buy baseline's (the gate and its figures are tags of the version).

`model_uri(config)` is what `seasonrec serve` serves: ``models:/<name>@<alias>``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from typing import Any

import pandas as pd

import seasonrec
from seasonrec import logs, tables
from seasonrec.context import JobContext, JobError
from seasonrec.scoring.engine import ScoringOptions, resolve_model
from seasonrec.serving.pyfunc import SERVING_FILE, RecommenderModel
from seasonrec.serving.recommender import ANSWER_COLUMNS
from seasonrec.serving.snapshot import build_snapshot, save_snapshot
from seasonrec.tracking import client, use_experiment

log = logging.getLogger("seasonrec")

# What a served model needs installed (Model Serving builds its environment from this list).
PIP_REQUIREMENTS = ["mlflow==3.17.2", "numpy==1.26.4", "pandas==2.2.3", "lightgbm==4.7.0", "deltalake==1.6.6",
                    "pyspark==3.5.7", "pyarrow==14.0.2", "pydantic>=2,<3", "holidays", "pyyaml",
                    "threadpoolctl==3.8.0"]


def model_uri(config: Any, version: str | int | None = None) -> str:
    """``models:/<serving.model_name>@<champion alias>``, or ``/<version>`` when one is given."""
    name = config.serving.model_name
    return f"models:/{name}/{version}" if version is not None else f"models:/{name}@{config.serving.champion_alias}"


def quality_gate(meta: dict[str, Any], k: int, min_ratio: float) -> dict[str, Any]:
    """{passed, recall, repeat_buy_recall, k}: the model's final recall@k on its training run's test
    window against repeat-buy's x ``min_ratio`` (a model without those metrics does not pass)."""
    test = (meta.get("metrics") or {}).get("test") or {}
    recall, baseline = test.get(f"final_recall_at_{k}"), test.get(f"repeat_buy_recall_at_{k}")
    passed = recall is not None and baseline is not None and recall >= min_ratio * baseline
    return {"passed": bool(passed), "recall": recall, "repeat_buy_recall": baseline, "k": k, "min_ratio": min_ratio}


def _signature() -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    # Every input optional: a missing date must reach the model's own check, because MLflow's schema
    # errors quote the request (and so the raw user id) back to the caller. ``recent_items`` is typed
    # "any" because MLflow reads a batch whose records omit it in some rows as NaN there, which an
    # Array(string) column rejects; the model checks it is a list of item ids (`recommender._item_list`).
    inputs = Schema([ColSpec("string", "user_id", required=False), ColSpec("string", "date", required=False),
                     ColSpec("string", "country", required=False),
                     ColSpec(AnyType(), "recent_items", required=False),
                     ColSpec("long", "k", required=False), ColSpec("double", "anomaly_7d_c", required=False)])
    kinds = {"request": "long", "rank": "long", "item_id": "string", "score": "double", "title": "string",
             "category": "string", "price": "double", "reason": "string", "cold_start": "boolean"}
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec(kinds[c], c) for c in ANSWER_COLUMNS]))


def _serving_settings(ctx: JobContext) -> dict[str, Any]:
    features = ctx.config.features
    return {"salt_env": features.salt_env, "default_salt": features.default_salt, "env": ctx.config.env,
            "activity_table": _activity_folder(ctx),
            "activity_refresh_seconds": ctx.config.serving.activity_refresh_seconds}


def _activity_folder(ctx: JobContext) -> str | None:
    """The folder of ``user_recent_activity`` the served model reloads with delta-rs; None for a catalog
    table (`Lake.named`): its storage is the catalog's, which a serving process has no credentials for,
    so that model serves from its snapshot and the request's ``recent_items`` (or the folder given by
    $SEASONREC_ACTIVITY_TABLE)."""
    if ctx.lake.named:
        return None
    folder = ctx.lake.path(tables.USER_RECENT_ACTIVITY)
    return folder if "://" in folder else os.path.abspath(folder)


def register_recommender(ctx: JobContext, model_dir: str, day: dt.date) -> dict[str, Any]:
    """Log, register and (when it passes the gate) promote the model under ``model_dir`` with a
    serving snapshot at ``day``. Returns the job summary: registered name, version, URI, alias, gate,
    MLflow run id and the snapshot's summary."""
    import mlflow

    model, version_dir = resolve_model(model_dir)
    if version_dir is None:
        raise JobError("register needs a trained model directory (run `seasonrec train` first)")
    cfg = ctx.config.serving
    options = ScoringOptions.from_config(ctx.config)
    with ctx.step(f"serving snapshot at {day}"):
        snapshot = build_snapshot(ctx, model, day, options)
    gate = quality_gate(model.meta, ctx.config.training.recall_k, cfg.gate_min_ratio)
    use_experiment(ctx.config)
    example = pd.DataFrame([{"user_id": "12345", "date": day.isoformat(), "country": "United Kingdom",
                             "recent_items": [str(model.item_ids[0])], "k": 3}])
    with tempfile.TemporaryDirectory() as work, ctx.step(f"log + register {cfg.model_name}"):
        snapshot_dir = save_snapshot(snapshot, os.path.join(work, "snapshot"))
        serving_dir = os.path.join(work, "serving")
        os.makedirs(serving_dir)
        with open(os.path.join(serving_dir, SERVING_FILE), "w", encoding="utf-8") as handle:
            json.dump(_serving_settings(ctx), handle, indent=1)
        tags = {"seasonrec.run_id": ctx.run_id, "seasonrec.model_version": str(model.model_version),
                "seasonrec.training_run_id": str(model.meta.get("run_id")), "seasonrec.snapshot_date": day.isoformat()}
        with mlflow.start_run(run_name=f"register-{ctx.run_id}", tags=tags) as run:
            mlflow.log_metrics({f"gate.{key}": float(value) for key, value in gate.items()
                                if isinstance(value, int | float) and not isinstance(value, bool)})
            with logs.without_lines(logs.MLFLOW_REGISTRY_NOTICES):  # the job summary names the version
                info = mlflow.pyfunc.log_model(
                    name="recommender", python_model=RecommenderModel(),
                    artifacts={"model": version_dir, "snapshot": snapshot_dir, "serving": serving_dir},
                    code_paths=[os.path.dirname(seasonrec.__file__)], signature=_signature(),
                    input_example=example, pip_requirements=PIP_REQUIREMENTS, registered_model_name=cfg.model_name)
    version = str(info.registered_model_version)
    registry = client(ctx.config)
    for key, value in {**tags, "gate.passed": str(gate["passed"]), "gate.recall": str(gate["recall"]),
                       "gate.repeat_buy_recall": str(gate["repeat_buy_recall"])}.items():
        registry.set_model_version_tag(cfg.model_name, version, key, value)
    if gate["passed"]:
        registry.set_registered_model_alias(cfg.model_name, cfg.champion_alias, version)
    else:
        log.warning("[register] %s version %s did not pass the quality gate (%s); %s stays where it was",
                    cfg.model_name, version, gate, cfg.champion_alias)
    return {"registered_model": cfg.model_name, "registered_version": version,
            "model_uri": model_uri(ctx.config, version), "champion": gate["passed"],
            "champion_uri": model_uri(ctx.config), "gate": gate, "mlflow_run_id": run.info.run_id,
            "model_version": str(model.model_version), "snapshot": snapshot.info()}
