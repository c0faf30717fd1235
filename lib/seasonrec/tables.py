"""Names of the Delta tables seasonrec owns (``<lake_root>/<name>``), grouped by medallion layer.

The columns of each table are documented in the module that writes it.
"""

# bronze: raw rows as ingested
BRONZE_TRANSACTIONS = "bronze_transactions"
QUARANTINE = "quarantine"
SYNTHETIC_TRUTH = "synthetic_truth"  # planted seasonality of the synthetic generator

# silver: cleaned, conformed
SILVER_INTERACTIONS = "silver_interactions"
SILVER_ITEMS = "silver_items"
CALENDAR = "calendar"

# gold: features and model inputs
ITEM_FEATURES = "gold_item_features"
USER_FEATURES = "gold_user_features"
TRAINING_EXAMPLES = "gold_training_examples"
WEEKLY_DEMAND = "gold_weekly_demand"

# serving / results
ITEM_EMBEDDINGS = "item_embeddings"
RECOMMENDATIONS = "recommendations"
DEMAND_FORECAST = "demand_forecast"
FORECAST_BACKTEST = "forecast_backtest"
EVALUATION_RUNS = "evaluation_runs"
