"""Drift (level) correction of the chosen forecasts, learned and checked on the backtest windows.

Why: a demand level that moves (Online Retail's autumn ramp, with no previous year in the data)
leaves every model's forecasts low or high by a common factor at a level. If that factor persists
from one backtest window to the next, the recent windows show it and it can be divided out.

Per level (item, category, total) and backtest window ``w``: ``ratio_w`` = sum of actuals / sum of
the chosen model's ``mean`` over the level's series x weeks of that window (item level: the
established items that were forecast, against their own sales). A *factor* from a set of windows is
robust by construction, fixed a priori and never fitted to any scored weeks:

- the median of their ratios (geometric mean of the middle two for an even count; from three
  windows on, one odd window does not move it),
- shrunk towards 1 in log space by ``n / (n + SHRINK_WINDOWS)`` (one window moves it half-way),
- clipped to ``CLIP`` = [0.67, 1.5].

Scaling: ``mean`` x factor; ``p10/p50/p90`` x factor (item P10 floored to whole units again, P90
kept >= P50), only where the quantiles are adopted too.

Decision (``forecast.drift_correction``), per level:

- ``off``: nothing is scaled.
- ``on``: the factor from all backtest windows scales ``mean`` and the quantiles.
- ``auto`` (nested, like model selection): the factor is estimated on windows 2..K only and
  applied to window 1's forecasts of the same model, which it did not see. The ``mean`` is
  corrected when that lowers |bias of the summed mean| on window 1 strictly; the quantiles too when
  it also lowers window 1's mean pinball loss (P10/P50/P90) strictly. With fewer than 2 backtest
  windows at a level there is no out-of-sample evidence, so nothing is scaled there. What is
  adopted is then applied to the final forecast with the factor from all windows 1..K.

The correction runs on each level's chosen forecast before reconciliation, so item means still add
up to the category and total means afterwards (see :mod:`seasonrec.forecasting.reconcile`).

Measured on Online Retail (``bench/bench_forecast.py --drift-correction off,auto``): with the job's 4
backtest windows as of 2011-08-31 the total's TSB was low in every window and ``auto`` scaled it
x1.115 (total WAPE 1.256x -> 0.903x the best classical, bias -29% -> -21%); with fewer windows it
does next to nothing. It does not close the July-September gap (-19% to -22% at every level
remains): the autumn ramp is not in the backtest windows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec.forecasting import series as S

MODES = ("auto", "on", "off")
SHRINK_WINDOWS = 1.0  # pseudo-windows of "no drift" the median is shrunk towards (log scale)
CLIP = (0.67, 1.5)  # a level shift beyond -33% / +50% is not a drift to extrapolate blindly


def robust_factor(ratios: Sequence[float], shrink_windows: float = SHRINK_WINDOWS,
                  clip: tuple[float, float] = CLIP) -> float:
    """Factor from per-window ratios (actual / forecast): median, shrunk towards 1 in log space, clipped.

    Non-finite or non-positive ratios are ignored; no usable ratio gives 1.0.
    """
    usable = sorted(r for r in ratios if r is not None and math.isfinite(r) and r > 0)
    if not usable:
        return 1.0
    mid = len(usable) // 2
    median = usable[mid] if len(usable) % 2 else math.sqrt(usable[mid - 1] * usable[mid])
    weight = len(usable) / (len(usable) + shrink_windows)
    return float(min(max(math.exp(weight * math.log(median)), clip[0]), clip[1]))


def scale_quantities(rows: DataFrame, mean_factors: dict[str, float],
                     quantile_factors: dict[str, float]) -> DataFrame:
    """``rows`` (level, p10, p50, p90, mean, ...) with each level's factors applied.

    ``mean_factors`` / ``quantile_factors``: level -> factor (levels not listed keep 1.0). Item P10
    stays a whole number (floored, as ``pipeline.whole_unit_intervals`` makes it) and P90 >= P50.
    Returns the same columns.
    """
    def factor(factors: dict[str, float]) -> Any:
        if not factors:
            return F.lit(1.0)
        expression = F.lit(1.0)
        for level, value in factors.items():
            expression = F.when(F.col("level") == level, F.lit(float(value))).otherwise(expression)
        return expression

    q, m = factor(quantile_factors), factor(mean_factors)
    p10 = F.col("p10") * q
    p50 = F.col("p50") * q
    columns = {
        "p10": F.when((F.col("level") == S.ITEM) & (q != 1.0), F.least(F.floor(p10).cast("double"), p50))
        .otherwise(p10),
        "p50": p50,
        "p90": F.greatest(F.col("p90") * q, p50),
        "mean": F.col("mean") * m,
    }
    return rows.select(*[columns[c].alias(c) if c in columns else F.col(c) for c in rows.columns])


def window_sums(rows: DataFrame) -> Any:
    """Per level and backtest window: actual and mean_forecast summed over series x weeks (pandas).

    ``rows``: the chosen models' backtest rows with ``actual`` (level, window, mean, actual, ...).
    Returns level, window, actual, mean_forecast, ratio (actual / mean_forecast, NaN if either is 0).
    """
    sums = (rows.groupBy("level", "window").agg(F.sum("actual").alias("actual"),
                                                 F.sum("mean").alias("mean_forecast")).toPandas())
    usable = (sums["actual"] > 0) & (sums["mean_forecast"] > 0)
    sums["ratio"] = (sums["actual"] / sums["mean_forecast"]).where(usable)
    return sums.sort_values(["level", "window"]).reset_index(drop=True)


def held_out_pinball(rows: DataFrame, window: int, factors: dict[str, float],
                     quantiles: Sequence[float]) -> dict[str, tuple[float, float]]:
    """Mean pinball loss (P10/P50/P90) on ``window`` per level, as forecast and with ``factors`` applied.

    Returns level -> (pinball as forecast, pinball scaled); levels without a factor are left out.
    """
    if not factors:
        return {}
    frame = (rows.where((F.col("window") == window) & F.col("level").isin(list(factors)))
             .select("level", "actual", "p10", "p50", "p90",
                     *[F.col(c).alias(f"orig_{c}") for c in ("p10", "p50", "p90")]))
    # The same scaling the final forecast would get; the originals ride along for the comparison.
    frame = scale_quantities(frame, {}, {level: float(f) for level, f in factors.items()})

    def pinball(prefix: str) -> Any:
        terms = []
        for q, col in zip(quantiles, ("p10", "p50", "p90"), strict=True):
            diff = F.col("actual") - F.col(f"{prefix}{col}")
            terms.append(F.greatest(F.lit(q) * diff, F.lit(q - 1) * diff))
        return (terms[0] + terms[1] + terms[2]) / 3

    result = frame.groupBy("level").agg(F.avg(pinball("orig_")).alias("before"),
                                        F.avg(pinball("")).alias("after")).collect()
    return {r["level"]: (float(r["before"]), float(r["after"])) for r in result}


def _usable(sums: Any, level: str) -> list[tuple[int, float]]:
    """(window, ratio) of ``level`` with a usable ratio, latest window (lowest number) first."""
    part = sums[(sums["level"] == level) & sums["ratio"].notna()].sort_values("window")
    return [(int(w), float(r)) for w, r in zip(part["window"], part["ratio"], strict=True)]


def nested_factors(sums: Any) -> dict[str, float]:
    """Per level with at least 2 usable windows: the factor estimated on all but the latest window.

    ``sums``: ``window_sums`` rows. The latest window (lowest number) is what it is scored on.
    """
    out = {}
    for level in sorted(set(sums["level"])):
        usable = _usable(sums, level)
        if len(usable) >= 2:
            out[level] = robust_factor([r for _, r in usable[1:]])
    return out


def decide(sums: Any, pinball: dict[str, tuple[float, float]], mode: str) -> dict[str, Any]:
    """The per-level decision of ``mode`` (see the module doc) from the backtest windows.

    ``sums``: ``window_sums`` rows; ``pinball``: ``held_out_pinball`` of the latest window with the
    ``nested_factors`` (level -> (as forecast, scaled)). Returns {"mode", "mean_factors",
    "quantile_factors" (level -> factor, only levels that are scaled), "levels": per level the
    ratios by window, the factor from all windows, the nested check and what was applied}.
    """
    if mode not in MODES:
        raise ValueError(f"forecast.drift_correction: unknown mode '{mode}' (allowed: {', '.join(MODES)})")
    nested = nested_factors(sums)
    report: dict[str, Any] = {"mode": mode, "mean_factors": {}, "quantile_factors": {}, "levels": {}}
    for level in sorted(set(sums["level"])):
        usable = _usable(sums, level)
        if not usable:
            continue
        factor = robust_factor([r for _, r in usable])
        entry: dict[str, Any] = {"ratio_by_window": {w: round(r, 4) for w, r in usable},
                                 "factor_all_windows": round(factor, 4), "nested": None}
        adopt_mean = adopt_quantiles = mode == "on"
        reason = "forced (on)" if mode == "on" else "off"
        if level in nested:
            latest, ratio = usable[0]
            # Bias of the summed mean on the latest window: mean/actual - 1 = 1/ratio - 1.
            before, after = 1.0 / ratio - 1.0, nested[level] / ratio - 1.0
            p_before, p_after = pinball.get(level, (math.nan, math.nan))
            entry["nested"] = {"estimated_on_windows": [w for w, _ in usable[1:]], "factor": round(nested[level], 4),
                               "scored_on_window": latest, "mean_bias_before": round(before, 4),
                               "mean_bias_after": round(after, 4), "pinball_before": _round(p_before),
                               "pinball_after": _round(p_after)}
            if mode == "auto":
                adopt_mean = abs(after) < abs(before)
                adopt_quantiles = adopt_mean and p_after < p_before  # NaN compares False: not adopted
                reason = ("lowers the held-out bias" + (" and pinball" if adopt_quantiles else "")
                          if adopt_mean else "does not lower the held-out bias")
        elif mode == "auto":
            reason = "fewer than 2 backtest windows: no out-of-sample check"
        if adopt_mean and factor != 1.0:
            report["mean_factors"][level] = factor
        if adopt_quantiles and factor != 1.0:
            report["quantile_factors"][level] = factor
        entry.update({"applied_to": [name for name, on in (("mean", adopt_mean), ("quantiles", adopt_quantiles))
                                     if on and factor != 1.0], "reason": reason})
        report["levels"][level] = entry
    return report


def _round(value: float) -> float | None:
    return None if value != value else round(float(value), 4)  # NaN -> None


def choose(rows: DataFrame, quantiles: Sequence[float], mode: str) -> dict[str, Any]:
    """Learn and check the correction on the chosen models' backtest rows (see ``decide``).

    ``rows``: level, series_id, window (>= 1), week_start, p10, p50, p90, mean, actual of each level's
    chosen model. ``off`` reads nothing and returns an empty decision.
    """
    if mode not in MODES:
        raise ValueError(f"forecast.drift_correction: unknown mode '{mode}' (allowed: {', '.join(MODES)})")
    if mode == "off":
        return {"mode": mode, "mean_factors": {}, "quantile_factors": {}, "levels": {}}
    sums = window_sums(rows)
    if sums.empty:
        return decide(sums, {}, mode)
    nested = nested_factors(sums)
    latest = {level: _usable(sums, level)[0][0] for level in nested}
    pinball: dict[str, tuple[float, float]] = {}
    for window in sorted(set(latest.values())):
        pinball.update(held_out_pinball(rows, window, {lv: nested[lv] for lv, w in latest.items() if w == window},
                                        quantiles))
    return decide(sums, pinball, mode)


def apply(forecast: DataFrame, decision: dict[str, Any]) -> DataFrame:
    """``forecast`` (level, p10, p50, p90, mean, ...) scaled by the adopted factors of ``decision``."""
    if not decision.get("mean_factors") and not decision.get("quantile_factors"):
        return forecast
    return scale_quantities(forecast, decision["mean_factors"], decision["quantile_factors"])
