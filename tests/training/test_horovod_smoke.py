"""Horovod smoke test: 2 Gloo processes fed by Petastorm train a tiny Keras model in lock-step."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import cloudpickle
import pytest

from seasonrec.core import horovod_runner as dist

# Horovod ships the train function to its processes with cloudpickle, which pickles a function of an
# importable module by reference; this test module is not importable there, so pickle it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def train_tiny_regressor(converter: Any, steps_per_epoch: int, epochs: int, learning_rate: float,
                         checkpoint_dir: str | None = None, batch_size: int = 32, seed: int = 11) -> dict[str, Any]:
    """Fit y ~ Dense(Dense(x0, x1, x2)) on this rank's Petastorm shard; returns losses and a weights digest."""
    import tensorflow as tf

    hvd = dist.init_worker(seed=seed)
    model = tf.keras.Sequential([tf.keras.layers.Input(shape=(3,)), tf.keras.layers.Dense(4, activation="relu"),
                                 tf.keras.layers.Dense(1)])
    model.compile(optimizer=dist.distributed_optimizer(learning_rate), loss="mse")
    callbacks = dist.standard_callbacks(learning_rate, steps_per_epoch, warmup_epochs=1)
    if checkpoint_dir and hvd.rank() == 0:
        callbacks.append(tf.keras.callbacks.ModelCheckpoint(os.path.join(checkpoint_dir, "ckpt.h5")))
    started = time.perf_counter()
    with dist.sharded_tf_dataset(converter, batch_size=batch_size) as dataset:
        dataset = dataset.map(lambda b: (tf.stack([b.x0, b.x1, b.x2], axis=1), b.y))
        history = model.fit(dataset, steps_per_epoch=steps_per_epoch, epochs=epochs, callbacks=callbacks,
                            verbose=0)
    seconds = time.perf_counter() - started
    return {"rank": hvd.rank(), "size": hvd.size(), "loss": history.history["loss"], "seconds": seconds,
            "examples": steps_per_epoch * epochs * batch_size, "digest": dist.weights_digest(model)}


def test_two_gloo_processes_fed_by_petastorm_agree_on_weights(spark, tmp_path):
    from pyspark.sql import functions as F

    df = (spark.range(1024)
          .withColumn("x0", F.rand(1)).withColumn("x1", F.rand(2)).withColumn("x2", F.rand(3))
          .withColumn("y", 3 * F.col("x0") - 2 * F.col("x1") + F.col("x2") + 0.5)
          .drop("id"))
    cache = tmp_path / "petastorm"
    with dist.petastorm_converter(spark, df, str(cache)) as converter:
        assert len(converter) == 1024
        steps = dist.steps_per_epoch(len(converter), batch_size=32, num_proc=2)
        results = dist.run_horovod(spark, train_tiny_regressor, num_proc=2, converter=converter,
                                   steps_per_epoch=steps, epochs=4, learning_rate=0.02,
                                   checkpoint_dir=str(tmp_path))
    assert [r["rank"] for r in results] == [0, 1]
    assert all(r["size"] == 2 for r in results)
    assert results[0]["digest"] == results[1]["digest"], "ranks diverged"
    losses = results[0]["loss"]
    assert losses[-1] < losses[0] * 0.5
    assert results[0]["loss"] == pytest.approx(results[1]["loss"])  # MetricAverageCallback
    assert (tmp_path / "ckpt.h5").exists()  # rank 0's checkpoint
    assert not any(cache.iterdir()), "petastorm cache must be cleaned up"


def test_petastorm_files_are_read_in_content_order_whatever_their_names(spark, tmp_path):
    """The converter's files are listed by part number: the file system lists them in the order of
    their names, which carry a random UUID per write, and the seeded row-group shuffle starts from
    that list (two trainings of the same data and seed differed before; tests/training/
    test_weather_ranker.py)."""
    import pyarrow.parquet as pq

    df = spark.range(400).selectExpr("cast(id as double) as x")
    firsts = []
    for run in range(2):
        with dist.petastorm_converter(spark, df, str(tmp_path / f"cache{run}"), min_files=4) as converter:
            names = [url.rsplit("/", 1)[-1] for url in converter.file_urls]
            assert len(names) >= 4 and [n.split("-")[1] for n in names] == sorted(n.split("-")[1] for n in names)
            firsts.append([pq.read_table(url.replace("file://", "")).column("x")[0].as_py()
                           for url in converter.file_urls])
    assert firsts[0] == firsts[1]  # same files, same order, same rows: the same training input
