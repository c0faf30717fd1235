"""The evaluation report people read: bootstrap intervals, the best value per column in bold, the
three-line summary, lifts with units, titles in plot legends, and the forecast fan chart."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seasonrec.evaluation import report
from seasonrec.evaluation.metrics import best_value, bootstrap_interval, interval_metric


def _row(method: str, metric: str, value: float, k: int | None = 10, segment: str = "all") -> dict:
    return {"method": method, "metric": metric, "k": k, "segment": segment, "value": value}


def _rows() -> list[dict]:
    """model beats repeat_buy on NDCG@10 (0.30 vs 0.24) and recall@20; item_knn has the best tail recall."""
    table = {"model": (0.30, 0.50, 0.10, 0.40, 0.20), "repeat_buy": (0.24, 0.45, 0.05, 0.20, 0.22),
             "item_knn": (0.12, 0.30, 0.15, 0.10, 0.02), "model_no_context": (0.28, 0.48, 0.09, 0.30, 0.18)}
    rows = []
    for method, (ndcg, recall, tail, seasonal, new_ndcg) in table.items():
        rows += [_row(method, "ndcg", ndcg), _row(method, "recall", recall, 20),
                 _row(method, "tail_recall", tail, 20), _row(method, "seasonal_recall", seasonal, 20),
                 _row(method, "ndcg", new_ndcg, 10, "user_type=new"),
                 _row(method, "n_users", 100, None), _row(method, "user_coverage", 1.0, None),
                 _row(method, interval_metric("ndcg", "low"), ndcg - 0.02),
                 _row(method, interval_metric("ndcg", "high"), ndcg + 0.02)]
    rows.append(_row("model", "context_lift_recall", 0.125, 20))
    return rows


def test_bootstrap_interval_matches_resampling_users_one_by_one():
    """The multinomial shortcut over distinct values has the distribution of resampling the users."""
    rng = np.random.default_rng(1)
    per_user = rng.choice([0.0, 0.25, 0.5, 1.0], size=400, p=[0.5, 0.2, 0.2, 0.1])
    values, counts = np.unique(per_user, return_counts=True)
    low, high = bootstrap_interval(values, counts)
    naive = per_user[rng.integers(0, len(per_user), size=(4000, len(per_user)))].mean(axis=1)
    assert low < per_user.mean() < high
    assert low == pytest.approx(np.quantile(naive, 0.025), abs=0.006)
    assert high == pytest.approx(np.quantile(naive, 0.975), abs=0.006)
    assert bootstrap_interval(values, counts) == (low, high)  # seeded
    wide = bootstrap_interval(values, np.maximum(counts // 10, 1))
    assert wide[1] - wide[0] > 2 * (high - low)  # fewer users, wider interval


def test_best_value_follows_the_metric_direction():
    assert best_value("ndcg", [0.2, None, 0.3]) == 0.3
    assert best_value("wape", [0.4, 0.3, 0.5]) == 0.3
    assert best_value("bias", [-0.05, 0.2, 0.1]) == -0.05
    assert best_value("series_windows", [1.0, 2.0]) is None


def test_main_table_bolds_each_columns_best_and_shows_intervals():
    table = report.methods_metrics_table(_rows(), [10, 20])
    lines = {line.split(" | ")[0].removeprefix("| "): line for line in table.splitlines()}
    assert "**0.300 [0.280, 0.320]**" in lines["model"]
    assert "| 0.240 [0.220, 0.260] |" in lines["repeat_buy"]
    assert "**0.150**" in lines["item_knn"] and "**0.100**" not in lines["model"]  # tail recall@20
    assert lines["model"].count("**") == 2 * 4  # ndcg@10, recall@20, seasonal@20, user_cov (tied: all bold)


def test_summary_says_who_wins_the_ratio_and_the_standing(tmp_path):
    lines = report.run_summary(_rows(), {}, [10, 20])
    assert len(lines) == 3
    assert lines[0] == ("1. **model wins on NDCG@10** with 0.300 [0.280, 0.320], ahead of repeat_buy "
                        "0.240 [0.220, 0.260]; the 95% intervals do not overlap.")
    assert "NDCG@10 1.25× repeat_buy; Recall@20 1.11× repeat_buy" in lines[1]
    assert "tail recall@20 0.100 (2nd of 3; best item_knn 0.150)" in lines[2]
    assert "seasonal recall@20 0.400 (1st of 3)" in lines[2]
    assert "new users' NDCG@10 0.200 (2nd of 3; best repeat_buy 0.220)" in lines[2]
    baselines = [r for r in _rows() if not r["method"].startswith("model")]
    skipped = report.run_summary(baselines, {"skipped": {"model": "no model artifact"}}, [10, 20])
    assert skipped[1] == "2. **Model not evaluated** (no model artifact); the best baseline on NDCG@10 is repeat_buy."


def test_report_has_units_titles_and_the_fan_chart(tmp_path):
    weeks = [dt.date(2011, 9, 5) + dt.timedelta(weeks=i) for i in range(4)]
    forecast = pd.DataFrame({"item_id": "I1", "week_start": weeks, "p10": 1.0, "p50": 3.0, "p90": 6.0})
    actual = pd.DataFrame({"item_id": "I1", "week_start": weeks[:2], "actual": [2.0, 5.0]})
    plot_data = {"top_items": ["I1", "I2"], "titles": {"I1": "WOOLLY HAT"}, "forecast": forecast,
                 "actual_weekly": actual, "actual_from": weeks[0] - dt.timedelta(weeks=8),
                 "forecast_as_of": dt.date(2011, 9, 4), "forecast_source": "backtest origin 2011-09-05",
                 "seasonality": {"I1": [1 / 52] * 52, "I2": [1 / 52] * 52}}
    summary = {"split": "test", "window": ["2011-09-01", "2011-10-01"], "training_cutoff": "2011-09-01"}
    path = report.write_report(str(tmp_path), "run", _rows(), summary, plot_data, [10, 20])
    text = Path(path).read_text(encoding="utf-8")
    assert text.index("## What this run says") < text.index("## Methods × metrics")
    assert "| recall | 20 | +12.5 % |" in text
    assert "![Forecast fan chart of the top recommended items (backtest origin 2011-09-05)](forecast_fan_chart.png)" \
        in text
    assert (tmp_path / "forecast_fan_chart.png").stat().st_size > 1000
    assert report._item_labels(["I1", "I2"], plot_data["titles"]) == {"I1": "WOOLLY HAT", "I2": "I2"}
    assert report._item_labels(["A", "B"], {"A": "MUG", "B": "MUG"}) == {"A": "MUG (A)", "B": "MUG (B)"}
    assert re.search(r"\*\*model wins on NDCG@10\*\*", text)


def test_fan_origin_is_the_backtest_origin_covering_the_window_most():
    from seasonrec.evaluation.baselines import EvalWindow
    from seasonrec.evaluation.inputs import _fan_origin

    window = EvalWindow("test", dt.date(2011, 9, 1), dt.date(2011, 10, 1))

    def weeks(origin: dt.date) -> list[tuple[dt.date, dt.date]]:
        return [(origin, origin + dt.timedelta(weeks=i)) for i in range(13)]

    # 2011-09-26 is the latest origin but forecasts one week of the window, 2011-06-27 four
    assert _fan_origin(weeks(dt.date(2011, 9, 26)) + weeks(dt.date(2011, 6, 27)), window) == dt.date(2011, 6, 27)
    assert _fan_origin(weeks(dt.date(2012, 3, 26)) + weeks(dt.date(2012, 6, 25)), window) == dt.date(2012, 6, 25)
    assert _fan_origin([], window) is None


def test_report_of_the_synthetic_pipeline_has_the_fan_chart_and_intervals(feature_lake, spark, tmp_path):
    """ingest + features (the shared lake, copied) -> forecast as of the data's last day (so no forecast
    precedes the test window) -> evaluate: the report draws the fan chart from the backtest origin that
    covers the window, and the headline metrics carry bootstrap intervals."""
    import shutil

    from pyspark.sql import functions as F

    from seasonrec import tables
    from seasonrec.context import JobContext
    from seasonrec.evaluation import jobs as evaluate_jobs
    from seasonrec.forecasting import jobs as forecast_jobs
    from support import job_args, make_config

    shutil.copytree(feature_lake.config.paths.lake_root, tmp_path / "lake")
    config = make_config(tmp_path, "forecast.models=[seasonal_naive,tsb]", "forecast.combination=[]",
                         "forecast.backtest_windows=2")
    forecast = forecast_jobs.run(JobContext.create(config, "forecast", spark), job_args(forecast_jobs))
    assert forecast["backtest_origins"] == ["2011-09-26", "2011-06-27"]
    lake = feature_lake.lake.__class__(spark, str(tmp_path / "lake"))
    weekly = lake.read(tables.FORECAST_BACKTEST_WEEKLY).where(F.col("level") == "item").toPandas()
    assert set(weekly.origin) == {dt.date(2011, 9, 26), dt.date(2011, 6, 27)}
    assert (weekly.groupby(["item_id", "window"]).week_start.nunique() == 13).all()
    assert ((weekly.p10 <= weekly.p50) & (weekly.p50 <= weekly.p90)).all()
    chosen = lake.read(tables.FORECAST_BACKTEST).where("selected and level = 'item'").toPandas()
    assert set(zip(weekly.item_id, weekly.window, weekly.model, strict=True)) == \
        set(zip(chosen.item_id, chosen.window, chosen.model, strict=True))
    demand = lake.read(tables.WEEKLY_DEMAND).toPandas().set_index(["item_id", "week_start"]).quantity
    sold = weekly.set_index(["item_id", "week_start"]).actual
    assert sold.to_numpy() == pytest.approx(demand.reindex(sold.index, fill_value=0.0).to_numpy())

    ctx = JobContext.create(config, "evaluate", spark)
    summary = evaluate_jobs.run(ctx, job_args(evaluate_jobs, "--methods", "global_popularity,repeat_buy",
                                              "--no-mlflow"))
    text = Path(summary["report"]).read_text(encoding="utf-8")
    assert "(backtest origin 2011-06-27 (history before it) of the forecast run as of 2011-12-31)" in text
    assert "](forecast_fan_chart.png)" in text
    assert (tmp_path / "report_dir" / ctx.run_id / "forecast_fan_chart.png").stat().st_size > 5000
    rows = {(r["method"], r["metric"], r["k"]): r["value"] for r in
            lake.read(tables.EVALUATION_RUNS).where(F.col("segment") == "all").collect()}
    for method in ("global_popularity", "repeat_buy"):
        for metric, k in (("ndcg", 10), ("recall", 20)):
            low, high = rows[method, f"{metric}_ci95_low", k], rows[method, f"{metric}_ci95_high", k]
            assert low < rows[method, metric, k] < high and high - low < 0.2
            row = next(line for line in text.splitlines() if line.startswith(f"| {method} |"))
            assert re.search(rf"{rows[method, metric, k]:.3f}\*?\*? \[{low:.3f}, {high:.3f}\]", row)
    assert text.splitlines()[4].startswith("1. **")  # the summary opens the report
    weather = text[text.index("## Weather"):]
    assert "cold-sensitive items planted by the synthetic generator" in weather
    assert (tmp_path / "report_dir" / ctx.run_id / "weather_anomaly_and_sales.png").stat().st_size > 5000
    correlations = [float(r) for r in re.findall(r"\(r = ([+-]\d\.\d\d)\)", weather.split("\n\n")[1])]
    assert len(correlations) == 4 and np.mean(correlations) < 0  # they sell more when it is colder
