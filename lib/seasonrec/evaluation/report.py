"""Markdown report with PNG plots (matplotlib, Agg backend) for one evaluation run."""

from __future__ import annotations

import os
from typing import Any

from seasonrec.evaluation.metrics import BETTER, BOOTSTRAP_RESAMPLES, best_value, interval_metric

RANKING = ("precision", "recall", "ndcg", "map", "hit_rate")
LONG_TAIL = ("coverage", "tail_share", "tail_recall", "novelty", "seasonal_recall")
DIGITS = 3  # of the metric tables: differences below 0.001 are noise at these user counts
WEATHER_ABLATIONS = ("model_no_weather", "model_with_weather")  # evaluation.jobs._weather_ablation
MODELS = ("model", "model_no_context", *WEATHER_ABLATIONS)  # the rest are baselines
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


def _interval(rows: list[dict[str, Any]], method: str, metric: str, k: int) -> tuple[float, float] | None:
    """The bootstrap interval of ``metric@k`` (all users) of ``method``, if the run has one."""
    low = _get(rows, method, interval_metric(metric, "low"), k)
    high = _get(rows, method, interval_metric(metric, "high"), k)
    return None if low is None or high is None else (low, high)


def _with_interval(value: float | None, interval: tuple[float, float] | None) -> str:
    """``0.305 [0.291, 0.318]`` (3 decimals), or the value alone without an interval."""
    text = _fmt(value, DIGITS)
    return f"{text} [{interval[0]:.{DIGITS}f}, {interval[1]:.{DIGITS}f}]" if interval and value is not None else text


def _bold_best(metric: str, column: list[float | None], cells: list[str]) -> list[str]:
    """``cells`` with the best value of ``column`` (by `metrics.BETTER`) in bold, when several compete."""
    best = best_value(metric, column) if sum(v is not None for v in column) > 1 else None
    return [f"**{cell}**" if best is not None and value == best else cell
            for value, cell in zip(column, cells, strict=True)]


def methods_metrics_table(rows: list[dict[str, Any]], k_list: list[int]) -> str:
    """Methods x metrics (all users) as a Markdown table: the headline of the report. Each column's best
    value is bold; NDCG and recall carry their 95% bootstrap interval over users."""
    columns = [(m, k) for k in k_list for m in RANKING] + [(m, max(k_list)) for m in LONG_TAIL]
    columns.append(("user_coverage", None))
    methods = [m for m in _methods(rows) if any(_get(rows, m, metric, k) is not None for metric, k in columns[:-1])]
    header = ["method"] + [f"{m}@{k}" for m, k in columns[:-1]] + ["users", "user_cov"]
    cells_by_column = []
    for metric, k in columns:
        values = [_get(rows, method, metric, k) for method in methods]
        cells = [_with_interval(v, _interval(rows, method, metric, k) if k else None)
                 for v, method in zip(values, methods, strict=True)]
        cells_by_column.append(_bold_best(metric, values, cells))
    users = [_fmt(_get(rows, method, "n_users", None)) for method in methods]
    body = [[method, *[column[i] for column in cells_by_column[:-1]], users[i], cells_by_column[-1][i]]
            for i, method in enumerate(methods)]
    return _table(header, body)


