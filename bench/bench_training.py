"""Training benchmark: Horovod throughput (np=1 vs np=2), Petastorm reader vs training, and quality.

Prints one JSON object (last stdout line):
- ``throughput``: per num_proc, training examples/second per process and wall time of the
  Horovod run; ``np2_vs_np1_total_throughput`` = (2 * eps_per_proc(np=2)) / eps_per_proc(np=1).
- ``reader``: Petastorm TF-dataset read rate of the same encoded rows in one process, and its ratio
  to what one training process consumes (> 1: the reader is not the bottleneck).
- ``quality``: Recall@20 / NDCG@10 of the two-tower (first stage and re-ranked), the repeat-buy
  heuristic and Spark ALS, same evaluation units (user-weeks of the validation window), same run.

Default data: Online Retail (``--data``, else ``data.online_retail.path``; train <= 2011-08-31, validate on
Sep 2011) ingested and featurised into a scratch lake; ``--quick`` uses the small synthetic test data instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SEASONREC_SALT", "bench-salt")


def _args(module, *argv: str):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(list(argv))


def build_lake(work: Path, quick: bool, epochs: int, data: str | None = None):
    from seasonrec.config import load_config
    from seasonrec.context import JobContext
    from seasonrec.data import jobs as ingest_jobs
    from seasonrec.features import jobs as features_jobs
    from seasonrec.spark import get_spark

    overrides = [f"paths.{key}={work}/{key}" for key in
                 ("lake_root", "checkpoint_dir", "model_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")]
    overrides.append(f"training.epochs={epochs}")
    if quick:
        config = load_config(REPO / "conf" / "test.yaml", overrides)
    else:
        overrides += [*([f"data.online_retail.path={Path(data).resolve()}"] if data else []),
                      "data.source=online_retail", "split.train_end=2011-09-01", "split.validation_end=2011-10-01",
                      "split.test_end=2011-10-01", "training.batch_size=512", "training.embedding_dim=32"]
        config = load_config(REPO / "conf" / "local.yaml", overrides)
    spark = get_spark(config)
    ingest_jobs.run(JobContext.create(config, "ingest", spark), _args(ingest_jobs))
    features_jobs.run(JobContext.create(config, "features", spark), _args(features_jobs))
    return config, spark


def reader_rate(ctx, rows, batch_size: int, seconds: float = 20.0) -> float:
    """Examples/second one process reads from a Petastorm converter (no training)."""
    import horovod.tensorflow.keras as hvd

    from seasonrec.core import horovod_runner as dist

    hvd.init()  # single process: rank 0 of 1, so the "shard" is the whole dataset
    with dist.petastorm_converter(ctx, rows) as converter, dist.sharded_tf_dataset(converter, batch_size) as ds:
        seen, started = 0, time.perf_counter()
        for batch in ds:
            seen += int(batch.item_index.shape[0])
            if time.perf_counter() - started > seconds:
                break
        return seen / (time.perf_counter() - started)


def als_quality(ctx, data, units, k: int) -> dict[str, float]:
    import numpy as np
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    from seasonrec.training.metrics import ndcg_at_k, recall_at_k

    cfg = ctx.config.evaluation
    train = (data.examples.where((F.col("label") == 1) & (F.col("split") == "train"))
             .groupBy("user_id", "item_index").agg(F.count("*").cast("float").alias("n")))
    users = train.select("user_id").distinct().withColumn("user_num", F.monotonically_increasing_id().cast("int"))
    als = ALS(rank=cfg.als_ranks[0], regParam=cfg.als_reg_params[0], alpha=cfg.als_alphas[0],
              maxIter=cfg.als_max_iter, implicitPrefs=True, userCol="user_num", itemCol="item_index",
              ratingCol="n", coldStartStrategy="drop", seed=7)
    model = als.fit(train.join(users, "user_id"))
    item_factors = {int(r["id"]): np.asarray(r["features"]) for r in model.itemFactors.collect()}
    user_factors = {r["user_id"]: np.asarray(r["features"]) for r in
                    model.userFactors.join(users, F.col("id") == F.col("user_num")).collect()}
    n_items = len(data.item_ids)
    matrix = np.zeros((n_items, cfg.als_ranks[0]))
    for index, vector in item_factors.items():
        matrix[index] = vector
    popularity = data.item_tables["log_q"]
    ranked = []
    for user in units.frame["user_id"]:
        vector = user_factors.get(user)
        scores = matrix @ vector if vector is not None else popularity
        ranked.append(np.argsort(-scores)[:k])
    ranked = np.asarray(ranked)
    return {f"recall_at_{k}": recall_at_k(ranked, units.targets, k), "ndcg_at_10": ndcg_at_k(ranked, units.targets, 10)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--data", default=None, help="Online Retail CSV(.gz) (default: data.online_retail.path); "
                        "not read with --quick")
    args = parser.parse_args()
    epochs = args.epochs or (3 if args.quick else 6)
    work = Path(tempfile.mkdtemp(prefix="bench_training_"))
    started = time.perf_counter()
    config, spark = build_lake(work, args.quick, epochs, args.data)
    from seasonrec.context import JobContext
    from seasonrec.training import pipeline
    from seasonrec.training.data import load_training_data

    out: dict[str, object] = {"data": "synthetic(test.yaml)" if args.quick else "online_retail",
                              "epochs": epochs, "feature_seconds": round(time.perf_counter() - started, 1)}
    throughput = {}
    summaries = {}
    for num_proc in (1, 2):
        ctx = JobContext.create(config.model_copy(update={"training": config.training.model_copy(
            update={"num_proc": num_proc})}), "train", spark)
        summary = pipeline.train(ctx)
        summaries[num_proc] = summary
        throughput[f"np{num_proc}"] = {"examples_per_second_per_process": summary["examples_per_second_per_process"],
                                       "horovod_wall_seconds": summary["train_seconds"],
                                       "fit_seconds": summary["fit_seconds"]}
    eps1 = throughput["np1"]["examples_per_second_per_process"]
    eps2 = throughput["np2"]["examples_per_second_per_process"]
    out["throughput"] = {**throughput, "np2_vs_np1_total_throughput": round(2 * eps2 / max(eps1, 1e-9), 3)}

    ctx = JobContext.create(config, "train", spark)
    data = load_training_data(ctx)
    read = reader_rate(ctx, data.train_rows, config.training.batch_size)
    out["reader"] = {"petastorm_examples_per_second": round(read, 1),
                     "reader_vs_training_consumption": round(read / max(eps2, 1e-9), 2)}

    model = pipeline.reload(ctx)
    k = config.training.recall_k
    units = pipeline._units(data, split="validation")
    activity, weather = pipeline.sales_signals(ctx, data)
    two_tower = pipeline.evaluate(model, units, data.is_tail, k, activity, weather=weather)
    out["quality"] = {
        "window": "validation (Sep 2011)" if not args.quick else "validation",
        "units": len(units),
        "two_tower_first_stage": {f"recall_at_{k}": two_tower[f"recall_at_{k}"], "ndcg_at_10": two_tower["ndcg_at_10"]},
        "two_tower_reranked": {f"recall_at_{k}": two_tower.get(f"reranked_recall_at_{k}"),
                               "ndcg_at_10": two_tower.get("reranked_ndcg_at_10")},
        "repeat_buy": {f"recall_at_{k}": two_tower[f"repeat_buy_recall_at_{k}"],
                       "ndcg_at_10": two_tower["repeat_buy_ndcg_at_10"]},
        "als": als_quality(ctx, data, units, k),
        "note": "re-ranker is fitted on this validation window (no separate test month in the Online Retail file)",
    }
    out["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
