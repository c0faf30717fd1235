"""Full-catalog scoring: every user x every item for the season of a date, top-K to Delta.

For other stages (evaluation, ablation) -- recommendations without writing them::

    from seasonrec.scoring import recommend
    df = recommend(ctx, model_dir_or_model, users_df, context_date, top_k, ablate_context=False)
    # -> Spark DataFrame[user_id, rank (1..K), item_id, score double], lazy

- `model_dir_or_model`: a model dir (loaded with `seasonrec.training.artifacts.load_scoring_model`)
  or any object implementing `seasonrec.core.contract.Recommender` (e.g. `ALSFactorsModel`).
- `users_df`: rows of gold_user_features (None: the whole table). Every user gets a list, unseen
  users included (the model scores them from features/history).
- `context_date`: date or 'YYYY-MM-DD'; its calendar row is the model's context.
- Filters follow `ctx.config.scoring`: sellable (a sale in the `sellable_weeks` before the date,
  0 disables), `exclude_bought` (purchases before the date), `max_per_category`; set them with
  `--set scoring.key=value` or a copied config. `scoring_run(...)` returns the same DataFrame plus
  a report (counts of unseen users, items without embedding, worker peak memory, ...).

`seasonrec score --date YYYY-MM-DD` (module `seasonrec.scoring.jobs`) writes the Delta table
`recommendations` (user_id, rank, item_id, score, title, category, price, reason, buy_again,
model_version, context_date [partition], run_id); re-running a date atomically replaces that date's
partition. ``ScoringOptions(explain=True)`` adds the ``reason`` column to the scored lists
(`seasonrec.scoring.engine.explain`; the score job and the server set it, evaluation does not).
"""

from __future__ import annotations

from typing import Any


def recommend(ctx: Any, model_dir_or_model: Any, users_df: Any, context_date: Any, top_k: int | None = None,
              ablate_context: bool = False) -> Any:
    """See the module docstring; imported lazily so `import seasonrec.scoring` stays light."""
    from seasonrec.scoring.engine import recommend as _recommend

    return _recommend(ctx, model_dir_or_model, users_df, context_date, top_k, ablate_context)


__all__ = ["recommend"]