def write_report(out_dir: str, run_id: str, rows: list[dict[str, Any]], summary: dict[str, Any],
                 plot_data: dict[str, Any], k_list: list[int]) -> str:
    """Write ``report.md`` and its PNG plots into ``out_dir`` and return the report's path.

    ``rows``: the run's metric rows (method, metric, k, segment, value); ``summary``: the evaluate job's summary;
    ``plot_data``: `inputs.plot_data` (top items, seasonality, forecasts, weather); ``k_list``: the cut-offs (the
    largest is the one plotted).
    """
    import matplotlib

    matplotlib.use("Agg")
    os.makedirs(out_dir, exist_ok=True)
    k = max(k_list)
    methods = [m for m in _methods(rows) if _get(rows, m, "recall", k) is not None]
    images = _plots(out_dir, rows, summary, plot_data, methods, k)
    lines = [f"# Offline evaluation — run `{run_id}`", "", "## What this run says", ""]
    lines += [*run_summary(rows, summary, k_list), ""]
    lines += _run_facts(summary)
    lines += ["", "## Methods × metrics (all users)", "", methods_metrics_table(rows, k_list), ""]
    lines += ["Precision/Recall/NDCG/MAP/HitRate averaged over target users with at least one purchase in the "
              "window (`users`; the others are excluded and counted below); `user_cov` = share of them that got "
              "a list. Long-tail metrics use popularity before the window. Bold: the best value of each column. "
              f"NDCG and recall: mean [95% bootstrap interval over the users, {BOOTSTRAP_RESAMPLES} resamples].",
              ""]
    lines += _segments_section(rows, methods, k)
    lines += _context_section(rows)
    lines += _discovery_section(rows, summary)
    excluded = [(m, _get(rows, m, "n_users_no_relevant", None)) for m in methods]
    if excluded:
        lines += [f"Target users without any purchase in the window (excluded): {_fmt(excluded[0][1])}", ""]
    lines += _forecast_section(plot_data)
    lines += weather_section(out_dir, plot_data.get("weather") or {})
    lines += weather_ablation_section(rows, summary.get("weather_ablation"))
    for title, png in images:
        lines += [f"## {title}", "", f"![{title}]({os.path.basename(png)})", ""]
    path = os.path.join(out_dir, "report.md")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return path


def _plots(out_dir: str, rows: list[dict[str, Any]], summary: dict[str, Any], plot_data: dict[str, Any],
           methods: list[str], k: int) -> list[tuple[str, str]]:
    """Draw the report's PNG plots into ``out_dir``: (title, path) of each one drawn (the seasonality,
    trade-off and fan charts only when their data is there)."""
    images = [("Metrics per method", _metric_bars(out_dir, rows, methods, k)),
              ("Recall by item popularity decile", _decile_plot(out_dir, rows, methods, k))]
    seasonal_png = _seasonality_plot(out_dir, plot_data)
    if seasonal_png:
        images.append((f"Seasonality of the top recommended items ({plot_data.get('top_items_method')})",
                       seasonal_png))
    tradeoff_png = _tradeoff_plot(out_dir, rows, summary)
    if tradeoff_png:
        images.append(("Discovery trade-off: NDCG@10 and Recall@20 vs tail share@20 (scoring.discovery)",
                       tradeoff_png))
    forecast_png = _forecast_plot(out_dir, plot_data)
    if forecast_png:
        images.append((f"Forecast fan chart of the top recommended items ({plot_data.get('forecast_source')})",
                       forecast_png))
    return images


