"""Demand forecast benchmark on Online Retail: the global LightGBM model against classical methods.

One run, two forecast origins: as of 2011-06-30 (the next 13 weeks, July-September 2011) and as of
2011-08-31 (the 4 weeks of September; the file ends on 2011-09-30, so no longer horizon fits).
At each level (item, category, total) every method forecasts the same series (all with
``forecast.min_history_weeks`` weeks of history at the origin, intermittent items included) and
weeks; ``chosen`` is what the job writes (the level's chosen model's P10/P50/P90 and the reconciled
``mean``). Aggregates are judged against every item's sales, cold-start items' too. Prints one JSON
document with, per as-of date, level and method:

- ``wape_p50`` = sum |p50 - actual| / sum actual over series x weeks;
- ``bias_mean`` = (sum mean - sum actual) / sum actual over series x weeks;
- ``coverage_p10_p90`` = share of series-weeks with p10 <= actual <= p90;
- ``pinball`` = mean pinball loss over P10/P50/P90 and series-weeks (units);
- ``mase_p50`` = mean over series of mean |p50 - actual| / in-sample mean |y_t - y_{t-1}|;

plus ``<chosen|gbm>_wape_over_best_classical`` per level, ``all_items_bias_mean`` (every item's
written mean, cold starts included, against all sales), the run's own out-of-sample model choice
(``selection``) and reconciliation choice (``reconciliation``, both made on backtest windows only),
the forecast job's time (``forecast_job_seconds``, tables written) and a Markdown table (``table``,
also printed to stderr).

    .venv/bin/python bench/bench_forecast.py [--data PATH] [--input csv|jobs] [--with-lstm] [--keep]
        [--backtest-windows N] [--drift-correction off,auto]

With ``--drift-correction off,auto`` each as-of date is forecast once per mode on the same lake;
the JSON then holds ``variants`` (per mode, the document above) and ``table`` compares the written
forecasts of the modes side by side (with the factors each run applied).

Truth is every non-cancelled sale, guest checkouts (no CustomerID) included. ``--input jobs`` (the
default) runs ``ingest --source online_retail`` + ``features`` into the scratch lake (silver keeps
guest rows with a null user since 9d6d8ab); ``--input csv`` reads the CSV directly with Spark
instead: product rows with positive quantity and price, not on a cancelled (``C``) invoice.

Measured 2026-12-02 (2 cores shared, ``--input jobs``, 2 backtest windows; ingest + features 55 s;
forecast job incl. writes 185 s as of 2011-06-30, 120 s as of 2011-08-31). ``chosen`` = what the
job writes; ratio = WAPE / best classical WAPE at that level; pinball vs the best classical pinball:

| as of | level | chosen | WAPE | best classical | ratio | gbm ratio | bias of mean | coverage | pinball / best |
|---|---|---|---|---|---|---|---|---|---|
| 2011-06-30 | item (3,278) | gbm | 0.741 | 0.783 window_avg | 0.946 | 0.946 | -19.4% | 0.81 | 7.26 / 7.28 |
| 2011-06-30 | category (11) | croston | 0.254 | 0.254 croston | 1.000 | 1.617 | -21.6% | 0.76 | 889 / 881 |
| 2011-06-30 | total | tsb | 0.223 | 0.220 croston | 1.011 | 1.956 | -21.6% | 0.62 | 7648 / 7518 |
| 2011-08-31 | item (3,504) | tsb | 0.725 | 0.725 tsb | 1.000 | 0.953 | -20.0% | 0.83 | 8.65 / 8.65 |
| 2011-08-31 | category (11) | window_avg | 0.303 | 0.303 window_avg | 1.000 | 1.133 | -22.5% | 0.61 | 1364 / 1316 |
| 2011-08-31 | total | window_avg | 0.237 | 0.231 ets | 1.028 | 1.308 | -22.5% | 0.75 | 10514 / 9784 |

Each level's model is chosen on its backtest windows (as of 2011-06-30 only window 1 has history:
no nested check). The LightGBM model of the category/total series (a few thousand training rows)
loses to the classical methods at both levels and is not chosen. Reconciliation: as of 2011-06-30
the backtest window had bottom-up +15.7% vs top-down -1.0% biased, so top_down was applied, and the
scored window's item mean bias went from -13.4% (gbm's own means) to -19.4%: every aggregate
forecast is about 21% low over July-September (the autumn ramp, with no previous year in the data);
as of 2011-08-31 bottom_up stayed (backtest bias -1.2%/-0.1% vs -5%/-14%). Bias of every item's
written mean incl. cold starts: -21.6% and -22.5%.

With ``--backtest-windows 4`` (the job's default; 2011-06-30 is unchanged, its earlier windows have
no history), as of 2011-08-31 (job 224 s): items choose gbm (nested: chosen on windows 2-4, window 1
WAPE 0.825), categories croston, the total tsb, and reconciliation top_down (backtest mean |bias|
0.165 vs bottom-up 0.247; nested: chosen on 2-4, window 1 bias +15%):

| as of | level | chosen | WAPE | best classical | ratio | bias of mean | coverage | pinball / best |
|---|---|---|---|---|---|---|---|---|
| 2011-08-31 | item (3,504) | gbm | 0.690 | 0.725 tsb | 0.953 | -27.3% | 0.83 | 8.44 / 8.65 |
| 2011-08-31 | category (11) | croston | 0.306 | 0.303 window_avg | 1.012 | -29.0% | 0.61 | 1411 / 1316 |
| 2011-08-31 | total | tsb | 0.290 | 0.231 ets | 1.256 | -29.0% | 0.50 | 12734 / 9784 |

The tables above are ``forecast.drift_correction=off``. Drift correction, measured 2026-12-03
(``--drift-correction off,auto``; factors = mean / quantiles, 1.000 = not applied). As of
2011-06-30 only one backtest window has history, so ``auto`` has no out-of-sample check and changes
nothing (``on`` would scale the items x0.930, the categories x1.075, the total x1.054). As of
2011-08-31 with 2 windows ``auto`` scales only the item means, x1.004 (bias -20.0% -> -19.6%; the
total's window-2 factor 1.055 raised window 1's bias from -0.7% to +4.7%, so it was not applied).
With 4 windows (job 186-191 s per mode):

| as of | level | mode | chosen | WAPE | ratio | bias of mean | coverage | pinball / best | factors |
|---|---|---|---|---|---|---|---|---|---|
| 2011-08-31 | item | off | gbm | 0.690 | 0.953 | -27.3% | 0.83 | 8.44 / 8.65 | 1 / 1 |
| 2011-08-31 | item | auto | gbm | 0.690 | 0.953 | -18.9% | 0.83 | 8.44 / 8.65 | 1 / 1 |
| 2011-08-31 | category | off | croston | 0.306 | 1.012 | -29.0% | 0.61 | 1411 / 1316 | 1 / 1 |
| 2011-08-31 | category | auto | croston | 0.306 | 1.012 | -20.8% | 0.61 | 1411 / 1316 | 1.111 / 1 |
| 2011-08-31 | total | off | tsb | 0.290 | 1.256 | -29.0% | 0.50 | 12734 / 9784 | 1 / 1 |
| 2011-08-31 | total | auto | tsb | 0.208 | 0.903 | -20.8% | 0.75 | 9603 / 9784 | 1.115 / 1.115 |

The total's TSB ran low in all 4 windows (actual / mean 1.12, 1.18, 1.09, 1.18); estimated on
windows 2-4 (x1.129) the factor took window 1's bias from -10.5% to +1.0% and its pinball from 3388
to 2221, so mean and quantiles were scaled. The items' ratios swing (0.72, 1.41, 1.38, 1.03): the
window-2-4 factor made window 1 worse, not applied (top_down reconciliation then scales the item
means to the corrected total). The category quantiles failed the pinball check (476 -> 487).
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
                       F.col("UnitPrice").cast("double").alias("price"),
                       F.col("CustomerID").cast("string").alias("user_id"), F.col("Country").alias("country"))
            .where(~F.col("item_id").rlike(pattern) & F.col("ts").isNotNull() & ~F.col("invoice").startswith("C")
                   & (F.col("quantity") > 0) & (F.col("price") > 0))
            .withColumn("date", F.to_date("ts"))
            .withColumn("week_start", F.date_trunc("week", F.col("date")).cast("date")))
    silver = rows.select(
        F.col("user_id"), "item_id", "ts", "date", "week_start", "quantity", "price",
        (F.col("quantity") * F.col("price")).alias("revenue"), "country", "invoice",
        F.date_format("date", "yyyy-MM").alias("event_month"))
    ctx.lake.write(silver, tables.SILVER_INTERACTIONS, partition_by=["event_month"], commit_info=ctx.commit_info())
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


def _level_frames(run: Any) -> tuple[Any, Any]:
    """(truth: level, series_id, week_start, actual over the forecast weeks, every item's sales;
    scale: level, series_id, scale = in-sample mean |y_t - y_{t-1}| before the final cutoff)."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    from seasonrec.forecasting import series as S

    gold = run.weekly_demand.withColumn("category", F.coalesce(F.col("category"), F.lit(S.UNKNOWN_CATEGORY)))
    weeks = run.origins[0].output_weeks
    truth = (S.all_level_series(gold.where(F.col("week_start").isin(weeks)))
             .withColumnRenamed("quantity", "actual"))
    history = S.all_level_series(gold.where(F.col("week_start") < F.lit(run.origins[0].cutoff)))
    ordered = Window.partitionBy("level", "series_id").orderBy("week_start")
    scale = (history.withColumn("diff", F.abs(F.col("quantity") - F.lag("quantity", 1).over(ordered)))
             .groupBy("level", "series_id").agg(F.avg("diff").alias("scale")))
    return truth, scale


