"""Full-catalog scoring throughput, side by side in one run on the same users, items and rank.

    .venv/bin/python bench/bench_scoring.py            # 100k users x 20k items, rank 32, top 20
    .venv/bin/python bench/bench_scoring.py --quick    # small sizes, a smoke run

Prints one JSON object: user x item pairs scored per second for
- `udf`: the seasonrec mapInPandas engine (ALS-factor model, no filters) on local[*];
- `als`: Spark MLlib `ALSModel.recommendForAllUsers` over the very same factors;
- `naive_udf`: a row-at-a-time Python UDF (one user per call, numpy dot + full sort), run on a
  subset of users and extrapolated (marked so in the JSON);
- `numpy_limit`: one in-memory block (GEMM + the engine's exact top-K) in this process with one
  BLAS thread, i.e. the per-core limit; `numpy_argpartition` is the same with plain argpartition.
Plus ratios (udf per core / numpy limit, udf / als), the peak RSS of the Python workers
(ru_maxrss reported by each worker) and whether the UDF's lists match ALS's.
Timed sections write to Spark's `noop` sink, so output storage is not part of the numbers.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread per worker/core (inherited by workers)
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from seasonrec.core.topk import _argpartition_top, score_block  # noqa: E402
from seasonrec.scoring.models import ALSFactorsModel  # noqa: E402


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _rate(pairs: float, seconds: float, cores: int = 1) -> dict[str, float]:
    return {"seconds": round(seconds, 3), "pairs": int(pairs), "pairs_per_second": round(pairs / seconds),
            "pairs_per_second_per_core": round(pairs / seconds / cores), "cores": cores}


def numpy_limit(users: np.ndarray, items: np.ndarray, top_k: int, block: int, repeats: int) -> dict:
    block_users = users[:block]
    items_t = np.ascontiguousarray(items.T)
    score_block(block_users, items_t, top_k)  # warm up
    best = min(_timed(lambda: score_block(block_users, items_t, top_k)) for _ in range(repeats))

    def argpartition_block() -> None:
        _argpartition_top(np.dot(block_users, items_t), top_k)

    best_argpartition = min(_timed(argpartition_block) for _ in range(repeats))
    pairs = block_users.shape[0] * items.shape[0]
    return {"numpy_limit": {**_rate(pairs, best), "block_users": int(block_users.shape[0]),
                            "kernel": "GEMM + group-max bound + exact top-K (the engine's kernel)"},
            "numpy_argpartition": {**_rate(pairs, best_argpartition),
                                   "kernel": "GEMM + np.partition at the K-th score + sort of the columns "
                                             "at or above it (the kernel's narrow-row path)"}}


def _factor_frame(spark, ids: np.ndarray, factors: np.ndarray):
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("id", T.IntegerType()), T.StructField("features", T.ArrayType(T.FloatType()))])
    return spark.createDataFrame(pd.DataFrame({"id": ids.astype(np.int32), "features": list(factors)}), schema)


def als_model_from_factors(spark, user_factors, item_factors, rank: int):
    """A real MLlib ALSModel over given factors (the JVM constructor; no fitting)."""
    java_model = spark._jvm.org.apache.spark.ml.recommendation.ALSModel(
        "als_bench", rank, user_factors._jdf, item_factors._jdf)
    return java_model.setUserCol("user").setItemCol("item").setPredictionCol("prediction")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (5k users x 2k items)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--block", type=int, default=1024, help="scoring.user_block_size")
    parser.add_argument("--naive-users", type=int, default=1000, help="users scored by the naive UDF")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per Spark method (best is reported)")
    parser.add_argument("--skip-als", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.users, args.items, args.naive_users = 5_000, 2_000, 300

    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from seasonrec.config import load_config
    from seasonrec.scoring.engine import ScoringOptions, build_recommendations
    from seasonrec.spark import get_spark

    rng = np.random.default_rng(42)
    user_factors = (rng.standard_normal((args.users, args.rank)) / np.sqrt(args.rank)).astype(np.float32)
    item_factors = (rng.standard_normal((args.items, args.rank)) / np.sqrt(args.rank)).astype(np.float32)
    user_ids = np.arange(args.users, dtype=np.int64)
    item_ids = np.arange(args.items, dtype=np.int64)
    result: dict = {"users": args.users, "items": args.items, "rank": args.rank, "top_k": args.top_k,
                    "user_block_size": args.block, "quick": args.quick, "load_average_start": os.getloadavg()}
    result.update(numpy_limit(user_factors, item_factors, args.top_k, args.block, repeats=5))

    config = load_config(REPO / "conf" / "local.yaml", [
        "spark.master=local[*]", "spark.driver_memory=6g", "spark.log_level=ERROR",
        f"paths.lake_root={REPO}/lake/_bench", "spark.conf={spark.ui.showConsoleProgress: 'false'}"])
    spark = get_spark(config)
    cores = spark.sparkContext.defaultParallelism
    result["spark_cores"] = cores
    pairs = float(args.users) * args.items

    # ---- the engine
    model = ALSFactorsModel(user_ids, user_factors, item_ids, item_factors, model_version="bench")
    users_df = spark.createDataFrame(pd.DataFrame({"user_id": user_ids})).cache()
    users_df.count()
    options = ScoringOptions(top_k=args.top_k, user_block_size=args.block, sellable_weeks=0)
    udf_times, worker_stats = [], {}
    for _ in range(args.repeats):
        run = build_recommendations(spark, model, users_df, {}, options)
        udf_times.append(_timed(lambda run=run: run.recommendations.write.format("noop").mode("overwrite").save()))
        worker_stats = run.worker_stats()
    result["udf"] = {**_rate(pairs, min(udf_times), cores), "runs_seconds": [round(t, 2) for t in udf_times],
                     "partitions": run.facts["partitions"],
                     "note": "first run includes the one-time model broadcast + load per Python worker"}
    result["peak_memory_per_python_worker_mb"] = round(worker_stats.get("max_worker_rss_mb", 0.0), 1)
    result["udf_worker_stats"] = worker_stats
    sample_users = user_ids[:: max(1, args.users // 50)][:50]
    ours = (build_recommendations(spark, model, users_df.where(F.col("user_id").isin(sample_users.tolist())), {},
                                  options).recommendations.toPandas()
            .sort_values(["user_id", "rank"]).groupby("user_id")["item_id"].apply(list).to_dict())

    # ---- MLlib ALS on the same factors
    if not args.skip_als:
        from pyspark.sql import DataFrame

        user_frame = _factor_frame(spark, user_ids, user_factors).cache()
        item_frame = _factor_frame(spark, item_ids, item_factors).cache()
        user_frame.count(), item_frame.count()
        java_model = als_model_from_factors(spark, user_frame, item_frame, args.rank)
        als_times = []
        for _ in range(args.repeats):
            recs = DataFrame(java_model.recommendForAllUsers(args.top_k), spark)
            als_times.append(_timed(lambda recs=recs: recs.write.format("noop").mode("overwrite").save()))
        result["als"] = {**_rate(pairs, min(als_times), cores), "runs_seconds": [round(t, 2) for t in als_times],
                         "method": "ALSModel.recommendForAllUsers (same factors, same rank)"}
        als_lists = {row["user"]: [r["item"] for r in row["recommendations"]] for row in
                     DataFrame(java_model.recommendForAllUsers(args.top_k), spark)
                     .where(F.col("user").isin(sample_users.tolist())).collect()}
        same = sum(ours.get(u) == als_lists.get(u) for u in sample_users.tolist())
        overlap = np.mean([len(set(ours.get(u, [])) & set(als_lists.get(u, []))) / args.top_k
                           for u in sample_users.tolist()])
        result["udf_vs_als_lists"] = {"users_checked": len(sample_users), "identical_order": int(same),
                                      "mean_item_overlap": round(float(overlap), 4)}
        user_frame.unpersist(), item_frame.unpersist()

    # ---- naive row-at-a-time Python UDF, on a subset
    items_bc = spark.sparkContext.broadcast(item_factors)
    top_k = args.top_k

    @F.udf(returnType=T.ArrayType(T.LongType()), useArrow=False)
    def naive_top_k(features: list[float]) -> list[int]:
        scores = items_bc.value @ np.asarray(features, dtype=np.float32)
        return np.argsort(-scores, kind="stable")[:top_k].tolist()

    naive_users = min(args.naive_users, args.users)
    naive_df = _factor_frame(spark, user_ids[:naive_users], user_factors[:naive_users]).repartition(2 * cores).cache()
    naive_df.count()
    naive_seconds = _timed(lambda: naive_df.select("id", naive_top_k("features").alias("items"))
                           .write.format("noop").mode("overwrite").save())
    naive_pairs = float(naive_users) * args.items
    result["naive_udf"] = {**_rate(naive_pairs, naive_seconds, cores), "users_scored": naive_users,
                           "extrapolated_seconds_for_all_users": round(naive_seconds * args.users / naive_users, 1),
                           "note": "row-at-a-time pickled Python UDF on a subset; rate extrapolated to all users"}

    limit = result["numpy_limit"]["pairs_per_second_per_core"]
    udf = result["udf"]
    result["ratios"] = {
        "udf_per_core_over_numpy_limit_per_core": round(udf["pairs_per_second_per_core"] / limit, 3),
        "udf_per_core_over_numpy_argpartition_per_core": round(
            udf["pairs_per_second_per_core"] / result["numpy_argpartition"]["pairs_per_second_per_core"], 3),
        "udf_over_naive_udf": round(udf["pairs_per_second"] / result["naive_udf"]["pairs_per_second"], 1),
    }
    if "als" in result:
        result["ratios"]["udf_over_als"] = round(udf["pairs_per_second"] / result["als"]["pairs_per_second"], 2)
    result["targets_met"] = {"udf_at_least_half_numpy_limit_per_core":
                             result["ratios"]["udf_per_core_over_numpy_limit_per_core"] >= 0.5,
                             "udf_faster_than_als": result["ratios"].get("udf_over_als", 0) > 1}
    result["driver_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["load_average_end"] = os.getloadavg()
    print(json.dumps(result, indent=2, default=str))
    spark.stop()
    return result


if __name__ == "__main__":
    main()
