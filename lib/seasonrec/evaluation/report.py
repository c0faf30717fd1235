"""Markdown report with PNG plots (matplotlib, Agg backend) for one evaluation run."""

from __future__ import annotations

import os
from typing import Any

RANKING = ("precision", "recall", "ndcg", "map", "hit_rate")
LONG_TAIL = ("coverage", "tail_share", "tail_recall", "novelty", "seasonal_recall")
BAR_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "tail_recall", "seasonal_recall", "coverage")


def _methods(rows: list[dict[str, Any]]) -> list[str]:
    seen: list[str] = []
    for row in rows:
        if row["method"] not in seen:
            seen.append(row["method"])
    return seen


def _get(rows: list[dict[str, Any]], method: str, metric: str, k: int | None, segment: str = "all") -> float | None:
    for row in rows:
        if (row["method"], row["metric"], row["k"], row["segment"]) == (method, metric, k, segment):
            return row["value"]
    return None


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if float(value).is_integer():
        return f"{int(value)}"
    return f"{value:.{digits}f}"


def _table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def methods_metrics_table(rows: list[dict[str, Any]], k_list: list[int]) -> str:
    """Methods x metrics (all users) as a Markdown table: the headline of the report."""
    methods = _methods(rows)
    header = ["method"] + [f"{m}@{k}" for k in k_list for m in RANKING] + \
             [f"{m}@{max(k_list)}" for m in LONG_TAIL] + ["users", "user_cov"]
    body = []
    for method in methods:
        values = [_get(rows, method, m, k) for k in k_list for m in RANKING]
        values += [_get(rows, method, m, max(k_list)) for m in LONG_TAIL]
        if all(v is None for v in values):
            continue
        body.append([method] + [_fmt(v) for v in values] + [_fmt(_get(rows, method, "n_users", None)),
                                                            _fmt(_get(rows, method, "user_coverage", None), 3)])
    return _table(header, body)


