"""`seasonrec evaluate --split {validation,test}`: model vs baselines on one split window.

Truth = distinct (user, item) purchases in the window of ``silver_interactions``. Every method ranks
the full catalog for every target user (users seen before the window plus users new in it); all
fitting goes through one :class:`~seasonrec.evaluation.baselines.TrainingView` cut at the window
start. Results: rows appended to the Delta table ``evaluation_runs`` (run_id, method, metric, k,
segment, value, table_versions json, created_at), MLflow metrics under ``paths.mlflow_dir``, and a
report at ``paths.report_dir/<run_id>/report.md`` with PNG plots.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Any

DESCRIPTION = "offline evaluation of the model and baselines on a split window: Delta, MLflow and a report"

log = logging.getLogger(__name__)

INPUT_TABLES = ("silver_interactions", "silver_items", "gold_item_features", "gold_user_features", "synthetic_truth",
                "calendar", "context_daily", "demand_forecast", "forecast_backtest", "forecast_backtest_weekly",
                "gold_weekly_demand")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``seasonrec evaluate`` options: ``--split``, ``--methods``, ``--model-dir``, ``--no-mlflow``."""
    parser.add_argument("--split", choices=["validation", "test"], default="test",
                        help="window to evaluate (dates from split.*); fitting only sees rows before it")
    parser.add_argument("--methods", default=None,
                        help="comma-separated subset of evaluation.methods (default: all configured)")
    parser.add_argument("--model-dir", default=None, help="model artifact (default: evaluation.model_dir or "
                                                          "paths.model_dir); baselines only when absent")
    parser.add_argument("--no-mlflow", action="store_true", help="skip MLflow logging")