def _level_report(level: str, candidates: Any, written: Any, truth: Any, scale: Any,
                  quantiles: list[float]) -> dict[str, Any]:
    """Metrics at one level of every candidate and of ``chosen`` (what the job writes: the chosen
    model's quantiles, the reconciled mean), on the series every candidate forecast."""
    models = sorted(candidates["model"].unique())
    counts = candidates.groupby("series_id")["model"].nunique()
    common = set(counts[counts == len(models)].index)
    chosen = written[written["series_id"].isin(common)]
    import pandas as pd

    scored = (pd.concat([candidates[candidates["series_id"].isin(common)], chosen.assign(model="chosen")],
                        ignore_index=True)
              .merge(truth[truth["level"] == level][["series_id", "week_start", "actual"]],
                     on=["series_id", "week_start"], how="left")
              .fillna({"actual": 0.0})
              .merge(scale[scale["level"] == level][["series_id", "scale"]], on="series_id", how="left"))
    methods = {name: _metrics(part, quantiles) for name, part in sorted(scored.groupby("model"))}
    classical = {m: v["wape_p50"] for m, v in methods.items() if m in CLASSICAL}
    best = min(classical, key=classical.get) if classical else None
    interval_best = min((methods[m]["pinball"] for m in INTERVAL_CLASSICAL if m in methods), default=None)
    out: dict[str, Any] = {
        "series": len(common), "series_weeks": int(len(scored[scored["model"] == "chosen"])),
        "actual_units": round(float(scored[scored["model"] == "chosen"]["actual"].sum()), 1),
        "chosen_models": sorted(chosen["model_name"].unique()) if len(chosen) else [],
        "methods": methods, "best_classical": best,
        "best_classical_pinball": interval_best,
    }
    for name in ("chosen", "gbm"):
        if name in methods and best:
            out[f"{name}_wape_over_best_classical"] = round(methods[name]["wape_p50"] / classical[best], 4)
            out[f"{name}_beats_every_classical_wape"] = all(methods[name]["wape_p50"] < v for v in classical.values())
            out[f"{name}_pinball_below_best_classical"] = (interval_best is not None
                                                           and methods[name]["pinball"] < interval_best)
    return out


