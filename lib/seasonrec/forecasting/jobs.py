"""`seasonrec forecast`: weekly demand forecast per item, category and total with P10/P50/P90."""

from __future__ import annotations

import argparse
from typing import Any

from seasonrec.context import iso_date

DESCRIPTION = ("weekly demand forecast per item (LSTM via Horovod + statsforecast baselines, chosen by "
               "rolling-origin backtest) -> demand_forecast")


def _weeks(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of weeks") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--horizon must be at least 1 week (got {value})")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``seasonrec forecast`` options: ``--as-of`` (date the forecast starts from) and ``--horizon`` (weeks)."""
    parser.add_argument("--as-of", dest="as_of", type=iso_date, default=None,
                        help="forecast from this date: history = full weeks up to it (YYYY-MM-DD; "
                             "default: the last date in silver_interactions)")
    parser.add_argument("--horizon", type=_weeks, default=None,
                        help="weeks to forecast after --as-of (default: forecast.horizon)")


def run(ctx, args: argparse.Namespace) -> dict[str, Any]:
    """Forecast weekly demand ``--horizon`` weeks after ``--as-of`` (default: the last date in silver_interactions) with
    `pipeline.run_forecast`, writing the forecast tables.

    Returns as_of, horizon and the run's summary (series, chosen models, backtest scores, table versions).
    """
    from pyspark.sql import functions as F

    from seasonrec import tables
    from seasonrec.context import JobError
    from seasonrec.forecasting.pipeline import run_forecast

    as_of = args.as_of
    if as_of is None:
        if not ctx.lake.exists(tables.SILVER_INTERACTIONS):
            raise JobError(f"table '{tables.SILVER_INTERACTIONS}' does not exist {ctx.lake.where}; "
                           "run `seasonrec ingest` and `seasonrec features` first")
        as_of = ctx.lake.read(tables.SILVER_INTERACTIONS).agg(F.max("date")).first()[0]
        if as_of is None:
            raise JobError(f"table '{tables.SILVER_INTERACTIONS}' is empty; nothing to forecast")
    horizon = args.horizon or ctx.config.forecast.horizon
    result = run_forecast(ctx, as_of, horizon)
    return {"as_of": str(as_of), "horizon": horizon, **result.summary}
