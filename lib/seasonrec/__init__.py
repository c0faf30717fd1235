"""seasonrec: season-aware recommendations and weekly demand forecasts on Spark, Delta, Horovod and TensorFlow."""

__version__ = "0.1.0"
