"""Demand forecast benchmark on Online Retail: the global LightGBM model against classical methods.

One run, two forecast origins: as of 2011-06-30 (the next 13 weeks, July-September 2011) and as of
2011-08-31 (the 4 weeks of September; the file ends on 2011-09-30, so no longer horizon fits).
Every method forecasts the same items (all items with ``forecast.min_history_weeks`` weeks of
history at the origin, intermittent ones included) and weeks. Prints one JSON document with, per
as-of date and method:

- ``wape_p50`` = sum |p50 - actual| / sum actual over items x weeks (item level);
- ``bias_mean`` = (sum mean - sum actual) / sum actual over items x weeks;
- ``coverage_p10_p90`` = share of item-weeks with p10 <= actual <= p90;
- ``pinball`` = mean pinball loss over P10/P50/P90 and item-weeks (units);
- ``mase_p50`` = mean over items of mean |p50 - actual| / in-sample mean |y_t - y_{t-1}|;
- category and total level WAPE of p50 (classical methods: their forecast of the aggregate series;
  gbm: the bottom-up sums of its item means, which is what the job writes as the aggregate mean);

plus ``gbm_wape_over_best_classical`` and the run's own out-of-sample model choice
(``selection``, see ``seasonrec.forecasting.selection``) and timings.

    .venv/bin/python bench/bench_forecast.py [--data PATH] [--input csv|jobs] [--with-lstm] [--keep]

Truth is every non-cancelled sale, guest checkouts (no CustomerID) included. ``--input jobs`` (the
default) runs ``ingest --source online_retail`` + ``features`` into the scratch lake (silver keeps
guest rows with a null user since 9d6d8ab); ``--input csv`` reads the CSV directly with Spark
instead: product rows with positive quantity and price, not on a cancelled (``C``) invoice.

Measured 2026-12-02 (2 cores, ``--input jobs``, 2 backtest windows, 5.5 min in all), item level:

| as of | weeks | items | gbm WAPE | best classical WAPE | ratio | gbm bias of mean | coverage | pinball gbm / best |
|---|---|---|---|---|---|---|---|---|
| 2011-06-30 | 13 | 3,278 | 0.741 | 0.783 window_average | 0.946 | -13% | 0.811 | 7.26 / 7.28 tsb |
| 2011-08-31 | 4 | 3,504 | 0.690 | 0.725 tsb | 0.953 | -24% | 0.826 | 8.44 / 8.65 tsb |

gbm beats each classical method's WAPE and pinball at both dates, but not by the 0.90 bar; its
bottom-up category/total mean is worse than the classical aggregate forecasts.
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

ORIGINS = [(dt.date(2011, 6, 30), 13), (dt.date(2011, 8, 31), 4)]
CSV = "../shared/data/online_retail/online_retail_2010-12_2011-09.csv.gz"  # relative to the repo root
CLASSICAL = ["naive", "window_average", "tsb", "croston", "ets"]
INTERVAL_CLASSICAL = CLASSICAL  # all five get intervals (native or conformal)


def _run_job(ctx: Any, module_name: str, argv: list[str]) -> dict[str, Any]:
    import importlib

    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(ctx, parser.parse_args(argv))


def _silver_from_csv(ctx: Any, csv: Path) -> None:
    """Silver straight from the CSV: every non-cancelled product sale, guest checkouts included."""
    from pyspark.sql import functions as F

    from seasonrec import tables

    raw = ctx.spark.read.option("header", True).csv(str(csv))
    pattern = ctx.config.features.non_product_pattern
    rows = (raw.select(F.col("StockCode").alias("item_id"), F.col("Description").alias("title"),
                       F.col("InvoiceNo").alias("invoice"), F.to_timestamp("InvoiceDate").alias("ts"),
                       F.col("Quantity").cast("double").alias("quantity"),
                       F.col("UnitPrice").cast("double").alias("price"))
            .where(~F.col("item_id").rlike(pattern) & F.col("ts").isNotNull() & ~F.col("invoice").startswith("C")
                   & (F.col("quantity") > 0) & (F.col("price") > 0))
            .withColumn("date", F.to_date("ts"))
            .withColumn("week_start", F.date_trunc("week", F.col("date")).cast("date")))
    ctx.lake.write(rows.select("item_id", "date", "week_start", "quantity"), tables.SILVER_INTERACTIONS,
                   commit_info=ctx.commit_info())
    items = rows.groupBy("item_id").agg(F.first("title").alias("title"), F.lit("unknown").alias("category"),
                                        F.avg("price").alias("price"))
    ctx.lake.write(items, tables.SILVER_ITEMS, commit_info=ctx.commit_info())


def _metrics(frame: Any, quantiles: list[float]) -> dict[str, float | None]:
    """frame: pandas with series_id, p10, p50, p90, mean, actual, scale (item level, one model)."""
    import numpy as np

    actual = frame["actual"]
    error = frame["p50"] - actual
    total = float(actual.sum())
    pinball = sum(np.maximum(q * (actual - frame[c]), (q - 1) * (actual - frame[c]))
                  for q, c in zip(quantiles, ("p10", "p50", "p90"), strict=True)) / 3
    per_item = frame.assign(abs_error=error.abs()).groupby("series_id").agg(mae=("abs_error", "mean"),
                                                                             scale=("scale", "first"))
    per_item = per_item[per_item["scale"] > 0]
    return {
        "wape_p50": round(float(error.abs().sum() / total), 4),
        "bias_mean": round(float((frame["mean"].sum() - total) / total), 4),
        "bias_p50": round(float(error.sum() / total), 4),
        "coverage_p10_p90": round(float(((actual >= frame["p10"]) & (actual <= frame["p90"])).mean()), 4),
        "pinball": round(float(pinball.mean()), 4),
        "mase_p50": round(float(np.mean(per_item["mae"] / per_item["scale"])), 4),
    }


def _aggregate_wape(aggregates: Any, gbm_items: Any, truth: Any, level: str) -> dict[str, float]:
    """WAPE of p50 at ``level`` (category/total) per model.

    ``aggregates``: classical candidates' category/total rows (series_id, week_start, model, p50);
    ``gbm_items``: gbm item rows with category and mean (gbm forecasts items only: its aggregate is the
    bottom-up sum of item means); ``truth``: item rows with category, week_start, actual.
    """
    import pandas as pd

    keys = ["category", "week_start"] if level == "category" else ["week_start"]
    actual = truth.groupby(keys)["actual"].sum().rename("actual")
    forecasts = {model: part.rename(columns={"series_id": "category"}).groupby(keys)["p50"].sum()
                 for model, part in aggregates[aggregates["level"] == level].groupby("model")}
    if len(gbm_items):
        forecasts["gbm"] = gbm_items.groupby(keys)["mean"].sum()
    out = {}
    for model, forecast in sorted(forecasts.items()):
        joined = pd.concat([forecast.rename("forecast"), actual], axis=1).fillna(0.0)
        out[model] = round(float((joined["forecast"] - joined["actual"]).abs().sum() / joined["actual"].sum()), 4)
    return out


def _evaluate(run: Any, quantiles: list[float]) -> dict[str, Any]:
    """Metrics of every candidate at the final origin on the items every candidate forecast."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    gold = run.weekly_demand
    weeks = run.origins[0].output_weeks
    truth = (gold.where(F.col("week_start").isin(weeks))
             .select(F.col("item_id").alias("series_id"), "category", "week_start", F.col("quantity").alias("actual")))
    history = gold.where(F.col("week_start") < F.lit(run.origins[0].cutoff))
    ordered = Window.partitionBy("item_id").orderBy("week_start")
    scale = (history.withColumn("diff", F.abs(F.col("quantity") - F.lag("quantity", 1).over(ordered)))
             .groupBy(F.col("item_id").alias("series_id")).agg(F.avg("diff").alias("scale")))
    final = run.candidates.where(F.col("window") == 0)
    items = final.where(F.col("level") == "item")
    models = [r["model"] for r in items.select("model").distinct().collect()]
    common = (items.groupBy("series_id").agg(F.countDistinct("model").alias("n"))
              .where(F.col("n") == len(models)).select("series_id"))
    scored = (items.join(common, "series_id").join(truth, ["series_id", "week_start"], "left")
              .fillna(0.0, subset=["actual"]).join(scale, "series_id", "left").toPandas())
    # Aggregates are judged against every item's sales (cold-start items too), as the job writes them.
    truth_local = truth.toPandas()
    category_of = dict(zip(truth_local["series_id"], truth_local["category"], strict=False))
    aggregates = final.where(F.col("level") != "item").toPandas()
    gbm_items = scored[scored["model"] == "gbm"].assign(category=lambda f: f["series_id"].map(category_of))
    methods = {name: _metrics(part, quantiles) for name, part in sorted(scored.groupby("model"))}
    classical = {m: v["wape_p50"] for m, v in methods.items() if m in CLASSICAL}
    best = min(classical, key=classical.get) if classical else None
    interval_best = min((methods[m]["pinball"] for m in INTERVAL_CLASSICAL if m in methods), default=None)
    result: dict[str, Any] = {
        "forecast_weeks": [str(w) for w in weeks],
        "items_evaluated": int(scored["series_id"].nunique()),
        "item_weeks": int(len(scored) // max(len(models), 1)),
        "actual_units": float(scored[scored["model"] == models[0]]["actual"].sum()) if models else 0.0,
        "methods": methods,
        "best_classical": best,
        "category_wape_p50": _aggregate_wape(aggregates, gbm_items, truth_local, "category"),
        "total_wape_p50": _aggregate_wape(aggregates, gbm_items, truth_local, "total"),
    }
    if "gbm" in methods and best:
        gbm = methods["gbm"]
        result["gbm_wape_over_best_classical"] = round(gbm["wape_p50"] / classical[best], 4)
        result["gbm_beats_every_classical_wape"] = all(gbm["wape_p50"] < v for v in classical.values())
        result["gbm_pinball_below_best_classical"] = interval_best is not None and gbm["pinball"] < interval_best
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=CSV, help="Online Retail CSV(.gz), relative to the repo root or absolute")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir, deleted at the end)")
    parser.add_argument("--input", choices=["csv", "jobs"], default="jobs",
                        help="jobs: ingest --source online_retail + features (default); csv: read the CSV directly")
    parser.add_argument("--with-lstm", action="store_true", help="also train the Horovod LSTM (minutes)")
    parser.add_argument("--epochs", type=int, default=3, help="LSTM epochs (with --with-lstm)")
    parser.add_argument("--backtest-windows", type=int, default=2, help="rolling origins before each forecast")
    parser.add_argument("--keep", action="store_true", help="keep the scratch lake")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra config key=value")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    from seasonrec.config import load_config
    from seasonrec.context import JobContext
    from seasonrec.forecasting.pipeline import run_forecast

    csv = (REPO / args.data).resolve() if not os.path.isabs(args.data) else Path(args.data)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_forecast_"))
    paths = [f"paths.{key}={workdir}/{key}" for key in
             ("lake_root", "checkpoint_dir", "model_dir", "mlflow_dir", "report_dir", "petastorm_cache_dir")]
    models = ["gbm", *CLASSICAL, *(["lstm"] if args.with_lstm else [])]
    config = load_config(REPO / "conf" / "local.yaml", [
        *paths, "spark.master=local[2]", "spark.driver_memory=4g", "spark.shuffle_partitions=4",
        "data.source=online_retail", f"data.online_retail.path={csv}", f"forecast.models=[{','.join(models)}]",
        f"forecast.epochs={args.epochs}", f"forecast.backtest_windows={args.backtest_windows}", *args.overrides])
    ctx = JobContext.create(config, "bench_forecast")
    result: dict[str, Any] = {"benchmark": "forecast", "data": str(csv), "models": models,
                              "backtest_windows": args.backtest_windows}
    try:
        started = time.perf_counter()
        if args.input == "jobs":
            _run_job(ctx, "seasonrec.data.jobs", ["--source", "online_retail"])
            _run_job(ctx, "seasonrec.features.jobs", [])
            result["input"] = "ingest+features"
        else:
            _silver_from_csv(ctx, csv)
            result["input"] = "csv_direct (guest rows included, cancellations excluded)"
        result["input_seconds"] = round(time.perf_counter() - started, 1)
        result["as_of"] = {}
        for as_of, horizon in ORIGINS:
            started = time.perf_counter()
            run = run_forecast(ctx, as_of, horizon, write=False)
            seconds = round(time.perf_counter() - started, 1)
            entry = _evaluate(run, list(config.forecast.quantiles))
            entry.update({"horizon_weeks": horizon, "forecast_seconds": seconds,
                          "selection": run.summary.get("selection"), "chosen_models": run.summary.get("chosen_models"),
                          "gbm": run.summary.get("gbm"), "baselines_applyinpandas": run.summary.get("baselines")})
            result["as_of"][str(as_of)] = entry
            log_line = {m: v["wape_p50"] for m, v in entry["methods"].items()}
            logging.info("as of %s: WAPE %s (%.0fs)", as_of, log_line, seconds)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