def write_report(out_dir: str, run_id: str, rows: list[dict[str, Any]], summary: dict[str, Any],
                 plot_data: dict[str, Any], k_list: list[int]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    os.makedirs(out_dir, exist_ok=True)
    k = max(k_list)
    methods = [m for m in _methods(rows) if _get(rows, m, "recall", k) is not None]
    images: list[tuple[str, str]] = []
    images.append(("Metrics per method", _metric_bars(out_dir, rows, methods, k)))
    images.append(("Recall by item popularity decile", _decile_plot(out_dir, rows, methods, k)))
    seasonal_png = _seasonality_plot(out_dir, plot_data)
    if seasonal_png:
        images.append((f"Seasonality of the top recommended items ({plot_data.get('top_items_method')})",
                       seasonal_png))
    tradeoff_png = _tradeoff_plot(out_dir, rows, summary)
    if tradeoff_png:
        images.append(("Discovery trade-off: NDCG@10 vs tail share@20 (scoring.discovery)", tradeoff_png))
    forecast_png = _forecast_plot(out_dir, plot_data)
    if forecast_png:
        images.append(("Forecast vs actual for the top recommended items", forecast_png))

    lines = [f"# Offline evaluation — run `{run_id}`", ""]
    lines += [f"- split: **{summary['split']}**, window {summary['window'][0]} .. {summary['window'][1]} "
              f"(exclusive); every method fitted on rows before {summary['training_cutoff']}",
              f"- target users: {summary.get('n_target_users')}, purchases (user, item) in the window: "
              f"{summary.get('n_truth_pairs')}, catalog: {summary.get('catalog_size')} items, seasonal items of "
              f"the window: {summary.get('n_seasonal_items')} (from {summary.get('seasonal_items_from')})"]
    for method, reason in summary.get("skipped", {}).items():
        lines.append(f"- **{method} not evaluated**: {reason}")
    if "als_tuning" in summary:
        tuning = summary["als_tuning"]
        lines.append(f"- ALS grid tuned on {tuning['window'][0]} .. {tuning['window'][1]} by {tuning['metric']}: "
                     f"best {tuning['best']} (" + ", ".join(f"{p}: {v:.4f}" for p, v in tuning["grid"].items())
                     + ")")
    lines += ["", "## Methods × metrics (all users)", "", methods_metrics_table(rows, k_list), ""]
    lines += ["Precision/Recall/NDCG/MAP/HitRate averaged over target users with at least one purchase in the "
              "window (`users`; the others are excluded and counted below); `user_cov` = share of them that got "
              "a list. Long-tail metrics use popularity before the window.", ""]

    segments = sorted({r["segment"] for r in rows if r["metric"] == "recall" and r["segment"] != "all"})
    if segments:
        lines += [f"## Recall@{k} / NDCG@{k} by user segment", ""]
        body = [[m] + [f"{_fmt(_get(rows, m, 'recall', k, s))} / {_fmt(_get(rows, m, 'ndcg', k, s))}"
                       for s in segments] for m in methods]
        counts = [_fmt(_get(rows, methods[0], "n_users", None, s)) if methods else "–" for s in segments]
        lines += [_table(["method"] + segments, [["users", *counts], *body]), ""]
    lifts = [r for r in rows if r["metric"].startswith("context_lift_")]
    if lifts:
        lines += ["## Calendar context: model vs the same model with context ablated", ""]
        lines += [_table(["metric", "k", "lift"], [[r["metric"].removeprefix("context_lift_"), str(r["k"]),
                                                     _fmt(r["value"])] for r in lifts]), ""]
    tradeoff = _tradeoff_points(rows)
    if tradeoff:
        metrics = [m for m in ("ndcg", "tail_share", "recall", "tail_recall", "seasonal_recall")
                   if any(m in values for _, values in tradeoff)]
        lines += ["## Discovery knob (`scoring.discovery`, default "
                  f"{summary.get('discovery_default', 0):g}): model at each value", ""]
        header = ["discovery"] + [f"{m}@{10 if m == 'ndcg' else 20}" for m in metrics]
        lines += [_table(header, [[f"{v:g}"] + [_fmt(values.get(m)) for m in metrics] for v, values in tradeoff]),
                  ""]
    excluded = [(m, _get(rows, m, "n_users_no_relevant", None)) for m in methods]
    if excluded:
        lines += [f"Target users without any purchase in the window (excluded): {_fmt(excluded[0][1])}", ""]
    backtest = plot_data.get("backtest")
    if backtest is not None and len(backtest):
        lines += [f"## Forecast accuracy (backtest as of {plot_data.get('backtest_as_of')})", ""]
        cols = list(backtest.columns)
        lines += [_table(cols, [[_fmt(v) if isinstance(v, float) else str(v) for v in rec]
                                for rec in backtest.itertuples(index=False)]), ""]
    else:
        lines += ["## Forecast accuracy", "", "No forecast backtest in the lake (run `seasonrec forecast`).", ""]
    for title, png in images:
        lines += [f"## {title}", "", f"![{title}]({os.path.basename(png)})", ""]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return path


def _save(fig: Any, out_dir: str, name: str) -> str:
    """Lay out, write at 90 dpi and close (pyplot keeps every open figure alive)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = os.path.join(out_dir, name)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _metric_bars(out_dir: str, rows: list[dict[str, Any]], methods: list[str], k: int) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, metric in zip(axes.flat, BAR_METRICS, strict=True):
        values = [_get(rows, m, metric, k) or 0.0 for m in methods]
        ax.bar(range(len(methods)), values, color=[f"C{i}" for i in range(len(methods))])
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{metric}@{k}")
    return _save(fig, out_dir, "metrics_by_method.png")


def _decile_plot(out_dir: str, rows: list[dict[str, Any]], methods: list[str], k: int) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, method in enumerate(methods):
        points = sorted((int(r["segment"].split("=")[1]), r["value"]) for r in rows
                        if r["method"] == method and r["metric"] == "recall_by_decile" and r["k"] == k)
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method, color=f"C{i}")
    ax.set_xlabel("item popularity decile before the window (1 = most bought)")
    ax.set_ylabel(f"recall@{k} of purchases in the decile")
    ax.set_xticks(range(1, 11))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, out_dir, "recall_by_popularity_decile.png")


def _seasonality_plot(out_dir: str, data: dict[str, Any]) -> str | None:
    import matplotlib.pyplot as plt

    profiles = data.get("seasonality") or {}
    profiles = {item: p for item, p in profiles.items() if p}
    if not profiles:
        return None
    fig, ax = plt.subplots(figsize=(9, 4.5))
    weeks = data.get("window_weeks") or []
    if weeks:
        ax.axvspan(min(weeks) - 0.5, max(weeks) + 0.5, color="orange", alpha=0.2, label="evaluated window")
    for i, (item, profile) in enumerate(profiles.items()):
        ax.plot(range(1, len(profile) + 1), profile, label=str(item), color=f"C{i}")
    ax.set_xlabel("week of year")
    ax.set_ylabel("seasonality profile")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return _save(fig, out_dir, "seasonality_top_items.png")


def _tradeoff_points(rows: list[dict[str, Any]]) -> list[tuple[float, dict[str, float]]]:
    """[(discovery value, {metric: value})] from the evaluate job's tradeoff_* rows, by value."""
    points: dict[float, dict[str, float]] = {}
    for row in rows:
        tradeoff = row["metric"].startswith("tradeoff_") and row["segment"].startswith("discovery=")
        if tradeoff and row["value"] is not None:
            value = float(row["segment"].split("=", 1)[1])
            points.setdefault(value, {})[row["metric"].removeprefix("tradeoff_")] = row["value"]
    return sorted(points.items())


def _tradeoff_plot(out_dir: str, rows: list[dict[str, Any]], summary: dict[str, Any]) -> str | None:
    import matplotlib.pyplot as plt

    points = [(v, m) for v, m in _tradeoff_points(rows) if "ndcg" in m and "tail_share" in m]
    if len(points) < 2:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = [m["tail_share"] for _, m in points]
    y = [m["ndcg"] for _, m in points]
    ax.plot(x, y, "-o", color="C0", label="model")
    for value, metrics in points:
        ax.annotate(f"discovery={value:g}", (metrics["tail_share"], metrics["ndcg"]), textcoords="offset points",
                    xytext=(5, 5), fontsize=8)
    default = summary.get("discovery_default")
    chosen = [(m["tail_share"], m["ndcg"]) for v, m in points if default is not None and v == default]
    if chosen:
        ax.plot(*chosen[0], "r*", ms=14, label="default in use (calibrated on validation users)")
    for baseline, style in (("repeat_buy", "s"), ("seasonal_popularity", "^"), ("als", "D")):
        ndcg, tail = _get(rows, baseline, "ndcg", 10), _get(rows, baseline, "tail_share", 20)
        if ndcg is not None and tail is not None:
            ax.plot(tail, ndcg, style, color="grey", label=baseline)
    ax.set_xlabel("tail share@20 (share of recommended slots holding tail items)")
    ax.set_ylabel("NDCG@10")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out_dir, "discovery_tradeoff.png")


def _forecast_plot(out_dir: str, data: dict[str, Any]) -> str | None:
    import matplotlib.pyplot as plt
    import pandas as pd

    forecast = data.get("forecast")
    if forecast is None or not len(forecast):
        return None
    actual = data.get("actual_weekly")
    items = [i for i in data.get("top_items", []) if i in set(forecast["item_id"])]
    if not items:
        return None
    cols = min(3, len(items))
    rows_n = (len(items) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(5 * cols, 3.2 * rows_n), squeeze=False)
    for ax, item in zip(axes.flat, items, strict=False):
        f = forecast[forecast["item_id"] == item].sort_values("week_start")
        x = pd.to_datetime(f["week_start"])
        ax.fill_between(x, f["p10"], f["p90"], alpha=0.25, label="p10–p90")
        ax.plot(x, f["p50"], label="p50", marker=".")
        if actual is not None and len(actual):
            a = actual[actual["item_id"] == item].sort_values("week_start")
            ax.plot(pd.to_datetime(a["week_start"]), a["actual"], "k-o", label="actual", ms=3)
        ax.set_title(str(item), fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"forecast as of {data.get('forecast_as_of')} vs actual weekly quantity")
    return _save(fig, out_dir, "forecast_vs_actual.png")
