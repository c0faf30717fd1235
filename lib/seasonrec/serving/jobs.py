"""`seasonrec register`: log the trained recommender as an MLflow pyfunc model, register it, promote it."""

from __future__ import annotations

import argparse
from typing import Any

from seasonrec.context import iso_date

DESCRIPTION = ("log the trained recommender as an MLflow pyfunc model with a serving snapshot, register it and "
               "set the champion alias when it passes the quality gate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``seasonrec register`` options: ``--date`` (snapshot date) and ``--model-dir``."""
    parser.add_argument("--date", type=iso_date, default=None, metavar="YYYY-MM-DD",
                        help="snapshot date of user features and item signals (default: split.validation_end, "
                             "the date `seasonrec score` uses by default)")
    parser.add_argument("--model-dir", default=None, help="trained model (default: paths.model_dir)")


def run(ctx: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Register the trained model with a serving snapshot at ``--date`` (default: ``split.validation_end``) and promote
    it when it passes the gate; returns the `registry.register_recommender` summary."""
    from seasonrec.serving.registry import register_recommender

    day = args.date or ctx.config.split.validation_end
    return register_recommender(ctx, args.model_dir or ctx.config.paths.model_dir, day)