def _evaluate(run: Any, quantiles: list[float]) -> dict[str, Any]:
    """Per level, metrics of every candidate and of the written forecast at the final origin.

    Item level: the items every candidate forecast; category/total: the series every candidate
    forecast, against every item's sales (cold-start items' too). ``all_items_bias_mean``: the
    written item means of every item (cold starts included) summed over items and weeks, against
    all sales (= the total level's mean bias, as the means are coherent).
    """
    from pyspark.sql import functions as F

    from seasonrec.forecasting import series as S

    truth_frame, scale_frame = _level_frames(run)
    truth, scale = truth_frame.toPandas(), scale_frame.toPandas()
    final = run.candidates.where(F.col("window") == 0).toPandas()
    written = run.forecast.select(F.col("item_id").alias("series_id"), "level", "week_start", "p10", "p50", "p90",
                                  "mean", F.col("model").alias("model_name"), "cold_start").toPandas()
    result: dict[str, Any] = {"forecast_weeks": [str(w) for w in run.origins[0].output_weeks], "levels": {}}
    for level in (S.ITEM, S.CATEGORY, S.TOTAL):
        result["levels"][level] = _level_report(
            level, final[final["level"] == level], written[(written["level"] == level) & ~written["cold_start"]],
            truth, scale, quantiles)
    all_units = float(truth[truth["level"] == S.ITEM]["actual"].sum())
    all_means = float(written[written["level"] == S.ITEM]["mean"].sum())
    result["all_items_bias_mean"] = round((all_means - all_units) / all_units, 4)
    result["all_items_actual_units"] = all_units
    return result


