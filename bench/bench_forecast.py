"""Demand forecast benchmark on Online Retail: as of 2011-08-31, the 4 weeks of September 2011.

Prints one JSON document: WAPE, MASE and bias per model side by side (every model on the same
items: those with enough history at the origin), the backtest-chosen forecast, and the throughput
of the Spark ``applyInPandas`` statsforecast baselines (series per second).

    .venv/bin/python bench/bench_forecast.py [--workdir DIR] [--epochs N] [--keep]

The data goes through the real jobs (``ingest --source online_retail`` -> ``features``) into a
scratch lake; if either is not available, the CSV is read directly with Spark instead (reported
as ``"input": "csv_direct"``). Metrics:

- WAPE = sum |p50 - actual| / sum actual over items x weeks;
- MASE = mean over items of mean |p50 - actual| / in-sample mean |y_t - y_{t-1}| (the history is
  shorter than a year, so the scale uses lag 1);
- bias = (sum p50 - sum actual) / sum actual;
- coverage = share of item-weeks inside [p10, p90].
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("SEASONREC_SALT", "bench-salt")

AS_OF = dt.date(2011, 8, 31)
HORIZON = 4
CSV = REPO.parent / "shared" / "data" / "online_retail" / "online_retail_2010-12_2011-09.csv.gz"


def _run_job(ctx: Any, module_name: str, argv: list[str]) -> dict[str, Any]:
    import importlib

    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(ctx, parser.parse_args(argv))


def _silver_from_csv(ctx: Any) -> None:
    """Fallback input: net weekly units per StockCode straight from the CSV (products only)."""
    from pyspark.sql import functions as F

    from seasonrec import tables

    raw = ctx.spark.read.option("header", True).csv(str(CSV))
    pattern = ctx.config.features.non_product_pattern
    rows = (raw.select(F.col("StockCode").alias("item_id"), F.col("Description").alias("title"),
                       F.to_timestamp("InvoiceDate").alias("ts"), F.col("Quantity").cast("double").alias("quantity"),
                       F.col("UnitPrice").cast("double").alias("price"))
            .where(~F.col("item_id").rlike(pattern) & F.col("ts").isNotNull())
            .withColumn("date", F.to_date("ts"))
            .withColumn("week_start", F.date_sub("date", F.dayofweek("date") - 2 + F.when(F.dayofweek("date") == 1,
                                                                                            7).otherwise(0))))
    ctx.lake.write(rows.select("item_id", "date", "week_start", "quantity"), tables.SILVER_INTERACTIONS,
                   commit_info=ctx.commit_info())
    items = rows.groupBy("item_id").agg(F.first("title").alias("title"), F.lit("unknown").alias("category"),
                                        F.avg("price").alias("price"))
    ctx.lake.write(items, tables.SILVER_ITEMS, commit_info=ctx.commit_info())


def _keep_top_items(ctx: Any, n_items: int) -> None:
    """Rewrite the scratch lake's silver tables to the ``n_items`` best sellers before --as-of."""
    from pyspark.sql import functions as F

    from seasonrec import tables

    interactions = ctx.lake.read(tables.SILVER_INTERACTIONS)
    top = (interactions.where(F.col("date") <= F.lit(AS_OF)).groupBy("item_id").agg(F.sum("quantity").alias("units"))
           .orderBy(F.desc("units")).limit(n_items).select("item_id")).cache()
    top.count()
    kept = interactions.join(F.broadcast(top), "item_id").cache()
    kept.count()
    items = ctx.lake.read(tables.SILVER_ITEMS).join(F.broadcast(top), "item_id").cache()
    items.count()
    partition_by = ["event_month"] if "event_month" in kept.columns else None
    ctx.lake.write(kept, tables.SILVER_INTERACTIONS, partition_by=partition_by, commit_info=ctx.commit_info())
    ctx.lake.write(items, tables.SILVER_ITEMS, commit_info=ctx.commit_info())


