"""`seasonrec score --date YYYY-MM-DD`: top-K for every user in the season of a date, to Delta.

Writes `recommendations` (user_id, rank, item_id, score, model_version, context_date, run_id),
partitioned by context_date; re-running a date replaces that partition in one atomic commit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from seasonrec import tables
from seasonrec.context import JobContext, JobError
from seasonrec.tracking import registered_version_of

DESCRIPTION = "score every user x every item for the season of a date; top-K to the Delta recommendations table"

log = logging.getLogger("seasonrec")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", default=None, metavar="YYYY-MM-DD",
                        help="context date (its season/holidays); default: split.validation_end, "
                             "the first day of the test period")
    parser.add_argument("--top-k", type=int, default=None, help="list length (default: scoring.top_k)")
    parser.add_argument("--model-dir", default=None, help="trained model (default: paths.model_dir)")
    parser.add_argument("--ablate-context", action="store_true", help="score without the calendar context")


def score_and_write(ctx: JobContext, model_dir_or_model: Any, context_date: str | dt.date,
                    top_k: int | None = None, users_df: DataFrame | None = None,
                    ablate_context: bool = False) -> dict[str, Any]:
    """Score, write the date's partition of `recommendations`, and summarize what was written."""
    from seasonrec.features.as_of import user_features_as_of
    from seasonrec.scoring.engine import ScoringOptions, as_date, scoring_run

    options = ScoringOptions.from_config(ctx.config, top_k)
    if users_df is None:  # user features cut at the scored day (recent purchases count)
        users_df = user_features_as_of(ctx.lake, ctx.config, as_date(context_date)).persist()
    with ctx.step("plan scoring"):
        run = scoring_run(ctx, model_dir_or_model, users_df, context_date, options.top_k, ablate_context, options)
    day = run.context_date
    output = run.recommendations.select(
        "user_id", "rank", "item_id", "score",
        F.lit(run.model_version).alias("model_version"),
        F.lit(day).cast("date").alias("context_date"),
        F.lit(ctx.run_id).alias("run_id"),
    )
    with ctx.step(f"score {day} and write {tables.RECOMMENDATIONS}"):
        version = ctx.lake.write(output, tables.RECOMMENDATIONS, mode="overwrite", partition_by=["context_date"],
                                 replace_partitions=True,
                                 commit_info=ctx.commit_info(context_date=str(day), model_version=run.model_version))
    written = ctx.lake.read(tables.RECOMMENDATIONS).where(F.col("context_date") == F.lit(day))
    if written.where(F.col("run_id") == F.lit(ctx.run_id)).limit(1).count() == 0:
        # An empty result replaces no partition: say so rather than leave an older run's lists looking new.
        raise JobError(f"scoring {day} produced no recommendations (no users to score, or no vector for any); "
                       f"{tables.RECOMMENDATIONS} keeps its previous rows for that date")
    per_user = written.groupBy("user_id").agg(F.count("*").alias("n"))
    counts = per_user.agg(F.count("*").alias("users"), F.sum("n").alias("rows"),
                          F.sum(F.when(F.col("n") < options.top_k, 1).otherwise(0)).alias("short")).first()
    users_input = users_df.select("user_id").distinct().count()
    users_scored = int(counts["users"] or 0)
    if users_scored < users_input:
        log.warning("[score] %d of %d users got no recommendation (see workers.users_without_vector)",
                    users_input - users_scored, users_input)
    worker = run.worker_stats()
    return {
        "table": tables.RECOMMENDATIONS, "table_version": version, "context_date": str(day),
        "rows": int(counts["rows"] or 0), "users_input": users_input, "users_scored": users_scored,
        "users_without_recommendations": users_input - users_scored,
        "users_with_fewer_than_k": int(counts["short"] or 0),
        "users_unseen_at_training": int(worker.get("unseen_users", 0)),
        **{k: v for k, v in run.facts.items() if k != "context_date"},
        "registered_version": registered_version_of(ctx.config, run.model_version),
        "workers": worker,
    }


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    context_date = args.date or ctx.config.split.validation_end.isoformat()
    model_dir = args.model_dir or ctx.config.paths.model_dir
    return score_and_write(ctx, model_dir, context_date, args.top_k, ablate_context=args.ablate_context)