def _run_facts(summary: dict[str, Any]) -> list[str]:
    """The run's window, users, purchases, catalogue and seasonal items; skipped methods; the ALS grid."""
    lines = [f"- split: **{summary['split']}**, window {summary['window'][0]} .. {summary['window'][1]} "
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
    return lines


def _segments_section(rows: list[dict[str, Any]], methods: list[str], k: int) -> list[str]:
    """Recall@k / NDCG@k per user segment (none without segment rows)."""
    segments = sorted({r["segment"] for r in rows if r["metric"] == "recall" and r["segment"] != "all"})
    if not segments:
        return []
    body = [[m] + [f"{_fmt(_get(rows, m, 'recall', k, s), DIGITS)} / {_fmt(_get(rows, m, 'ndcg', k, s), DIGITS)}"
                   for s in segments] for m in methods]
    counts = [_fmt(_get(rows, methods[0], "n_users", None, s)) if methods else "–" for s in segments]
    return [f"## Recall@{k} / NDCG@{k} by user segment", "", _table(["method"] + segments, [["users", *counts], *body]),
            ""]


def _context_section(rows: list[dict[str, Any]]) -> list[str]:
    """The model's lift over the same model with its calendar context ablated (none without those rows)."""
    lifts = [r for r in rows if r["metric"].startswith("context_lift_")]
    if not lifts:
        return []
    return ["## Calendar context: model vs the same model with context ablated", "",
            _table(["metric", "k", "lift of model over model_no_context"],
                   [[r["metric"].removeprefix("context_lift_"), str(r["k"]), _percent(r["value"])] for r in lifts]),
            ""]


def _discovery_section(rows: list[dict[str, Any]], summary: dict[str, Any]) -> list[str]:
    """The model's figures at each value of the discovery knob (none without the sweep's rows)."""
    tradeoff = _tradeoff_points(rows)
    if not tradeoff:
        return []
    metrics = [m for m in ("ndcg", "tail_share", "recall", "tail_recall", "seasonal_recall")
               if any(m in values for _, values in tradeoff)]
    header = ["discovery"] + [f"{m}@{10 if m == 'ndcg' else 20}" for m in metrics]
    return [f"## Discovery knob (`scoring.discovery`, default {summary.get('discovery_default', 0):g}): "
            "model at each value", "",
            _table(header, [[f"{v:g}"] + [_fmt(values.get(m), DIGITS) for m in metrics] for v, values in tradeoff]),
            ""]


def _forecast_section(plot_data: dict[str, Any]) -> list[str]:
    """The forecast backtest table of ``plot_data`` (or a line saying there is none)."""
    backtest = plot_data.get("backtest")
    if backtest is None or not len(backtest):
        return ["## Forecast accuracy", "", "No forecast backtest in the lake (run `seasonrec forecast`).", ""]
    return [f"## Forecast accuracy (backtest as of {plot_data.get('backtest_as_of')})", "", backtest_table(backtest),
            "", "Bold: per level, the lowest WAPE and median MASE and the bias closest to zero.", ""]


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f} %"


def _ratio(value: float | None, reference: float | None) -> str:
    return f"{value / reference:.2f}×" if value is not None and reference else "n/a"


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _headline_ks(k_list: list[int]) -> tuple[int, int]:
    """(K of NDCG, K of recall) the summary quotes: 10 and 20 when evaluated, else the smallest/largest K."""
    return (10 if 10 in k_list else min(k_list)), (20 if 20 in k_list else max(k_list))


def _standing(rows: list[dict[str, Any]], methods: list[str], focal: str, metric: str, k: int,
              segment: str = "all") -> str:
    """``0.120 (2nd of 7; best item_knn 0.150)``: ``focal``'s value and rank among ``methods``."""
    values = {m: v for m in methods if (v := _get(rows, m, metric, k, segment)) is not None}
    if focal not in values:
        return "– (no such users)"
    best = max(values, key=lambda m: values[m])
    rank = 1 + sum(v > values[focal] for v in values.values())
    text = f"{_fmt(values[focal], DIGITS)} ({_ordinal(rank)} of {len(values)}"
    return text + (")" if rank == 1 else f"; best {best} {_fmt(values[best], DIGITS)})")


