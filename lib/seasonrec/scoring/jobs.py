"""`seasonrec score --date YYYY-MM-DD`: top-K for every user in the season of a date, to Delta.

Writes `recommendations` (user_id, rank, item_id, score, title, category, price, reason, buy_again,
model_version, context_date, run_id; `seasonrec.tables`), partitioned by context_date; re-running a
date replaces that partition in one atomic commit. ``reason`` comes from the scoring path itself
(`seasonrec.scoring.engine.explain`, the same as a served answer's); title, category and price from
silver_items; ``buy_again``: the user bought the item before the context date (silver_interactions).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import logging
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from seasonrec import tables
from seasonrec.context import JobContext, JobError
from seasonrec.tracking import registered_version_of

DESCRIPTION = "score every user x every item for the season of a date; top-K to the Delta recommendations table"

log = logging.getLogger("seasonrec")
RUN_COLUMNS = ("model_version", "context_date", "run_id")  # the same for every row of a scoring run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``seasonrec score`` options: ``--date``, ``--top-k``, ``--model-dir``, ``--ablate-context``."""
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

    refuse_older_table(ctx)
    options = dataclasses.replace(ScoringOptions.from_config(ctx.config, top_k), explain=True)
    if users_df is None:  # user features cut at the scored day (recent purchases count)
        users_df = user_features_as_of(ctx.lake, ctx.config, as_date(context_date)).persist()
    with ctx.step("plan scoring"):
        run = scoring_run(ctx, model_dir_or_model, users_df, context_date, options.top_k, ablate_context, options)
    day = run.context_date
    output = readable(ctx, run.recommendations, day).select(
        *[c for c in tables.spec(tables.RECOMMENDATIONS).column_names if c not in RUN_COLUMNS],
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


def refuse_older_table(ctx: JobContext) -> None:
    """Stop before scoring when `recommendations` exists with other columns (a lake from before the
    readable columns): a partition written on top would keep the old schema and lose the new columns."""
    if not ctx.lake.exists(tables.RECOMMENDATIONS):
        return
    found = ctx.lake.read(tables.RECOMMENDATIONS).columns
    declared = tables.spec(tables.RECOMMENDATIONS).column_names
    missing = [c for c in declared if c not in found]
    if missing or set(found) - set(declared):
        raise JobError(f"table '{tables.RECOMMENDATIONS}' {ctx.lake.where} has the columns of an older "
                       f"seasonrec (missing {missing}); move {ctx.lake.path(tables.RECOMMENDATIONS)} away or use "
                       "a fresh lake, then score again")


def readable(ctx: JobContext, recommendations: DataFrame, day: dt.date) -> DataFrame:
    """``recommendations`` (user_id, rank, item_id, score, reason) with what a person reads next to an
    item id: title, category and price from silver_items, and ``buy_again`` (the user bought the item
    before ``day``). Key columns and reason/buy_again come out non-null (the Delta schema says so)."""
    if not ctx.lake.exists(tables.SILVER_ITEMS):
        raise JobError(f"table '{tables.SILVER_ITEMS}' does not exist {ctx.lake.where} (recommendations "
                       "carry item titles, categories and prices); run `seasonrec features` first")
    if not ctx.lake.exists(tables.SILVER_INTERACTIONS):
        raise JobError(f"table '{tables.SILVER_INTERACTIONS}' does not exist {ctx.lake.where} (buy_again "
                       "needs purchases); run `seasonrec features` first")
    item_type = recommendations.schema["item_id"].dataType
    items = (ctx.lake.read(tables.SILVER_ITEMS).select("item_id", "title", "category", "price")
             .dropDuplicates(["item_id"]).withColumn("item_id", F.col("item_id").cast(item_type)))
    user_type = recommendations.schema["user_id"].dataType
    bought = (ctx.lake.read(tables.SILVER_INTERACTIONS)
              .where(F.col("user_id").isNotNull() & (F.col("date") < F.lit(day)))
              .select(F.col("user_id").cast(user_type).alias("user_id"),
                      F.col("item_id").cast(item_type).alias("item_id"))
              .distinct().withColumn("_bought", F.lit(True)))
    user_id = F.col("user_id")
    if isinstance(user_type, T.StringType):  # no null is left after the filter: coalesce only declares it
        user_id = F.coalesce(user_id, F.lit(""))
    return (recommendations.where(F.col("user_id").isNotNull()).withColumn("user_id", user_id)
            .join(F.broadcast(items), "item_id", "left")
            .join(bought, ["user_id", "item_id"], "left")
            .withColumn("buy_again", F.coalesce(F.col("_bought"), F.lit(False))))


def run(ctx: JobContext, args: argparse.Namespace) -> dict[str, Any]:
    """Score every user at ``--date`` (default: ``split.validation_end``) with the model in ``--model-dir`` (default
    ``paths.model_dir``) and replace that date's partition of ``recommendations``; returns the `score_and_write`
    summary (table version, users and rows written, worker counters, ...)."""
    context_date = args.date or ctx.config.split.validation_end.isoformat()
    model_dir = args.model_dir or ctx.config.paths.model_dir
    return score_and_write(ctx, model_dir, context_date, args.top_k, ablate_context=args.ablate_context)