def markdown_table(result: dict[str, Any]) -> str:
    """One row per as-of date x level x method: WAPE of p50, ratio to the best classical, bias of
    mean, P10-P90 coverage, pinball."""
    lines = ["| as of | level | method | WAPE p50 | / best classical | bias of mean | coverage | pinball |",
             "|---|---|---|---|---|---|---|---|"]
    for as_of, entry in result["as_of"].items():
        for level, report in entry["levels"].items():
            best = report["best_classical"]
            best_wape = report["methods"][best]["wape_p50"] if best else None
            for name, metrics in sorted(report["methods"].items(), key=lambda kv: kv[1]["wape_p50"]):
                label = f"**chosen** ({', '.join(report['chosen_models'])})" if name == "chosen" else name
                ratio = f"{metrics['wape_p50'] / best_wape:.3f}" if best_wape else ""
                lines.append(f"| {as_of} | {level} | {label} | {metrics['wape_p50']:.3f} | {ratio} | "
                             f"{metrics['bias_mean']:+.1%} | {metrics['coverage_p10_p90']:.2f} | "
                             f"{metrics['pinball']:.2f} |")
    return "\n".join(lines)


def comparison_table(result: dict[str, Any]) -> str:
    """``forecast.drift_correction`` modes side by side: per as-of date x level x mode the written
    forecast's WAPE of p50 and its ratio to the best classical method, bias of mean, P10-P90
    coverage, pinball over the best classical pinball, and the factors the run applied."""
    lines = ["| as of | level | drift_correction | chosen | WAPE p50 | / best classical | bias of mean | coverage | "
             "pinball / best classical | factor mean / quantiles |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    variants = result["variants"]
    first = next(iter(variants.values()))
    for as_of in first["as_of"]:
        for level in first["as_of"][as_of]["levels"]:
            for mode, variant in variants.items():
                entry = variant["as_of"][as_of]
                report = entry["levels"][level]
                chosen = report["methods"]["chosen"]
                drift = entry.get("drift_correction") or {}
                factors = (f"{drift.get('mean_factors', {}).get(level, 1.0):.3f} / "
                           f"{drift.get('quantile_factors', {}).get(level, 1.0):.3f}")
                pinball = f"{chosen['pinball']:.2f} / {report['best_classical_pinball']:.2f}"
                lines.append(f"| {as_of} | {level} | {mode} | {', '.join(report['chosen_models'])} | "
                             f"{chosen['wape_p50']:.3f} | {report.get('chosen_wape_over_best_classical', 0):.3f} | "
                             f"{chosen['bias_mean']:+.1%} | {chosen['coverage_p10_p90']:.2f} | {pinball} | "
                             f"{factors} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None,
                        help="Online Retail CSV(.gz) or 'Online Retail.xlsx', relative to the repo root or absolute "
                             "(e.g. ../shared/data/online_retail/online_retail_2010-12_2011-09.csv.gz); without it "
                             "the benchmark is skipped, except with --input reuse")
    parser.add_argument("--workdir", default=None, help="scratch folder (default: a temp dir, deleted at the end)")
    parser.add_argument("--input", choices=["csv", "jobs", "reuse"], default="jobs",
                        help="jobs: ingest --source online_retail + features (default); csv: read the CSV directly; "
                             "reuse: the silver tables already in --workdir (from a run with --keep)")
    parser.add_argument("--as-of", dest="as_of", action="append", default=[],
                        help="forecast origin DATE:HORIZON_WEEKS, repeatable (default: 2011-06-30:13 and "
                             "2011-08-31:4); tune on earlier origins, e.g. 2011-05-31:13 and 2011-06-30:13")
    parser.add_argument("--with-lstm", action="store_true", help="also train the Horovod LSTM (minutes)")
    parser.add_argument("--epochs", type=int, default=3, help="LSTM epochs (with --with-lstm)")
    parser.add_argument("--backtest-windows", type=int, default=2, help="rolling origins before each forecast")
    parser.add_argument("--keep", action="store_true", help="keep the scratch lake")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="extra config key=value")
    parser.add_argument("--drift-correction", default=None,
                        help="comma-separated forecast.drift_correction modes (auto,on,off) run side by side on the "
                             "same lake, e.g. off,auto (default: the config's only)")
    args = parser.parse_args(argv)
    if args.data is None and args.input != "reuse":
        print("bench_forecast: skipped: no --data (the Online Retail CSV or workbook; data stays outside the repo)")
        return 0
    planned = ([(dt.date.fromisoformat(a.split(":")[0]), int(a.split(":")[1])) for a in args.as_of]
               if args.as_of else ORIGINS)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)

    from seasonrec.config import load_config
    from seasonrec.context import JobContext
    from seasonrec.forecasting.pipeline import run_forecast

    csv = None if args.data is None else Path(args.data) if os.path.isabs(args.data) else (REPO / args.data).resolve()
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
        elif args.input == "reuse":
            result["input"] = f"reused silver in {workdir}"
        else:
            _silver_from_csv(ctx, csv)
            result["input"] = "csv_direct (guest rows included, cancellations excluded)"
        result["input_seconds"] = round(time.perf_counter() - started, 1)
        modes = ([m.strip() for m in args.drift_correction.split(",") if m.strip()] if args.drift_correction
                 else [config.forecast.drift_correction])
        runs: dict[str, dict[str, Any]] = {}
        for mode in modes:
            # Same lake, same data: only the drift mode differs (every model is refitted, deterministically).
            variant = config.model_copy(update={"forecast": config.forecast.model_copy(
                update={"drift_correction": mode})})
            variant_ctx = JobContext(config=variant, spark=ctx.spark, lake=ctx.lake, job="bench_forecast")
            runs[mode] = {}
            for as_of, horizon in planned:
                started = time.perf_counter()
                run = run_forecast(variant_ctx, as_of, horizon, write=True)
                seconds = round(time.perf_counter() - started, 1)
                entry = _evaluate(run, list(config.forecast.quantiles))
                entry.update({"horizon_weeks": horizon, "forecast_job_seconds": seconds,
                              "selection": run.summary.get("selection"),
                              "reconciliation": run.summary.get("reconciliation"),
                              "drift_correction": run.summary.get("drift_correction"),
                              "gbm": run.summary.get("gbm"),
                              "baselines_applyinpandas": run.summary.get("baselines")})
                runs[mode][str(as_of)] = entry
                for level, report in entry["levels"].items():
                    logging.info("drift %s, as of %s, %s: WAPE %s (%.0fs)", mode, as_of, level,
                                 {m: v["wape_p50"] for m, v in report["methods"].items()}, seconds)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    if len(runs) == 1:
        result["drift_correction"] = modes[0]
        result["as_of"] = runs[modes[0]]
        result["table"] = markdown_table(result)
    else:
        result["variants"] = {mode: {"as_of": by_date, "table": markdown_table({"as_of": by_date})}
                              for mode, by_date in runs.items()}
        result["table"] = comparison_table(result)
    print(json.dumps(result, indent=2, default=str))
    print(result["table"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
