"""Serving: the recommender as a registered MLflow pyfunc model, its snapshot, and `seasonrec serve`."""