def run(ctx: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Score the model and the configured baselines on the ``--split`` window; append the metric rows to
    ``evaluation_runs``, write the Markdown report and (unless ``--no-mlflow``) log to MLflow.

    Returns the summary: split, window, training_cutoff, per-method headline metrics (``methods``), ``skipped`` methods
    with the reason, the facts of `inputs.build_inputs`, evaluation_runs_version, report (path), mlflow_run_id and
    n_metric_rows, among others.
    """
    from seasonrec import tables
    from seasonrec.context import JobError
    from seasonrec.evaluation import baselines as B
    from seasonrec.evaluation import inputs as I  # noqa: E741
    from seasonrec.features.silver import personal

    config = ctx.config
    ecfg = config.evaluation
    methods = _methods(args.methods, ecfg.methods)
    window = B.EvalWindow.from_split(config.split, args.split)
    if not ctx.lake.exists(tables.SILVER_INTERACTIONS):
        raise JobError(f"table '{tables.SILVER_INTERACTIONS}' does not exist {ctx.lake.where}; "
                       "run `seasonrec ingest` and `seasonrec features` first")
    versions = {name: ctx.lake.version(name) for name in INPUT_TABLES if ctx.lake.exists(name)}
    # Truth and every user-level fit are personal rows; guest checkouts have no user to recommend to.
    interactions = personal(ctx.lake.read(tables.SILVER_INTERACTIONS, version=versions[tables.SILVER_INTERACTIONS]))
    view = B.TrainingView.for_window(interactions, window)
    max_k = max(ecfg.k_list)
    summary: dict[str, Any] = {"split": args.split, "window": [str(window.start), str(window.end)],
                               "training_cutoff": str(view.cutoff), "methods": {}, "skipped": {},
                               "discovery_default": config.scoring.discovery or 0.0}

    with ctx.step("build truth, users, segments and item attributes"):
        eval_inputs, facts = I.build_inputs(ctx, interactions, view, window, versions)
    summary.update(facts)
    if facts["n_truth_pairs"] == 0:
        raise JobError(f"no purchase in the {window.name} window {window.start}..{window.end} "
                       "(check split.* against the data's dates)")

    scorer = _MethodRecommendations(ctx, args.model_dir or ecfg.model_dir or config.paths.model_dir, view, window,
                                    eval_inputs, max_k)
    summary.update(scorer.model_versions())
    rows, method_recs = _method_metric_rows(ctx, scorer, methods, interactions, versions, summary)
    rows += scorer.tuning_rows()
    rows += _context_lift(rows, ecfg.k_list)
    if "model" in summary["skipped"]:
        summary["note"] = f"baselines only: {summary['skipped']['model']}"

    with ctx.step("write evaluation_runs"):
        summary["evaluation_runs_version"] = _append_metric_rows(ctx, rows, versions, args.split, window, view.cutoff)
    with ctx.step("write report"):
        from seasonrec.evaluation import report

        plot_data = I.plot_data(ctx, method_recs, eval_inputs, window, versions, ecfg.report_top_items)
        report_path = report.write_report(os.path.join(config.paths.report_dir, ctx.run_id), ctx.run_id, rows,
                                          summary, plot_data, ecfg.k_list)
        summary["report"] = report_path
    scorer.release(method_recs.values())
    if not args.no_mlflow:
        with ctx.step("log to MLflow"):
            summary["mlflow_run_id"] = _log_mlflow(ctx, rows, summary, os.path.dirname(report_path))
    summary["n_metric_rows"] = len(rows)
    return summary


def _method_metric_rows(ctx: Any, scorer: _MethodRecommendations, methods: list[str], interactions: Any,
                        versions: dict[str, int], summary: dict[str, Any],
                        ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each of ``methods``' top-K from ``scorer`` and its metric rows (``method`` added), in order; for
    the model also the discovery sweep (``evaluation.discovery_grid``) and the weather ablation. Fills
    ``summary["methods"]`` (headline figures), ``discovery_default`` and ``skipped``. Returns (metric rows,
    {method: its recommendations} for the methods that ran)."""
    from seasonrec.evaluation.metrics import evaluate_method

    window, eval_inputs, max_k = scorer.window, scorer.eval_inputs, scorer.max_k
    rows: list[dict[str, Any]] = []
    method_recs: dict[str, Any] = {}
    for method in methods:
        with ctx.step(f"recommend + metrics: {method}"):
            recs = scorer.recommendations(method, summary)
            if recs is None:
                continue
            method_rows = evaluate_method(recs, eval_inputs)
            if method == "model" and ctx.config.evaluation.discovery_grid:
                summary["discovery_default"] = _discovery_in_use(ctx.config, scorer.model_dir)
                rows += _discovery_sweep(ctx, scorer.model_dir, scorer.model_users, window.start, eval_inputs, max_k,
                                         (summary["discovery_default"], method_rows))
            rows += [{"method": method, **row} for row in method_rows]
            method_recs[method] = recs
            if method == "model":
                rows += _weather_ablation(ctx, scorer.model_dir, scorer.model_users, window, eval_inputs, recs,
                                          interactions, versions, max_k, summary)
            summary["methods"][method] = {f"{m}@{max_k}": _value(method_rows, m, max_k)
                                          for m in ("recall", "ndcg", "seasonal_recall", "coverage")}
    return rows, method_recs


@dataclass
class _MethodRecommendations:
    """Every evaluated method's top-K for one window, and what methods share: the model's users cut at
    the window start (built once for ``model`` and ``model_no_context``) and the ALS grid's tuning."""

    ctx: Any
    model_dir: str
    view: Any  # baselines.TrainingView
    window: Any  # baselines.EvalWindow
    eval_inputs: Any  # metrics.EvaluationInputs
    max_k: int
    model_users: Any = None
    tuning: Any = None

    def __post_init__(self) -> None:
        self.model_reason = _model_missing_reason(self.model_dir)

    def model_versions(self) -> dict[str, Any]:
        """{model_version, registered_version} of the model this evaluation scores ({} without a model)."""
        if self.model_reason:
            return {}
        from seasonrec.tracking import registered_version_of
        from seasonrec.training.artifacts import META_FILE, resolve_version_dir

        with open(os.path.join(resolve_version_dir(self.model_dir), META_FILE), encoding="utf-8") as handle:
            version = str(json.load(handle)["model_version"])
        return {"model_version": version, "registered_version": registered_version_of(self.ctx.config, version)}

    def recommendations(self, method: str, summary: dict[str, Any]) -> Any:
        """DataFrame[user_id, rank, item_id, score] of ``method`` (checkpointed), or None when the model
        methods cannot run: the reason goes to ``summary["skipped"]`` (a broken model must not hide the
        baselines). ALS records its tuning under ``summary["als_tuning"]``."""
        from seasonrec.evaluation import baselines as B

        config = self.ctx.config.evaluation
        if method in ("model", "model_no_context"):
            recs = self._model(method, summary)
            if recs is None:
                return None
        elif method == "als":
            self.tuning = B.tune_als(self.view, B.tuning_window(self.ctx.config.split, self.window),
                                     _tuning_scorer(self.eval_inputs, config.tuning_metric, self.max_k), config,
                                     self.max_k)
            summary["als_tuning"] = {"window": [str(self.tuning.window.start), str(self.tuning.window.end)],
                                     "metric": f"{self.tuning.metric}@{self.tuning.k}",
                                     "best": self.tuning.best.label(),
                                     "grid": {p.label(): round(v, 6) for p, v in self.tuning.results}}
            recs = B.als_baseline(self._baseline_context(), self.tuning.best)
        else:
            recs = B.SIMPLE_BASELINES[method](self._baseline_context())
        return recs.select("user_id", "rank", "item_id", "score").localCheckpoint(eager=True)

    def _baseline_context(self) -> Any:
        from seasonrec.evaluation import baselines as B

        return B.BaselineContext(self.view, self.window, self.eval_inputs.users, self.max_k,
                                 self.ctx.config.evaluation)

    def _model(self, method: str, summary: dict[str, Any]) -> Any:
        from seasonrec.scoring import recommend

        if self.model_reason:
            summary["skipped"][method] = self.model_reason
            return None
        try:
            if self.model_users is None:
                self.model_users = _model_users(self.ctx, self.eval_inputs.users, self.window).persist()
            return recommend(self.ctx, self.model_dir, self.model_users, self.window.start, self.max_k,
                             ablate_context=method == "model_no_context")
        except Exception as exc:  # noqa: BLE001 - a broken model must not hide the baselines
            log.exception("[evaluate] %s failed", method)
            summary["skipped"][method] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
            return None

    def tuning_rows(self) -> list[dict[str, Any]]:
        """The ALS grid's tuning scores as metric rows (none when ALS was not evaluated)."""
        if self.tuning is None:
            return []
        return [{"method": "als", "metric": f"tuning_{self.tuning.metric}", "k": self.tuning.k,
                 "segment": f"{self.tuning.window.name}:{p.label()}", "value": v} for p, v in self.tuning.results]

    def release(self, recs: Any) -> None:
        """Unpersist the methods' lists ``recs`` and the model's users."""
        for frame in recs:
            frame.unpersist()
        if self.model_users is not None:
            self.model_users.unpersist()


def _append_metric_rows(ctx: Any, rows: list[dict[str, Any]], versions: dict[str, int], split: str, window: Any,
                        cutoff: dt.date) -> int:
    """Append ``rows`` to evaluation_runs with the input tables' versions, split, window and training cutoff
    (``table_versions`` JSON); returns the table's new version."""
    from seasonrec import tables

    created_at = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    table_versions = json.dumps({**versions, "_split": split, "_window": [str(window.start), str(window.end)],
                                 "_training_cutoff": str(cutoff)}, sort_keys=True)
    out = ctx.spark.createDataFrame(
        [(ctx.run_id, r["method"], r["metric"], r["k"], r["segment"], _finite(r["value"]), table_versions,
          created_at) for r in rows],
        "run_id string, method string, metric string, k int, segment string, value double, "
        "table_versions string, created_at timestamp")
    return ctx.lake.write(out.coalesce(1), tables.EVALUATION_RUNS, mode="append",
                          commit_info=ctx.commit_info(split=split))


WEATHER_ABLATION_K = 20


def _weather_ablation(ctx: Any, model_dir: str, users: Any, window: Any, eval_inputs: Any, recs: Any,
                      interactions: Any, versions: dict[str, int], max_k: int,
                      summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The model's weather ablation (issue #19), same run: the model again with the ranker training
    fitted the other way (`TwoStageModel.weather_ablation`: without the weather features when the
    kept ranker reads them, else with them), scored through the same `recommend` path. Rows: the
    counterpart's metrics as method ``model_no_weather`` / ``model_with_weather``, and for both
    ``cold_spell_planted_recall`` @``WEATHER_ABLATION_K`` (`inputs.cold_spell_planted_truth`) when the
    lake has planted weather-sensitive items. Sets summary["weather_ablation"]; [] without a counterpart."""
    from seasonrec.evaluation import inputs as I  # noqa: E741
    from seasonrec.evaluation.metrics import evaluate_method
    from seasonrec.scoring import recommend
    from seasonrec.scoring.engine import resolve_model

    model = resolve_model(model_dir)[0]
    ablation = getattr(model, "weather_ablation", lambda: None)()
    if ablation is None:
        return []
    name = "model_no_weather" if model.uses_weather else "model_with_weather"
    other = recommend(ctx, ablation, users, window.start, max_k).select("user_id", "rank", "item_id", "score")
    other = other.localCheckpoint(eager=True)
    out = [{"method": name, **row} for row in evaluate_method(other, eval_inputs, intervals=False)]
    planted = I.cold_spell_planted_truth(ctx, interactions, eval_inputs.truth, window, versions)
    info: dict[str, Any] = {"model_uses_weather": model.uses_weather, "ablation": name}
    if planted is not None:
        info["cold_spell_planted_pairs"] = planted.count()
        for method, method_recs in (("model", recs), (name, other)):
            value = I.recall_of_pairs(method_recs, planted, WEATHER_ABLATION_K)
            out.append({"method": method, "metric": "cold_spell_planted_recall", "k": WEATHER_ABLATION_K,
                        "segment": "all", "value": value})
            info[f"{method}_cold_spell_planted_recall@{WEATHER_ABLATION_K}"] = value
    summary["weather_ablation"] = info
    other.unpersist()
    return out


TRADEOFF_METRICS = (("ndcg", 10), ("tail_share", 20), ("recall", 20), ("tail_recall", 20), ("seasonal_recall", 20))


def _discovery_sweep(ctx: Any, model_dir: str, users: Any, day: Any, eval_inputs: Any, max_k: int,
                     measured: tuple[float, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The model at every `evaluation.discovery_grid` value (same code path as `seasonrec score`):
    rows method=model, metric=tradeoff_<metric>, segment=discovery=<value>, for the report's curve."""
    from seasonrec.evaluation.metrics import evaluate_method
    from seasonrec.scoring.engine import ScoringOptions, scoring_run

    base = ScoringOptions.from_config(ctx.config, max_k)
    out: list[dict[str, Any]] = []
    for value in sorted({*ctx.config.evaluation.discovery_grid, measured[0]}):
        if value == measured[0]:
            metric_rows = measured[1]
        else:
            options = ScoringOptions(**{**base.__dict__, "discovery": value})
            recs = scoring_run(ctx, model_dir, users, day, max_k, options=options).recommendations
            recs = recs.select("user_id", "rank", "item_id", "score").localCheckpoint(eager=True)
            metric_rows = evaluate_method(recs, eval_inputs, intervals=False)
            recs.unpersist()
        for metric, k in TRADEOFF_METRICS:
            out.append({"method": "model", "metric": f"tradeoff_{metric}", "k": k, "segment": f"discovery={value:g}",
                        "value": _value(metric_rows, metric, k)})
    return out


def _discovery_in_use(config: Any, model_dir: str) -> float:
    """scoring.discovery, or (None) the value the model calibrated at training time."""
    if config.scoring.discovery is not None:
        return float(config.scoring.discovery)
    from seasonrec.scoring.engine import resolve_model

    return float(getattr(resolve_model(model_dir)[0], "calibrated_discovery", 0.0))


def _methods(option: str | None, configured: list[str]) -> list[str]:
    if option is None:
        return list(configured)
    from typing import get_args

    from seasonrec.config import EvaluationMethod

    allowed = get_args(EvaluationMethod)
    chosen = [m.strip() for m in option.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in allowed]
    if unknown or not chosen:
        from seasonrec.context import JobError

        raise JobError(f"unknown method(s) {unknown} in --methods; allowed: {', '.join(allowed)}")
    return chosen


def _model_missing_reason(model_dir: str) -> str | None:
    if "://" in model_dir:
        return None  # remote artifact: let the loader decide
    latest = os.path.join(model_dir, "LATEST")
    if os.path.isfile(latest) or os.path.isfile(os.path.join(model_dir, "scoring.npz")):
        return None
    return f"no model artifact at {model_dir} (train first); evaluated baselines only"


def _model_users(ctx: Any, users: Any, window: Any) -> Any:
    """The evaluated users' features cut at the window start, like the baselines' fits."""
    from seasonrec.features.as_of import user_features_as_of

    return user_features_as_of(ctx.lake, ctx.config, window.start).join(users.select("user_id").distinct(),
                                                                        "user_id")


def _tuning_scorer(eval_inputs: Any, metric: str, k: int) -> Any:
    from seasonrec.evaluation.metrics import EvaluationInputs, ranking_metrics

    def score(recs: Any, truth: Any, users: Any) -> float:
        inputs = EvaluationInputs(truth=truth, users=users, segments=None, items=None, catalog_size=1, k_list=[k])
        return _value(ranking_metrics(recs, inputs), metric, k) or 0.0

    return score


def _value(rows: list[dict[str, Any]], metric: str, k: int | None, segment: str = "all") -> float | None:
    for row in rows:
        if row["metric"] == metric and row["k"] == k and row["segment"] == segment:
            return None if row["value"] is None else round(row["value"], 6)
    return None


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _context_lift(rows: list[dict[str, Any]], k_list: list[int]) -> list[dict[str, Any]]:
    """model / model_no_context - 1 for the recall family, all users."""
    def find(method: str, metric: str, k: int) -> float | None:
        return _value([r for r in rows if r["method"] == method], metric, k)

    out = []
    for metric in ("seasonal_recall", "recall", "ndcg", "tail_recall"):
        for k in k_list:
            with_ctx, without = find("model", metric, k), find("model_no_context", metric, k)
            if with_ctx is None or without is None:
                continue
            lift = with_ctx / without - 1 if without > 0 else None
            out.append({"method": "model", "metric": f"context_lift_{metric}", "k": k, "segment": "all",
                        "value": lift})
    return out


def _log_mlflow(ctx: Any, rows: list[dict[str, Any]], summary: dict[str, Any], report_dir: str) -> str | None:
    try:
        import mlflow
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient
    except ImportError:
        log.warning("[evaluate] mlflow is not installed; skipping MLflow logging")
        return None
    from seasonrec.tracking import use_experiment

    experiment_id = use_experiment(ctx.config, "-evaluation")
    client = MlflowClient(tracking_uri=mlflow.get_tracking_uri())
    run = client.create_run(experiment_id, run_name=f"evaluate-{summary['split']}-{ctx.run_id}",
                            tags={"seasonrec.run_id": ctx.run_id, "seasonrec.split": summary["split"],
                                  "seasonrec.model_version": str(summary.get("model_version")),
                                  "seasonrec.registered_version": str(summary.get("registered_version"))})
    params = {"split": summary["split"], "window": ",".join(summary["window"]),
              "training_cutoff": summary["training_cutoff"], "skipped": json.dumps(summary["skipped"])[:500]}
    if "als_tuning" in summary:
        params["als_best"] = summary["als_tuning"]["best"]
    for key, value in params.items():
        client.log_param(run.info.run_id, key, value)
    now = int(dt.datetime.now().timestamp() * 1000)
    metrics = []
    for row in rows:
        if row["value"] is None or not math.isfinite(row["value"]):
            continue
        key = ".".join(p for p in (row["method"], row["metric"] + (f"_at_{row['k']}" if row["k"] else ""),
                                   row["segment"]) if p)
        metrics.append(Metric(_mlflow_key(key), float(row["value"]), now, 0))
    for start in range(0, len(metrics), 900):
        client.log_batch(run.info.run_id, metrics=metrics[start:start + 900])
    if os.path.isdir(report_dir):
        client.log_artifacts(run.info.run_id, report_dir, "report")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _mlflow_key(key: str) -> str:
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in key)