def _metrics(frame: Any) -> dict[str, float]:
    """frame: pandas with series_id, p10, p50, p90, actual, scale."""
    import numpy as np

    error = frame["p50"] - frame["actual"]
    per_item = frame.assign(abs_error=error.abs()).groupby("series_id").agg(mae=("abs_error", "mean"),
                                                                             scale=("scale", "first"))
    per_item = per_item[per_item["scale"] > 0]
    actual = frame["actual"].sum()
    return {
        "wape": round(float(error.abs().sum() / actual), 4),
        "mase": round(float(np.mean(per_item["mae"] / per_item["scale"])), 4),
        "bias": round(float(error.sum() / actual), 4),
        "coverage_p10_p90": round(float(((frame["actual"] >= frame["p10"]) & (frame["actual"] <= frame["p90"])).mean()),
                                  4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir, deleted at the end)")
    parser.add_argument("--epochs", type=int, default=3, help="LSTM epochs")
    parser.add_argument("--backtest-windows", type=int, default=1, help="rolling origins before the forecast")
    parser.add_argument("--example-stride", type=int, default=2, help="LSTM training origins every N weeks")
    parser.add_argument("--keep", action="store_true", help="keep the scratch lake")
    parser.add_argument("--input", choices=["jobs", "csv"], default="jobs",
                        help="jobs: ingest --source online_retail + features (default); csv: read the CSV directly")
    parser.add_argument("--top-items", type=int, default=None,
                        help="keep only the N items with the most units before --as-of (shared small machines)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    from pyspark.sql import functions as F

    from seasonrec import tables
    from seasonrec.config import load_config
    from seasonrec.context import JobContext
    from seasonrec.forecasting.pipeline import run_forecast

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_forecast_"))
    paths = [f"paths.{key}={workdir}/{key}" for key in
             ("lake_root", "checkpoint_dir", "model_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")]
    config = load_config(REPO / "conf" / "local.yaml", [
        *paths, "spark.master=local[2]", "spark.driver_memory=4g", "spark.shuffle_partitions=4",
        "data.source=online_retail", f"data.online_retail.path={CSV}",
        f"forecast.horizon={HORIZON}", f"forecast.epochs={args.epochs}",
        f"forecast.backtest_windows={args.backtest_windows}", f"forecast.example_stride={args.example_stride}"])
    ctx = JobContext.create(config, "bench_forecast")
    result: dict[str, Any] = {"benchmark": "forecast", "data": "online_retail", "as_of": str(AS_OF),
                              "horizon_weeks": HORIZON}
    try:
        started = time.perf_counter()
        if args.input == "jobs":
            try:
                _run_job(ctx, "seasonrec.data.jobs", ["--source", "online_retail"])
                _run_job(ctx, "seasonrec.features.jobs", [])
                result["input"] = "ingest+features"
            except Exception as exc:  # noqa: BLE001 - the bench still measures forecasting on the raw CSV
                result["input_fallback_reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                args.input = "csv"
        if args.input == "csv":
            result["input"] = "csv_direct"
            _silver_from_csv(ctx)
        if args.top_items:
            _keep_top_items(ctx, args.top_items)
            result["top_items"] = args.top_items
        result["input_seconds"] = round(time.perf_counter() - started, 1)

        started = time.perf_counter()
        run = run_forecast(ctx, AS_OF, HORIZON)
        result["forecast_seconds"] = round(time.perf_counter() - started, 1)
        weeks = run.origins[0].output_weeks
        result["forecast_weeks"] = [str(w) for w in weeks]

        gold = run.weekly_demand
        actual = (gold.where(F.col("week_start").isin(weeks))
                  .select(F.col("item_id").alias("series_id"), "week_start", F.col("quantity").alias("actual")))
        history = gold.where(F.col("week_start") < F.lit(run.origins[0].cutoff))
        from pyspark.sql.window import Window

        ordered = Window.partitionBy("item_id").orderBy("week_start")
        scale = (history.withColumn("diff", F.abs(F.col("quantity") - F.lag("quantity", 1).over(ordered)))
                 .groupBy(F.col("item_id").alias("series_id")).agg(F.avg("diff").alias("scale")))
        candidates = run.candidates.where((F.col("window") == 0) & (F.col("level") == "item"))
        chosen = (run.forecast.where((F.col("level") == "item") & ~F.col("cold_start"))
                  .select(F.col("item_id").alias("series_id"), "week_start", F.lit("chosen_by_backtest").alias("model"),
                          "p10", "p50", "p90"))
        models = [r["model"] for r in candidates.select("model").distinct().collect()]
        common = (candidates.groupBy("series_id").agg(F.countDistinct("model").alias("n"))
                  .where(F.col("n") == len(models)).select("series_id"))
        scored = (candidates.select("series_id", "week_start", "model", "p10", "p50", "p90").unionByName(chosen)
                  .join(common, "series_id").join(actual, ["series_id", "week_start"], "left")
                  .fillna(0.0, subset=["actual"]).join(scale, "series_id", "left").toPandas())
        result["items_evaluated"] = int(scored["series_id"].nunique())
        result["items_cold_start"] = run.summary.get("items_cold_start")
        result["models"] = {name: _metrics(part) for name, part in sorted(scored.groupby("model"))}
        result["baselines_applyinpandas"] = run.summary.get("baselines")
        result["lstm"] = {k: v for k, v in (run.summary.get("lstm") or {}).items() if k != "loss"}
        result["chosen_models"] = run.summary.get("chosen_models")
        result["backtest_item_level"] = run.summary.get("backtest_item_level")
        result["tables"] = {name: ctx.lake.version(name) for name in
                            (tables.WEEKLY_DEMAND, tables.DEMAND_FORECAST, tables.FORECAST_BACKTEST)}
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
