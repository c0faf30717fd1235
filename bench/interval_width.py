"""Are the written item intervals too wide or too narrow? P10/P90 half-widths scaled by ``s``, checked
on the backtest windows and on the forecast weeks of a kept ``bench_forecast.py`` lake.

    .venv/bin/python bench/bench_forecast.py --data <csv> --backtest-windows 4 --synthetic-items 0 \\
        --keep --workdir DIR
    .venv/bin/python bench/interval_width.py --workdir DIR

For each as-of date in the lake: per backtest window (``forecast_backtest_weekly``, the chosen item
model), the mean pinball loss over P10/P50/P90 and the P10-P90 coverage at ``s`` = 1 and at the ``s``
of the grid 0.5..1.5 that minimises the pinball; the ``s`` chosen on windows 2.. scored on window 1
(nested); then the written item forecast (``demand_forecast``, items with history) against every sale
of its weeks (``gold_weekly_demand``) at ``s`` in 0.8, 0.9, 1, 1.1. ``p10' = floor(max(p50 - s (p50 -
p10), 0))``, ``p90' = max(p50 + s (p90 - p50), p50)``. Prints one JSON document.

Measured 2026-12-06 (lake of commit effaeb8, the same forecasts as 6f6570f): the pinball-minimising
``s`` is 1.0 over the backtest windows at both dates (0.95-1.1 per window), so the intervals are already
as wide as the pinball loss wants them; on the forecast weeks as of 2011-06-30, ``s`` = 0.9 would bring
coverage from 0.86 to 0.81 at a higher pinball (6.887 -> 6.919), ``s`` = 0.8 to 0.75 (7.002).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from bench_forecast import interval_scores

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

QUANTILES = (0.1, 0.5, 0.9)
GRID = [round(float(s), 2) for s in np.arange(0.5, 1.51, 0.05)]
FINAL_SCALES = (0.8, 0.9, 1.0, 1.1)


def _table(root: Path, name: str, columns: list[str]):
    import pandas as pd

    from seasonrec.lake import read_without_spark

    found = read_without_spark(str(root / name), columns)
    if found is None:
        raise SystemExit(f"{root / name}: no Delta table (run bench_forecast.py --keep --workdir first)")
    return pd.DataFrame(found[1])


def scores(frame, s: float) -> dict[str, float]:
    """Mean pinball over P10/P50/P90 and P10-P90 coverage (`bench_forecast.interval_scores`) of ``frame``
    (p10, p50, p90, actual) with the half-widths scaled by ``s``."""
    scaled = frame.assign(
        p10=np.floor(np.maximum(frame["p50"] - s * (frame["p50"] - frame["p10"]), 0)),
        p90=np.maximum(frame["p50"] + s * (frame["p90"] - frame["p50"]), frame["p50"]))
    pinball, coverage = interval_scores(scaled, QUANTILES)
    return {"s": s, "pinball": round(pinball, 4), "coverage": round(coverage, 4)}


def best_scale(frame) -> float:
    """The ``GRID`` value with the lowest mean pinball on ``frame`` (ties: the first, i.e. narrower)."""
    return min(GRID, key=lambda s: scores(frame, s)["pinball"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="a bench_forecast.py --keep --workdir folder")
    root = Path(parser.parse_args().workdir) / "lake_root"
    backtest = _table(root, "forecast_backtest_weekly", ["as_of", "level", "window", "p10", "p50", "p90", "actual"])
    written = _table(root, "demand_forecast", ["as_of", "level", "item_id", "week_start", "p10", "p50", "p90",
                                               "cold_start"])
    sales = _table(root, "gold_weekly_demand", ["item_id", "week_start", "quantity"])
    truth = sales.groupby(["item_id", "week_start"], as_index=False)["quantity"].sum()
    result = {}
    for as_of, windows in backtest[backtest["level"] == "item"].groupby("as_of"):
        per_window = {int(w): {"at_1": scores(f, 1.0), "best": scores(f, best_scale(f))}
                      for w, f in windows.groupby("window")}
        later = windows[windows["window"] >= 2]
        nested = None
        if len(later):
            first, s_later = windows[windows["window"] == 1], best_scale(later)
            nested = {"s_from_windows_2_on": s_later, "window_1_at_1": scores(first, 1.0),
                      "window_1_at_s": scores(first, s_later)}
        established = (written["level"] == "item") & ~written["cold_start"].astype(bool)
        items = written[(written["as_of"] == as_of) & established]
        final = (items.merge(truth, on=["item_id", "week_start"], how="left").fillna({"quantity": 0.0})
                 .rename(columns={"quantity": "actual"}))
        result[str(as_of)] = {"backtest_windows": per_window, "nested": nested,
                              "s_from_all_windows": best_scale(windows),
                              "forecast_weeks": {"items": int(final["item_id"].nunique()),
                                                 "by_s": [scores(final, s) for s in FINAL_SCALES]}}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