def run_summary(rows: list[dict[str, Any]], summary: dict[str, Any], k_list: list[int]) -> list[str]:
    """Three Markdown lines from the numbers: who wins on NDCG, the model's ratio to the best baseline,
    and the model's (else the winner's) standing on tail items, seasonal items and new users."""
    k_ndcg, k_recall = _headline_ks(k_list)
    # The ablations are not contenders: their comparison with the model has its own tables.
    methods = [m for m in _methods(rows) if _get(rows, m, "ndcg", k_ndcg) is not None
               and (m == "model" or m not in MODELS)]
    if not methods:
        return ["No method produced lists for this window."]
    ndcg = {m: _get(rows, m, "ndcg", k_ndcg) for m in methods}
    ranked = sorted(methods, key=lambda m: -ndcg[m])
    winner = ranked[0]
    won = _interval(rows, winner, "ndcg", k_ndcg)
    first = f"1. **{winner} wins on NDCG@{k_ndcg}** with {_with_interval(ndcg[winner], won)}"
    if len(ranked) > 1:
        runner = ranked[1]
        behind = _interval(rows, runner, "ndcg", k_ndcg)
        separable = "" if won is None or behind is None else (
            "; the 95% intervals overlap" if won[0] <= behind[1] else "; the 95% intervals do not overlap")
        first += f", ahead of {runner} {_with_interval(ndcg[runner], behind)}{separable}"
    baselines = [m for m in methods if m not in MODELS]
    focal = "model" if "model" in methods else winner
    if focal == "model" and baselines:
        best_ndcg = max(baselines, key=lambda m: ndcg[m])
        recalls = {m: _get(rows, m, "recall", k_recall) for m in baselines}
        best_recall = max(baselines, key=lambda m: recalls[m] or 0.0)
        second = (f"2. **Model vs the best baseline:** NDCG@{k_ndcg} {_ratio(ndcg['model'], ndcg[best_ndcg])} "
                  f"{best_ndcg}; Recall@{k_recall} "
                  f"{_ratio(_get(rows, 'model', 'recall', k_recall), recalls[best_recall])} {best_recall}.")
    else:
        reason = summary.get("skipped", {}).get("model", "not in --methods")
        second = f"2. **Model not evaluated** ({reason}); the best baseline on NDCG@{k_ndcg} is {winner}."
    peers = [focal, *[m for m in baselines if m != focal]]
    third = (f"3. **{focal} on tail, seasonal and new users:** tail recall@{k_recall} "
             f"{_standing(rows, peers, focal, 'tail_recall', k_recall)}, seasonal recall@{k_recall} "
             f"{_standing(rows, peers, focal, 'seasonal_recall', k_recall)}, new users' NDCG@{k_ndcg} "
             f"{_standing(rows, peers, focal, 'ndcg', k_ndcg, 'user_type=new')}.")
    return [first + ".", second, third]


def backtest_table(backtest: Any) -> str:
    """The forecast accuracy frame (level, model, series_windows, wape, median_mase, bias) as Markdown,
    each level's best value per error column in bold (`metrics.BETTER`)."""
    columns = list(backtest.columns)
    cells = [[_fmt(v) if isinstance(v, float) else str(v) for v in rec] for rec in backtest.itertuples(index=False)]
    for j, column in enumerate(columns):
        if column not in BETTER:
            continue
        for level in set(backtest["level"]):
            at = [i for i, lv in enumerate(backtest["level"]) if lv == level]
            values = [None if backtest[column].iloc[i] is None else float(backtest[column].iloc[i]) for i in at]
            for i, cell in zip(at, _bold_best(column, values, [cells[i][j] for i in at]), strict=True):
                cells[i][j] = cell
    return _table(columns, cells)


def _item_labels(items: list[str], titles: dict[str, str], width: int = 32) -> dict[str, str]:
    """Plot labels: the item's title (cut at ``width``), with the id only when two titles collide."""
    short = {i: (t if len(t) <= width else t[:width - 1] + "…") if (t := titles.get(i)) else str(i) for i in items}
    clashes = {label for label in short.values() if list(short.values()).count(label) > 1}
    return {i: f"{label} ({i})" if label in clashes else label for i, label in short.items()}


def weather_section(out_dir: str, weather: dict[str, Any]) -> list[str]:
    """The report's "Weather" section (Markdown lines with its plot), [] without weather data."""
    png = _weather_plot(out_dir, weather)
    if png is None:
        return []
    labels = _item_labels([item for item, _ in weather["items"]], weather.get("titles") or {})
    items = ", ".join(f"{labels[item]} (r = {corr:+.2f})" for item, corr in weather["items"])
    return ["## Weather", "",
            f"Daily temperature anomaly (°C against the day-of-year normal) of `{weather['region']}`, the weather "
            f"region of most units sold, over the data period (cold spells shaded), with the weekly units sold "
            f"there of {weather['chosen_from']}: {items}. r: correlation of an item's weekly units with the "
            "week's mean anomaly (negative: it sells more when it is colder than normal).", "",
            f"![Weather anomaly and weekly units]({os.path.basename(png)})", ""]


