"""`seasonrec train`: Horovod + Petastorm training of the season-aware two-tower recommender."""

from __future__ import annotations

import argparse
from typing import Any

DESCRIPTION = "train the season-aware two-tower recommender with Horovod over Petastorm (+ second stage)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``seasonrec train`` options: ``--resume`` (from the last checkpoint) and ``--no-context`` (ablation)."""
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint's epoch (under paths.checkpoint_dir/training)")
    parser.add_argument("--no-context", dest="no_context", action="store_true",
                        help="train without the request-time calendar context (ablation)")


def run(ctx: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Train, export and register a model version (`pipeline.train`); returns its summary without the per-epoch
    ``history``."""
    from seasonrec.training.pipeline import train

    summary = train(ctx, resume=bool(getattr(args, "resume", False)),
                    use_context=False if getattr(args, "no_context", False) else None)
    summary.pop("history", None)
    return summary