def weather_ablation_section(rows: list[dict[str, Any]], info: dict[str, Any] | None) -> list[str]:
    """The "Weather ablation" table: the model and the same model with its ranker fitted the other way
    (with / without the weather features), same run: Recall@20, NDCG@10 and the planted
    weather-sensitive items' Recall@20 for users in a cold spell; [] without an ablation."""
    if not info:
        return []
    ablation = info["ablation"]
    uses = bool(info["model_uses_weather"])
    label = {"model": f"model ({'with' if uses else 'without'} weather)",
             ablation: f"{ablation} ({'without' if uses else 'with'} weather)"}
    with_weather, without = ("model", ablation) if uses else (ablation, "model")
    columns = [("recall", 20), ("ndcg", 10), ("cold_spell_planted_recall", 20)]
    body = [[label[m], *[_fmt(_get(rows, m, metric, k), DIGITS) for metric, k in columns]]
            for m in (with_weather, without)]
    lift = []
    for metric, k in columns:
        on, off = _get(rows, with_weather, metric, k), _get(rows, without, metric, k)
        lift.append(_percent(on / off - 1) if on is not None and off else "–")
    body.append(["with / without − 1", *lift])
    pairs = info.get("cold_spell_planted_pairs")
    return ["## Weather ablation", "",
            _table(["method", "recall@20", "ndcg@10", "cold-spell planted recall@20"], body), "",
            "The ranker is fitted with and without the weather features (anomaly, spells, item weather "
            "sensitivity) on the validation window; `training.weather_features` (default `auto`) keeps the "
            "weather one only when its cross-fitted NDCG@10 is higher, and this model "
            f"{'reads' if uses else 'does not read'} them. Both are scored here through the same path. "
            "Cold-spell planted recall@20: share of the window's purchases of the planted weather-sensitive "
            "items by users whose country was in a cold spell the day before the window that reached their top 20"
            + (f" ({pairs} purchases)." if pairs is not None else " (no planted items or no cold spell: –)."),
            ""]


def _weather_plot(out_dir: str, weather: dict[str, Any]) -> str | None:
    import matplotlib.pyplot as plt
    import pandas as pd

    daily, units = weather.get("daily"), weather.get("weekly_units")
    if daily is None or not len(daily) or units is None or not weather.get("items"):
        return None
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [1, 1.3]})
    x = pd.to_datetime(daily["date"])
    cold = daily["cold_spell"].fillna(False).astype(bool).to_numpy()
    for ax in (top, bottom):  # the spells shaded under the sales too, where the eye compares them
        ax.fill_between(x, 0, 1, where=cold, color="C0", alpha=0.2, transform=ax.get_xaxis_transform(),
                        label="cold spell")
    top.plot(x, daily["anomaly_c"], color="grey", lw=0.5, label="daily anomaly")
    top.plot(x, daily["anomaly_7d_c"], color="C3", lw=1.2, label="7-day anomaly")
    top.axhline(0, color="black", lw=0.5)
    top.set_ylabel("°C against normal")
    top.legend(fontsize=7, ncol=3)
    labels = _item_labels([item for item, _ in weather["items"]], weather.get("titles") or {})
    for i, (item, corr) in enumerate(weather["items"]):
        sold = units[units["item_id"] == item].sort_values("week_start")
        # Units over the item's mean weekly units: items of different volume share one axis.
        scale = sold["units"].mean() or 1.0
        bottom.plot(pd.to_datetime(sold["week_start"]), sold["units"] / scale, color=f"C{i}",
                    label=f"{labels[item]} (r = {corr:+.2f})")
    bottom.set_ylabel("weekly units / item's mean")
    bottom.legend(fontsize=7, ncol=2)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    return _save(fig, out_dir, "weather_anomaly_and_sales.png")


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
    labels = _item_labels(list(profiles), data.get("titles") or {})
    for i, (item, profile) in enumerate(profiles.items()):
        ax.plot(range(1, len(profile) + 1), profile, label=labels[item], color=f"C{i}")
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
    """NDCG@10 and Recall@20 against tail share@20 at each discovery value (the knob leaves each user's
    top 10 in place, so its cost shows in Recall@20), the default in use starred, baselines in grey."""
    import matplotlib.pyplot as plt

    points = [(v, m) for v, m in _tradeoff_points(rows) if "ndcg" in m and "tail_share" in m]
    if len(points) < 2:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    default = summary.get("discovery_default")
    for ax, (metric, k, label) in zip(axes, (("ndcg", 10, "NDCG@10"), ("recall", 20, "Recall@20")), strict=True):
        shown = [(v, m) for v, m in points if m.get(metric) is not None]
        ax.plot([m["tail_share"] for _, m in shown], [m[metric] for _, m in shown], "-o", color="C0", label="model")
        for value, metrics in shown:
            ax.annotate(f"discovery={value:g}", (metrics["tail_share"], metrics[metric]),
                        textcoords="offset points", xytext=(5, 5), fontsize=8)
        chosen = [(m["tail_share"], m[metric]) for v, m in shown if default is not None and v == default]
        if chosen:
            ax.plot(*chosen[0], "r*", ms=14, label="default in use (calibrated on validation users)")
        for baseline, style in (("repeat_buy", "s"), ("seasonal_popularity", "^"), ("als", "D")):
            value, tail = _get(rows, baseline, metric, k), _get(rows, baseline, "tail_share", 20)
            if value is not None and tail is not None:
                ax.plot(tail, value, style, color="grey", label=baseline)
        ax.set_xlabel("tail share@20 (share of recommended slots holding tail items)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, out_dir, "discovery_tradeoff.png")


def _forecast_plot(out_dir: str, data: dict[str, Any]) -> str | None:
    """Fan chart per top item: P10–P90 band and P50 from the forecast origin on, actual weekly units
    from ``FAN_HISTORY_WEEKS`` before it (weeks without sales count 0), the evaluated window shaded."""
    import matplotlib.pyplot as plt
    import pandas as pd

    forecast = data.get("forecast")
    if forecast is None or not len(forecast):
        return None
    items = [i for i in data.get("top_items", []) if i in set(forecast["item_id"])]
    if not items:
        return None
    labels = _item_labels(items, data.get("titles") or {})
    actual = data.get("actual_weekly")
    weeks = pd.date_range(pd.Timestamp(data["actual_from"]), pd.to_datetime(forecast["week_start"]).max(), freq="7D")
    window = data.get("window")
    cols = min(3, len(items))
    rows_n = (len(items) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(5 * cols, 3.2 * rows_n), squeeze=False)
    for ax, item in zip(axes.flat, items, strict=False):
        f = forecast[forecast["item_id"] == item].sort_values("week_start")
        x = pd.to_datetime(f["week_start"])
        if window is not None:
            ax.axvspan(pd.Timestamp(window.start), pd.Timestamp(window.end), color="orange", alpha=0.15,
                       label="evaluated window")
        ax.fill_between(x, f["p10"], f["p90"], alpha=0.3, label="P10–P90")
        ax.plot(x, f["p50"], label="P50", marker=".")
        sold = actual[actual["item_id"] == item] if actual is not None else actual
        if sold is not None:
            units = pd.Series(sold["actual"].to_numpy(), index=pd.to_datetime(sold["week_start"]))
            ax.plot(weeks, units.reindex(weeks, fill_value=0.0), "k-o", label="actual", ms=3)
        ax.axvline(x.min(), color="grey", linestyle=":")
        ax.set_title(labels[item], fontsize=9)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
    for ax in list(axes.flat)[len(items):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"weekly units: forecast as of {data.get('forecast_as_of')} vs actual", fontsize=10)
    return _save(fig, out_dir, "forecast_fan_chart.png")
